package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
)

// The lab: one etcd and one kube-apiserver (with kube-controller-manager) on 127.0.5.1, which
// no other package's tests use. Started on first use; TestMain stops them. The API server runs
// RBAC authorization, so it judges what the chart grants. No kubelet runs: the chart's Pods are
// created by the Deployment controller but never scheduled or started, so the daemon itself does
// not run here; what is tested is that the API server accepts every object, that PodSecurity
// admits the Pods under the restricted standard, and that the ServiceAccount can do exactly
// what the state backend needs.
var (
	sharedEtcd = labtest.Etcd{Prefix: "deploy-lab-"}
	lab        struct {
		once sync.Once
		err  error
		c    *cluster.Cluster
	}
	// runs numbers the namespaces of each run, so -count=N reuses the cluster.
	runs atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if lab.c != nil {
		_ = lab.c.Stop()
	}
	_ = sharedEtcd.Stop()
	os.Exit(code)
}

// labCluster returns the package's lab cluster, starting it on first use.
func labCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	etcd, bins, _ := sharedEtcd.Start(t)
	lab.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		lab.c, lab.err = cluster.StartCluster(ctx, cluster.ClusterOptions{
			Name: "deploy", Dir: filepath.Join(sharedEtcd.Dir(), "deploy"), Address: "127.0.5.1",
			Etcd: etcd, Bins: bins,
		})
	})
	if lab.err != nil {
		t.Fatalf("lab: %v", lab.err)
	}
	return lab.c
}

// TestChartAppliesToALabCluster applies every object of the chart, rendered for a ConfigMap
// fleet and for git-sync, with the state in the release namespace and in a namespace of its
// own, and then checks as the chart's ServiceAccount what the API server's RBAC authorizer lets
// it do.
func TestChartAppliesToALabCluster(t *testing.T) {
	c := labCluster(t)
	admin, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		values        map[string]any
		separateState bool
	}{
		{"configMap", configMapValues(), false},
		{"gitSync with a state namespace", gitSyncValues(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			n := runs.Add(1)
			release := fmt.Sprintf("reconcile-system-%d", n)
			stateNS, other := release, fmt.Sprintf("other-%d", n)
			namespaces := []string{release, other}
			if tc.separateState {
				stateNS = fmt.Sprintf("reconcile-state-%d", n)
				namespaces = append(namespaces, stateNS)
				tc.values["state"] = map[string]any{"namespace": stateNS}
			}
			for _, ns := range namespaces {
				createNamespace(ctx, t, admin, ns)
			}
			// The Pods must pass the restricted Pod Security Standard, enforced by the API
			// server's PodSecurity admission when the ReplicaSet controller creates them.
			enforceRestricted(ctx, t, admin, release)
			// A Secret the ServiceAccount must not read, so Forbidden is not NotFound in disguise.
			if _, err := admin.CoreV1().Secrets(other).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "not-yours"}, StringData: map[string]string{"k": "v"},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}

			objs := mustRender(t, release, tc.values)
			cfg := c.RESTConfig()
			warnings := &warningRecorder{}
			cfg.WarningHandler = warnings
			applyAll(ctx, t, cfg, objs)
			if w := warnings.all(); len(w) > 0 {
				t.Errorf("the API server warned on apply: %q", w)
			}
			d, err := admin.AppsV1().Deployments(release).Get(ctx, "reconcile", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the Deployment was not stored: %v", err)
			}
			if *d.Spec.Replicas != 2 || d.Spec.Template.Spec.ServiceAccountName != "reconcile" {
				t.Errorf("stored Deployment: replicas %d, serviceAccountName %q", *d.Spec.Replicas, d.Spec.Template.Spec.ServiceAccountName)
			}

			waitPods(ctx, t, admin, release, 2)

			user := fmt.Sprintf("system:serviceaccount:%s:reconcile", release)
			// The authorizer sees a new RoleBinding through its informer: wait until it does.
			waitAllowed(ctx, t, admin, user, authorizationv1.ResourceAttributes{Namespace: stateNS, Verb: "create", Resource: "secrets"})
			waitAllowed(ctx, t, admin, user, authorizationv1.ResourceAttributes{Namespace: stateNS, Verb: "create", Group: "coordination.k8s.io", Resource: "leases"})

			saCfg := c.RESTConfig()
			saCfg.Impersonate = rest.ImpersonationConfig{UserName: user}
			sa, err := kubernetes.NewForConfig(saCfg)
			if err != nil {
				t.Fatal(err)
			}
			checkStateAccess(ctx, t, sa, stateNS)

			forbidden := map[string]error{}
			_, forbidden["get a Secret in another namespace"] = sa.CoreV1().Secrets(other).Get(ctx, "not-yours", metav1.GetOptions{})
			_, forbidden["list Secrets in another namespace"] = sa.CoreV1().Secrets(other).List(ctx, metav1.ListOptions{})
			_, forbidden["list Secrets of every namespace"] = sa.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			_, forbidden["list Leases of every namespace"] = sa.CoordinationV1().Leases("").List(ctx, metav1.ListOptions{})
			_, forbidden["list Nodes"] = sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			_, forbidden["list ConfigMaps in the state namespace"] = sa.CoreV1().ConfigMaps(stateNS).List(ctx, metav1.ListOptions{})
			_, forbidden["create a Namespace"] = sa.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x-" + other}}, metav1.CreateOptions{})
			if tc.separateState {
				_, forbidden["create a Secret in the release namespace"] = sa.CoreV1().Secrets(release).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			}
			for what, err := range forbidden {
				if !apierrors.IsForbidden(err) {
					t.Errorf("as %s, %s: %v, want Forbidden", user, what, err)
				}
			}

			// SelfSubjectAccessReviews need no grant from the chart: system:basic-user allows them
			// to every authenticated user.
			for _, q := range []struct {
				attrs authorizationv1.ResourceAttributes
				want  bool
			}{
				{authorizationv1.ResourceAttributes{Namespace: stateNS, Verb: "update", Group: "coordination.k8s.io", Resource: "leases"}, true},
				{authorizationv1.ResourceAttributes{Verb: "list", Resource: "nodes"}, false},
			} {
				attrs := q.attrs
				r, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
					Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs},
				}, metav1.CreateOptions{})
				if err != nil {
					t.Errorf("SelfSubjectAccessReview as %s: %v", user, err)
				} else if r.Status.Allowed != q.want {
					t.Errorf("SelfSubjectAccessReview %+v: allowed %v, want %v", attrs, r.Status.Allowed, q.want)
				}
			}
		})
	}
}

// createNamespace creates ns and deletes it when the test ends, pass or fail.
func createNamespace(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})
}

// enforceRestricted labels ns so PodSecurity admission enforces, and warns about, the
// restricted standard.
func enforceRestricted(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}})
	if _, err := admin.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("label namespace %s: %v", ns, err)
	}
}

// waitPods waits until the Deployment's ReplicaSet has created want Pods in ns (admitted, so
// they pass PodSecurity; none will run, as no kubelet does), and reports the ReplicaSet's
// failure condition (a PodSecurity refusal) as soon as it has one.
func waitPods(ctx context.Context, t *testing.T, admin kubernetes.Interface, ns string, want int) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=reconcile"})
		if err != nil {
			return false, nil
		}
		if len(pods.Items) >= want {
			return true, nil
		}
		last = fmt.Sprintf("%d Pods", len(pods.Items))
		if rss, err := admin.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{}); err == nil {
			for _, rs := range rss.Items {
				for _, c := range rs.Status.Conditions {
					if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
						// Refused Pods stay refused: no need to wait out the timeout.
						return false, fmt.Errorf("ReplicaSet %s: %s", rs.Name, c.Message)
					}
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the Deployment's Pods were not created in %s: %v (last: %s)", ns, err, last)
	}
}

// warningRecorder keeps the API server's warnings (PodSecurity's among them).
type warningRecorder struct {
	mu   sync.Mutex
	list []string
}

func (w *warningRecorder) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warningRecorder) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

// applyAll applies objs by server-side apply through the dynamic client, mapping kinds to
// resources with the API server's discovery, and checks each is stored as sent.
func applyAll(ctx context.Context, t *testing.T, cfg *rest.Config, objs []object) {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o.Doc}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s/%s: no resource for %s: %v", o.Kind, o.Name, gvk, err)
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if u.GetNamespace() == "" {
				t.Errorf("%s/%s: namespaced but rendered without a namespace", o.Kind, o.Name)
				continue
			}
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		got, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "reconcile-chart-test", Force: true})
		if err != nil {
			t.Errorf("apply %s %s/%s: %v", o.Kind, u.GetNamespace(), o.Name, err)
			continue
		}
		if got.GetUID() == "" || got.GetNamespace() != u.GetNamespace() {
			t.Errorf("apply %s/%s: stored as %s/%s uid %q", o.Kind, o.Name, got.GetNamespace(), got.GetName(), got.GetUID())
		}
	}
}

// waitAllowed waits until the authorizer allows user the access attrs describe.
func waitAllowed(ctx context.Context, t *testing.T, admin kubernetes.Interface, user string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		a := attrs
		r, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &a},
		}, metav1.CreateOptions{})
		if err != nil {
			if ctx.Err() == nil {
				last = err.Error()
			}
			return false, nil
		}
		last = fmt.Sprintf("denied: %q", r.Status.Reason)
		return r.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("%s never allowed %+v: %v (last: %s)", user, attrs, err, last)
	}
}

// checkStateAccess does, as the ServiceAccount, what the kubernetes state backend does in its
// namespace: Secrets and a Lease, from creation to deletion.
func checkStateAccess(ctx context.Context, t *testing.T, sa kubernetes.Interface, ns string) {
	t.Helper()
	secrets := sa.CoreV1().Secrets(ns)
	s, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "state-prod"}, Data: map[string][]byte{"kubeconfig": []byte("a")},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a Secret in %s: %v", ns, err)
	}
	s.Data["kubeconfig"] = []byte("b")
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Errorf("update a Secret: %v", err)
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{"reconcile.dev/fleet": "prod"}}})
	if _, err := secrets.Patch(ctx, "state-prod", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Errorf("patch a Secret: %v", err)
	}
	if l, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: "reconcile.dev/fleet=prod"}); err != nil || len(l.Items) != 1 {
		t.Errorf("list Secrets: %v items, %v", itemsOf(l), err)
	}
	if got, err := secrets.Get(ctx, "state-prod", metav1.GetOptions{}); err != nil || string(got.Data["kubeconfig"]) != "b" {
		t.Errorf("get the Secret back: %v", err)
	}
	w, err := secrets.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("watch Secrets: %v", err)
	} else {
		w.Stop()
	}
	if err := secrets.Delete(ctx, "state-prod", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete a Secret: %v", err)
	}

	leases := sa.CoordinationV1().Leases(ns)
	holder, seconds := "reconcile-0", int32(15)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "reconcile-prod"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a Lease in %s: %v", ns, err)
	}
	next := "reconcile-1"
	l.Spec.HolderIdentity = &next
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Errorf("update the Lease: %v", err)
	}
	if got, err := leases.Get(ctx, "reconcile-prod", metav1.GetOptions{}); err != nil || got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != next {
		t.Errorf("get the Lease back: %v", err)
	}
	if err := leases.Delete(ctx, "reconcile-prod", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete the Lease: %v", err)
	}
}

func itemsOf(l *corev1.SecretList) int {
	if l == nil {
		return 0
	}
	return len(l.Items)
}
