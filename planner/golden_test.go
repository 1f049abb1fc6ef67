package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// loadCase reads testdata/<name>/fleet.yaml through spec.Load (parse, defaults, manifests)
// and testdata/<name>/world.json as the observed world.
func loadCase(t *testing.T, name string) (*spec.Fleet, *world.World) {
	t.Helper()
	dir := filepath.Join("testdata", name)
	f, err := spec.Load(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		t.Fatalf("load fleet: %v", err)
	}
	// spec.Load makes manifest paths absolute; relative ones keep the spec fingerprint in
	// the golden files independent of where the repository is checked out.
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Workloads {
		for j, m := range f.Workloads[i].Manifests {
			if rel, err := filepath.Rel(abs, m); err == nil {
				f.Workloads[i].Manifests[j] = rel
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	var w world.World
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("decode world.json: %v", err)
	}
	return f, &w
}

// golden compares got with testdata/<case>/<file>, or rewrites it with -update.
func golden(t *testing.T, name, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name, file)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./planner -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./planner -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		// check asserts what the case is about, beyond matching its golden files.
		check func(t *testing.T, p *plan.Plan)
		// wantErr is the error type expected instead of a plan (its text goes to error.txt).
		wantErr any
		opts    Options
	}{
		// Issue 14: the entry on a converged fleet: the ingress gateways, their addresses
		// (known after apply), the zone, the shared name and the per-member names.
		{name: "entry-create", check: func(t *testing.T, p *plan.Plan) {
			for _, a := range []string{"entry/zone", "member/us/mesh/ingress", "member/us/entry/address", "entry/record/app", "entry/record/us.app"} {
				if stepOf(p, a) == nil {
					t.Errorf("no step %s", a)
				}
			}
			if s := stepOf(p, "entry/record/app"); s != nil && (len(s.Payload.DNSRecord.Addresses) != 3 || changeOf(*s, "owner") == nil) {
				t.Errorf("the shared name wants 3 addresses and the registry record: %+v", s.Payload.DNSRecord)
			}
		}},
		{name: "entry-converged", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 || len(p.Notes) != 0 {
				t.Errorf("a converged entry plans %v, notes %q", addresses(p), p.Notes)
			}
		}},
		// A member the checks withdrew leaves the shared name (not its own) and, with
		// shiftReplicas, the workload's policy.
		{name: "entry-member-unhealthy", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "entry/record/app")
			if s == nil || s.Action != plan.Update || len(s.Payload.DNSRecord.Addresses) != 2 || changeOf(*s, "withdrawn") == nil {
				t.Fatalf("want the shared name without us: %+v", s)
			}
			if stepOf(p, "entry/record/us.app") != nil {
				t.Error("us's own name changed")
			}
			pol := stepOf(p, "workload/hello/policy")
			if pol == nil || slices.Contains(pol.Payload.Policy.Clusters, "us") || changeOf(*pol, "shifted") == nil {
				t.Errorf("shiftReplicas: the policy still places replicas on us: %+v", pol)
			}
		}},
		// Every member failing: fail open, nothing withdrawn.
		{name: "entry-all-unhealthy", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "fails open") {
				t.Errorf("want no step and the fail-open note, got %v %q", addresses(p), p.Notes)
			}
		}},
		// A name with records reconcile does not own is never touched.
		{name: "entry-foreign-name", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "left alone") {
				t.Errorf("want no step and a note, got %v %q", addresses(p), p.Notes)
			}
		}},
		// A member that did not answer: its own name is held; its address leaves the shared
		// name because the checks withdrew it (the address they checked).
		{name: "entry-member-unreachable", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "entry/record/app")
			if s == nil || len(s.Payload.DNSRecord.Addresses) != 2 {
				t.Fatalf("want the shared name with eu and ap only: %+v", s)
			}
			held := false
			for _, h := range p.Held {
				held = held || h.Address == "entry/record/us.app"
			}
			if !held {
				t.Errorf("us.app is not held: %+v", p.Held)
			}
		}},
		// Names the fleet owns and no longer wants go; another fleet's name stays.
		{name: "entry-names-removed", check: func(t *testing.T, p *plan.Plan) {
			if got := addresses(p); !slices.Equal(got, []string{"entry/record/ap.app", "entry/record/eu.app", "entry/record/us.app"}) {
				t.Errorf("steps = %v", got)
			}
		}},
		{name: "entry-zone-unreadable", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 || len(p.Held) == 0 {
				t.Errorf("want the entry held, got steps %v held %+v", addresses(p), p.Held)
			}
		}},
		{name: "empty-world", check: func(t *testing.T, p *plan.Plan) {
			s := p.Summary()
			if s.Destroy != 0 || s.Change != 0 || s.Add == 0 {
				t.Errorf("a cold start only adds: %+v", s)
			}
			for _, a := range []string{"cluster/cluster-manager", "manager/karmada/release", "member/eu/join",
				"member/us/mesh/remote-secret/ap", "workload/hello/manifests", "workload/hello/policy"} {
				if stepOf(p, a) == nil {
					t.Errorf("cold start lacks %s", a)
				}
			}
		}},
		// A Cluster someone joined to the fleet's Karmada by hand is not the fleet's: never
		// unjoined (issue 11: it was planned "- member/handmade/unjoin").
		{name: "karmada-foreign-cluster", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 {
				t.Errorf("a foreign Cluster was planned for: %v", addresses(p))
			}
		}},
		// A member whose name another fleet's Cluster (another cluster) holds: held with a
		// note, the rest of the fleet untouched, and it receives no replicas.
		{name: "member-name-taken", check: func(t *testing.T, p *plan.Plan) {
			for _, s := range p.Steps {
				if s.Cluster == "us" || s.Peer == "us" {
					t.Errorf("step %s acts on the conflicting member", s.Address)
				}
			}
			if s := stepOf(p, "workload/hello/policy"); s == nil || s.Payload.Policy == nil || slices.Contains(s.Payload.Policy.Clusters, "us") {
				t.Errorf("the policy still places replicas on the Cluster someone else holds: %+v", s)
			}
			if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "member us is held: Karmada already has a Cluster us, fleet other-team's, for another cluster") {
				t.Errorf("notes = %q", p.Notes)
			}
		}},
		// The same cluster joined before without the mark (by hand, or by an older version):
		// adopted, and the mark put on.
		{name: "member-adopted", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "member/us/join")
			if s == nil || s.Action != plan.Update || s.Payload.Join == nil || !s.Payload.Join.Adopt ||
				!strings.HasPrefix(s.Reason, "adopt:") || changeOf(*s, "label reconcile.dev/fleet") == nil {
				t.Fatalf("want ~ member/us/join adopting the Cluster, got %+v", s)
			}
		}},
		// A member's LKE cluster deleted behind the fleet's back: recreated, and its stale
		// Karmada Cluster replaced in the same pass (issue 11: it never rejoined).
		{name: "member-cluster-deleted", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "member/us/join")
			if s == nil || s.Action != plan.Replace || s.Payload.Join == nil || s.Payload.Join.Replaces != "kube-system-uid-us" {
				t.Fatalf("want -/+ member/us/join replacing the stale Cluster, got %+v", s)
			}
			if stepOf(p, "cluster/us") == nil || stepOf(p, "member/us/ready") == nil {
				t.Errorf("the cluster is not recreated or the member not awaited Ready: %v", addresses(p))
			}
		}},
		// The member answers with another kube-system UID (a cluster replaced outside LKE's
		// view, or an existing cluster rebuilt): the join is replaced.
		{name: "member-identity-changed", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "member/us/join")
			if s == nil || s.Action != plan.Replace || !strings.Contains(s.Reason, "cluster replaced: LKE 433105, kube-system UID kube-system-uid-us -> kube-system-uid-us-rebuilt") {
				t.Fatalf("want -/+ member/us/join, got %+v", s)
			}
		}},
		{name: "converged", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 || len(p.Notes) != 0 {
				t.Errorf("a converged world must give an empty plan, got %d steps, notes %q", len(p.Steps), p.Notes)
			}
		}},
		{name: "weights-changed", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 1 || p.Steps[0].Address != "workload/hello/policy" || p.Steps[0].Action != plan.Update {
				t.Fatalf("want exactly the policy update, got %v", addresses(p))
			}
			if c := changeOf(p.Steps[0], "split"); c == nil || c.After != "eu 4 (was 3), ap 2 (was 3), us 4 (was 4)" {
				t.Errorf("split = %+v", c)
			}
		}},
		// Gated rollouts (issue 16): 1:1:1 -> 2:1:2 of 10 replicas (4/3/3 -> 2/4/4), at most one
		// replica a stage: two stages.
		{name: "rollout-start", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "workload/hello/policy")
			if s == nil || s.Payload.Policy.Rollout == nil || s.Payload.Policy.Rollout.Stage != 1 || s.Payload.Policy.Rollout.Stages != 2 {
				t.Fatalf("want stage 1/2 of the rollout, got %+v", s)
			}
			if got := s.Payload.Policy.Weights; !maps.Equal(got, map[string]int64{"ap": 3, "eu": 4, "us": 3}) {
				t.Errorf("stage 1 weights = %v", got)
			}
			g := stepOf(p, "workload/hello/rollout/gate")
			if g == nil || g.Action != plan.Wait || !maps.Equal(g.Payload.Gate.Available, map[string]int32{"eu": 4}) || !slices.Contains(g.DependsOn, s.Address) {
				t.Errorf("want the gate waiting for eu's 4 after the stage, got %+v", g)
			}
		}},
		// Stage 1 applied a minute ago, eu reports 3 of 4: the gate is awaited, nothing written.
		{name: "rollout-gate-waiting", check: func(t *testing.T, p *plan.Plan) {
			if got := addresses(p); !slices.Equal(got, []string{"workload/hello/rollout/gate"}) {
				t.Errorf("want only the gate wait, got %v", got)
			}
		}},
		// Stage 1 applied 11 minutes ago (timeout 10m), eu still short: back to 1:1:1, halted.
		{name: "rollout-gate-timed-out", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "workload/hello/policy")
			if len(p.Steps) != 1 || s == nil || !maps.Equal(s.Payload.Policy.Weights, map[string]int64{"ap": 1, "eu": 1, "us": 1}) ||
				s.Payload.Policy.Rollout == nil || !strings.Contains(s.Payload.Policy.Rollout.Halted, "eu reports 3 of 4 available") {
				t.Fatalf("want the revert to the last good stage, got %v %+v", addresses(p), s)
			}
		}},
		// Stage 1 holds, the interval (2m) has not passed: nothing to do yet but say when.
		{name: "rollout-interval", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "stage 2/2 waits for the interval") {
				t.Errorf("want no steps and a note, got %v %q", addresses(p), p.Notes)
			}
		}},
		{name: "rollout-next-stage", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "workload/hello/policy")
			if s == nil || s.Payload.Policy.Rollout.Stage != 2 || !maps.Equal(s.Payload.Policy.Weights, map[string]int64{"ap": 1, "eu": 2, "us": 2}) ||
				!maps.Equal(s.Payload.Policy.Rollout.LastGood, map[string]int64{"ap": 3, "eu": 4, "us": 3}) {
				t.Fatalf("want stage 2/2 at the target weights, stage 1 last good, got %+v", s)
			}
		}},
		// The last stage applied and every member reports its replicas: the gate ends the rollout.
		{name: "rollout-target-reached", check: func(t *testing.T, p *plan.Plan) {
			if got := addresses(p); !slices.Equal(got, []string{"workload/hello/rollout/gate"}) {
				t.Errorf("want only the final gate, got %v", got)
			}
		}},
		// Halted at 1:1:1 for the same target: nothing is tried again, the plan says why.
		{name: "rollout-halted", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "not tried again") {
				t.Errorf("want no steps and a note, got %v %q", addresses(p), p.Notes)
			}
		}},
		// Halted under another fleet.yaml: the same weights are tried again from stage 1.
		{name: "rollout-halted-fleet-changed", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "workload/hello/policy")
			if s == nil || s.Payload.Policy.Rollout == nil || s.Payload.Policy.Rollout.Stage != 1 || len(p.Notes) != 0 {
				t.Fatalf("want stage 1 again, got %v %q", addresses(p), p.Notes)
			}
		}},
		// The manifests change hello's replicas from 10 to 3: the plan shows the split of 3,
		// not of the 10 Karmada holds now.
		{name: "manifest-replicas-changed", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 1 || p.Steps[0].Address != "workload/hello/manifests" {
				t.Fatalf("want only the manifests update, got %v", addresses(p))
			}
			if c := changeOf(p.Steps[0], "split"); c == nil || c.After != "eu 1 (was 4), ap 1 (was 2), us 1 (was 4)" {
				t.Errorf("split = %+v", c)
			}
		}},
		{name: "manifest-replicas-and-weights", check: func(t *testing.T, p *plan.Plan) {
			if got := addresses(p); !reflect.DeepEqual(got, []string{"workload/hello/manifests", "workload/hello/policy"}) {
				t.Fatalf("steps = %v", got)
			}
			if c := changeOf(*stepOf(p, "workload/hello/policy"), "split"); c == nil || c.After != "eu 1 (was 4), ap 1 (was 2), us 1 (was 4)" {
				t.Errorf("split = %+v", c)
			}
			if c := changeOf(*stepOf(p, "workload/hello/manifests"), "split"); c != nil {
				t.Errorf("the split is shown once, on the policy step; the manifests step has %+v", c)
			}
		}},
		{name: "member-added", check: func(t *testing.T, p *plan.Plan) {
			for _, a := range []string{"cluster/us", "member/us/join", "member/eu/mesh/remote-secret/us", "member/us/mesh/remote-secret/eu"} {
				if s := stepOf(p, a); s == nil || s.Action != plan.Create {
					t.Errorf("%s: want a create, got %+v", a, s)
				}
			}
			if s := stepOf(p, "workload/hello/policy"); s == nil || !contains(s.DependsOn, "member/us/ready") {
				t.Errorf("the policy must wait for the new member: %+v", s)
			}
			if stepOf(p, "member/eu/join") != nil || stepOf(p, "mesh/root-ca") != nil {
				t.Errorf("existing members and the root are left alone: %v", addresses(p))
			}
		}},
		{name: "member-removed", check: func(t *testing.T, p *plan.Plan) {
			if s := stepOf(p, "cluster/us"); s != nil {
				t.Errorf("prune is off: cluster/us must be kept, got %+v", s)
			}
			for _, a := range []string{"member/us/unjoin", "member/eu/mesh/remote-secret/us", "member/ap/mesh/remote-secret/us", "member/us/mesh/teardown"} {
				if s := stepOf(p, a); s == nil || s.Action != plan.Delete {
					t.Errorf("%s: want a delete, got %+v", a, s)
				}
			}
			if s := stepOf(p, "member/us/mesh/teardown"); s != nil && !contains(s.DependsOn, "member/eu/mesh/remote-secret/us") {
				t.Errorf("teardown must come after the secrets are withdrawn: %v", s.DependsOn)
			}
			if len(p.Notes) == 0 {
				t.Error("want a note that the cluster is kept")
			}
		}},
		{name: "member-removed-prune", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "cluster/us")
			if s == nil || s.Action != plan.Delete || !contains(s.DependsOn, "member/us/unjoin") {
				t.Errorf("want cluster/us deleted after the unjoin, got %+v", s)
			}
		}},
		{name: "prune-guard-tripped", wantErr: &GuardError{}},
		{name: "network-renamed", check: func(t *testing.T, p *plan.Plan) {
			want := []string{"member/us/mesh/eastwest", "member/us/mesh/istiod", "member/us/mesh/namespace"}
			if got := addresses(p); !reflect.DeepEqual(got, want) {
				t.Errorf("steps = %v, want %v", got, want)
			}
		}},
		{name: "mesh-ca-expiring", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 1 || p.Steps[0].Address != "member/eu/mesh/cacerts" || p.Steps[0].Action != plan.Replace {
				t.Fatalf("want only the eu cacerts replaced, got %v", addresses(p))
			}
		}},
		// eu's intermediate expires within renewBefore, but with the mesh root itself (an
		// intermediate is never issued past its root): nothing is planned (a re-issue could not
		// extend it and would restart istiod on every pass), and a note says to replace the root.
		{name: "mesh-ca-root-expiring", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 {
				t.Fatalf("want nothing planned, got %v", addresses(p))
			}
			if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "--replace-mesh-root") || !strings.Contains(p.Notes[0], "member/eu/mesh/cacerts") {
				t.Errorf("notes = %q", p.Notes)
			}
		}},
		// An observer could not read eu (its releases, its mesh): nothing is planned from what
		// was not read (it would reinstall istiod and re-issue cacerts), and the plan says why.
		{name: "cluster-unreadable", check: func(t *testing.T, p *plan.Plan) {
			for _, s := range p.Steps {
				if s.Cluster == "eu" || s.Peer == "eu" {
					t.Errorf("a step acts in or from unreadable eu: %s", s.Address)
				}
			}
			if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "cluster eu could not be read in full") {
				t.Errorf("notes = %q", p.Notes)
			}
		}},
		// Issue 10: a fresh runner's empty store has no root while every member holds one. It
		// planned a new root and re-issued every cacerts; now the planner refuses and says how
		// to fix it.
		{name: "root-guard-store-empty", wantErr: &RootGuardError{}},
		// The store holds another root than the members, and eu a third: one line per root.
		{name: "root-guard-other-root", wantErr: &RootGuardError{}},
		// Issue 11: a Pull agent joined with Karmada's admin certificate (system:masters) gets its
		// own identity: a certificate for system:karmada:agent:ap and RBAC for ap's objects only.
		{name: "pull-agent-identity", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "member/ap/join")
			if s == nil || s.Action != plan.Update || !s.Payload.Join.RenewAgentCert {
				t.Fatalf("want ~ member/ap/join renewing the agent's certificate, got %+v", s)
			}
			if c := changeOf(*s, "agent.identity"); c == nil || c.Before != "system:admin (system:masters)" ||
				c.After != "system:karmada:agent:ap (system:karmada:agents)" {
				t.Errorf("agent.identity: %+v", c)
			}
			if c := changeOf(*s, "agent.rbac"); c == nil || !strings.Contains(c.Before, "system:karmada:ap:agent") {
				t.Errorf("agent.rbac: %+v", c)
			}
			if l := s.Payload.Join.AgentCertLifetime; l == nil || l.Duration != 1440*time.Hour {
				t.Errorf("the certificate lives twice credentials.tokenRotation: %v", l)
			}
		}},
		// The agent's own certificate is older than credentials.tokenRotation (720h): renewed.
		{name: "pull-agent-cert-old", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "member/ap/join")
			if s == nil || !s.Payload.Join.RenewAgentCert || len(p.Steps) != 2 {
				t.Fatalf("want only ~ member/ap/join (and its Ready wait) renewing the certificate, got %v", addresses(p))
			}
			if c := changeOf(*s, "agent.certificate"); c == nil || c.Before != "issued 52d ago, expires 2026-11-29" {
				t.Errorf("agent.certificate: %+v", c)
			}
		}},
		// --replace-mesh-root on a converged fleet: the root is replaced on purpose and every
		// member's cacerts is re-issued from the new one, after it.
		{name: "replace-mesh-root", opts: Options{ReplaceMeshRoot: true}, check: func(t *testing.T, p *plan.Plan) {
			root := stepOf(p, AddrRootCA)
			if root == nil || root.Action != plan.Replace || root.Payload.RootCA.Replaces == nil {
				t.Fatalf("want -/+ %s naming the root it replaces, got %+v", AddrRootCA, root)
			}
			if c := changeOf(*root, "the members whose trust it changes"); c == nil || c.After != "ap, eu, us" {
				t.Errorf("members whose trust changes: %+v", c)
			}
			for _, m := range []string{"ap", "eu", "us"} {
				s := stepOf(p, "member/"+m+"/mesh/cacerts")
				if s == nil || s.Action != plan.Replace || !contains(s.DependsOn, AddrRootCA) {
					t.Errorf("%s: want its cacerts re-issued after the root, got %+v", m, s)
				}
			}
		}},
		// eu did not answer: its mesh was not read, which is not "no cacerts secret".
		{name: "member-unreachable", check: func(t *testing.T, p *plan.Plan) {
			for _, s := range p.Steps {
				if s.Layer == plan.Mesh && (s.Cluster == "eu" || s.Peer == "eu") {
					t.Errorf("a mesh step acts in or from unread eu: %s (%s)", s.Address, s.Reason)
				}
			}
			if !strings.Contains(strings.Join(p.Notes, "\n"), "cluster eu could not be reached: its mesh is not known") {
				t.Errorf("notes = %q", p.Notes)
			}
		}},
		// Issue 13: a member whose API server accepts connections and never answers (SIGSTOP)
		// was planned as if empty. Nothing is planned in it or waited for; its steps are held
		// with "?" and the reason; the rest of the fleet is planned as usual.
		{name: "member-not-answering", check: func(t *testing.T, p *plan.Plan) {
			for _, s := range p.Steps {
				if s.Cluster == "eu" || s.Peer == "eu" {
					t.Errorf("a step acts in or from eu, which did not answer: %s %s (%s)", s.Action, s.Address, s.Reason)
				}
			}
			held := map[string]string{}
			for _, h := range p.Held {
				held[h.Address] = h.Reason
			}
			for _, a := range []string{"member/eu/ready", "member/eu/mesh/cacerts", "member/eu/mesh/istiod", "member/ap/mesh/remote-secret/eu"} {
				if !strings.HasPrefix(held[a], "not observed: eu did not answer: ") {
					t.Errorf("%s held with %q, want not observed: eu did not answer: ...", a, held[a])
				}
			}
			var text strings.Builder
			if err := p.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "  ? member/eu/mesh/cacerts  (not observed: eu did not answer: ") {
				t.Errorf("the plan text does not show the held cacerts:\n%s", text.String())
			}
		}},
		// Confirmed bug: pools reordered in fleet.yaml planned ~ cluster/eu on every pass.
		{name: "pools-reordered", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 {
				t.Errorf("pools in another order are no change, got %v", addresses(p))
			}
		}},
		// Confirmed bug: with manager.karmada.namespace set, the installed release was planned again.
		{name: "karmada-namespace", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 {
				t.Errorf("the release in karmada-x is the fleet's, got %v", addresses(p))
			}
		}},
		// us's Karmada tokens are 31 days old (credentials.tokenRotation is 720h): the join
		// makes new ones, writes Karmada's secrets from them, then deletes the old ones. eu's
		// are recent and ap's of unknown age: left alone.
		{name: "push-token-rotation", check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "member/us/join")
			if s == nil || s.Action != plan.Update || s.Payload.Join == nil {
				t.Fatalf("want ~ member/us/join, got %+v", s)
			}
			if c := changeOf(*s, "token"); c == nil || c.Before != "age 31d" || c.After != "rotated" {
				t.Errorf("token change = %+v", c)
			}
			j := s.Payload.Join
			if !reflect.DeepEqual(j.RotateTokens, []string{"karmada-impersonator", "karmada-us"}) ||
				!reflect.DeepEqual(j.RetireTokens, []string{"karmada-impersonator", "karmada-us"}) {
				t.Errorf("rotate %v retire %v", j.RotateTokens, j.RetireTokens)
			}
			if got := addresses(p); !reflect.DeepEqual(got, []string{"member/us/join", "member/us/ready"}) {
				t.Errorf("steps = %v", got)
			}
		}},
		// us's istio-reader token is 31 days old: a new one, every other member's remote secret
		// for us written from it, and only then the old one deleted.
		{name: "reader-token-rotation", check: func(t *testing.T, p *plan.Plan) {
			tok := stepOf(p, "member/us/mesh/reader-token")
			if tok == nil || tok.Action != plan.Replace || tok.Payload.ReaderToken.Replaces != ReaderTokenSecret ||
				tok.Reason != "istio-reader token is 31d old; credentials.tokenRotation 720h" {
				t.Fatalf("want -/+ member/us/mesh/reader-token, got %+v", tok)
			}
			retire := stepOf(p, "member/us/mesh/reader-token/retire")
			if retire == nil || retire.Action != plan.Delete || !reflect.DeepEqual(retire.Payload.ReaderToken.Retire, []string{ReaderTokenSecret}) {
				t.Fatalf("want the old token retired, got %+v", retire)
			}
			for _, n := range []string{"eu", "ap"} {
				rs := stepOf(p, "member/"+n+"/mesh/remote-secret/us")
				if rs == nil || rs.Action != plan.Update || !contains(rs.DependsOn, tok.Address) {
					t.Errorf("%s's remote secret for us: want an update after the new token, got %+v", n, rs)
				}
				if !contains(retire.DependsOn, "member/"+n+"/mesh/remote-secret/us") {
					t.Errorf("the retire step does not wait for %s's remote secret: %v", n, retire.DependsOn)
				}
			}
			if len(p.Steps) != 4 {
				t.Errorf("steps = %v", addresses(p))
			}
		}},
		// --rotate-credentials: every token is replaced whatever its age, even an unknown one.
		{name: "rotate-credentials", opts: Options{RotateCredentials: true}, check: func(t *testing.T, p *plan.Plan) {
			for _, m := range []string{"eu", "ap", "us"} {
				if s := stepOf(p, "member/"+m+"/join"); s == nil || changeOf(*s, "token") == nil ||
					!strings.HasPrefix(s.Reason, "--rotate-credentials: ") {
					t.Errorf("%s: want its Karmada tokens rotated, got %+v", m, s)
				}
				if s := stepOf(p, "member/"+m+"/mesh/reader-token"); s == nil || s.Action != plan.Replace {
					t.Errorf("%s: want its reader token replaced, got %+v", m, s)
				}
				if s := stepOf(p, "member/"+m+"/mesh/reader-token/retire"); s == nil || len(s.DependsOn) != 3 {
					t.Errorf("%s: want its old reader token retired after the two remote secrets, got %+v", m, s)
				}
			}
			if c := changeOf(*stepOf(p, "member/ap/mesh/reader-token"), "token"); c == nil || c.Before != "age unknown" {
				t.Errorf("ap's reader token is of unknown age: %+v", c)
			}
		}},
		// A rotation that did not finish left older tokens: they are retired, the reader token's
		// after eu's remote secret for us (still on the old token) is written anew.
		{name: "token-retire-leftover", check: func(t *testing.T, p *plan.Plan) {
			j := stepOf(p, "member/us/join")
			if j == nil || j.Payload.Join == nil || len(j.Payload.Join.RotateTokens) != 0 ||
				!reflect.DeepEqual(j.Payload.Join.RetireTokens, []string{"karmada-impersonator", "karmada-us"}) {
				t.Fatalf("want the join to retire the old Karmada tokens only, got %+v", j)
			}
			retire := stepOf(p, "member/us/mesh/reader-token/retire")
			if retire == nil || !reflect.DeepEqual(retire.DependsOn, []string{"member/eu/mesh/remote-secret/us"}) {
				t.Fatalf("want the old reader token retired after eu's remote secret, got %+v", retire)
			}
			if stepOf(p, "member/us/mesh/reader-token") != nil || stepOf(p, "member/ap/mesh/remote-secret/us") != nil {
				t.Errorf("nothing else is due: %v", addresses(p))
			}
		}},
		// Cost (issue 16): the monthly cost before and after, from the prices observed.
		// A cold fleet: four clusters of 3 x g6-standard-2 ($72.00 each) and a NodeBalancer
		// for each member's east-west gateway ($10.00).
		{name: "cost-create", check: func(t *testing.T, p *plan.Plan) {
			wantCost(t, p, plan.Monthly{}, plan.Monthly{Min: 4*7200 + 3*1000, Max: 4*7200 + 3*1000})
			if c := clusterCost(p, "cluster-manager"); c == nil || c.Before != nil || c.After == nil || c.After.Min != 7200 {
				t.Errorf("the manager is created at $72.00: %+v", c)
			}
		}},
		{name: "cost-converged", check: func(t *testing.T, p *plan.Plan) {
			if len(p.Steps) != 0 {
				t.Errorf("steps: %v", addresses(p))
			}
			wantCost(t, p, plan.Monthly{Min: 31800, Max: 31800}, plan.Monthly{Min: 31800, Max: 31800})
		}},
		{name: "cost-pool-scaled", check: func(t *testing.T, p *plan.Plan) {
			wantCost(t, p, plan.Monthly{Min: 31800, Max: 31800}, plan.Monthly{Min: 34200, Max: 34200})
			c := clusterCost(p, "eu")
			if c == nil || len(c.Items) != 1 || c.Items[0].BeforeSize != "3 nodes" || c.Items[0].AfterSize != "4 nodes" {
				t.Errorf("eu's pool goes from 3 to 4 nodes: %+v", c)
			}
		}},
		{name: "cost-member-added", check: func(t *testing.T, p *plan.Plan) {
			wantCost(t, p, plan.Monthly{Min: 3*7200 + 2*1000, Max: 3*7200 + 2*1000}, plan.Monthly{Min: 31800, Max: 31800})
		}},
		{name: "cost-ha-on", check: func(t *testing.T, p *plan.Plan) {
			wantCost(t, p, plan.Monthly{Min: 31800, Max: 31800}, plan.Monthly{Min: 37800, Max: 37800})
			c := clusterCost(p, "cluster-manager")
			if c == nil || len(c.Items) != 1 || c.Items[0].Item != "HA control plane" || c.Items[0].AfterSize != "on" {
				t.Errorf("the manager's HA control plane is turned on: %+v", c)
			}
		}},
		{name: "cost-autoscaled", check: func(t *testing.T, p *plan.Plan) {
			wantCost(t, p, plan.Monthly{Min: 31800, Max: 31800}, plan.Monthly{Min: 31800, Max: 31800 + 3*2400})
			var text bytes.Buffer
			if err := p.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "pool g6-standard-2: 3 nodes -> 3..6 nodes") {
				t.Errorf("the autoscaled pool shows its range:\n%s", text.String())
			}
		}},
		{name: "cost-member-removed-prune", check: func(t *testing.T, p *plan.Plan) {
			if c := clusterCost(p, "us"); c == nil || c.Before == nil || c.After != nil {
				t.Errorf("the pruned cluster costs nothing after: %+v", c)
			}
		}},
		// The prices could not be read this pass: the cached ones are used, saying how old.
		{name: "cost-prices-cached", check: func(t *testing.T, p *plan.Plan) {
			if p.Cost == nil || !strings.Contains(p.Cost.PricesNote, "read 3d ago") {
				t.Errorf("the cost says its prices are 3 days old: %+v", p.Cost)
			}
		}},
		// Neither read nor cached: the cost is unknown, never made up.
		{name: "cost-prices-unknown", check: func(t *testing.T, p *plan.Plan) {
			if p.Cost == nil || p.Cost.Unknown == "" || len(p.Cost.Clusters) != 0 || p.Cost.After != (plan.Monthly{}) {
				t.Errorf("cost = %+v, want unknown", p.Cost)
			}
		}},
		{name: "karmada-release-failed", check: func(t *testing.T, p *plan.Plan) {
			if s := stepOf(p, AddrKarmadaRelease); s == nil || s.Action != plan.Replace {
				t.Errorf("a failed release is replaced, got %+v", s)
			}
			if s := stepOf(p, AddrKarmadaReady); s == nil || !contains(s.DependsOn, AddrKarmadaKubeconfig) {
				t.Errorf("ready waits for the new kubeconfig, got %+v", s)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, w := loadCase(t, tc.name)
			p, err := Compute(f, w, tc.opts)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("want an error of type %T, got a plan of %d steps", tc.wantErr, len(p.Steps))
				}
				target := reflect.New(reflect.TypeOf(tc.wantErr)).Interface()
				if !errors.As(err, target) {
					t.Fatalf("error %v is not a %T", err, tc.wantErr)
				}
				golden(t, tc.name, "error.txt", []byte(err.Error()+"\n"))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var text, js bytes.Buffer
			if err := p.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := p.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, "plan.txt", text.Bytes())
			golden(t, tc.name, "plan.json", js.Bytes())
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// wantCost asserts the plan's total monthly cost before and after, in cents.
func wantCost(t *testing.T, p *plan.Plan, before, after plan.Monthly) {
	t.Helper()
	if p.Cost == nil {
		t.Fatal("the plan has no cost")
	}
	if p.Cost.Before != before || p.Cost.After != after {
		t.Errorf("cost %s -> %s, want %s -> %s", p.Cost.Before, p.Cost.After, before, after)
	}
}

func clusterCost(p *plan.Plan, name string) *plan.ClusterCost {
	if p.Cost == nil {
		return nil
	}
	for i := range p.Cost.Clusters {
		if p.Cost.Clusters[i].Cluster == name {
			return &p.Cost.Clusters[i]
		}
	}
	return nil
}

func stepOf(p *plan.Plan, addr string) *plan.Step {
	for i := range p.Steps {
		if p.Steps[i].Address == addr {
			return &p.Steps[i]
		}
	}
	return nil
}

func changeOf(s plan.Step, field string) *plan.Change {
	for i := range s.Changes {
		if s.Changes[i].Field == field {
			return &s.Changes[i]
		}
	}
	return nil
}

func addresses(p *plan.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Address)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
