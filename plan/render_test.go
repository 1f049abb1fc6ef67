package plan

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// bigPlan is a plan for n members: a cluster, a cacerts update and a remote secret to every
// other member each, plus the manager's release.
func bigPlan(n int) *Plan {
	p := &Plan{Fleet: "big"}
	p.Steps = append(p.Steps, Step{Address: "manager/karmada/release", Layer: Managers, Kind: KindKarmadaRelease,
		Action: Update, Cluster: "mgr", Reason: "values differ"})
	var members []string
	for i := range n {
		members = append(members, fmt.Sprintf("m%03d", i))
	}
	for i, m := range members {
		p.Steps = append(p.Steps, Step{Address: "cluster/" + m, Layer: Members, Kind: KindCluster, Action: Create,
			Cluster: m, Reason: "no LKE cluster " + m + " exists",
			Changes: []Change{{Field: "region", After: "eu-west"}, {Field: "pool[0]", After: "g6-standard-2 x" + fmt.Sprint(1+i%2)}}})
	}
	for _, m := range members {
		p.Steps = append(p.Steps, Step{Address: "member/" + m + "/mesh/cacerts", Layer: Mesh, Kind: KindCACerts, Action: Update,
			Cluster: m, Reason: "the intermediate of " + m + " expires in 20d",
			Changes: []Change{{Field: "intermediate", Before: "expires 2027-01-01", After: "re-issued"}}})
		for _, peer := range members {
			if peer == m {
				continue
			}
			p.Steps = append(p.Steps, Step{Address: "member/" + m + "/mesh/remote-secret/" + peer, Layer: Mesh, Kind: KindRemoteSecret,
				Action: Create, Cluster: m, Peer: peer, Reason: "no remote secret for " + peer + " in " + m,
				DependsOn: []string{"member/" + peer + "/mesh/cacerts"}})
		}
	}
	return p
}

func TestTextGroupsAlikeSteps(t *testing.T) {
	t.Parallel()
	p := bigPlan(100)
	var buf bytes.Buffer
	if err := p.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"  ~ manager/karmada/release  (values differ)\n",
		"  + 100 x cluster/*  (kind cluster, 100 members)\n        reason: no LKE cluster * exists\n        members: m000, m001, ",
		"m098, m099\n        region: eu-west\n        (changes differ from step to step: --verbose shows each)\n",
		"  ~ 100 x member/*/mesh/cacerts  (kind cacerts, 100 members)\n        reason: the intermediate of * expires in 20d\n",
		"        intermediate: expires 2027-01-01 -> re-issued\n",
		"  + 9900 x member/*/mesh/remote-secret/*  (kind remote-secret, 100 members x 99 peers)\n        reason: no remote secret for * in *\n        members: the 100 above\n",
		"Plan: 10000 to add, 101 to change, 0 to destroy.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("grouped text lacks %q", want)
		}
	}
	if n := strings.Count(out, "\n"); n > 30 {
		t.Errorf("grouped text of a 100-member plan has %d lines:\n%s", n, out)
	}
	if strings.Contains(out, "member/m001/mesh/remote-secret/m002") {
		t.Error("a grouped step is drawn on its own")
	}

	var all bytes.Buffer
	if err := p.WriteTextWith(&all, TextOptions{Verbose: true}); err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(all.String(), "\n") {
		lines[l] = true
	}
	for _, s := range p.Steps {
		if !lines["  "+s.Action.Symbol()+" "+s.Address+"  ("+s.Reason+")"] {
			t.Fatalf("--verbose text lacks step %s", s.Address)
		}
	}
}

func TestTextSmallPlanIsNotGrouped(t *testing.T) {
	t.Parallel()
	p := bigPlan(3) // 6 remote secrets, 3 clusters: at most GroupOver alike
	var grouped, verbose bytes.Buffer
	if err := p.WriteText(&grouped); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteTextWith(&verbose, TextOptions{Verbose: true}); err != nil {
		t.Fatal(err)
	}
	if grouped.String() != verbose.String() {
		t.Errorf("a small plan is drawn differently from --verbose:\n%s\nwant:\n%s", grouped.String(), verbose.String())
	}
}

func TestShapeAndStarNames(t *testing.T) {
	t.Parallel()
	s := &Step{Address: "member/mesh/mesh/remote-secret/mesh", Cluster: "mesh", Peer: "mesh"}
	if got := shape(s); got != "member/*/mesh/remote-secret/*" {
		t.Errorf("shape = %q", got)
	}
	if got := starNames("eu in eu-west, not eun: eu", "eu"); got != "* in eu-west, not eun: *" {
		t.Errorf("starNames = %q", got)
	}
}
