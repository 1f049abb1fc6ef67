package weights

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

var (
	_ executor.WeightsDriver = (*Driver)(nil)
	_ state.Observer         = (*Driver)(nil)
)

var deploymentGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

const helloManifests = `apiVersion: v1
kind: Namespace
metadata:
  name: NS
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: NS
  labels: {app: hello}
spec:
  replicas: 10
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
        - name: hello
          image: docker.io/istio/examples-helloworld-v1:1.0
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: hello-config
  namespace: NS
data:
  greeting: hi
`

// helloFleet is a fleet whose workload hello lives in namespace ns, with the given weights.
func helloFleet(t *testing.T, ns, weights string) *spec.Fleet {
	t.Helper()
	return loadFleet(t, `workloads:
  - name: hello
    namespace: `+ns+`
    resources:
      - {apiVersion: apps/v1, kind: Deployment, name: hello}
      - {apiVersion: v1, kind: ConfigMap, name: hello-config}
    weights: {`+weights+`}
    manifests: [hello.yaml]
`, map[string]string{"hello.yaml": strings.ReplaceAll(helloManifests, "NS", ns)})
}

// weightSteps are the steps the planner proposes for the weights layer in namespace ns ("" for
// cluster-scoped policies): tests share one Karmada API, each in its own namespace, and the
// planner rightly proposes to delete the other tests' policies.
func weightSteps(t *testing.T, ns string, f *spec.Fleet, w *world.World) []planner.Step {
	t.Helper()
	p, err := planner.Compute(f, w, planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []planner.Step
	for _, s := range p.Steps {
		if s.Layer == planner.Weights && s.Action != planner.NoOp && s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out
}

func observe(t *testing.T, ctx context.Context, d *Driver, f *spec.Fleet) *world.World {
	t.Helper()
	w := &world.World{}
	if err := d.Observe(ctx, f, w); err != nil {
		t.Fatalf("observe: %v", err)
	}
	return w
}

func TestApplyObserveConverge(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	const ns = "converge"
	f := helloFleet(t, ns, "us: 2, ap: 1, eu: 2")

	before := observe(t, ctx, h.driver, f)
	if before.Karmada == nil || !before.Karmada.Reachable {
		t.Fatalf("Karmada answers but the observer did not record it: %+v", before.Karmada)
	}
	// Other tests share the API in other namespaces: look at this one only.
	if before.Karmada.Policies[ns+"/hello"] != nil || before.Karmada.ManifestHashes["hello"] != "" {
		t.Fatalf("fresh namespace: want no policy or hash, got %+v", before.Karmada)
	}
	steps := weightSteps(t, ns, f, before)
	if len(steps) != 2 {
		t.Fatalf("fresh Karmada: want manifests and policy steps, got %+v", steps)
	}

	if err := h.driver.ApplyManifests(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := h.driver.ApplyPolicy(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 4 { // namespace, deployment, configmap, policy
		t.Errorf("first apply: want 4 writes, got %d: %v", len(got), got)
	}

	dep, err := h.dyn.Resource(deploymentGVR).Namespace(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := dep.GetAnnotations()[DigestAnnotation]; got != f.Workloads[0].ManifestDigest {
		t.Errorf("deployment digest annotation = %q, want %q", got, f.Workloads[0].ManifestDigest)
	}
	pp, err := h.dyn.Resource(policyGVR).Namespace(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pp.GetLabels(); got[ManagedByLabel] != ManagedByValue || got[WorkloadLabel] != "hello" {
		t.Errorf("policy labels = %v", got)
	}
	names, _, _ := unstructured.NestedStringSlice(pp.Object, "spec", "placement", "clusterAffinity", "clusterNames")
	if !slices.Equal(names, []string{"ap", "eu", "us"}) {
		t.Errorf("clusterNames = %v, want [ap eu us]", names)
	}
	typ, _, _ := unstructured.NestedString(pp.Object, "spec", "placement", "replicaScheduling", "replicaSchedulingType")
	pref, _, _ := unstructured.NestedString(pp.Object, "spec", "placement", "replicaScheduling", "replicaDivisionPreference")
	if typ != "Divided" || pref != "Weighted" {
		t.Errorf("replicaScheduling = %s/%s, want Divided/Weighted", typ, pref)
	}
	list, _, _ := unstructured.NestedSlice(pp.Object, "spec", "placement", "replicaScheduling", "weightPreference", "staticWeightList")
	if len(list) != 3 {
		t.Errorf("staticWeightList has %d entries, want one per member: %v", len(list), list)
	}
	sels, _, _ := unstructured.NestedSlice(pp.Object, "spec", "resourceSelectors")
	if len(sels) != 2 || sels[0].(map[string]any)["name"] != "hello" || sels[0].(map[string]any)["namespace"] != ns {
		t.Errorf("resourceSelectors = %v", sels)
	}

	w := observe(t, ctx, h.driver, f)
	want := planner.DesiredPolicy(f, &f.Workloads[0])
	if got := w.Karmada.Policies[ns+"/hello"]; !reflect.DeepEqual(got, want) {
		t.Errorf("observed policy:\n got %+v\nwant %+v", got, want)
	}
	if got := w.Karmada.ManifestHashes["hello"]; got != f.Workloads[0].ManifestDigest {
		t.Errorf("manifest hash = %q, want %q", got, f.Workloads[0].ManifestDigest)
	}
	wl := w.Karmada.Workloads[ns+"/Deployment/hello"]
	if wl == nil || wl.Replicas != 10 || wl.UID != string(dep.GetUID()) || wl.Scheduled != nil {
		t.Errorf("workload = %+v, want 10 replicas, uid %s, nothing scheduled yet", wl, dep.GetUID())
	}
	var here []string
	for k := range w.Karmada.Workloads {
		if strings.HasPrefix(k, ns+"/") {
			here = append(here, k)
		}
	}
	if len(here) != 1 {
		t.Errorf("only the Deployment has replicas; got workloads %v", here)
	}
	if steps := weightSteps(t, ns, f, w); len(steps) != 0 {
		t.Errorf("after apply the planner still plans weights steps: %+v", steps)
	}

	// A second pass writes nothing.
	if err := h.driver.ApplyManifests(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := h.driver.ApplyPolicy(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 0 {
		t.Errorf("second apply wrote %v", got)
	}

	// Changed manifests: only the changed object is written, and the digest follows.
	f2 := loadFleet(t, `workloads:
  - name: hello
    namespace: `+ns+`
    resources: [{apiVersion: apps/v1, kind: Deployment, name: hello}, {apiVersion: v1, kind: ConfigMap, name: hello-config}]
    weights: {us: 2, ap: 1, eu: 2}
    manifests: [hello.yaml]
`, map[string]string{"hello.yaml": strings.ReplaceAll(strings.ReplaceAll(helloManifests, "NS", ns), "greeting: hi", "greeting: hello")})
	if f2.Workloads[0].ManifestDigest == f.Workloads[0].ManifestDigest {
		t.Fatal("changed manifests kept their digest")
	}
	w = observe(t, ctx, h.driver, f2)
	if steps := weightSteps(t, ns, f2, w); len(steps) != 1 || steps[0].Kind != planner.KindManifests || steps[0].Action != planner.Update {
		t.Errorf("changed manifests: want one manifests update, got %+v", steps)
	}
	if err := h.driver.ApplyManifests(ctx, f2, "hello"); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 3 { // every object's digest annotation changed
		t.Errorf("changed manifests: want 3 writes, got %v", got)
	}
	if steps := weightSteps(t, ns, f2, observe(t, ctx, h.driver, f2)); len(steps) != 0 {
		t.Errorf("after applying changed manifests: %+v", steps)
	}
}

func TestPolicyDriftCorrected(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	const ns = "drift"
	f := helloFleet(t, ns, "us: 2, ap: 1, eu: 2")
	if err := h.driver.ApplyManifests(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := h.driver.ApplyPolicy(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	h.writes.Take()

	// Someone edits the weights by hand (an update, as kubectl edit does).
	ri := h.dyn.Resource(policyGVR).Namespace(ns)
	pp, err := ri.Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list, _, _ := unstructured.NestedSlice(pp.Object, "spec", "placement", "replicaScheduling", "weightPreference", "staticWeightList")
	list = append(list[:1], map[string]any{"targetCluster": map[string]any{"clusterNames": []any{"mars"}}, "weight": int64(9)})
	if err := unstructured.SetNestedSlice(pp.Object, list, "spec", "placement", "replicaScheduling", "weightPreference", "staticWeightList"); err != nil {
		t.Fatal(err)
	}
	if _, err := ri.Update(ctx, pp, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}

	w := observe(t, ctx, h.driver, f)
	if got := w.Karmada.Policies[ns+"/hello"].Weights; got["mars"] != 9 || len(got) != 2 {
		t.Errorf("observer missed the hand edit: weights %v", got)
	}
	steps := weightSteps(t, ns, f, w)
	if len(steps) != 1 || steps[0].Kind != planner.KindPolicy || steps[0].Action != planner.Update {
		t.Fatalf("hand edit: want one policy update, got %+v", steps)
	}
	if err := h.driver.ApplyPolicy(ctx, f, steps[0].Workload); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 1 {
		t.Errorf("correcting drift: want one write, got %v", got)
	}
	if !strings.Contains(h.log.String(), "policy drift corrected") {
		t.Errorf("drift correction not logged:\n%s", h.log.String())
	}
	w = observe(t, ctx, h.driver, f)
	if got, want := w.Karmada.Policies[ns+"/hello"], planner.DesiredPolicy(f, &f.Workloads[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("after correction:\n got %+v\nwant %+v", got, want)
	}
	if steps := weightSteps(t, ns, f, w); len(steps) != 0 {
		t.Errorf("after correction the planner still plans %+v", steps)
	}

	// New weights in fleet.yaml are an update too.
	f2 := helloFleet(t, ns, "us: 1, eu: 1")
	if err := h.driver.ApplyPolicy(ctx, f2, "hello"); err != nil {
		t.Fatal(err)
	}
	w = observe(t, ctx, h.driver, f2)
	if got := w.Karmada.Policies[ns+"/hello"]; !slices.Equal(got.Clusters, []string{"eu", "us"}) || len(got.Weights) != 2 {
		t.Errorf("after reweighting: %+v", got)
	}
	if steps := weightSteps(t, ns, f2, w); len(steps) != 0 {
		t.Errorf("after reweighting the planner still plans %+v", steps)
	}
}

func TestDeletePolicyWaitsUntilGone(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	const ns = "delete"
	f := helloFleet(t, ns, "eu: 1")
	if err := h.driver.ApplyManifests(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := h.driver.ApplyPolicy(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	// A finalizer stands in for Karmada's: the policy lingers until it is removed.
	ri := h.dyn.Resource(policyGVR).Namespace(ns)
	const hold = "test.reconcile.dev/hold"
	pp, err := ri.Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pp.SetFinalizers([]string{hold})
	if _, err := ri.Update(ctx, pp, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The workload leaves the fleet: the planner deletes its policy.
	gone := loadFleet(t, "", nil)
	steps := weightSteps(t, ns, gone, observe(t, ctx, h.driver, gone))
	if len(steps) != 1 || steps[0].Action != planner.Delete || steps[0].Namespace != ns {
		t.Fatalf("workload removed: want one policy delete in %s, got %+v", ns, steps)
	}
	done := make(chan error, 1)
	go func() { done <- h.driver.DeletePolicy(ctx, gone, steps[0]) }()

	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		u, err := ri.Get(ctx, "hello", metav1.GetOptions{})
		return err == nil && u.GetDeletionTimestamp() != nil, nil
	})
	if err != nil {
		t.Fatalf("policy never marked for deletion: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("DeletePolicy returned (%v) while the policy still exists", err)
	default:
	}
	pp, err = ri.Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pp.SetFinalizers(nil)
	if _, err := ri.Update(ctx, pp, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("DeletePolicy did not return after the finalizer was removed")
	}
	if _, err := ri.Get(ctx, "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("policy still there: %v", err)
	}
	if steps := weightSteps(t, ns, gone, observe(t, ctx, h.driver, gone)); len(steps) != 0 {
		t.Errorf("after delete the planner still plans %+v", steps)
	}
	// Deleting again is a no-op.
	if err := h.driver.DeletePolicy(ctx, gone, planner.Step{Workload: "hello", Namespace: ns}); err != nil {
		t.Errorf("second delete: %v", err)
	}
	// The resources the policy selected are left alone.
	if _, err := h.dyn.Resource(deploymentGVR).Namespace(ns).Get(ctx, "hello", metav1.GetOptions{}); err != nil {
		t.Errorf("deployment gone with its policy: %v", err)
	}
}

func TestDeletePolicyRefusesForeignPolicy(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	foreign := policyObject(&world.Policy{Namespace: "default", Name: "foreign", Clusters: []string{"eu"},
		Resources: []world.ResourceRef{{APIVersion: "apps/v1", Kind: "Deployment", Name: "foreign"}},
		Weights:   map[string]int64{"eu": 1}, Divided: true})
	foreign.SetLabels(nil)
	ri := h.dyn.Resource(policyGVR).Namespace("default")
	if _, err := ri.Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := h.driver.DeletePolicy(ctx, loadFleet(t, "", nil), planner.Step{Workload: "foreign", Namespace: "default"})
	if err == nil || !strings.Contains(err.Error(), "not managed by reconcile") {
		t.Errorf("want a refusal, got %v", err)
	}
	if _, err := ri.Get(ctx, "foreign", metav1.GetOptions{}); err != nil {
		t.Errorf("foreign policy deleted: %v", err)
	}
	// The observer does not report it either.
	w := observe(t, ctx, h.driver, loadFleet(t, "", nil))
	if _, ok := w.Karmada.Policies["default/foreign"]; ok {
		t.Error("observer reported a policy reconcile does not manage")
	}
}

func TestClusterScopedPolicy(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	const ns = "" // cluster-scoped
	f := loadFleet(t, `workloads:
  - name: cluster-hello
    clusterScoped: true
    resources: [{apiVersion: v1, kind: Namespace, name: cluster-hello}]
    weights: {eu: 1, ap: 3}
`, nil)
	w := observe(t, ctx, h.driver, f)
	steps := weightSteps(t, ns, f, w)
	if len(steps) != 1 || steps[0].Action != planner.Create {
		t.Fatalf("want one policy create, got %+v", steps)
	}
	if err := h.driver.ApplyPolicy(ctx, f, "cluster-hello"); err != nil {
		t.Fatal(err)
	}
	cpp, err := h.dyn.Resource(clusterPolicyGVR).Get(ctx, "cluster-hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sels, _, _ := unstructured.NestedSlice(cpp.Object, "spec", "resourceSelectors")
	if _, ok := sels[0].(map[string]any)["namespace"]; ok {
		t.Errorf("cluster-scoped policy selector has a namespace: %v", sels)
	}
	w = observe(t, ctx, h.driver, f)
	if got, want := w.Karmada.Policies["/cluster-hello"], planner.DesiredPolicy(f, &f.Workloads[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("observed:\n got %+v\nwant %+v", got, want)
	}
	if steps := weightSteps(t, ns, f, w); len(steps) != 0 {
		t.Errorf("after apply: %+v", steps)
	}
	h.writes.Take()
	if err := h.driver.ApplyPolicy(ctx, f, "cluster-hello"); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 0 {
		t.Errorf("second apply wrote %v", got)
	}
	if err := h.driver.DeletePolicy(ctx, f, planner.Step{Workload: "cluster-hello"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.dyn.Resource(clusterPolicyGVR).Get(ctx, "cluster-hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster policy still there: %v", err)
	}
}

func TestScheduledFromBinding(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	const ns = "binding"
	f := helloFleet(t, ns, "us: 2, ap: 1, eu: 2")
	if err := h.driver.ApplyManifests(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := h.driver.ApplyPolicy(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	dep, err := h.dyn.Resource(deploymentGVR).Namespace(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What Karmada's scheduler would write for this Deployment.
	split := planner.Divide(map[string]int64{"us": 2, "ap": 1, "eu": 2}, 10, string(dep.GetUID()))
	var clusters []any
	for _, m := range []string{"eu", "ap", "us"} {
		clusters = append(clusters, map[string]any{"name": m, "replicas": int64(split[m])})
	}
	rb := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "work.karmada.io/v1alpha2",
		"kind":       "ResourceBinding",
		"metadata":   map[string]any{"name": BindingName("Deployment", "hello"), "namespace": ns},
		"spec": map[string]any{
			"resource": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": ns,
				"name": "hello", "uid": string(dep.GetUID())},
			"replicas": int64(10),
			"clusters": clusters,
		},
	}}
	if _, err := h.dyn.Resource(bindingGVR).Namespace(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w := observe(t, ctx, h.driver, f)
	wl := w.Karmada.Workloads[ns+"/Deployment/hello"]
	if wl == nil {
		t.Fatalf("workload not observed: %v", w.Karmada.Workloads)
	}
	if want := map[string]int32{"eu": 4, "ap": 2, "us": 4}; !maps.Equal(wl.Scheduled, want) {
		t.Errorf("scheduled = %v, want %v", wl.Scheduled, want)
	}
	if steps := weightSteps(t, ns, f, w); len(steps) != 0 {
		t.Errorf("converged world with a binding: %+v", steps)
	}
}

func TestObserverLeavesKarmadaObserverFields(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	f := helloFleet(t, "keep", "eu: 1")
	if err := h.driver.ApplyManifests(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	members := map[string]*world.KarmadaMember{"eu": {Name: "eu", Ready: "True"}}
	w := &world.World{Karmada: &world.Karmada{Reachable: true, APIServiceAvailable: true, Members: members}}
	if err := h.driver.ApplyPolicy(ctx, f, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := h.driver.Observe(ctx, f, w); err != nil {
		t.Fatal(err)
	}
	if !w.Karmada.APIServiceAvailable || !reflect.DeepEqual(w.Karmada.Members, members) {
		t.Errorf("observer replaced what the Karmada observer found: %+v", w.Karmada)
	}
	if w.Karmada.Policies["keep/hello"] == nil {
		t.Errorf("policy not added: %v", w.Karmada.Policies)
	}
}

func TestObserverWithoutKarmada(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	f := helloFleet(t, "nokarmada", "eu: 1")
	t.Run("no kubeconfig", func(t *testing.T) {
		t.Parallel()
		store, err := state.OpenStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		d := New(Config{Access: kubeAccess(store)})
		w := &world.World{}
		if err := d.Observe(t.Context(), f, w); err != nil || w.Karmada != nil {
			t.Errorf("no Karmada kubeconfig: err %v, Karmada %+v", err, w.Karmada)
		}
	})
	t.Run("API down", func(t *testing.T) {
		t.Parallel()
		store, err := state.OpenStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		// The lab's kubeconfig, pointed at a port of our range where nothing listens.
		dead := strings.ReplaceAll(string(c.Kubeconfig()), c.Endpoint(), "https://127.0.0.201:1")
		if err := store.WriteFile("karmada/kubeconfig", []byte(dead)); err != nil {
			t.Fatal(err)
		}
		d := New(Config{Access: kubeAccess(store)})
		w := &world.World{}
		if err := d.Observe(t.Context(), f, w); err != nil || w.Karmada != nil {
			t.Errorf("Karmada down: err %v, Karmada %+v", err, w.Karmada)
		}
		err = d.ApplyPolicy(t.Context(), f, "hello")
		var tr interface{ Retryable() bool }
		if err == nil || !errorsAs(err, &tr) {
			t.Errorf("apply against a Karmada that is down: want a retryable error, got %v", err)
		}
	})
}

func kubeAccess(store *state.Store) kube.Access {
	return kube.Access{Store: store, Timeout: 5 * time.Second}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
