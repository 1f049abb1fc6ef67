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

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/state/world"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/karmadalab"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/plan"
)

var clusterGVR = schema.GroupVersionResource{Group: "cluster.karmada.io", Version: "v1alpha1", Resource: "clusters"}

// The real Karmada scheduler divides what our policies say by weight, the way planner.Divide
// predicts (uid tie-break included), and what the observer reads back from the bindings is what
// the members run.
func TestRealSchedulerSplits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Karmada control plane and three member clusters")
	}
	etcd, bins := labEtcd(t)
	_, kbins := labtest.KarmadaBinaries(t)
	ctx := t.Context()
	start := time.Now()
	cp, err := karmadalab.StartControlPlane(ctx, karmadalab.ControlPlaneOptions{
		Name: "weights", Dir: filepath.Join(t.TempDir(), "karmada"), Address: "127.0.0.210",
		Etcd: etcd, Bins: bins, Karmada: kbins,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The control plane stops before the members, so their API servers have no Karmada
	// watches to drain; the first cleanup catches a failure before the members are up.
	var stopOnce sync.Once
	stopCP := func() {
		stopOnce.Do(func() {
			if err := cp.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stopCP)
	t.Logf("Karmada control plane ready in %s", time.Since(start).Round(time.Millisecond))

	h := newHarness(t, cp)
	members := map[string]kubernetes.Interface{}
	for i, name := range []string{"eu", "ap", "us"} {
		address := fmt.Sprintf("127.0.0.%d", 211+i)
		m, err := cluster.StartCluster(ctx, cluster.ClusterOptions{
			Name: name, Dir: filepath.Join(t.TempDir(), name), Address: address, Etcd: etcd, Bins: bins,
			Nodes: []cluster.NodeSpec{{Name: name + "-node", ExternalIP: address}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := m.Stop(); err != nil {
				t.Error(err)
			}
		})
		members[name] = joinPush(t, h, m)
	}
	t.Cleanup(stopCP)
	for name := range members {
		waitUntil(t, 90*time.Second, "member "+name+" Ready", func(ctx context.Context) (bool, error) {
			c, err := h.dyn.Resource(clusterGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(c.Object, "status", "conditions")
			for _, cond := range conds {
				if m, _ := cond.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
	}

	cases := []struct {
		name     string
		weights  map[string]int64
		replicas int32
		// want are the splits Karmada may make: one, or two when a tie is broken by the
		// template's uid (in favour of the first or the last member by name).
		want []map[string]int32
	}{
		{"hello", map[string]int64{"us": 2, "ap": 1, "eu": 2}, 10, []map[string]int32{{"eu": 4, "ap": 2, "us": 4}}},
		{"even", map[string]int64{"us": 1, "ap": 1, "eu": 1}, 10, []map[string]int32{{"ap": 4, "eu": 3, "us": 3}, {"ap": 3, "eu": 3, "us": 4}}},
		{"pair", map[string]int64{"us": 2, "ap": 1}, 2, []map[string]int32{{"us": 1, "ap": 1}}},
		{"seven", map[string]int64{"us": 2, "ap": 1, "eu": 2}, 7, []map[string]int32{{"eu": 3, "ap": 1, "us": 3}}},
	}
	var workloads strings.Builder
	files := map[string]string{}
	// Each workload in its own namespace: an object in two workloads' manifests would carry
	// the digest of whichever was applied last.
	ns := func(workload string) string { return "real-" + workload }
	workloads.WriteString("workloads:\n")
	for _, c := range cases {
		var ws []string
		for m, w := range c.weights {
			ws = append(ws, fmt.Sprintf("%s: %d", m, w))
		}
		fmt.Fprintf(&workloads, `  - name: %[1]s
    namespace: %[2]s
    resources: [{apiVersion: apps/v1, kind: Deployment, name: %[1]s}]
    weights: {%[3]s}
    manifests: [%[1]s.yaml]
`, c.name, ns(c.name), strings.Join(ws, ", "))
		files[c.name+".yaml"] = fmt.Sprintf(`apiVersion: v1
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
`, c.name, ns(c.name), c.replicas)
	}
	f := loadFleet(t, workloads.String(), files)
	policies := map[string]*plan.Policy{}
	for _, c := range cases {
		policies[c.name] = weightedPolicy(ns(c.name), c.name, c.weights,
			plan.ResourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: c.name})
		applyBoth(t, ctx, h.driver, f, c.name, policies[c.name])
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := ns(c.name) + "/Deployment/" + c.name
			var w *world.World
			waitUntil(t, 90*time.Second, "binding of "+c.name+" scheduled", func(ctx context.Context) (bool, error) {
				w = &world.World{}
				if err := h.driver.Observe(ctx, f, w); err != nil {
					return false, err
				}
				wl := w.Karmada.Workloads[key]
				return wl != nil && wl.Scheduled != nil, nil
			})
			wl := w.Karmada.Workloads[key]
			t.Logf("%s: uid %s, Karmada scheduled %v", c.name, wl.UID, wl.Scheduled)
			i := slices.IndexFunc(c.want, func(m map[string]int32) bool { return maps.Equal(m, wl.Scheduled) })
			if i < 0 {
				t.Fatalf("Karmada scheduled %v (uid %s), want one of %v", wl.Scheduled, wl.UID, c.want)
			}
			predicted := c.want[i]
			if divided := planner.Divide(c.weights, c.replicas, wl.UID); !maps.Equal(divided, wl.Scheduled) {
				t.Errorf("Karmada scheduled %v (uid %s), planner.Divide predicts %v", wl.Scheduled, wl.UID, divided)
			}
			for name, mc := range members {
				want := predicted[name]
				waitUntil(t, 90*time.Second, fmt.Sprintf("%s has %d replicas of %s", name, want, c.name), func(ctx context.Context) (bool, error) {
					d, err := mc.AppsV1().Deployments(ns(c.name)).Get(ctx, c.name, metav1.GetOptions{})
					if apierrors.IsNotFound(err) {
						return want == 0, nil
					}
					if err != nil || d.Spec.Replicas == nil {
						return false, nil
					}
					return *d.Spec.Replicas == want, nil
				})
			}
			assertConverged(t, w, ns(c.name)+"/"+c.name, c.name, policies[c.name], workloadOf(t, f, c.name).ManifestDigest)
		})
	}

	// Karmada's webhook and controllers add to the policies and templates; a second pass still
	// writes nothing.
	h.writes.Take()
	for _, c := range cases {
		applyBoth(t, ctx, h.driver, f, c.name, policies[c.name])
	}
	if got := h.writes.Take(); len(got) != 0 {
		t.Errorf("second pass against Karmada wrote %v", got)
	}

	// A hand edit of the weights is corrected, and Karmada reschedules to match.
	ri := h.dyn.Resource(policyGVR).Namespace(ns("seven"))
	pp, err := ri.Get(ctx, "seven", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(pp.Object, []any{map[string]any{
		"targetCluster": map[string]any{"clusterNames": []any{"eu"}}, "weight": int64(1)}},
		"spec", "placement", "replicaScheduling", "weightPreference", "staticWeightList"); err != nil {
		t.Fatal(err)
	}
	if _, err := ri.Update(ctx, pp, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 90*time.Second, "Karmada to follow the hand edit", func(ctx context.Context) (bool, error) {
		d, err := members["eu"].AppsV1().Deployments(ns("seven")).Get(ctx, "seven", metav1.GetOptions{})
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 7, nil
	})
	if err := apply(ctx, h.driver, policyStep(plan.Update, "seven", policies["seven"])); err != nil {
		t.Fatal(err)
	}
	if got := h.writes.Take(); len(got) != 1 {
		t.Errorf("correcting drift: want one write, got %v", got)
	}
	waitUntil(t, 90*time.Second, "Karmada back at 3/1/3 after the correction", func(ctx context.Context) (bool, error) {
		d, err := members["eu"].AppsV1().Deployments(ns("seven")).Get(ctx, "seven", metav1.GetOptions{})
		return err == nil && d.Spec.Replicas != nil && *d.Spec.Replicas == 3, nil
	})

	// Deleting a policy waits for Karmada's finalizer; the template stays.
	pp, err = h.dyn.Resource(policyGVR).Namespace(ns("pair")).Get(ctx, "pair", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("policy pair finalizers: %v", pp.GetFinalizers())
	if err := apply(ctx, h.driver, policyStep(plan.Delete, "pair", &plan.Policy{Namespace: ns("pair"), Name: "pair"})); err != nil {
		t.Fatal(err)
	}
	if _, err := h.dyn.Resource(policyGVR).Namespace(ns("pair")).Get(ctx, "pair", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("policy pair still there after the delete: %v", err)
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// joinPush joins a member by hand as a Push join does: a cluster-admin service account in the
// member, its token in a Secret of karmada-cluster, and the Cluster object.
func joinPush(t *testing.T, h *harness, m *cluster.Cluster) kubernetes.Interface {
	t.Helper()
	ctx := t.Context()
	mc, err := kubernetes.NewForConfig(m.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	const ns, sa = "karmada-cluster", "karmada-push"
	must := func(_ any, err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	must(mc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	must(mc.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}))
	must(mc.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}, metav1.CreateOptions{}))
	must(mc.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: sa + "-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{}))
	var token, ca []byte
	waitUntil(t, 30*time.Second, "token of "+sa+" in "+m.Name(), func(ctx context.Context) (bool, error) {
		s, err := mc.CoreV1().Secrets(ns).Get(ctx, sa+"-token", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		token, ca = s.Data[corev1.ServiceAccountTokenKey], s.Data[corev1.ServiceAccountRootCAKey]
		return len(token) > 0 && len(ca) > 0, nil
	})
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": m.Name(), "namespace": karmadalab.ClusterNamespace},
		"stringData": map[string]any{"token": string(token), "caBundle": string(ca)},
	}}
	must(h.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).
		Namespace(karmadalab.ClusterNamespace).Create(ctx, secret, metav1.CreateOptions{}))
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
		"metadata": map[string]any{"name": m.Name()},
		"spec": map[string]any{
			"syncMode":    "Push",
			"apiEndpoint": m.Endpoint(),
			"secretRef":   map[string]any{"namespace": karmadalab.ClusterNamespace, "name": m.Name()},
		},
	}}
	must(h.dyn.Resource(clusterGVR).Create(ctx, obj, metav1.CreateOptions{}))
	return mc
}
