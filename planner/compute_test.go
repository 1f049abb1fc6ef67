package planner

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
)

// converged returns the regions fleet and a world that matches it, fresh for each call.
func converged(t *testing.T) (*spec.Fleet, *world.World) {
	t.Helper()
	return loadCase(t, "converged")
}

func mustCompute(t *testing.T, f *spec.Fleet, w *world.World, opts Options) *plan.Plan {
	t.Helper()
	p, err := Compute(f, w, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestComputeDeterministicAndPure(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("testdata/*/world.json")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, d := range dirs {
		name := filepath.Base(filepath.Dir(d))
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, w := loadCase(t, name)
			f0, w0 := loadCase(t, name)
			var out [2]bytes.Buffer
			for i := range out {
				p, err := Compute(f, w, Options{AllowDestroy: true})
				var refused *RootGuardError
				if errors.As(err, &refused) {
					out[i].WriteString(err.Error())
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := p.WriteJSON(&out[i]); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
				t.Error("two computations of the same inputs differ")
			}
			if !reflect.DeepEqual(f, f0) {
				t.Error("Compute modified the desired fleet")
			}
			if !reflect.DeepEqual(w, w0) {
				t.Error("Compute modified the observed world")
			}
		})
	}
}

func TestRootCALost(t *testing.T) {
	t.Parallel()
	f, w := converged(t)
	w.RootCALost = true
	w.RootCA = nil
	_, err := Compute(f, w, Options{})
	if !errors.Is(err, ErrRootCALost) || !strings.Contains(err.Error(), "break trust") {
		t.Fatalf("want ErrRootCALost explaining the broken trust, got %v", err)
	}
	off := false
	f.Mesh.Enabled = &off
	if _, err := Compute(f, w, Options{}); err != nil {
		t.Fatalf("without a mesh a lost root does not matter: %v", err)
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	share := func(v float64) *float64 { return &v }
	cases := []struct {
		name   string
		edit   func(f *spec.Fleet)
		opts   Options
		trip   bool
		mgr    string
		remove int
	}{
		{name: "one of three without prune", edit: func(f *spec.Fleet) { keepMembers(f, "eu", "ap") }},
		{name: "two of three without prune", edit: func(f *spec.Fleet) { keepMembers(f, "eu") }, trip: true, remove: 2},
		{name: "two of three with prune", edit: func(f *spec.Fleet) { keepMembers(f, "eu"); f.Safety.Prune = true }, trip: true, remove: 2},
		{name: "two of three allowed", edit: func(f *spec.Fleet) { keepMembers(f, "eu"); f.Safety.Prune = true }, opts: Options{AllowDestroy: true}},
		{name: "two of three under a raised share", edit: func(f *spec.Fleet) { keepMembers(f, "eu"); f.Safety.MaxDeleteShare = share(0.7) }},
		{name: "one of three under a lowered share", edit: func(f *spec.Fleet) { keepMembers(f, "eu", "ap"); f.Safety.MaxDeleteShare = share(0.2) }, trip: true, remove: 1},
		{name: "manager renamed with prune", edit: func(f *spec.Fleet) { f.Manager.Name = "manager-2"; f.Safety.Prune = true }, trip: true, mgr: "cluster-manager"},
		{name: "manager renamed without prune", edit: func(f *spec.Fleet) { f.Manager.Name = "manager-2" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, w := converged(t)
			tc.edit(f)
			p, err := Compute(f, w, tc.opts)
			var g *GuardError
			if !tc.trip {
				if err != nil {
					t.Fatalf("want a plan, got %v", err)
				}
				return
			}
			if !errors.As(err, &g) {
				t.Fatalf("want a *GuardError, got plan %v, error %v", p, err)
			}
			if g.Manager != tc.mgr || g.Members != tc.remove {
				t.Errorf("guard = %+v, want manager %q and %d members", g, tc.mgr, tc.remove)
			}
			if !strings.Contains(err.Error(), "--allow-destroy") {
				t.Errorf("the error must say how to override: %v", err)
			}
		})
	}
}

// keepMembers drops every other member from the fleet, and their weights.
func keepMembers(f *spec.Fleet, names ...string) {
	var kept []spec.Member
	for _, m := range f.Members {
		for _, n := range names {
			if m.Name == n {
				kept = append(kept, m)
			}
		}
	}
	f.Members = kept
	for i := range f.Workloads {
		w := map[string]int64{}
		for _, n := range names {
			if v, ok := f.Workloads[i].Weights[n]; ok {
				w[n] = v
			}
		}
		f.Workloads[i].Weights = w
	}
}

func TestClusterDrift(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		edit    func(f *spec.Fleet, w *world.World)
		steps   []string
		change  string // a field of the first step's changes, with its after text contained
		after   string
		note    string
		actions []plan.Action
	}{
		{name: "pool count", edit: func(f *spec.Fleet, w *world.World) { w.Clusters["eu"].Pools[0].Count = 2 },
			steps: []string{"cluster/eu"}, change: "pool[0].count", after: "3"},
		{name: "pool type is a replacement", edit: func(f *spec.Fleet, w *world.World) { f.Members[0].Pools[0].Type = "g6-standard-4" },
			steps: []string{"cluster/eu"}, change: "pool[0]", after: "g6-standard-4 x3 (new pool)"},
		{name: "autoscaler turned on", edit: func(f *spec.Fleet, w *world.World) {
			f.Members[0].Pools[0].Autoscaler = &spec.Autoscaler{Min: 3, Max: 6}
		}, steps: []string{"cluster/eu"}, change: "pool[0].autoscaler", after: "3-6"},
		{name: "extra pool", edit: func(f *spec.Fleet, w *world.World) {
			f.Members[0].Pools = append(f.Members[0].Pools, spec.Pool{Type: "g6-standard-8", Count: 1})
		}, steps: []string{"cluster/eu"}, change: "pool[1]", after: "g6-standard-8 x1"},
		{name: "user tag added", edit: func(f *spec.Fleet, w *world.World) { f.Members[0].Tags = []string{"team-a"} },
			steps: []string{"cluster/eu"}, change: "tags", after: "team-a"},
		{name: "HA turned on", edit: func(f *spec.Fleet, w *world.World) { f.Members[0].HighAvailability = true },
			steps: []string{"cluster/eu"}, change: "highAvailability", after: "true"},
		{name: "HA cannot be turned off", edit: func(f *spec.Fleet, w *world.World) { w.Clusters["eu"].HighAvailability = true },
			note: "cannot turn an HA control plane off"},
		{name: "region change is refused", edit: func(f *spec.Fleet, w *world.World) { f.Members[0].Region = "us-east" },
			note: "region eu-west -> us-east is refused"},
		{name: "k8s upgrade needs allowUpgrade", edit: func(f *spec.Fleet, w *world.World) { f.Members[0].K8sVersion = "1.34" },
			note: "set allowUpgrade"},
		{name: "k8s upgrade allowed", edit: func(f *spec.Fleet, w *world.World) {
			f.Members[0].K8sVersion = "1.34"
			f.Members[0].AllowUpgrade = true
		}, steps: []string{"cluster/eu"}, change: "k8sVersion", after: "1.34"},
		{name: "kubeconfig lost", edit: func(f *spec.Fleet, w *world.World) { w.Clusters["ap"].KubeconfigStored = false },
			steps: []string{"cluster/ap/kubeconfig"}, actions: []plan.Action{plan.Create}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, w := converged(t)
			tc.edit(f, w)
			p := mustCompute(t, f, w, Options{})
			got := addresses(p)
			if !reflect.DeepEqual(got, tc.steps) {
				t.Fatalf("steps = %v, want %v", got, tc.steps)
			}
			for i, a := range tc.actions {
				if p.Steps[i].Action != a {
					t.Errorf("%s: action %s, want %s", p.Steps[i].Address, p.Steps[i].Action, a)
				}
			}
			if tc.change != "" {
				c := changeOf(p.Steps[0], tc.change)
				if c == nil || !strings.Contains(c.After, tc.after) {
					t.Errorf("change %s = %+v, want after containing %q (all: %+v)", tc.change, c, tc.after, p.Steps[0].Changes)
				}
			}
			if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", p.Notes, tc.note)
			}
		})
	}
}

// Pools are matched by type, never by position: reordering them in fleet.yaml changes nothing,
// and a type change creates the new pool first and deletes the old one once it is ready.
func TestPoolsMatchedByType(t *testing.T) {
	t.Parallel()
	f, w := converged(t)
	eu := w.Clusters["eu"]
	eu.Pools = []world.Pool{
		{ID: 11, Type: "g6-standard-4", Count: 1},
		{ID: 12, Type: "g6-standard-2", Count: 2},
	}
	f.Members[0].Pools = []spec.Pool{{Type: "g6-standard-2", Count: 2}, {Type: "g6-standard-4", Count: 1}}
	if p := mustCompute(t, f, w, Options{}); len(p.Steps) != 0 {
		t.Fatalf("reordered pools are no change, got %v", addresses(p))
	}
	f.Members[0].Pools = []spec.Pool{{Type: "g6-standard-2", Count: 3}, {Type: "g6-standard-8", Count: 1}}
	p := mustCompute(t, f, w, Options{})
	s := stepOf(p, "cluster/eu")
	if s == nil || s.Action != plan.Update {
		t.Fatalf("cluster/eu: %+v", s)
	}
	want := &plan.ClusterChange{Label: "eu", LinodeID: eu.LinodeID,
		UpdatePools:   []plan.PoolUpdate{{ID: 12, Type: "g6-standard-2", Count: 3}},
		CreatePools:   []plan.Pool{{Type: "g6-standard-8", Count: 1}},
		DeletePools:   []plan.PoolRef{{ID: 11, Type: "g6-standard-4"}},
		ExistingPools: []plan.PoolRef{{ID: 11, Type: "g6-standard-4"}, {ID: 12, Type: "g6-standard-2"}}}
	if !reflect.DeepEqual(s.Payload.Cluster, want) {
		t.Errorf("payload = %+v, want %+v", s.Payload.Cluster, want)
	}
}

func TestMembersAndMeshDrift(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edit  func(f *spec.Fleet, w *world.World)
		steps []string
		note  string
	}{
		{name: "push RBAC missing", edit: func(f *spec.Fleet, w *world.World) { w.Clusters["ap"].PushJoin.RBAC = false },
			steps: []string{"member/ap/join", "member/ap/ready"}},
		{name: "push state not observable while unreachable", edit: func(f *spec.Fleet, w *world.World) {
			w.Clusters["ap"].PushJoin = nil
			w.Clusters["ap"].Reachable = false
		}},
		{name: "credentials rotated", edit: func(f *spec.Fleet, w *world.World) { w.Clusters["ap"].PushJoin.CredentialHash = "sha256:new" },
			steps: []string{"member/ap/join", "member/ap/ready"}},
		{name: "api endpoint override", edit: func(f *spec.Fleet, w *world.World) { f.Members[1].APIEndpoint = "https://ap.example:6443" },
			// The remote secrets of ap follow its endpoint too.
			steps: []string{"member/ap/join", "member/ap/ready", "member/eu/mesh/remote-secret/ap", "member/us/mesh/remote-secret/ap"}},
		{name: "member not ready", edit: func(f *spec.Fleet, w *world.World) {
			w.Karmada.Members["ap"].Ready = "False"
			w.Karmada.Members["ap"].Reason = "ClusterNotReachable"
		}, steps: []string{"member/ap/ready"}, note: "member ap is Ready=False (ClusterNotReachable) in Karmada"},
		{name: "karmada unreachable", edit: func(f *spec.Fleet, w *world.World) { w.Karmada = nil },
			steps: []string{"manager/karmada/kubeconfig", "manager/karmada/ready",
				"member/ap/join", "member/ap/ready", "member/eu/join", "member/eu/ready", "member/us/join", "member/us/ready",
				"workload/hello/manifests", "workload/hello/policy"}},
		{name: "apiservice unavailable", edit: func(f *spec.Fleet, w *world.World) { w.Karmada.APIServiceAvailable = false },
			steps: []string{"manager/karmada/ready"}},
		{name: "karmada values drift", edit: func(f *spec.Fleet, w *world.World) {
			w.Clusters["cluster-manager"].Releases["karmada-system/karmada"].Values["apiServer"] = map[string]any{"serviceType": "NodePort", "nodePort": 30000}
		}, steps: []string{"manager/karmada/kubeconfig", "manager/karmada/ready", "manager/karmada/release"}},
		{name: "karmada chart upgrade", edit: func(f *spec.Fleet, w *world.World) {
			w.Clusters["cluster-manager"].Releases["karmada-system/karmada"].ChartVersion = "v1.17.1"
		}, steps: []string{"manager/karmada/kubeconfig", "manager/karmada/ready", "manager/karmada/release"}},
		{name: "reader token rotated", edit: func(f *spec.Fleet, w *world.World) { w.Mesh["us"].ReaderToken = "sha256:rotated" },
			steps: []string{"member/ap/mesh/remote-secret/us", "member/eu/mesh/remote-secret/us"}},
		{name: "reader token gone", edit: func(f *spec.Fleet, w *world.World) { w.Mesh["us"].ReaderToken = "" },
			steps: []string{"member/ap/mesh/remote-secret/us", "member/eu/mesh/remote-secret/us", "member/us/mesh/reader-token"}},
		{name: "gateway missing", edit: func(f *spec.Fleet, w *world.World) { w.Mesh["ap"].Gateway = false },
			steps: []string{"member/ap/mesh/expose"}},
		{name: "mesh version upgrade", edit: func(f *spec.Fleet, w *world.World) { f.Mesh.Version = "1.31.1"; f.Mesh.Chart.Version = "1.31.1" },
			steps: []string{"member/ap/mesh/base", "member/ap/mesh/eastwest", "member/ap/mesh/istiod",
				"member/eu/mesh/base", "member/eu/mesh/eastwest", "member/eu/mesh/istiod",
				"member/us/mesh/base", "member/us/mesh/eastwest", "member/us/mesh/istiod"}},
		{name: "mesh off plans no mesh", edit: func(f *spec.Fleet, w *world.World) {
			off := false
			f.Mesh.Enabled = &off
			w.Mesh = nil
			w.RootCA = nil
		}},
		{name: "policy of a removed workload", edit: func(f *spec.Fleet, w *world.World) {
			w.Karmada.Policies["other/old"] = &world.Policy{Namespace: "other", Name: "old", Clusters: []string{"eu"}, Weights: map[string]int64{"eu": 1}, Divided: true}
		}, steps: []string{"workload/old/policy"}},
		{name: "manifests changed", edit: func(f *spec.Fleet, w *world.World) { w.Karmada.ManifestHashes["hello"] = "sha256:old" },
			steps: []string{"workload/hello/manifests"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, w := converged(t)
			tc.edit(f, w)
			p := mustCompute(t, f, w, Options{})
			if got := addresses(p); !reflect.DeepEqual(got, tc.steps) {
				t.Fatalf("steps = %v, want %v", got, tc.steps)
			}
			if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", p.Notes, tc.note)
			}
		})
	}
}

func TestNotReadyMemberGetsNoReplicas(t *testing.T) {
	t.Parallel()
	f, w := converged(t)
	w.Karmada.Members["ap"].Ready = "False"
	f.Workloads[0].Weights["us"] = 3
	p := mustCompute(t, f, w, Options{})
	s := stepOf(p, "workload/hello/policy")
	if s == nil {
		t.Fatalf("want the policy update, got %v", addresses(p))
	}
	if contains(s.DependsOn, "member/ap/ready") {
		t.Errorf("the policy must not wait for a member that is not Ready: %v", s.DependsOn)
	}
	// Weights eu 2, us 3 (ap left out) of 10 with uid-1: 4 and 6.
	if c := changeOf(*s, "split"); c == nil || c.After != "eu 4 (was 4), ap 0 (was 2), us 6 (was 4)" {
		t.Errorf("split = %+v", c)
	}
	if c := changeOf(*s, "clusters"); c != nil {
		t.Errorf("the policy keeps the member that is not Ready (Karmada taints it): %+v", c)
	}
}

func TestPullJoin(t *testing.T) {
	t.Parallel()
	f, w := converged(t)
	f.Members[1].JoinMode = spec.Pull // ap
	w.Karmada.Members["ap"].SyncMode = "Pull"
	p := mustCompute(t, f, w, Options{})
	s := stepOf(p, "member/ap/join")
	if s == nil || s.Action != plan.Update || changeOf(*s, "agent.release") == nil {
		t.Fatalf("a Pull member without its agent release gets it, got %+v", s)
	}
	// The agent as the driver installs it: the real CA, certificate and key in place of the
	// placeholders. They are not compared and never shown.
	agent := s.Payload.Join.Agent
	akc := agent.Values["agent"].(map[string]any)["kubeconfig"].(map[string]any)
	if _, ok := akc["caCrt"]; ok || akc["server"] != "https://"+w.Clusters["cluster-manager"].NodeIPs[0]+":32443" ||
		s.Payload.Join.CertSecret != "karmada-system/karmada-cert" || s.Payload.Join.Manager != "cluster-manager" {
		t.Errorf("the agent payload carries the server, no credential, and where the driver reads them: %+v", s.Payload.Join)
	}
	vals := plan.DeepCopyValues(agent.Values)
	kc0 := vals["agent"].(map[string]any)["kubeconfig"].(map[string]any)
	for _, k := range []string{"caCrt", "crt", "key"} {
		kc0[k] = "x"
	}
	kc := vals["agent"].(map[string]any)["kubeconfig"].(map[string]any)
	for _, k := range []string{"caCrt", "crt", "key"} {
		kc[k] = "-----BEGIN SECRET " + k + "-----"
	}
	w.Clusters["ap"].Releases["karmada-system/karmada-agent"] = &world.Release{Name: "karmada-agent", Namespace: "karmada-system",
		Chart: "karmada", ChartVersion: "v1.18.2", Status: "deployed", Values: vals}
	p = mustCompute(t, f, w, Options{})
	if len(p.Steps) != 0 {
		t.Fatalf("a converged Pull member needs nothing, got %v", addresses(p))
	}
	kc["server"] = "https://10.0.0.1:32443"
	p = mustCompute(t, f, w, Options{})
	s = stepOf(p, "member/ap/join")
	if s == nil || changeOf(*s, "agent.values.agent.kubeconfig.server") == nil {
		t.Fatalf("a moved Karmada server is drift, got %+v", s)
	}
	var buf bytes.Buffer
	if err := p.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "BEGIN SECRET") {
		t.Error("a secret reached the plan")
	}
}

func TestPlanTextSummary(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := (&plan.Plan{}).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "No changes. The fleet matches fleet.yaml.\n" {
		t.Errorf("empty plan text = %q", got)
	}
	p := &plan.Plan{Steps: []plan.Step{
		{Address: "a", Layer: plan.Managers, Action: plan.Create},
		{Address: "b", Layer: plan.Members, Action: plan.Replace},
		{Address: "c", Layer: plan.Mesh, Action: plan.Update},
		{Address: "d", Layer: plan.Weights, Action: plan.Delete},
		{Address: "e", Layer: plan.Weights, Action: plan.Wait},
	}}
	buf.Reset()
	if err := p.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if last := lines[len(lines)-1]; last != "Plan: 2 to add, 1 to change, 2 to destroy." {
		t.Errorf("summary line = %q", last)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	p := &plan.Plan{Steps: []plan.Step{
		{Address: "a", DependsOn: []string{"b"}},
		{Address: "b", DependsOn: []string{"a"}},
		{Address: "c", DependsOn: []string{"d"}},
		{Address: "d", DependsOn: []string{"e"}},
		{Address: "e", DependsOn: []string{"c", "nowhere"}},
		{Address: "f", DependsOn: []string{"f"}},
		{Address: "g", DependsOn: []string{"a"}},
	}}
	err := p.Validate()
	var g *plan.GraphError
	if !errors.As(err, &g) {
		t.Fatalf("want a *plan.GraphError, got %v", err)
	}
	wantCycles := [][]string{{"a", "b"}, {"c", "d", "e"}, {"f"}}
	if !reflect.DeepEqual(g.Cycles, wantCycles) {
		t.Errorf("cycles = %v, want %v", g.Cycles, wantCycles)
	}
	if !reflect.DeepEqual(g.Missing, []string{"e -> nowhere"}) {
		t.Errorf("missing = %v", g.Missing)
	}
	ok := &plan.Plan{Steps: []plan.Step{{Address: "a"}, {Address: "b", DependsOn: []string{"a"}}, {Address: "c", DependsOn: []string{"a", "b"}}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("a DAG is valid: %v", err)
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	f, _ := converged(t)
	f.Manager.Karmada.Values = map[string]any{
		"apiServer":  map[string]any{"hostNetwork": true, "nodePort": 31000},
		"components": []any{"search"},
	}
	v := KarmadaValues(f, plan.Known("192.0.2.7"))
	hosts := v["certs"].(map[string]any)["auto"].(map[string]any)["hosts"].([]any)
	wantHosts := []any{"kubernetes.default.svc", "*.etcd.karmada-system.svc.cluster.local", "*.karmada-system.svc.cluster.local",
		"*.karmada-system.svc", "localhost", "127.0.0.1", "192.0.2.7"}
	if !reflect.DeepEqual(hosts, wantHosts) {
		t.Errorf("hosts = %v", hosts)
	}
	api := v["apiServer"].(map[string]any)
	if api["serviceType"] != "NodePort" || api["nodePort"] != 31000 || api["hostNetwork"] != true {
		t.Errorf("user values merge on top of ours: %v", api)
	}
	if v["installMode"] != "host" || v["scheduler"].(map[string]any)["image"].(map[string]any)["tag"] != "v1.18.2" {
		t.Errorf("mode or image tags wrong: %v", v)
	}
	if got := f.Manager.Karmada.Values["apiServer"].(map[string]any); len(got) != 2 {
		t.Errorf("KarmadaValues wrote into the fleet: %v", got)
	}
	ref := &plan.Ref{Step: AddrNodeAddress, Output: plan.OutputNodeIP}
	coldValues, coldRefs, coldShown := splitValues(KarmadaValues(f, plan.Value{From: ref}))
	if h := coldShown["certs"].(map[string]any)["auto"].(map[string]any)["hosts"].([]any); h[len(h)-1] != plan.KnownAfterApply {
		t.Errorf("an unknown node IP shows as %q, got %v", plan.KnownAfterApply, h)
	}
	if h := coldValues["certs"].(map[string]any)["auto"].(map[string]any)["hosts"].([]any); h[len(h)-1] != "" {
		t.Errorf("an unknown node IP is never a placeholder in real values, got %v", h)
	}
	if !reflect.DeepEqual(coldRefs, []plan.ValueRef{{Path: []string{"certs", "auto", "hosts", "6"}, From: *ref}}) {
		t.Errorf("refs = %+v", coldRefs)
	}

	a := AgentValues(f, "ap", plan.Known("https://ap:443"), plan.Known("192.0.2.7"))
	ag := a["agent"].(map[string]any)
	kc := ag["kubeconfig"].(map[string]any)
	if a["installMode"] != "agent" || ag["clusterName"] != "ap" || ag["clusterEndpoint"] != "https://ap:443" ||
		kc["server"] != "https://192.0.2.7:32443" || kc["caCrt"] != (sensitive{}) || kc["crt"] != (sensitive{}) || kc["key"] != (sensitive{}) {
		t.Errorf("agent values = %v", a)
	}

	g := IstiodValues(f, "us")["global"].(map[string]any)
	if g["meshID"] != "mesh1" || g["network"] != "network2" || g["multiCluster"].(map[string]any)["clusterName"] != "us" {
		t.Errorf("istiod values = %v", g)
	}
	ew := EastWestValues(f, "us")
	labels := ew["labels"].(map[string]any)
	if ew["networkGateway"] != "network2" || labels["istio"] != "eastwestgateway" || labels["app"] != "istio-eastwestgateway" ||
		labels["topology.istio.io/network"] != "network2" {
		t.Errorf("east-west values = %v", ew)
	}

	base := world.RemoteSecretFingerprint("https://a:443", "tok")
	for _, other := range []string{world.RemoteSecretFingerprint("https://b:443", "tok"), world.RemoteSecretFingerprint("https://a:443", "tok2"),
		world.RemoteSecretFingerprint("https://a:443t", "ok")} {
		if other == base {
			t.Error("different endpoints or tokens must fingerprint differently")
		}
	}
	if world.RemoteSecretFingerprint("https://a:443", "tok") != base {
		t.Error("the fingerprint must be stable")
	}
}

func TestFingerprints(t *testing.T) {
	t.Parallel()
	f, w := converged(t)
	wf, sf := WorldFingerprint(w), SpecFingerprint(f)
	w.Now = w.Now.Add(time.Hour)
	if WorldFingerprint(w) != wf {
		t.Error("the world fingerprint must ignore Now")
	}
	w.Mesh["eu"].Gateway = false
	if WorldFingerprint(w) == wf {
		t.Error("the world fingerprint must follow what was observed")
	}
	f.Workloads[0].ManifestDigest = "sha256:other"
	if SpecFingerprint(f) == sf {
		t.Error("the spec fingerprint must follow the manifests")
	}
	p := mustCompute(t, f, w, Options{})
	if p.SpecFingerprint != SpecFingerprint(f) || p.WorldFingerprint != WorldFingerprint(w) {
		t.Error("the plan must carry the fingerprints of its inputs")
	}
}

func TestKubeconfigClustersHaveNoClusterSteps(t *testing.T) {
	t.Parallel()
	f, _ := converged(t)
	f.Manager.Kubeconfig = &spec.Kubeconfig{Path: "/nonexistent/manager"}
	for i := range f.Members {
		f.Members[i].Kubeconfig = &spec.Kubeconfig{Path: "/nonexistent/" + f.Members[i].Name}
	}
	p := mustCompute(t, f, &world.World{}, Options{})
	for _, s := range p.Steps {
		if s.Kind == plan.KindCluster || s.Kind == plan.KindKubeconfig {
			t.Errorf("a cluster given by kubeconfig gets no %s step (%s)", s.Kind, s.Address)
		}
	}
	// Nothing observed: the release waits for a Ready node's address, which needs nothing
	// before it on an existing cluster.
	if s := stepOf(p, AddrKarmadaRelease); s == nil || !reflect.DeepEqual(s.DependsOn, []string{AddrNodeAddress}) {
		t.Errorf("the release needs only the node address on an existing cluster: %+v", s)
	}
	if s := stepOf(p, AddrNodeAddress); s == nil || len(s.DependsOn) != 0 || s.Action != plan.Wait {
		t.Errorf("node-address: %+v", s)
	}
	// No kubeconfig could be read, so no endpoint is known: the joins are held, not guessed.
	if s := stepOf(p, "member/eu/join"); s != nil {
		t.Errorf("a join without a known endpoint is held: %+v", s)
	}
	if !strings.Contains(strings.Join(p.Notes, "\n"), "member/eu/join is held") {
		t.Errorf("notes %q", p.Notes)
	}
	w := &world.World{Clusters: map[string]*world.Cluster{"eu": {Name: "eu", APIEndpoint: "https://eu:6443"}}}
	p = mustCompute(t, f, w, Options{})
	if s := stepOf(p, "member/eu/join"); s == nil || !reflect.DeepEqual(s.DependsOn, []string{AddrKarmadaReady}) ||
		s.Payload.Join.APIEndpoint != plan.Known("https://eu:6443") {
		t.Errorf("join waits for Karmada only, with the observed endpoint: %+v", s)
	}
}

func TestPolicyMovesScope(t *testing.T) {
	t.Parallel()
	f, w := converged(t)
	f.Workloads[0].ClusterScoped = true
	p := mustCompute(t, f, w, Options{})
	want := map[string]plan.Action{"workload/hello/policy": plan.Create, "workload/hello/policy/default": plan.Delete}
	if len(p.Steps) != len(want) {
		t.Fatalf("steps = %v", addresses(p))
	}
	for _, s := range p.Steps {
		if want[s.Address] != s.Action {
			t.Errorf("%s: %s, want %s", s.Address, s.Action, want[s.Address])
		}
	}
	if s := stepOf(p, "workload/hello/policy/default"); s == nil || s.Namespace != "default" || s.Workload != "hello" {
		t.Errorf("the delete must name the old policy: %+v", s)
	}
}

func TestTagsIgnoreCase(t *testing.T) {
	t.Parallel()
	f, w := converged(t)
	f.Members[0].Tags = []string{"Team-A", "reconcile-demo"}
	w.Clusters["eu"].Tags = []string{"reconcile-demo", "team-a"}
	if p := mustCompute(t, f, w, Options{}); len(p.Steps) != 0 {
		t.Errorf("tags that differ only in case are the same: %v", addresses(p))
	}
}

// Karmada's signer may issue an agent certificate for less than was asked (its
// --cluster-signing-duration): it is renewed once half of the life it has is over, not only at
// credentials.tokenRotation, or it would expire first.
func TestAgentCertificateShortenedBySigner(t *testing.T) {
	t.Parallel()
	f, w := loadCase(t, "pull-agent-cert-old")
	a := w.Clusters["ap"].Agent
	a.NotBefore, a.NotAfter = w.Now.Add(-3*24*time.Hour), w.Now.Add(4*24*time.Hour) // 7 days, 3 gone
	if p := mustCompute(t, f, w, Options{}); len(p.Steps) != 0 {
		t.Fatalf("a certificate in the first half of its life is kept, got %v", addresses(p))
	}
	a.NotBefore, a.NotAfter = w.Now.Add(-4*24*time.Hour), w.Now.Add(3*24*time.Hour) // 4 of 7 days gone
	p := mustCompute(t, f, w, Options{})
	s := stepOf(p, "member/ap/join")
	if s == nil || !s.Payload.Join.RenewAgentCert {
		t.Fatalf("want the certificate renewed, got %v", addresses(p))
	}
	if c := changeOf(*s, "agent.certificate"); c == nil || c.After != "renewed (half of its lifetime is over)" {
		t.Errorf("agent.certificate: %+v", c)
	}
}
