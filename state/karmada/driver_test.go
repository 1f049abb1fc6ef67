package karmada

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	workv1alpha1 "github.com/karmada-io/karmada/pkg/apis/work/v1alpha1"
	karmadaclient "github.com/karmada-io/karmada/pkg/generated/clientset/versioned"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/karmadalab"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/helm"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Addresses of this test (the package's range is 127.0.0.60-127.0.0.79).
const (
	karmadaAddr = "127.0.0.60" // karmada-apiserver: the manager node's IP, port = the node port
	managerAddr = "127.0.0.61"
	euAddr      = "127.0.0.62"
	apAddr      = "127.0.0.63"
	proxyAddr   = "127.0.0.64" // forwards to karmada-apiserver; its certificate lacks this address
	nodePort    = 32443
)

type env struct {
	t       *testing.T
	dir     string
	cp      *karmadalab.ControlPlane
	members map[string]*cluster.Cluster
	// stopped are members a test stopped itself (and judged that Stop).
	stopped sync.Map
	store   *state.Store
	access  kube.Access
}

func startEnv(t *testing.T) *env {
	etcd, bins, kbins := labEtcd(t)
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), members: map[string]*cluster.Cluster{}}
	for _, c := range []struct{ name, addr, nodeIP string }{
		{"mgr", managerAddr, karmadaAddr}, {"eu", euAddr, euAddr}, {"ap", apAddr, apAddr},
	} {
		lc, err := cluster.StartCluster(ctx, cluster.ClusterOptions{Name: c.name, Dir: filepath.Join(e.dir, c.name),
			Address: c.addr, Etcd: etcd, Bins: bins, Nodes: []cluster.NodeSpec{{Name: c.name + "-node", ExternalIP: c.nodeIP}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := lc.Stop(); err != nil {
				if _, ok := e.stopped.Load(c.name); !ok {
					t.Error(err)
				}
			}
		})
		e.members[c.name] = lc
	}
	cp, err := karmadalab.StartControlPlane(ctx, karmadalab.ControlPlaneOptions{Name: "statekarmada",
		Dir: filepath.Join(e.dir, "karmada"), Address: karmadaAddr, Port: nodePort, Etcd: etcd, Bins: bins, Karmada: kbins})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	})
	e.cp = cp
	if e.store, err = state.OpenStore(filepath.Join(e.dir, "store")); err != nil {
		t.Fatal(err)
	}
	for name, c := range e.members {
		if err := os.WriteFile(e.kubeconfigPath(name), c.Kubeconfig(), 0o600); err != nil {
			t.Fatal(err)
		}
		// As state/linode keeps them: a member that left the fleet is reached through the store.
		if err := e.store.WriteFile(kube.ClusterKubeconfig(name), c.Kubeconfig()); err != nil {
			t.Fatal(err)
		}
	}
	e.access = kube.Access{Store: e.store, Timeout: 20 * time.Second}
	// What the chart's pre-install Job leaves on the manager.
	mk := e.kube("mgr")
	if _, err := mk.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "karmada-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	certs := cp.Certs()
	for name, data := range map[string]map[string][]byte{
		"karmada-kubeconfig": {"kubeconfig": cp.Kubeconfig()},
		"karmada-cert":       {"server-ca.crt": certs.CACert, "karmada.crt": certs.ServerCert, "karmada.key": certs.ServerKey},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "karmada-system"}, Data: data}
		if _, err := mk.CoreV1().Secrets("karmada-system").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) kubeconfigPath(name string) string { return filepath.Join(e.dir, "kubeconfig-"+name) }

func (e *env) kube(name string) kubernetes.Interface {
	c, err := kubernetes.NewForConfig(e.members[name].RESTConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) karmadaClient() karmadaclient.Interface {
	c, err := karmadaclient.NewForConfig(e.cp.RESTConfig())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// fleet builds fleet.yaml for the lab clusters; extra is appended to each member's entry.
func (e *env) fleet(members []string, extra map[string]string) *spec.Fleet {
	e.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: lab}
kubeconfigDir: %s
manager:
  name: mgr
  kubeconfig: {path: %s}
  karmada:
    chart: {repo: https://charts.example.invalid/karmada, version: v1.18.2}
members:
`, filepath.Join(e.dir, "out"), e.kubeconfigPath("mgr"))
	for _, m := range members {
		fmt.Fprintf(&b, "  - name: %s\n    kubeconfig: {path: %s}\n", m, e.kubeconfigPath(m))
		if x := extra[m]; x != "" {
			fmt.Fprintf(&b, "    %s\n", x)
		}
	}
	f, err := spec.Parse(filepath.Join(e.dir, "fleet.yaml"), []byte(b.String()))
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// observe runs the cluster observer and then the driver's, as the daemon does.
func (e *env) observe(d *Driver, f *spec.Fleet) *world.World {
	e.t.Helper()
	w := &world.World{Now: time.Now()}
	ctx := context.Background()
	if err := (kube.Observer{Access: e.access}).Observe(ctx, f, w); err != nil {
		e.t.Fatal(err)
	}
	if err := d.Observe(ctx, f, w); err != nil {
		e.t.Fatal(err)
	}
	return w
}

// memberSteps are the plan's steps in the members layer.
func memberSteps(t *testing.T, f *spec.Fleet, w *world.World) []planner.Step {
	t.Helper()
	p, err := planner.Compute(f, w, planner.Options{AllowDestroy: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []planner.Step
	for _, s := range p.Steps {
		if s.Layer == planner.Members {
			out = append(out, s)
		}
	}
	return out
}

func stepText(steps []planner.Step) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "%s %s %s %v; ", s.Action.Symbol(), s.Address, s.Reason, s.Changes)
	}
	return b.String()
}

func TestPushJoinLifecycle(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	var counter labtest.WriteCounter
	d := New(Config{Access: e.access, Store: e.store, JoinTimeout: 60 * time.Second, ReadyTimeout: 90 * time.Second})
	d.wrap = counter.Wrap
	f := e.fleet([]string{"eu", "ap"}, nil)
	kk := e.karmadaClient()

	if w := e.observe(d, f); w.Karmada != nil {
		t.Fatalf("Karmada observed before its kubeconfig was stored: %+v", w.Karmada)
	}

	// The kubeconfig: server rewritten to the node port, TLS verified, stored 0600.
	if err := d.StoreKarmadaKubeconfig(ctx, f); err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.ReadFile(kube.KarmadaKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(stored)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("https://%s:%d", karmadaAddr, nodePort); cfg.Host != want || cfg.Insecure || len(cfg.CAData) == 0 {
		t.Errorf("stored kubeconfig: server %s insecure %v CA %d bytes; want %s, verified", cfg.Host, cfg.Insecure, len(cfg.CAData), want)
	}
	out := filepath.Join(e.dir, "out", KubeconfigFile)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v; want 0600", out, err, fi.Mode().Perm())
	}
	if err := d.WaitControlPlaneReady(ctx, f); err != nil {
		t.Fatal(err)
	}
	w := e.observe(d, f)
	if w.Karmada == nil || !w.Karmada.Reachable || !w.Karmada.APIServiceAvailable || len(w.Karmada.Members) != 0 {
		t.Fatalf("Karmada after the kubeconfig: %+v", w.Karmada)
	}
	if steps := memberSteps(t, f, w); len(steps) != 4 {
		t.Errorf("before joins the plan should join and wait for 2 members, got %s", stepText(steps))
	}

	// Join both members at once, as the executor would.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []string{"eu", "ap"} {
		wg.Go(func() {
			if err := d.Join(ctx, f, m); err != nil {
				errs[i] = err
				return
			}
			errs[i] = d.WaitMemberReady(ctx, f, m)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// A second join writes nothing.
	counter.Reset()
	for _, m := range []string{"eu", "ap"} {
		if err := d.Join(ctx, f, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(counter.Writes()); n != 0 {
		t.Errorf("re-running the joins wrote %d times: %v", n, counter.Writes())
	}

	w = e.observe(d, f)
	for _, m := range []string{"eu", "ap"} {
		km := w.Karmada.Members[m]
		c := w.Clusters[m]
		switch {
		case km == nil:
			t.Fatalf("member %s not observed in Karmada", m)
		case km.SyncMode != "Push" || km.APIEndpoint != e.members[m].Endpoint() || km.ID != c.KubeSystemUID || km.ID == "":
			t.Errorf("member %s: %+v; want Push, %s, id %s", m, km, e.members[m].Endpoint(), c.KubeSystemUID)
		case km.Ready != "True" || km.Deleting:
			t.Errorf("member %s: Ready=%s (%s: %s), deleting %v", m, km.Ready, km.Reason, km.Message, km.Deleting)
		case c.PushJoin == nil || !c.PushJoin.Namespace || !c.PushJoin.RBAC || !c.PushJoin.TokensReady:
			t.Errorf("member %s push join: %+v", m, c.PushJoin)
		case c.PushJoin.CredentialHash == "" || c.PushJoin.CredentialHash != km.SecretHash:
			t.Errorf("member %s: credential hash %q in the member, %q in Karmada", m, c.PushJoin.CredentialHash, km.SecretHash)
		}
	}
	if steps := memberSteps(t, f, w); len(steps) != 0 {
		t.Errorf("after the joins the plan should do nothing for members, got %s", stepText(steps))
	}
	// Karmada's secrets are owned by the Cluster, as karmadactl leaves them.
	kcp, err := kubernetes.NewForConfig(e.cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"eu", "eu-impersonator"} {
		sec, err := kcp.CoreV1().Secrets(ClusterNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].Kind != "Cluster" || sec.OwnerReferences[0].Name != "eu" {
			t.Errorf("secret %s owners: %+v", name, sec.OwnerReferences)
		}
	}

	t.Run("changed endpoint is an update", func(t *testing.T) {
		moved := e.members["eu"].Endpoint() + "/"
		f2 := e.fleet([]string{"eu", "ap"}, map[string]string{"eu": "apiEndpoint: " + moved})
		steps := memberSteps(t, f2, e.observe(d, f2))
		if len(steps) != 2 || steps[0].Address != "member/eu/join" || steps[0].Action != planner.Update {
			t.Fatalf("plan for a moved endpoint: %s", stepText(steps))
		}
		counter.Reset()
		if err := d.Join(ctx, f2, "eu"); err != nil {
			t.Fatal(err)
		}
		if len(counter.Writes()) == 0 {
			t.Error("the endpoint change wrote nothing")
		}
		c, err := kk.ClusterV1alpha1().Clusters().Get(ctx, "eu", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Spec.APIEndpoint != moved {
			t.Errorf("apiEndpoint %s, want %s", c.Spec.APIEndpoint, moved)
		}
		if err := d.WaitMemberReady(ctx, f2, "eu"); err != nil {
			t.Fatal(err)
		}
		if steps := memberSteps(t, f2, e.observe(d, f2)); len(steps) != 0 {
			t.Errorf("after the update: %s", stepText(steps))
		}
		if err := d.Join(ctx, f, "eu"); err != nil { // back to the kubeconfig's server
			t.Fatal(err)
		}
	})

	t.Run("changed credential is an update", func(t *testing.T) {
		before := e.observe(d, f).Karmada.Members["eu"].SecretHash
		if err := e.kube("eu").CoreV1().Secrets(ClusterNamespace).Delete(ctx, MemberSA("eu"), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		steps := memberSteps(t, f, e.observe(d, f))
		if len(steps) != 2 || steps[0].Address != "member/eu/join" || steps[0].Action != planner.Update {
			t.Fatalf("plan for a lost member token: %s", stepText(steps))
		}
		if err := d.Join(ctx, f, "eu"); err != nil {
			t.Fatal(err)
		}
		w := e.observe(d, f)
		if after := w.Karmada.Members["eu"].SecretHash; after == before || after != w.Clusters["eu"].PushJoin.CredentialHash {
			t.Errorf("Karmada's credential hash %s (before %s), member's %s", after, before, w.Clusters["eu"].PushJoin.CredentialHash)
		}
		if err := d.WaitMemberReady(ctx, f, "eu"); err != nil {
			t.Fatal(err)
		}
		if steps := memberSteps(t, f, e.observe(d, f)); len(steps) != 0 {
			t.Errorf("after the new credential: %s", stepText(steps))
		}
	})

	t.Run("unjoin", func(t *testing.T) {
		f3 := e.fleet([]string{"eu"}, nil)
		w := e.observe(d, f3)
		steps := memberSteps(t, f3, w)
		if !slices.ContainsFunc(steps, func(s planner.Step) bool { return s.Address == "member/ap/unjoin" }) {
			t.Fatalf("plan after ap left: %s", stepText(steps))
		}
		if err := d.Unjoin(ctx, f3, "ap"); err != nil {
			t.Fatal(err)
		}
		if _, err := kk.ClusterV1alpha1().Clusters().Get(ctx, "ap", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster ap after unjoin: %v", err)
		}
		ak := e.kube("ap")
		if _, err := ak.RbacV1().ClusterRoles().Get(ctx, MemberRBAC("ap"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster role in ap after unjoin: %v", err)
		}
		if _, err := ak.RbacV1().ClusterRoleBindings().Get(ctx, MemberRBAC("ap"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster role binding in ap after unjoin: %v", err)
		}
		if _, err := ak.CoreV1().Namespaces().Get(ctx, ClusterNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s in ap after unjoin: %v", ClusterNamespace, err)
		}
		if steps := memberSteps(t, f3, e.observe(d, f3)); len(steps) != 0 {
			t.Errorf("after the unjoin: %s", stepText(steps))
		}
		if err := d.Unjoin(ctx, f3, "ap"); err != nil {
			t.Errorf("a second unjoin: %v", err)
		}
	})

	t.Run("forced unjoin of an unreachable member", func(t *testing.T) {
		if err := d.Join(ctx, f, "ap"); err != nil {
			t.Fatal(err)
		}
		if err := d.WaitMemberReady(ctx, f, "ap"); err != nil {
			t.Fatal(err)
		}
		es := ExecutionNamespace("ap")
		kcp, err := kubernetes.NewForConfig(e.cp.RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := poll(ctx, 60*time.Second, "namespace "+es, func(ctx context.Context) (bool, error) {
			_, err := kcp.CoreV1().Namespaces().Get(ctx, es, metav1.GetOptions{})
			return err == nil, err
		}); err != nil {
			t.Fatal(err)
		}
		// A Work whose finalizer nobody removes stands for the Works of a member that cannot be reached.
		stuck := &workv1alpha1.Work{ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: es, Finalizers: []string{"reconcile.test/stuck"}}}
		if _, err := kk.WorkV1alpha1().Works(es).Create(ctx, stuck, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.stopped.Store("ap", true)
		if err := e.members["ap"].Stop(); err != nil {
			t.Log(err) // a slow exit is killed; the member is unreachable either way
		}
		f3 := e.fleet([]string{"eu"}, nil)
		polite := New(Config{Access: e.access, Store: e.store, JoinTimeout: 3 * time.Second})
		err = polite.Unjoin(ctx, f3, "ap")
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("unjoin of an unreachable member without force: %v; want an error saying it is unreachable", err)
		}
		forced := New(Config{Access: e.access, Store: e.store, JoinTimeout: 30 * time.Second, ForceUnjoin: true})
		if err := forced.Unjoin(ctx, f3, "ap"); err != nil {
			t.Fatal(err)
		}
		if _, err := kk.ClusterV1alpha1().Clusters().Get(ctx, "ap", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster ap after a forced unjoin: %v", err)
		}
		if err := poll(ctx, 30*time.Second, "work "+es+"/stuck gone", func(ctx context.Context) (bool, error) {
			_, err := kk.WorkV1alpha1().Works(es).Get(ctx, "stuck", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}); err != nil {
			t.Error(err)
		}
	})

	t.Run("kubeconfig against a certificate without the address", func(t *testing.T) {
		forward(t, net.JoinHostPort(proxyAddr, fmt.Sprint(nodePort)), net.JoinHostPort(karmadaAddr, fmt.Sprint(nodePort)))
		store, err := state.OpenStore(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		d2 := New(Config{Access: kube.Access{Store: store}, Store: store})
		// The observed manager node is the proxy's address.
		w := &world.World{Clusters: map[string]*world.Cluster{"mgr": {Name: "mgr", Reachable: true, NodeIPs: []string{proxyAddr}}}}
		if err := d2.Observe(ctx, f, w); err != nil {
			t.Fatal(err)
		}
		err = d2.StoreKarmadaKubeconfig(ctx, f)
		if err == nil || !strings.Contains(err.Error(), "TLS") || !strings.Contains(err.Error(), "not valid for "+proxyAddr) {
			t.Fatalf("error %v; want a TLS error naming %s", err, proxyAddr)
		}
		if store.Exists(kube.KarmadaKubeconfig) {
			t.Error("a kubeconfig that fails TLS was stored")
		}
	})

	t.Run("install and Pull join through Helm", func(t *testing.T) {
		rec := &helmRecorder{}
		d3 := New(Config{Access: e.access, Store: e.store, Helm: rec.client,
			LoadChart: func(context.Context, spec.ChartSource, string, string) (*chart.Chart, error) {
				return &chart.Chart{Metadata: &chart.Metadata{Name: "karmada", Version: "v1.18.2"}}, nil
			}})
		fp := e.fleet([]string{"eu"}, map[string]string{"eu": "joinMode: Pull"})
		e.observe(d3, fp)
		if err := d3.InstallControlPlane(ctx, fp); err != nil {
			t.Fatal(err)
		}
		if err := d3.Join(ctx, fp, "eu"); err != nil {
			t.Fatal(err)
		}
		if len(rec.releases) != 2 {
			t.Fatalf("releases: %d", len(rec.releases))
		}
		cpRel, agent := rec.releases[0], rec.releases[1]
		if rec.hosts[0] != e.members["mgr"].Endpoint() || cpRel.Name != "karmada" || cpRel.Namespace != "karmada-system" ||
			!cpRel.WaitForJobs || cpRel.Timeout != fp.Manager.Karmada.Timeout.Duration || cpRel.Timeout == 0 {
			t.Errorf("control plane release on %s: %s/%s jobs %v timeout %s", rec.hosts[0], cpRel.Namespace, cpRel.Name, cpRel.WaitForJobs, cpRel.Timeout)
		}
		hosts := cpRel.Values["certs"].(map[string]any)["auto"].(map[string]any)["hosts"].([]any)
		if !slices.Contains(hosts, any(karmadaAddr)) {
			t.Errorf("certs.auto.hosts %v lacks the manager node IP %s", hosts, karmadaAddr)
		}
		certs := e.cp.Certs()
		kc := agent.Values["agent"].(map[string]any)["kubeconfig"].(map[string]any)
		switch {
		case rec.hosts[1] != e.members["eu"].Endpoint() || agent.Name != planner.AgentRelease || agent.Namespace != planner.AgentNamespace:
			t.Errorf("agent release on %s: %s/%s", rec.hosts[1], agent.Namespace, agent.Name)
		case kc["caCrt"] != string(certs.CACert) || kc["crt"] != string(certs.ServerCert) || kc["key"] != string(certs.ServerKey):
			t.Error("agent kubeconfig does not carry the manager's karmada-cert")
		case kc["server"] != fmt.Sprintf("https://%s:%d", karmadaAddr, nodePort):
			t.Errorf("agent server %v", kc["server"])
		case agent.Values["agent"].(map[string]any)["clusterEndpoint"] != e.members["eu"].Endpoint():
			t.Errorf("agent clusterEndpoint %v", agent.Values["agent"].(map[string]any)["clusterEndpoint"])
		}
	})
}

// helmRecorder records releases instead of installing them: the Helm SDK is state/helm's
// to test; here what matters is what the driver asks for.
type helmRecorder struct {
	mu       sync.Mutex
	hosts    []string
	releases []helm.Release
}

func (r *helmRecorder) client(cfg *rest.Config) (HelmClient, error) {
	return recordingClient{r: r, host: cfg.Host}, nil
}

type recordingClient struct {
	r    *helmRecorder
	host string
}

func (c recordingClient) Ensure(_ context.Context, rel helm.Release) (helm.Outcome, error) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.r.hosts = append(c.r.hosts, c.host)
	c.r.releases = append(c.r.releases, rel)
	return helm.Installed, nil
}

func (c recordingClient) Uninstall(context.Context, string, string, time.Duration) error { return nil }

// forward proxies TCP connections from listen to target until the test ends.
func forward(t *testing.T, listen, target string) {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, in)
			mu.Unlock()
			wg.Go(func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { io.Copy(out, in); out.Close() }()
				io.Copy(in, out)
			})
		}
	})
}
