package weights

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
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
	"github.com/reconcile-dev/reconcile/plan"
)

// A member Karmada reports not Ready gets no replicas from our policy: the real scheduler
// divides over the Ready members only. (What the planner shows and notes for such a member
// is the planner's to test.)
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
	// The policy carries every member with its weight, us included: leaving a member that is
	// not Ready out is Karmada's business, not the policy's.
	policy := weightedPolicy(ns, workload, fleetWeights,
		plan.ResourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: workload})
	applyBoth(t, ctx, h.driver, f, workload, policy)

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
	// Divided by weight over the Ready members only (eu 2, ap 1: no tie to break).
	scheduled := map[string]int32{"eu": 7, "ap": 3}
	t.Logf("uid %s: Karmada scheduled %v", wl.UID, wl.Scheduled)
	if _, ok := wl.Scheduled["us"]; ok {
		t.Errorf("the binding places replicas on us, which is not Ready: %v", wl.Scheduled)
	}
	if !maps.Equal(wl.Scheduled, scheduled) {
		t.Errorf("Karmada scheduled %v (uid %s), want %v over the Ready members", wl.Scheduled, wl.UID, scheduled)
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

	// Applied and scheduled: the observer reads back what was applied, and applying it again
	// writes nothing while us stays down.
	assertConverged(t, observe(t, ctx, h.driver, f), ns+"/"+workload, workload, policy, f.Workloads[0].ManifestDigest)
	h.writes.Take()
	applyBoth(t, ctx, h.driver, f, workload, policy)
	if got := h.writes.Take(); len(got) != 0 {
		t.Errorf("second apply wrote %v", got)
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
