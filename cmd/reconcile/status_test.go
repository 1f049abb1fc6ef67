package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/world"
)

const statusFleetYAML = `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: prod}
provider:
  linode: {tokenEnv: STATUS_TEST_TOKEN}
manager:
  name: cluster-manager
  region: eu-west
  k8sVersion: "1.33"
  pools: [{type: g6-standard-2, count: 1}]
  karmada:
    chart: {repo: https://charts.example, name: karmada, version: 1.16.0}
members:
  - name: eu
    region: eu-west
    k8sVersion: "1.33"
    pools: [{type: g6-standard-2, count: 2}]
    network: network1
  - name: ap
    region: ap-south
    k8sVersion: "1.33"
    pools: [{type: g6-standard-2, count: 1}]
    network: network2
    joinMode: Pull
mesh:
  version: 1.30.3
  meshID: mesh1
workloads:
  - name: hello
    resources: [{apiVersion: apps/v1, kind: Deployment, name: hello}]
    weights: {eu: 1, ap: 2}
`

var statusNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func statusFleet(t *testing.T) *spec.Fleet {
	t.Helper()
	f, err := spec.Parse("fleet.yaml", []byte(statusFleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// healthyInput is a fleet whose every layer is as fleet.yaml wants it.
func healthyInput(t *testing.T) statusInput {
	f := statusFleet(t)
	day := 24 * time.Hour
	lke := func(name string, id, nodes int) *world.Cluster {
		c := &world.Cluster{Name: name, LinodeID: id, Region: "eu-west", K8sVersion: "1.33", Status: "ready", Reachable: true,
			Pools: []world.Pool{{ID: id * 10, Type: "g6-standard-2", Count: nodes}}}
		for i := 0; i < nodes; i++ {
			c.Pools[0].Nodes = append(c.Pools[0].Nodes, world.Node{ID: "n", Status: "ready"})
		}
		return c
	}
	root := &world.CertInfo{Subject: "root", NotAfter: statusNow.Add(3650 * day), RootFingerprint: "f00dfeedf00dfeedf00dfeed"}
	inter := func(m string) *world.CertInfo {
		return &world.CertInfo{Subject: m, NotAfter: statusNow.Add(3000 * day), RootFingerprint: root.RootFingerprint}
	}
	w := &world.World{Now: statusNow, RootCA: root,
		Clusters: map[string]*world.Cluster{"cluster-manager": lke("cluster-manager", 1, 1), "eu": lke("eu", 2, 2), "ap": lke("ap", 3, 1)},
		Karmada: &world.Karmada{Reachable: true, APIServiceAvailable: true,
			Members: map[string]*world.KarmadaMember{
				"eu": {Name: "eu", SyncMode: "Push", Ready: "True", Reason: "ClusterReady"},
				"ap": {Name: "ap", SyncMode: "Pull", Ready: "True", Reason: "ClusterReady"},
			},
			Policies:  map[string]*world.Policy{"default/hello": {Namespace: "default", Name: "hello"}},
			Workloads: map[string]*world.Workload{"default/Deployment/hello": {UID: "uid-1", Replicas: 6, Scheduled: map[string]int32{"eu": 2, "ap": 4}}},
		},
		Mesh: map[string]*world.MeshMember{
			"eu": {Namespace: true, CACerts: inter("eu"), ReaderTokenSecret: "istio-reader-token", ReaderTokenCreated: statusNow.Add(-3 * day),
				RemoteSecrets: map[string]string{"ap": "x"}},
			"ap": {Namespace: true, CACerts: inter("ap"), ReaderTokenSecret: "istio-reader-token", ReaderTokenCreated: statusNow.Add(-3 * day),
				RemoteSecrets: map[string]string{"eu": "y"}},
		},
	}
	w.Clusters["eu"].PushJoin = &world.PushJoin{Namespace: true, RBAC: true, TokensReady: true,
		Tokens: []string{"karmada-eu", "karmada-impersonator"}, TokenCreated: statusNow.Add(-2 * day)}
	w.Clusters["ap"].Agent = &world.AgentCredential{Subject: "system:karmada:agent:ap", NotBefore: statusNow.Add(-day), NotAfter: statusNow.Add(59 * day)}
	return statusInput{Fleet: f, World: w, Plan: &plan.Plan{Fleet: "prod"},
		ReadySince: map[string]time.Time{"eu": statusNow.Add(-time.Hour), "ap": statusNow.Add(-2 * time.Hour)},
		Reports: map[string]BindingReporting{"default/Deployment/hello": {
			"eu": {Applied: true, Health: "Healthy", Replicas: 2, ReadyReplicas: 2},
			"ap": {Applied: true, Health: "Healthy", Replicas: 4, ReadyReplicas: 4},
		}},
		Passes: []state.PassRecord{{Time: statusNow.Add(-10 * time.Minute), Duration: 40 * time.Second, Succeeded: 47}},
	}
}

func TestStatusHealth(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(in *statusInput)
		// reasons each must appear in one of the reasons; none means healthy.
		reasons []string
	}{
		{name: "healthy", change: func(*statusInput) {}},
		{name: "member not Ready", change: func(in *statusInput) {
			m := in.World.Karmada.Members["ap"]
			m.Ready, m.Reason = "False", "ClusterNotReachable"
		}, reasons: []string{"member ap: Karmada Ready is False (ClusterNotReachable)"}},
		{name: "member API server unreachable", change: func(in *statusInput) {
			in.World.Clusters["eu"].Reachable = false
			delete(in.World.Mesh, "eu") // the mesh observer skips what does not answer
		}, reasons: []string{"member eu: API server unreachable"}},
		{name: "member not joined", change: func(in *statusInput) {
			delete(in.World.Karmada.Members, "eu")
		}, reasons: []string{"member eu: not joined to Karmada"}},
		{name: "karmada unreachable", change: func(in *statusInput) {
			in.World.Karmada = &world.Karmada{}
		}, reasons: []string{"karmada: API not reachable"}},
		{name: "LKE cluster missing", change: func(in *statusInput) {
			delete(in.World.Clusters, "ap")
		}, reasons: []string{"member ap: no LKE cluster found"}},
		{name: "node not ready", change: func(in *statusInput) {
			in.World.Clusters["eu"].Pools[0].Nodes[1].Status = "not_ready"
		}, reasons: []string{"member eu: pool g6-standard-2 has 1 of 2 nodes ready"}},
		{name: "intermediate within renewBefore", change: func(in *statusInput) {
			in.World.Mesh["ap"].CACerts.NotAfter = statusNow.Add(10 * 24 * time.Hour)
		}, reasons: []string{"member ap: the intermediate CA expires in 10d", "mesh.ca.renewBefore 720h"}},
		{name: "root within renewBefore", change: func(in *statusInput) {
			in.World.RootCA.NotAfter = statusNow.Add(5 * time.Hour)
		}, reasons: []string{"mesh: the root CA expires in 5h"}},
		{name: "no root", change: func(in *statusInput) {
			in.World.RootCA = nil
		}, reasons: []string{"mesh: no root CA in the state"}},
		{name: "remote secret missing", change: func(in *statusInput) {
			delete(in.World.Mesh["eu"].RemoteSecrets, "ap")
		}, reasons: []string{"member eu: no remote secret for ap"}},
		{name: "remote secret stale", change: func(in *statusInput) {
			in.Plan.Steps = append(in.Plan.Steps, plan.Step{Address: "member/ap/mesh/remote-secret/eu", Action: plan.Update})
		}, reasons: []string{"member ap: the remote secret for eu is stale"}},
		{name: "token older than tokenRotation", change: func(in *statusInput) {
			in.World.Clusters["eu"].PushJoin.TokenCreated = statusNow.Add(-31 * 24 * time.Hour)
		}, reasons: []string{"member eu: the Karmada token is 31d old (credentials.tokenRotation 720h)"}},
		{name: "agent certificate expired", change: func(in *statusInput) {
			in.World.Clusters["ap"].Agent.NotAfter = statusNow.Add(-time.Minute)
		}, reasons: []string{"member ap: the agent certificate expired"}},
		{name: "last pass failed", change: func(in *statusInput) {
			in.Passes = append(in.Passes, state.PassRecord{Time: statusNow.Add(-time.Minute), Failed: 1, Error: "member/eu/join: boom"},
				state.PassRecord{Time: statusNow, DryRun: true})
		}, reasons: []string{"the last pass (2026-12-01T11:59:00Z) failed: member/eu/join: boom"}},
		{name: "an older failed pass is history", change: func(in *statusInput) {
			in.Passes = append([]state.PassRecord{{Time: statusNow.Add(-time.Hour), Failed: 2}}, in.Passes...)
		}},
		{name: "split differs from the weights", change: func(in *statusInput) {
			in.World.Karmada.Workloads["default/Deployment/hello"].Scheduled = map[string]int32{"eu": 3, "ap": 3}
		}, reasons: []string{"workload hello: Karmada's split of Deployment hello (ap 3, eu 3) is not the one the weights give (ap 4, eu 2)"}},
		{name: "unhealthy in a member", change: func(in *statusInput) {
			in.Reports["default/Deployment/hello"]["eu"] = MemberReport{Applied: true, Health: "Unhealthy"}
		}, reasons: []string{"workload hello: Deployment hello is unhealthy in eu"}},
		{name: "no report yet", change: func(in *statusInput) {
			delete(in.Reports["default/Deployment/hello"], "ap")
		}, reasons: []string{"workload hello: Deployment hello: ap reports no status yet"}},
		{name: "not applied", change: func(in *statusInput) {
			in.Reports["default/Deployment/hello"]["ap"] = MemberReport{Applied: false}
		}, reasons: []string{"workload hello: Deployment hello is not applied in ap"}},
		{name: "health not judged and replicas not ready", change: func(in *statusInput) {
			in.Reports["default/Deployment/hello"]["ap"] = MemberReport{Applied: true, Health: "Unknown", Replicas: 4, ReadyReplicas: 1}
		}, reasons: []string{"workload hello: Deployment hello has 1 of 4 replicas ready in ap (health Unknown)"}},
		{name: "bindings not read", change: func(in *statusInput) {
			in.Reports, in.ReportsErr = nil, "karmada: binding of Deployment hello: timeout"
		}, reasons: []string{"workloads: the bindings could not be read: karmada: binding of Deployment hello: timeout"}},
		{name: "policy missing", change: func(in *statusInput) {
			in.World.Karmada.Policies = nil
		}, reasons: []string{"workload hello: no policy in Karmada"}},
		{name: "planning refused", change: func(in *statusInput) {
			in.Plan, in.PlanErr = nil, errors.New("the root guard refuses")
		}, reasons: []string{"plan: the root guard refuses"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := healthyInput(t)
			tc.change(&in)
			st := buildStatus(in)
			if len(tc.reasons) == 0 {
				if st.Health != Healthy || statusExit(st) != 0 || len(st.Reasons) != 0 {
					t.Fatalf("health %s, exit %d, reasons %q; want healthy", st.Health, statusExit(st), st.Reasons)
				}
				return
			}
			if st.Health != Degraded || statusExit(st) != 3 {
				t.Fatalf("health %s, exit %d; want degraded, 3", st.Health, statusExit(st))
			}
			for _, want := range tc.reasons {
				if !slices.ContainsFunc(st.Reasons, func(r string) bool { return strings.Contains(r, want) }) {
					t.Errorf("no reason says %q; reasons:\n%s", want, strings.Join(st.Reasons, "\n"))
				}
			}
		})
	}
}

// The predicted split is the planner's own (Divide with the workload's uid), never a second
// implementation of Karmada's division.
func TestStatusPredictedSplitIsThePlanners(t *testing.T) {
	t.Parallel()
	in := healthyInput(t)
	wl := in.World.Karmada.Workloads["default/Deployment/hello"]
	wl.Replicas = 7
	want := planner.Divide(map[string]int64{"eu": 1, "ap": 2}, 7, wl.UID)
	wl.Scheduled = want
	st := buildStatus(in)
	got := map[string]int32{}
	for _, sp := range st.Workloads[0].Resources[0].Members {
		got[sp.Member] = sp.Predicted
	}
	if got["eu"] != want["eu"] || got["ap"] != want["ap"] {
		t.Fatalf("predicted %v, the planner divides %v", got, want)
	}
	if st.Health != Healthy {
		t.Fatalf("degraded: %q", st.Reasons)
	}
}

func TestStatusJSONShape(t *testing.T) {
	t.Parallel()
	in := healthyInput(t)
	in.World.Karmada.Members["ap"].Ready = "False"
	var buf bytes.Buffer
	if err := writeStatusJSON(&buf, buildStatus(in)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Fleet      string   `json:"fleet"`
		ObservedAt string   `json:"observedAt"`
		Health     string   `json:"health"`
		Reasons    []string `json:"reasons"`
		Clusters   []struct {
			Name      string `json:"name"`
			Role      string `json:"role"`
			LinodeID  int    `json:"linodeID"`
			Status    string `json:"status"`
			Reachable bool   `json:"reachable"`
			Pools     []struct {
				Type       string `json:"type"`
				Count      int    `json:"count"`
				ReadyNodes int    `json:"readyNodes"`
			} `json:"pools"`
		} `json:"clusters"`
		Karmada struct {
			Reachable bool `json:"reachable"`
			Members   []struct {
				Name       string `json:"name"`
				SyncMode   string `json:"syncMode"`
				Ready      string `json:"ready"`
				ReadySince string `json:"readySince"`
			} `json:"members"`
		} `json:"karmada"`
		Mesh struct {
			Root    struct{ RootFingerprint, NotAfter string } `json:"root"`
			Members []struct {
				Name          string                           `json:"name"`
				Istiod        string                           `json:"istiod"`
				RemoteSecrets []struct{ Remote, State string } `json:"remoteSecrets"`
			} `json:"members"`
		} `json:"mesh"`
		Workloads []struct {
			Name      string           `json:"name"`
			Weights   map[string]int64 `json:"weights"`
			Resources []struct {
				Kind     string `json:"kind"`
				Replicas int32  `json:"replicas"`
				Members  []struct {
					Member    string `json:"member"`
					Predicted int32  `json:"predicted"`
					Scheduled int32  `json:"scheduled"`
					Reported  *struct {
						Health        string `json:"health"`
						ReadyReplicas int64  `json:"readyReplicas"`
					} `json:"reported"`
				} `json:"members"`
			} `json:"resources"`
		} `json:"workloads"`
		Credentials []struct{ Member, Kind, Created string } `json:"credentials"`
		Pending     struct{ Add int }                        `json:"pending"`
		Passes      []struct{ Succeeded int }                `json:"passes"`
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	switch {
	case doc.Fleet != "prod" || doc.Health != Degraded || len(doc.Reasons) != 1 || !strings.Contains(doc.Reasons[0], "member ap"):
		t.Errorf("verdict: %+v", doc)
	case len(doc.Clusters) != 3 || doc.Clusters[0].Role != "manager" || doc.Clusters[1].Name != "eu" || doc.Clusters[1].Pools[0].ReadyNodes != 2:
		t.Errorf("clusters: %+v", doc.Clusters)
	case len(doc.Karmada.Members) != 2 || doc.Karmada.Members[1].Ready != "False" || doc.Karmada.Members[0].ReadySince == "":
		t.Errorf("karmada: %+v", doc.Karmada)
	case doc.Mesh.Root.RootFingerprint == "" || doc.Mesh.Members[0].Istiod != IstiodNotAsked ||
		len(doc.Mesh.Members[0].RemoteSecrets) != 1 || doc.Mesh.Members[0].RemoteSecrets[0].State != SecretCurrent:
		t.Errorf("mesh: %+v", doc.Mesh)
	case len(doc.Workloads) != 1 || doc.Workloads[0].Weights["ap"] != 2 || doc.Workloads[0].Resources[0].Replicas != 6 ||
		doc.Workloads[0].Resources[0].Members[0].Member != "ap" || doc.Workloads[0].Resources[0].Members[0].Reported == nil ||
		doc.Workloads[0].Resources[0].Members[0].Reported.ReadyReplicas != 4:
		t.Errorf("workloads: %+v", doc.Workloads)
	case len(doc.Credentials) != 4 || len(doc.Passes) != 1:
		t.Errorf("credentials %+v, passes %+v", doc.Credentials, doc.Passes)
	}
}

func TestStatusText(t *testing.T) {
	t.Parallel()
	in := healthyInput(t)
	in.World.Clusters["ap"].Reachable = false
	delete(in.World.Mesh, "ap")
	var buf bytes.Buffer
	if err := writeStatusText(&buf, buildStatus(in)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Fleet prod: DEGRADED (observed 2026-12-01T12:00:00Z)\n  - member ap: API server unreachable\n",
		"CLUSTERS\n", "KARMADA  reachable, cluster API available\n", "MESH  root f00dfeedf00dfeed expires 2036-11-28 (in 3650d)\n",
		"WORKLOADS\n", "CREDENTIALS\n", "PLAN NOW  0 to add", "PASSES (last 5)\n",
		"ap      not observed", "not asked", "eu not observed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the text lacks %q:\n%s", want, out)
		}
	}
	// Columns are aligned: every row of the cluster table starts its ROLE column at the same place.
	lines := strings.Split(out, "\n")
	i := slices.Index(lines, "CLUSTERS")
	col := strings.Index(lines[i+1], "ROLE")
	for _, l := range lines[i+2 : i+5] {
		if !strings.HasPrefix(l[col:], "manager") && !strings.HasPrefix(l[col:], "member") {
			t.Errorf("ROLE column not aligned at %d: %q", col, l)
		}
	}
}

// A fleet file that cannot be read is an error (exit 1), not a degraded fleet.
func TestStatusCommandErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := dir + "/fleet.yaml"
	if err := os.WriteFile(bad, []byte("apiVersion: reconcile.dev/v1alpha1\nkind: Fleet\nmetadata: {name: x}\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"status", "-f", dir + "/missing.yaml"},
		{"status", bad},
		{"status", "-o", "yaml", bad},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append(args, "--state-dir", dir+"/state"), &stdout, &stderr); code != 1 {
			t.Errorf("%q: exit %d, want 1\nstdout: %s\nstderr: %s", args, code, stdout.String(), stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%q printed a status: %s", args, stdout.String())
		}
	}
}

// A rollout under way: status shows its stage and does not count the split between the
// weights as a difference; a halted one degrades the fleet, saying why.
func TestStatusRollout(t *testing.T) {
	t.Parallel()
	in := healthyInput(t)
	in.Fleet.Workloads[0].Rollout = &spec.Rollout{MaxShift: spec.Shift{Count: 1}, Gate: spec.GateAvailable,
		Interval: spec.Duration{Duration: time.Minute}, Timeout: spec.Duration{Duration: 10 * time.Minute}}
	wl := in.World.Karmada.Workloads["default/Deployment/hello"]
	target := map[string]int64{"eu": 1, "ap": 2}
	stage := map[string]int64{"eu": 3, "ap": 3}
	wl.Scheduled = map[string]int32{"eu": 3, "ap": 3}
	started := in.World.Now.Add(-30 * time.Second)
	in.World.Rollouts = map[string]*world.Rollout{"hello": {Workload: "hello", Target: target, Stage: 1, Stages: 2,
		Weights: stage, Started: started, GateHeld: true}}
	st := buildStatus(in)
	r := st.Workloads[0].Rollout
	if r == nil || r.Stage != 1 || r.State != "gate held" || !r.NextAt.Equal(started.Add(time.Minute)) {
		t.Fatalf("rollout status = %+v", r)
	}
	if st.Health != Healthy {
		t.Errorf("a split mid-rollout degrades the fleet: %q", st.Reasons)
	}
	var buf bytes.Buffer
	if err := writeStatusText(&buf, st); err != nil {
		t.Fatal(err)
	}
	if want := "rollout hello: stage 1/2 (weights ap=3 eu=3), gate held; next stage from "; !strings.Contains(buf.String(), want) {
		t.Errorf("the text lacks %q:\n%s", want, buf.String())
	}
	in.World.Rollouts["hello"].Halted = "the gate of stage 2/2 did not hold within 10m0s: ap reports 1 of 4 available"
	st = buildStatus(in)
	if st.Health == Healthy || !slices.ContainsFunc(st.Reasons, func(s string) bool { return strings.Contains(s, "rollout halted") }) {
		t.Errorf("a halted rollout: health %s, reasons %q", st.Health, st.Reasons)
	}
}

// The entry: each member's address, health and whether the shared name answers with it; an
// unhealthy member makes the fleet degraded and says why.
func TestStatusEntry(t *testing.T) {
	t.Parallel()
	in := healthyInput(t)
	in.Fleet.Entry = &spec.Entry{Domain: "example.com", Hostname: "app"}
	spec.ApplyDefaults(in.Fleet)
	since := statusNow.Add(-5 * time.Minute)
	in.World.Entry = &world.Entry{Zone: &world.DNSZone{ID: 7, Domain: "example.com"},
		Names:   map[string]*world.DNSName{"app": {A: []world.DNSRecord{{ID: 1, Target: "192.0.2.1", TTL: 30}}}},
		Ingress: map[string][]string{"eu": {"192.0.2.1"}, "ap": {"192.0.2.2"}},
		Health: map[string]*world.MemberHealth{"eu": {Healthy: true, Since: since},
			"ap": {Healthy: false, Since: since, Reason: "connection refused"}}}
	st := buildStatus(in)
	if st.Health != Degraded || !slices.ContainsFunc(st.Reasons, func(r string) bool {
		return strings.Contains(r, "entry app.example.com: member ap is unhealthy") && strings.Contains(r, "connection refused")
	}) {
		t.Errorf("health %s, reasons %q", st.Health, st.Reasons)
	}
	e := st.Entry
	if e == nil || e.Name != "app.example.com" || e.Zone != "present" || len(e.Members) != 2 ||
		!e.Members[0].Published || e.Members[0].Health != "healthy" || e.Members[1].Published || e.Members[1].Health != "unhealthy" {
		t.Fatalf("entry status %+v", e)
	}
	var buf bytes.Buffer
	if err := writeStatusText(&buf, st); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "ENTRY  app.example.com  zone present; answers 192.0.2.1\n") ||
		!strings.Contains(out, "connection refused") {
		t.Errorf("the text lacks the entry:\n%s", out)
	}
}
