package weights

import (
	"context"
	"encoding/json"
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
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

var (
	_ executor.Driver = (*Driver)(nil)
	_ state.Observer  = (*Driver)(nil)
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

// workloadOf is the fleet's workload called name.
func workloadOf(t *testing.T, f *spec.Fleet, name string) spec.Workload {
	t.Helper()
	i := slices.IndexFunc(f.Workloads, func(w spec.Workload) bool { return w.Name == name })
	if i < 0 {
		t.Fatalf("no workload %s", name)
	}
	return f.Workloads[i]
}

// manifestsStep applies the manifests of the fleet's workload, as the planner plans it.
func manifestsStep(t *testing.T, f *spec.Fleet, workload string) plan.Step {
	t.Helper()
	w := workloadOf(t, f, workload)
	m := &plan.Manifests{Namespace: w.Namespace, Digest: w.ManifestDigest}
	for _, o := range w.Objects {
		m.Objects = append(m.Objects, json.RawMessage(o.Raw))
	}
	return plan.Step{Address: "workload/" + workload + "/manifests", Layer: plan.Weights, Kind: plan.KindManifests,
		Action: plan.Create, Workload: workload, Namespace: w.Namespace, Payload: plan.Payload{Manifests: m}}
}

// policyStep applies (or deletes) the policy p of workload.
func policyStep(a plan.Action, workload string, p *plan.Policy) plan.Step {
	return plan.Step{Address: "workload/" + workload + "/policy", Layer: plan.Weights, Kind: plan.KindPolicy,
		Action: a, Workload: workload, Namespace: p.Namespace, Payload: plan.Payload{Policy: p}}
}

// weightedPolicy is the policy of workload in ns (cluster-scoped when ns is "") selecting
// resources, over the members with the weights.
func weightedPolicy(ns, workload string, weights map[string]int64, resources ...plan.ResourceRef) *plan.Policy {
	p := &plan.Policy{Namespace: ns, Name: workload, ClusterScoped: ns == "", Resources: resources,
		Weights: maps.Clone(weights), Divided: true}
	p.Clusters = slices.Sorted(maps.Keys(weights))
	return p
}

// helloPolicy is the policy of helloFleet's workload.
func helloPolicy(ns string, weights map[string]int64) *plan.Policy {
	return weightedPolicy(ns, "hello", weights,
		plan.ResourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "hello"},
		plan.ResourceRef{APIVersion: "v1", Kind: "ConfigMap", Name: "hello-config"})
}

func apply(ctx context.Context, d *Driver, s plan.Step) error {
	_, err := d.Apply(ctx, s)
	return err
}

// applyBoth applies the workload's manifests and then its policy.
func applyBoth(t *testing.T, ctx context.Context, d *Driver, f *spec.Fleet, workload string, p *plan.Policy) {
	t.Helper()
	if err := apply(ctx, d, manifestsStep(t, f, workload)); err != nil {
		t.Fatal(err)
	}
	if err := apply(ctx, d, policyStep(plan.Create, workload, p)); err != nil {
		t.Fatal(err)
	}
}

// assertConverged checks that the observer reads back exactly what was applied: the policy
// the payload describes (nil: no policy) and, when digest is set, the manifests' digest.
func assertConverged(t *testing.T, w *world.World, key, workload string, want *plan.Policy, digest string) {
	t.Helper()
	var got *world.Policy
	if w.Karmada != nil {
		got = w.Karmada.Policies[key]
	}
	switch {
	case want == nil && got != nil:
		t.Errorf("policy %s still observed: %+v", key, got)
	case want != nil && !reflect.DeepEqual(got, worldPolicy(want)):
		t.Errorf("observed policy %s:\n got %+v\nwant %+v", key, got, worldPolicy(want))
	}
	if digest != "" && (w.Karmada == nil || w.Karmada.ManifestHashes[workload] != digest) {
		t.Errorf("observed manifest digest of %s is not %s: %+v", workload, digest, w.Karmada)
	}
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
	policy := helloPolicy(ns, map[string]int64{"us": 2, "ap": 1, "eu": 2})
	applyBoth(t, ctx, h.driver, f, "hello", policy)
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
	assertConverged(t, w, ns+"/hello", "hello", policy, f.Workloads[0].ManifestDigest)
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

	// A second pass writes nothing.
	applyBoth(t, ctx, h.driver, f, "hello", policy)
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
	if got := w.Karmada.ManifestHashes["hello"]; got != f.Workloads[0].ManifestDigest {
		t.Errorf("changed manifests: the observer reads digest %q, want the applied one %q", got, f.Workloads[0].ManifestDigest)
	}
	step := manifestsStep(t, f2, "hello")
	step.Action = plan.Update
	if err := apply(ctx, h.driver, step); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 3 { // every object's digest annotation changed
		t.Errorf("changed manifests: want 3 writes, got %v", got)
	}
	assertConverged(t, observe(t, ctx, h.driver, f2), ns+"/hello", "hello", policy, f2.Workloads[0].ManifestDigest)
}

func TestPolicyDriftCorrected(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	const ns = "drift"
	f := helloFleet(t, ns, "us: 2, ap: 1, eu: 2")
	policy := helloPolicy(ns, map[string]int64{"us": 2, "ap": 1, "eu": 2})
	applyBoth(t, ctx, h.driver, f, "hello", policy)
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
	if reflect.DeepEqual(w.Karmada.Policies[ns+"/hello"], worldPolicy(policy)) {
		t.Fatal("hand edit: the observed policy still reads as the desired one")
	}
	if err := apply(ctx, h.driver, policyStep(plan.Update, "hello", policy)); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 1 {
		t.Errorf("correcting drift: want one write, got %v", got)
	}
	if !strings.Contains(h.log.String(), "policy drift corrected") {
		t.Errorf("drift correction not logged:\n%s", h.log.String())
	}
	assertConverged(t, observe(t, ctx, h.driver, f), ns+"/hello", "hello", policy, f.Workloads[0].ManifestDigest)

	// New weights are an update too.
	f2 := helloFleet(t, ns, "us: 1, eu: 1")
	reweighted := helloPolicy(ns, map[string]int64{"us": 1, "eu": 1})
	if err := apply(ctx, h.driver, policyStep(plan.Update, "hello", reweighted)); err != nil {
		t.Fatal(err)
	}
	w = observe(t, ctx, h.driver, f2)
	if got := w.Karmada.Policies[ns+"/hello"]; !slices.Equal(got.Clusters, []string{"eu", "us"}) || len(got.Weights) != 2 {
		t.Errorf("after reweighting: %+v", got)
	}
	assertConverged(t, w, ns+"/hello", "hello", reweighted, "")
}

func TestDeletePolicyWaitsUntilGone(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	const ns = "delete"
	f := helloFleet(t, ns, "eu: 1")
	applyBoth(t, ctx, h.driver, f, "hello", helloPolicy(ns, map[string]int64{"eu": 1}))
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

	// The workload leaves the fleet: the planner deletes its policy, naming nothing but it.
	gone := loadFleet(t, "", nil)
	del := policyStep(plan.Delete, "hello", &plan.Policy{Namespace: ns, Name: "hello"})
	done := make(chan error, 1)
	go func() { done <- apply(ctx, h.driver, del) }()

	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		u, err := ri.Get(ctx, "hello", metav1.GetOptions{})
		return err == nil && u.GetDeletionTimestamp() != nil, nil
	})
	if err != nil {
		t.Fatalf("policy never marked for deletion: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the delete returned (%v) while the policy still exists", err)
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
		t.Fatal("the delete did not return after the finalizer was removed")
	}
	if _, err := ri.Get(ctx, "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("policy still there: %v", err)
	}
	assertConverged(t, observe(t, ctx, h.driver, gone), ns+"/hello", "hello", nil, "")
	// Deleting again is a no-op.
	h.writes.Take()
	if err := apply(ctx, h.driver, del); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if got := h.writes.Take(); len(got) != 0 {
		t.Errorf("second delete wrote %v", got)
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
	err := apply(ctx, h.driver, policyStep(plan.Delete, "foreign", &plan.Policy{Namespace: "default", Name: "foreign"}))
	if err == nil || !strings.Contains(err.Error(), "is not fleet lab's") {
		t.Errorf("want a refusal, got %v", err)
	}
	if _, err := ri.Get(ctx, "foreign", metav1.GetOptions{}); err != nil {
		t.Errorf("foreign policy deleted: %v", err)
	}

	// Another fleet's policy (its own mark) is neither seen, nor overwritten, nor deleted.
	other := policyObject(&world.Policy{Namespace: "default", Name: "other", Clusters: []string{"eu"},
		Resources: []world.ResourceRef{{APIVersion: "apps/v1", Kind: "Deployment", Name: "other"}},
		Weights:   map[string]int64{"eu": 1}, Divided: true})
	other.SetLabels(map[string]string{ManagedByLabel: ManagedByValue, world.FleetLabel: "another-fleet"})
	if _, err := ri.Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w := &world.World{Karmada: &world.Karmada{Reachable: true}}
	if err := h.driver.Observe(ctx, &spec.Fleet{}, w); err != nil {
		t.Fatal(err)
	}
	if _, seen := w.Karmada.Policies["default/other"]; seen {
		t.Error("another fleet's policy was observed as this fleet's")
	}
	err = apply(ctx, h.driver, policyStep(plan.Update, "other", &plan.Policy{Namespace: "default", Name: "other", Clusters: []string{"ap"},
		Weights: map[string]int64{"ap": 1}, Divided: true,
		Resources: []plan.ResourceRef{{APIVersion: "apps/v1", Kind: "Deployment", Name: "other"}}}))
	if err == nil || !strings.Contains(err.Error(), "is not fleet lab's") {
		t.Errorf("applying over another fleet's policy: want a refusal, got %v", err)
	}
	if err := apply(ctx, h.driver, policyStep(plan.Delete, "other", &plan.Policy{Namespace: "default", Name: "other"})); err == nil {
		t.Error("another fleet's policy: delete not refused")
	}
	if got, err := ri.Get(ctx, "other", metav1.GetOptions{}); err != nil || got.GetLabels()[world.FleetLabel] != "another-fleet" {
		t.Errorf("another fleet's policy was changed: %v %v", err, got)
	}
	// The observer does not report it either.
	w = observe(t, ctx, h.driver, loadFleet(t, "", nil))
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
	if p := w.Karmada.Policies["/cluster-hello"]; p != nil {
		t.Fatalf("fresh Karmada: policy already there: %+v", p)
	}
	policy := weightedPolicy(ns, "cluster-hello", map[string]int64{"eu": 1, "ap": 3},
		plan.ResourceRef{APIVersion: "v1", Kind: "Namespace", Name: "cluster-hello"})
	if err := apply(ctx, h.driver, policyStep(plan.Create, "cluster-hello", policy)); err != nil {
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
	assertConverged(t, w, "/cluster-hello", "cluster-hello", policy, "")
	h.writes.Take()
	if err := apply(ctx, h.driver, policyStep(plan.Update, "cluster-hello", policy)); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 0 {
		t.Errorf("second apply wrote %v", got)
	}
	if err := apply(ctx, h.driver, policyStep(plan.Delete, "cluster-hello", &plan.Policy{Name: "cluster-hello", ClusterScoped: true})); err != nil {
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
	policy := helloPolicy(ns, map[string]int64{"us": 2, "ap": 1, "eu": 2})
	applyBoth(t, ctx, h.driver, f, "hello", policy)
	dep, err := h.dyn.Resource(deploymentGVR).Namespace(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What Karmada's scheduler writes for this Deployment (weights 2:1:2, no tie to break).
	split := map[string]int32{"eu": 4, "ap": 2, "us": 4}
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
	assertConverged(t, w, ns+"/hello", "hello", policy, f.Workloads[0].ManifestDigest)
}

func TestObserverLeavesKarmadaObserverFields(t *testing.T) {
	t.Parallel()
	c := karmadaLab(t)
	h := newHarness(t, c)
	ctx := t.Context()
	f := helloFleet(t, "keep", "eu: 1")
	members := map[string]*world.KarmadaMember{"eu": {Name: "eu", Ready: "True"}}
	w := &world.World{Karmada: &world.Karmada{Reachable: true, APIServiceAvailable: true, Members: members}}
	applyBoth(t, ctx, h.driver, f, "hello", helloPolicy("keep", map[string]int64{"eu": 1}))
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
		err = apply(t.Context(), d, policyStep(plan.Create, "hello", helloPolicy("nokarmada", map[string]int64{"eu": 1})))
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
