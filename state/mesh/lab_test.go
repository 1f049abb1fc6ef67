package mesh

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/charts"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

var _ executor.Driver = (*Driver)(nil)

// One etcd per test package, started by the first lab test and stopped after all of them.
var sharedEtcd = labtest.Etcd{Prefix: "mesh-lab-"}

func runMain(m *testing.M) int {
	code := m.Run()
	if err := sharedEtcd.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop etcd:", err)
	}
	return code
}

func labEtcd(t *testing.T) (*cluster.Etcd, cluster.Binaries) {
	t.Helper()
	etcd, bins, _ := sharedEtcd.Start(t)
	return etcd, bins
}

// startClusters starts one lab cluster per name on 127.0.0.<first+i> and writes each
// kubeconfig to dir/<name>.kubeconfig. The etcd prefix is <prefix>-<name>: distinct per test.
func startClusters(t *testing.T, dir, prefix string, first int, names ...string) map[string]*cluster.Cluster {
	t.Helper()
	etcd, bins := labEtcd(t)
	out := make(map[string]*cluster.Cluster, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := fmt.Sprintf("127.0.0.%d", first+i)
			c, err := cluster.StartCluster(context.Background(), cluster.ClusterOptions{
				Name: prefix + "-" + name, Dir: filepath.Join(dir, name), Address: addr, Etcd: etcd, Bins: bins,
				Nodes: []cluster.NodeSpec{{Name: name + "-node", ExternalIP: addr}},
			})
			if err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			out[name] = c
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, c := range out {
		t.Cleanup(func() {
			if err := c.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range out {
		if err := os.WriteFile(filepath.Join(dir, name+".kubeconfig"), c.Kubeconfig(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// ---- a stand-in for the Istio charts ----

// labHelm stands in for state/helm with the Istio charts: it records releases as Helm's
// storage would and creates, in the real cluster, the objects of the charts the mesh relies
// on: the Gateway CRD, the istio-reader service account and its read-only RBAC (base), an
// istiod Deployment with no replicas (Available without a kubelet) and the injector webhook
// configuration (istiod).
type labHelm struct {
	mu       sync.Mutex
	byHost   map[string]string                    // API host → cluster name
	releases map[string]map[string]*world.Release // cluster → namespace/name → release
	calls    map[string]int                       // cluster/release → Ensure calls
}

func newLabHelm() *labHelm {
	return &labHelm{byHost: map[string]string{}, releases: map[string]map[string]*world.Release{}, calls: map[string]int{}}
}

func (h *labHelm) client(cfg *rest.Config) (HelmClient, error) {
	h.mu.Lock()
	name, ok := h.byHost[cfg.Host]
	h.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown cluster %s", cfg.Host)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &labHelmClient{h: h, cluster: name, cs: cs, dyn: dyn}, nil
}

// observe fills Cluster.Releases as a Helm release observer would.
func (h *labHelm) observe(_ context.Context, _ *spec.Fleet, w *world.World) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, rels := range h.releases {
		c := w.Clusters[name]
		if c == nil || !c.Reachable {
			continue
		}
		c.Releases = map[string]*world.Release{}
		for k, r := range rels {
			cp := *r
			c.Releases[k] = &cp
		}
	}
	return nil
}

type labHelmClient struct {
	h       *labHelm
	cluster string
	cs      kubernetes.Interface
	dyn     dynamic.Interface
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func (c *labHelmClient) Ensure(ctx context.Context, r Release) error {
	c.h.mu.Lock()
	have := c.h.releases[c.cluster][r.Namespace+"/"+r.Name]
	c.h.calls[c.cluster+"/"+r.Name]++
	c.h.mu.Unlock()
	if have != nil && have.Chart == r.ChartName && have.ChartVersion == r.Chart.Version && reflect.DeepEqual(have.Values, r.Values) {
		return nil // deployed as wanted: Helm writes nothing
	}
	var objs []*unstructured.Unstructured
	switch r.ChartName {
	case "base":
		objs = baseObjects()
	case "istiod":
		objs = istiodObjects()
	case "gateway":
	default:
		return fmt.Errorf("no stand-in for chart %q", r.ChartName)
	}
	for _, o := range objs {
		gvr := schema.GroupVersionResource{Group: o.GroupVersionKind().Group, Version: o.GroupVersionKind().Version,
			Resource: strings.ToLower(o.GetKind()) + "s"}
		var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
		if o.GetNamespace() != "" {
			ri = c.dyn.Resource(gvr).Namespace(o.GetNamespace())
		}
		if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "helm", Force: true}); err != nil {
			return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	if r.ChartName == "base" { // Helm waits for CRDs to be established
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			u, err := c.dyn.Resource(crdResource).Get(ctx, "gateways.networking.istio.io", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if c.h.releases[c.cluster] == nil {
		c.h.releases[c.cluster] = map[string]*world.Release{}
	}
	c.h.releases[c.cluster][r.Namespace+"/"+r.Name] = &world.Release{Name: r.Name, Namespace: r.Namespace,
		Chart: r.ChartName, ChartVersion: r.Chart.Version, Status: "deployed", Values: r.Values}
	return nil
}

func (c *labHelmClient) Uninstall(ctx context.Context, name, namespace string) error {
	var objs []*unstructured.Unstructured
	switch name {
	case testReleases["base"].name:
		objs = baseObjects()
	case testReleases["istiod"].name:
		objs = istiodObjects()
	}
	for _, o := range objs {
		gvr := schema.GroupVersionResource{Group: o.GroupVersionKind().Group, Version: o.GroupVersionKind().Version,
			Resource: strings.ToLower(o.GetKind()) + "s"}
		var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
		if o.GetNamespace() != "" {
			ri = c.dyn.Resource(gvr).Namespace(o.GetNamespace())
		}
		if err := ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	delete(c.h.releases[c.cluster], namespace+"/"+name)
	return nil
}

func obj(apiVersion, kind, namespace, name string, fields map[string]any) *unstructured.Unstructured {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": name}}
	if namespace != "" {
		o["metadata"].(map[string]any)["namespace"] = namespace
	}
	for k, v := range fields {
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

func baseObjects() []*unstructured.Unstructured {
	ns := MeshNamespace
	return []*unstructured.Unstructured{
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gateways.networking.istio.io", map[string]any{
			"spec": map[string]any{
				"group": "networking.istio.io", "scope": "Namespaced",
				"names": map[string]any{"plural": "gateways", "singular": "gateway", "kind": "Gateway", "listKind": "GatewayList"},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object",
						"properties": map[string]any{"spec": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}},
			}}),
		obj("v1", "ServiceAccount", ns, ReaderServiceAcct, nil),
		// The istiod chart's reader role, trimmed to what the tests exercise.
		obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "istio-reader-clusterrole-"+ns, map[string]any{
			"rules": []any{
				map[string]any{"apiGroups": []any{""}, "resources": []any{"endpoints", "pods", "services", "nodes", "replicationcontrollers", "namespaces", "secrets", "configmaps"},
					"verbs": []any{"get", "list", "watch"}},
				map[string]any{"apiGroups": []any{"discovery.k8s.io"}, "resources": []any{"endpointslices"}, "verbs": []any{"get", "list", "watch"}},
				map[string]any{"apiGroups": []any{"networking.istio.io"}, "resources": []any{"*"}, "verbs": []any{"get", "list", "watch"}},
			}}),
		obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "istio-reader-clusterrole-"+ns, map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "istio-reader-clusterrole-" + ns},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": ReaderServiceAcct, "namespace": ns}},
		}),
	}
}

func istiodObjects() []*unstructured.Unstructured {
	labels := map[string]any{"app": "istiod"}
	return []*unstructured.Unstructured{
		obj("apps/v1", "Deployment", MeshNamespace, IstiodDeployment, map[string]any{
			"spec": map[string]any{"replicas": int64(0), "selector": map[string]any{"matchLabels": labels},
				"template": map[string]any{"metadata": map[string]any{"labels": labels},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "discovery", "image": "registry.invalid/pilot:lab"}}}}}}),
		obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "", InjectorWebhook, nil),
	}
}

// ---- the engine, restricted to the mesh layer ----

type harness struct {
	store  *state.Store
	access kube.Access
	// releases observes Cluster.Releases.
	releases state.Observer
	driver   *Driver
	obs      Observer
	count    *labtest.WriteCounter
	offset   atomic.Int64 // added to the wall clock
}

func (h *harness) now() time.Time { return time.Now().Add(time.Duration(h.offset.Load())) }

func (h *harness) observe(ctx context.Context, t *testing.T, f *spec.Fleet) *world.World {
	t.Helper()
	w := &world.World{Now: h.now()}
	for _, o := range []state.Observer{kube.Observer{Access: h.access}, h.obs, h.releases} {
		if err := o.Observe(ctx, f, w); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// walk applies a plan through the executor, as the engine does.
func (h *harness) walk(ctx context.Context, t *testing.T, p *plan.Plan) {
	t.Helper()
	res, err := executor.Walk(ctx, p, executor.Dispatch(executor.Drivers{Mesh: h.driver}), executor.Options{})
	if err != nil {
		t.Fatalf("walk: %v (failed %v, skipped %v)", err, res.Failed, res.Skipped)
	}
}

// checkMesh asserts that the observed mesh is what meshPlan builds: every member with its
// labelled namespace, an intermediate of the one root naming it, the Gateway, istiod's
// injector, the reader token and one remote secret per peer, fingerprinted as the planner
// compares it.
// settledMesh observes until every member's istiod is available again (bounded) and checks the
// mesh: a cacerts replace restarts istiod, whose Deployment reads unavailable until its new
// generation is rolled out (the lab's controllers take longer on a loaded machine).
func (h *harness) settledMesh(ctx context.Context, t *testing.T, f *spec.Fleet, members []testMember) {
	t.Helper()
	var w *world.World
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		w = h.observe(ctx, t, f)
		for _, m := range members {
			if mm := w.Mesh[m.name]; mm == nil || !mm.InjectorReady {
				return false, nil
			}
		}
		return true, nil
	})
	checkMesh(t, w, members)
}

func checkMesh(t *testing.T, w *world.World, members []testMember) {
	t.Helper()
	if w.RootCA == nil || w.RootCALost {
		t.Fatalf("root CA %+v lost %v", w.RootCA, w.RootCALost)
	}
	for _, m := range members {
		mm := w.Mesh[m.name]
		switch {
		case mm == nil:
			t.Fatalf("%s: no mesh observed", m.name)
		case !mm.Namespace || mm.NetworkLabel != m.network:
			t.Errorf("%s: namespace %v label %q", m.name, mm.Namespace, mm.NetworkLabel)
		case mm.CACerts == nil || mm.CACerts.RootFingerprint != w.RootCA.RootFingerprint || !strings.Contains(mm.CACerts.Subject, "L="+m.name):
			t.Errorf("%s: cacerts %+v", m.name, mm.CACerts)
		case !mm.Gateway || !mm.InjectorReady || mm.ReaderToken == "":
			t.Errorf("%s: gateway %v injector %v token %q", m.name, mm.Gateway, mm.InjectorReady, mm.ReaderToken)
		case len(mm.RemoteSecrets) != len(members)-1:
			t.Errorf("%s: remote secrets %v", m.name, mm.RemoteSecrets)
		}
		for _, peer := range members {
			if peer.name == m.name || w.Mesh[peer.name] == nil {
				continue
			}
			if want := world.RemoteSecretFingerprint(peer.endpoint, w.Mesh[peer.name].ReaderToken); mm.RemoteSecrets[peer.name] != want {
				t.Errorf("%s: remote secret of %s fingerprinted %q, want %q", m.name, peer.name, mm.RemoteSecrets[peer.name], want)
			}
		}
	}
}

func fleetYAML(dir string, members []string, chartRepo string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: meshlab}
manager:
  name: hub
  kubeconfig: {path: %s}
  karmada:
    chart: {repo: "https://charts.example/karmada", version: "1.18.2"}
members:
`, filepath.Join(dir, "hub.kubeconfig"))
	for _, m := range members {
		fmt.Fprintf(&b, "  - name: %s\n    kubeconfig: {path: %s}\n    network: net-%s\n", m, filepath.Join(dir, m+".kubeconfig"), m)
	}
	if chartRepo != "" {
		// The lab's repository serves Istio's charts at the version it stamps on them.
		fmt.Fprintf(&b, "mesh:\n  version: %s\n  chart: {repo: %q}\n", charts.DefaultIstioVersion, chartRepo)
	} else {
		b.WriteString("mesh:\n  version: 1.30.3\n")
	}
	b.WriteString(`  meshID: lab-mesh
  ca:
    keyType: ecdsa-p256
    intermediateValidity: 2h
    renewBefore: 1h
`)
	return b.String()
}

// parseFleet is the fleet the observers read (the driver reads none).
func parseFleet(t *testing.T, dir string, members ...string) *spec.Fleet {
	t.Helper()
	return parseFleetCharts(t, dir, "", members...)
}

func parseFleetCharts(t *testing.T, dir, chartRepo string, members ...string) *spec.Fleet {
	t.Helper()
	f, err := spec.Parse(filepath.Join(dir, "fleet.yaml"), []byte(fleetYAML(dir, members, chartRepo)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// labMembers are the members of a lab mesh: network net-<name>, reached at their API.
func labMembers(cls map[string]*cluster.Cluster, names ...string) []testMember {
	var out []testMember
	for _, n := range names {
		out = append(out, testMember{name: n, network: "net-" + n, endpoint: cls[n].Endpoint()})
	}
	return out
}

func getSecret(ctx context.Context, t *testing.T, c *cluster.Cluster, name string) *corev1.Secret {
	t.Helper()
	s, err := kubernetes.NewForConfigOrDie(c.RESTConfig()).CoreV1().Secrets(MeshNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("secret %s: %v", name, err)
	}
	return s
}

func istiodRestartAnnotation(ctx context.Context, t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	dep, err := kubernetes.NewForConfigOrDie(c.RESTConfig()).AppsV1().Deployments(MeshNamespace).Get(ctx, IstiodDeployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return dep.Spec.Template.Annotations[RestartAnnotation]
}

// plantForeign writes, over member's cacerts, an intermediate of another root, as someone
// else would; it returns that root, the intermediate and the secret as written.
func plantForeign(ctx context.Context, t *testing.T, c *cluster.Cluster, member string) (*Root, *x509.Certificate, *corev1.Secret) {
	t.Helper()
	other, err := NewRoot(KeyECDSAP256, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.IssueIntermediate(member, KeyECDSAP256, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := getSecret(ctx, t, c, CACertsSecret)
	s.Data = foreign.Data()
	s, err = kubernetes.NewForConfigOrDie(c.RESTConfig()).CoreV1().Secrets(MeshNamespace).Update(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := parseCert(foreign.CACert)
	return other, inter, s
}

func certOf(root string, inter *x509.Certificate) *plan.Cert {
	return &plan.Cert{RootFingerprint: root, NotAfter: inter.NotAfter.UTC().Format(time.RFC3339)}
}

func TestMeshAcrossThreeMembers(t *testing.T) {
	dir := t.TempDir()
	names := []string{"eu", "ap", "us"}
	cls := startClusters(t, dir, "mesh", 81, names...)
	if err := os.WriteFile(filepath.Join(dir, "hub.kubeconfig"), cls["eu"].Kubeconfig(), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := state.OpenStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	count := &labtest.WriteCounter{}
	lh := newLabHelm()
	h := &harness{store: store, access: kube.Access{Store: store}, releases: state.ObserverFunc(lh.observe), count: count}
	for name, c := range cls {
		lh.byHost[c.Endpoint()] = name
	}
	f := parseFleet(t, dir, names...)
	h.driver = New(Config{Fleet: f.Metadata.Name, Access: h.access.For(f), Store: store, Helm: lh.client, Timeout: time.Minute, Now: h.now, WrapTransport: count.Wrap})
	h.obs = Observer{Access: h.access, Store: store, WrapTransport: count.Wrap}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	members := labMembers(cls, names...)
	p := meshPlan(members, spec.ChartSource{Repo: "https://charts.example/istio", Version: "1.30.3"}, 2*time.Hour)
	h.walk(ctx, t, p)
	w := h.observe(ctx, t, f)
	checkMesh(t, w, members)
	for _, m := range names {
		if got := len(w.Clusters[m].Releases); got != 3 {
			t.Errorf("%s: %d releases, want 3", m, got)
		}
	}

	t.Run("second pass writes nothing", func(t *testing.T) {
		count.Reset()
		// Every step of the first pass, applied again to a converged mesh, only reads.
		h.walk(ctx, t, p)
		if n := count.Writes(); len(n) != 0 {
			t.Errorf("%d write requests on a converged mesh: %v", len(n), n)
		}
	})

	t.Run("remote secrets read, never write", func(t *testing.T) {
		for _, x := range names {
			for _, y := range names {
				if x == y {
					continue
				}
				s := getSecret(ctx, t, cls[y], RemoteSecretName(x))
				if s.Labels[MultiClusterLabel] != "true" || s.Annotations[ClusterAnnotation] != x || len(s.Data) != 1 {
					t.Errorf("%s in %s: labels %v annotations %v keys %d", s.Name, y, s.Labels, s.Annotations, len(s.Data))
				}
				cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[x])
				if err != nil {
					t.Fatalf("%s in %s: %v", s.Name, y, err)
				}
				if cfg.Host != cls[x].Endpoint() || cfg.BearerToken == "" || len(cfg.CertData) != 0 {
					t.Errorf("%s in %s: server %s, bearer token %v, client cert %v", s.Name, y, cfg.Host, cfg.BearerToken != "", len(cfg.CertData) != 0)
				}
				cfg.WarningHandler = rest.NoWarnings{}
				remote := kubernetes.NewForConfigOrDie(cfg)
				lists := map[string]func() error{
					"services":  func() error { _, err := remote.CoreV1().Services("").List(ctx, metav1.ListOptions{}); return err },
					"endpoints": func() error { _, err := remote.CoreV1().Endpoints("").List(ctx, metav1.ListOptions{}); return err },
					"pods":      func() error { _, err := remote.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); return err },
					"nodes": func() error {
						n, err := remote.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
						if err == nil && (len(n.Items) != 1 || n.Items[0].Name != x+"-node") {
							err = fmt.Errorf("listed the nodes of another cluster: %d", len(n.Items))
						}
						return err
					},
				}
				for what, list := range lists {
					if err := list(); err != nil {
						t.Errorf("%s's secret in %s: list %s: %v", x, y, what, err)
					}
				}
				_, err = remote.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}, metav1.CreateOptions{})
				if !apierrors.IsForbidden(err) {
					t.Errorf("%s's secret in %s: creating a ConfigMap gave %v, want 403", x, y, err)
				}
			}
		}
	})

	root, err := LoadRoot(store)
	if err != nil || root == nil {
		t.Fatalf("root: %v", err)
	}
	t.Run("every cacerts chains to the one root and names its member", func(t *testing.T) {
		for _, m := range names {
			s := getSecret(ctx, t, cls[m], CACertsSecret)
			inter, _, err := ParseCACerts(s.Data)
			if err != nil {
				t.Fatalf("%s: %v", m, err)
			}
			if err := VerifyIntermediate(inter, root.Cert, time.Now()); err != nil {
				t.Errorf("%s: %v", m, err)
			}
			if got := inter.Subject.Locality; len(got) != 1 || got[0] != m {
				t.Errorf("%s: intermediate names %v", m, got)
			}
			if s.Annotations[RootFingerprintAnnt] != root.Fingerprint() {
				t.Errorf("%s: root fingerprint annotation %q", m, s.Annotations[RootFingerprintAnnt])
			}
		}
		for _, name := range []string{RootKeyFile, RootCertFile, RootRecordFile} {
			fi, err := os.Stat(store.Path(name))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v %v", name, fi.Mode(), err)
			}
		}
	})

	t.Run("a cacerts create over another root is refused", func(t *testing.T) {
		other, _, planted := plantForeign(ctx, t, cls["ap"], "ap")
		count.Reset()
		_, err := h.driver.Apply(ctx, caCertsStep("ap", 2*time.Hour, nil))
		want := "cacerts in ap chains to root " + other.Fingerprint() + ", not the store's; appeared after the plan; not overwritten"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("create over a foreign cacerts: %v, want %q", err, want)
		}
		if retry, _ := executor.Retryable(err); retry {
			t.Error("the refusal is retried; it is terminal")
		}
		if n := count.Writes(); len(n) != 0 {
			t.Errorf("writes: %v", n)
		}
		after := getSecret(ctx, t, cls["ap"], CACertsSecret)
		if after.ResourceVersion != planted.ResourceVersion || !bytes.Equal(after.Data[CACertKey], planted.Data[CACertKey]) {
			t.Error("the foreign cacerts was changed")
		}
	})

	t.Run("cacerts from another root is replaced", func(t *testing.T) {
		other, foreignInter, _ := plantForeign(ctx, t, cls["ap"], "ap")
		w := h.observe(ctx, t, f)
		if got := w.Mesh["ap"].CACerts.RootFingerprint; got != other.Fingerprint() {
			t.Fatalf("observed root %s, want the foreign root's", got)
		}
		// What a planner writes from that observation.
		step := caCertsStep("ap", 2*time.Hour, certOf(w.Mesh["ap"].CACerts.RootFingerprint, foreignInter))
		if _, err := h.driver.Apply(ctx, step); err != nil {
			t.Fatal(err)
		}
		s := getSecret(ctx, t, cls["ap"], CACertsSecret)
		inter, r, err := ParseCACerts(s.Data)
		if err != nil || CertFingerprint(r) != root.Fingerprint() {
			t.Fatalf("after the replace: %v, root %s", err, CertFingerprint(r))
		}
		if got := istiodRestartAnnotation(ctx, t, cls["ap"]); got != CertFingerprint(inter) {
			t.Errorf("istiod not restarted for the new cacerts: %q", got)
		}
		h.settledMesh(ctx, t, f, members)
	})

	t.Run("a replace of the live intermediate re-issues it from the same root and restarts istiod", func(t *testing.T) {
		before := getSecret(ctx, t, cls["eu"], CACertsSecret)
		oldInter, _, err := ParseCACerts(before.Data)
		if err != nil {
			t.Fatal(err)
		}
		restartBefore := istiodRestartAnnotation(ctx, t, cls["eu"])
		h.offset.Store(int64(61 * time.Minute)) // the clock only dates the new certificate
		replace := caCertsStep("eu", 2*time.Hour, certOf(root.Fingerprint(), oldInter))
		if _, err := h.driver.Apply(ctx, replace); err != nil {
			t.Fatal(err)
		}
		after := getSecret(ctx, t, cls["eu"], CACertsSecret)
		newInter, newRoot, err := ParseCACerts(after.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !newInter.NotAfter.After(oldInter.NotAfter) || CertFingerprint(newRoot) != root.Fingerprint() {
			t.Errorf("re-issued until %v (was %v), root %s", newInter.NotAfter, oldInter.NotAfter, CertFingerprint(newRoot)[:12])
		}
		if after.Annotations[RootFingerprintAnnt] != root.Fingerprint() {
			t.Errorf("root fingerprint annotation %q", after.Annotations[RootFingerprintAnnt])
		}
		restart := istiodRestartAnnotation(ctx, t, cls["eu"])
		if restart != CertFingerprint(newInter) || restart == restartBefore {
			t.Errorf("istiod not restarted for the new cacerts: annotation %q (was %q)", restart, restartBefore)
		}

		t.Run("a replace of an intermediate already replaced writes nothing", func(t *testing.T) {
			// The same step again (a retry, or a saved plan applied late): the intermediate it
			// replaces is gone and the live one chains to the store's root.
			h.offset.Store(int64(90 * time.Minute))
			count.Reset()
			if _, err := h.driver.Apply(ctx, replace); err != nil {
				t.Fatal(err)
			}
			if n := count.Writes(); len(n) != 0 {
				t.Errorf("writes: %v", n)
			}
			if again := getSecret(ctx, t, cls["eu"], CACertsSecret); again.ResourceVersion != after.ResourceVersion {
				t.Error("cacerts rewritten")
			}
			if got := istiodRestartAnnotation(ctx, t, cls["eu"]); got != restart {
				t.Errorf("istiod restarted again: %q", got)
			}
		})
		h.settledMesh(ctx, t, f, members)
	})

	t.Run("a remote secret points at the payload's endpoint", func(t *testing.T) {
		const endpoint = "https://ap.mesh.example:6443"
		step := remoteSecretStep("eu", "ap", endpoint)
		step.Action = plan.Update
		if _, err := h.driver.Apply(ctx, step); err != nil {
			t.Fatal(err)
		}
		s := getSecret(ctx, t, cls["eu"], RemoteSecretName("ap"))
		cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data["ap"])
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != endpoint {
			t.Errorf("server %s, want %s", cfg.Host, endpoint)
		}
		token := ReaderTokenFingerprint(getSecret(ctx, t, cls["ap"], ReaderTokenSecret))
		want := world.RemoteSecretFingerprint(endpoint, token)
		if s.Annotations[FingerprintAnnot] != want {
			t.Errorf("fingerprint %q, want %q", s.Annotations[FingerprintAnnot], want)
		}
		if got := h.observe(ctx, t, f).Mesh["eu"].RemoteSecrets["ap"]; got != want {
			t.Errorf("observed fingerprint %q, want %q", got, want)
		}
		count.Reset()
		if _, err := h.driver.Apply(ctx, step); err != nil {
			t.Fatal(err)
		}
		if n := count.Writes(); len(n) != 0 {
			t.Errorf("the same endpoint again wrote %v", n)
		}
		step.Payload.RemoteSecret.Endpoint = plan.Known(cls["ap"].Endpoint())
		if _, err := h.driver.Apply(ctx, step); err != nil {
			t.Fatal(err)
		}
		checkMesh(t, h.observe(ctx, t, f), members)
	})

	t.Run("removing a member withdraws its secrets", func(t *testing.T) {
		smaller := parseFleet(t, dir, "eu", "ap")
		for _, in := range []string{"eu", "ap"} {
			if _, err := h.driver.Apply(ctx, remoteSecretDeleteStep(in, "us")); err != nil {
				t.Fatal(err)
			}
			cs := kubernetes.NewForConfigOrDie(cls[in].RESTConfig())
			if _, err := cs.CoreV1().Secrets(MeshNamespace).Get(ctx, RemoteSecretName("us"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s still holds us's remote secret: %v", in, err)
			}
		}
		checkMesh(t, h.observe(ctx, t, smaller), labMembers(cls, "eu", "ap"))
		// The member that left loses its mesh; the driver still reaches it (its Access was
		// made for the fleet it was in).
		for range 2 { // the second time finds nothing to do
			if _, err := h.driver.Apply(ctx, teardownStep("us")); err != nil {
				t.Fatal(err)
			}
		}
		cs := kubernetes.NewForConfigOrDie(cls["us"].RESTConfig())
		if _, err := cs.CoreV1().Namespaces().Get(ctx, MeshNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("istio-system still in us: %v", err)
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "istio-reader-clusterrole-"+MeshNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("reader binding still in us: %v", err)
		}
		lh.mu.Lock()
		left := len(lh.releases["us"])
		lh.mu.Unlock()
		if left != 0 {
			t.Errorf("%d releases left in us", left)
		}
	})
}
