package weights

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/karmadalab"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/karmada"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// A member Karmada reports not Ready gets no replicas: the planner says so in a note and shows
// the split over the Ready members only, and the real scheduler divides exactly that way.
func TestNotReadyMemberGetsNoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Karmada control plane and three member clusters")
	}
	bins, kbins := labtest.KarmadaBinaries(t)
	ctx := t.Context()

	// An etcd of its own: the package's other lab test names its members eu, ap and us too,
	// and a lab cluster keeps its data under its name in etcd. Registered first, stopped last.
	etcd, err := cluster.StartEtcd(ctx, filepath.Join(t.TempDir(), "etcd"), bins)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := etcd.Stop(); err != nil {
			t.Error(err)
		}
	})
	cp, err := karmadalab.StartControlPlane(ctx, karmadalab.ControlPlaneOptions{
		Name: "notready", Dir: filepath.Join(t.TempDir(), "karmada"), Address: "127.0.0.230",
		Etcd: etcd, Bins: bins, Karmada: kbins,
	})
	var stopOnce sync.Once
	stopCP := func() {
		stopOnce.Do(func() {
			if err := cp.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	if cp != nil {
		t.Cleanup(stopCP)
	}
	if err != nil {
		t.Fatal(err)
	}

	h := newHarness(t, cp)
	labMembers := map[string]*cluster.Cluster{}
	clients := map[string]kubernetes.Interface{}
	for i, name := range []string{"eu", "ap", "us"} {
		address := fmt.Sprintf("127.0.0.%d", 231+i)
		m, err := cluster.StartCluster(ctx, cluster.ClusterOptions{
			Name: name, Dir: filepath.Join(t.TempDir(), name), Address: address, Etcd: etcd, Bins: bins,
			Nodes: []cluster.NodeSpec{{Name: name + "-node", ExternalIP: address}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := m.Stop(); err != nil && name != "us" { // us was stopped, and reported, below
				t.Error(err)
			}
		})
		labMembers[name] = m
		clients[name] = joinPush(t, h, m)
	}
	// The control plane stops before the members (cleanups run last in, first out).
	t.Cleanup(stopCP)
	for name := range labMembers {
		waitUntil(t, 90*time.Second, "member "+name+" Ready", func(ctx context.Context) (bool, error) {
			ready, _, err := clusterHealth(ctx, h, name)
			return err == nil && ready == "True", nil
		})
	}

	// us goes away for real: Karmada's cluster status controller finds it unreachable, marks
	// it not Ready and taints it NoSchedule (cluster-failure-threshold and the monitor grace
	// period are Karmada's defaults, 30 s and 40 s: wait generously).
	// Its API server holds Karmada's watches open through graceful shutdown, so Stop may have
	// to kill it and say so: either way it must no longer answer.
	if err := labMembers["us"].Stop(); err != nil {
		t.Logf("stopping us: %v", err)
	}
	if _, err := clients["us"].Discovery().ServerVersion(); err == nil {
		t.Fatal("us still answers after Stop")
	}
	start := time.Now()
	var usReady string
	var usTaints []string
	waitUntil(t, 3*time.Minute, "Karmada to mark us not Ready and taint it NoSchedule", func(ctx context.Context) (bool, error) {
		ready, taints, err := clusterHealth(ctx, h, "us")
		if err != nil {
			return false, nil
		}
		usReady, usTaints = ready, taints
		return ready != "True" && (slices.Contains(taints, "cluster.karmada.io/not-ready:NoSchedule") ||
			slices.Contains(taints, "cluster.karmada.io/unreachable:NoSchedule")), nil
	})
	t.Logf("us: Ready=%s, taints %v, %s after its API server stopped", usReady, usTaints, time.Since(start).Round(time.Second))

	const ns, workload = "notready-hello2", "hello2"
	const replicas = 10
	fleetWeights := map[string]int64{"us": 2, "ap": 1, "eu": 2}
	f := loadFleet(t, fmt.Sprintf(`workloads:
  - name: %[1]s
    namespace: %[2]s
    resources: [{apiVersion: apps/v1, kind: Deployment, name: %[1]s}]
    weights: {us: 2, ap: 1, eu: 2}
    manifests: [%[1]s.yaml]
`, workload, ns), map[string]string{workload + ".yaml": fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[2]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec: {containers: [{name: %[1]s, image: docker.io/istio/examples-helloworld-v1:1.0}]}
`, workload, ns, replicas)})
	if got := f.Workloads[0].Weights; !maps.Equal(got, fleetWeights) {
		t.Fatalf("fleet weights %v, want %v", got, fleetWeights)
	}
	readyWeights := map[string]int64{"eu": fleetWeights["eu"], "ap": fleetWeights["ap"]}

	// The observed World, as the daemon builds it: the Karmada observer, then this package's.
	kd := karmada.New(karmada.Config{Access: kube.Access{Store: h.store}})
	observeAll := func(t *testing.T) *world.World {
		t.Helper()
		w := &world.World{}
		if err := kd.Observe(ctx, f, w); err != nil {
			t.Fatalf("karmada observer: %v", err)
		}
		if err := h.driver.Observe(ctx, f, w); err != nil {
			t.Fatalf("weights observer: %v", err)
		}
		return w
	}
	w := observeAll(t)
	if w.Karmada == nil || !w.Karmada.APIServiceAvailable {
		t.Fatalf("the Karmada observer did not find the control plane available: %+v", w.Karmada)
	}
	for name, want := range map[string]bool{"eu": true, "ap": true, "us": false} {
		km := w.Karmada.Members[name]
		if km == nil {
			t.Fatalf("member %s missing from the observed World: %+v", name, w.Karmada.Members)
		}
		if got := km.Ready == "True"; got != want {
			t.Errorf("member %s observed Ready=%q (%s), want Ready=True to be %v", name, km.Ready, km.Reason, want)
		}
	}

	p, err := planner.Compute(f, w, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var usNotes []string
	for _, n := range p.Notes {
		if strings.Contains(n, "member eu ") || strings.Contains(n, "member ap ") {
			t.Errorf("a Ready member is noted: %q", n)
		}
		if strings.Contains(n, "member us ") && strings.Contains(n, "cannot receive replicas") {
			usNotes = append(usNotes, n)
		}
	}
	if len(usNotes) != 1 {
		t.Errorf("want one note that us cannot receive replicas, notes are %q", p.Notes)
	}
	policy := findStep(p, "workload/"+workload+"/policy")
	if policy == nil || policy.Action != planner.Create {
		t.Fatalf("want the policy of %s created, plan has %+v", workload, policy)
	}
	if slices.Contains(policy.DependsOn, "member/us/ready") {
		t.Errorf("the policy waits for us to be Ready, which it may never be: depends on %v", policy.DependsOn)
	}
	// The template is not in Karmada yet, so the plan divides without a uid.
	predicted := planner.Divide(readyWeights, replicas, "")
	wantSplit := splitText(f, predicted)
	var shown []string
	for _, c := range policy.Changes {
		if c.Field == "split" {
			shown = append(shown, c.After)
		}
	}
	if len(shown) != 1 || shown[0] != wantSplit {
		t.Errorf("the plan shows split %q, want %q (Divide over the Ready members)", shown, wantSplit)
	}
	t.Logf("plan note: %s; split: %s", strings.Join(usNotes, "; "), strings.Join(shown, "; "))

	if err := h.driver.ApplyManifests(ctx, f, workload); err != nil {
		t.Fatal(err)
	}
	if err := h.driver.ApplyPolicy(ctx, f, workload); err != nil {
		t.Fatal(err)
	}

	key := ns + "/Deployment/" + workload
	var wl *world.Workload
	waitUntil(t, 90*time.Second, "binding of "+workload+" scheduled", func(ctx context.Context) (bool, error) {
		w := &world.World{}
		if err := h.driver.Observe(ctx, f, w); err != nil {
			return false, err
		}
		wl = w.Karmada.Workloads[key]
		return wl != nil && wl.Scheduled != nil, nil
	})
	scheduled := planner.Divide(readyWeights, replicas, wl.UID)
	t.Logf("uid %s: Karmada scheduled %v, Divide over the Ready members says %v", wl.UID, wl.Scheduled, scheduled)
	if _, ok := wl.Scheduled["us"]; ok {
		t.Errorf("the binding places replicas on us, which is not Ready: %v", wl.Scheduled)
	}
	if !maps.Equal(wl.Scheduled, scheduled) {
		t.Errorf("Karmada scheduled %v (uid %s), Divide over the Ready members predicts %v", wl.Scheduled, wl.UID, scheduled)
	}
	if !maps.Equal(scheduled, predicted) {
		t.Errorf("with the binding's uid Divide gives %v, but the plan showed %v", scheduled, predicted)
	}
	for _, name := range []string{"eu", "ap"} {
		want := scheduled[name]
		waitUntil(t, 90*time.Second, fmt.Sprintf("%s runs %d replicas of %s", name, want, workload), func(ctx context.Context) (bool, error) {
			d, err := clients[name].AppsV1().Deployments(ns).Get(ctx, workload, metav1.GetOptions{})
			if err != nil || d.Spec.Replicas == nil {
				return false, nil
			}
			return *d.Spec.Replicas == want, nil
		})
	}

	// Applied and scheduled: the weights layer plans nothing more while us stays down, and
	// the note stays.
	after := observeAll(t)
	if steps := weightSteps(t, ns, f, after); len(steps) != 0 {
		t.Errorf("scheduled world: the planner still plans %+v", steps)
	}
	p, err = planner.Compute(f, after, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "member us ") }) {
		t.Errorf("us is still not Ready, but the plan has no note about it: %q", p.Notes)
	}
}

// clusterHealth reads a Karmada Cluster's Ready status and its taints as key:effect.
func clusterHealth(ctx context.Context, h *harness, name string) (ready string, taints []string, err error) {
	c, err := h.dyn.Resource(clusterGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", nil, err
	}
	conds, _, _ := unstructured.NestedSlice(c.Object, "status", "conditions")
	for _, cond := range conds {
		if m, _ := cond.(map[string]any); m["type"] == "Ready" {
			ready, _ = m["status"].(string)
		}
	}
	list, _, _ := unstructured.NestedSlice(c.Object, "spec", "taints")
	for _, e := range list {
		if m, _ := e.(map[string]any); m != nil {
			taints = append(taints, fmt.Sprintf("%v:%v", m["key"], m["effect"]))
		}
	}
	return ready, taints, nil
}

func findStep(p *planner.Plan, addr string) *planner.Step {
	for i := range p.Steps {
		if p.Steps[i].Address == addr {
			return &p.Steps[i]
		}
	}
	return nil
}

// splitText is how the plan shows a split before Karmada made one: members in fleet order,
// those that get nothing left out.
func splitText(f *spec.Fleet, split map[string]int32) string {
	var parts []string
	for _, m := range f.Members {
		if n, ok := split[m.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", m.Name, n))
		}
	}
	return strings.Join(parts, ", ")
}
