package karmada

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
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
	"github.com/reconcile-dev/reconcile/plan"
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

// apply applies one step, failing the test on an error.
func apply(t *testing.T, d *Driver, s plan.Step) plan.Outputs {
	t.Helper()
	out, err := d.Apply(context.Background(), s)
	if err != nil {
		t.Fatalf("%s: %v", s.Address, err)
	}
	return out
}

func pushJoin(member, endpoint string) plan.Step {
	return step(plan.KindJoin, plan.Create, member, plan.Payload{Join: &plan.Join{Mode: spec.Push, APIEndpoint: plan.Known(endpoint)}})
}

func memberReady(member string) plan.Step {
	return step(plan.KindMemberReady, plan.Wait, member, plan.Payload{})
}

func unjoin(member string, force bool) plan.Step {
	return step(plan.KindUnjoin, plan.Delete, member, plan.Payload{Unjoin: &plan.Unjoin{Force: force}})
}

func karmadaKubeconfig(server, copyTo string) plan.Step {
	return step(plan.KindKarmadaKubeconfig, plan.Create, "mgr", plan.Payload{KarmadaKubeconfig: &plan.KarmadaKubeconfig{
		Release: "karmada", Namespace: "karmada-system", Server: plan.Known(server), CopyTo: copyTo}})
}

func TestPushJoinLifecycle(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	var counter labtest.WriteCounter
	f := e.fleet([]string{"eu", "ap"}, nil)
	d := New(Config{Access: e.access.For(f), Store: e.store, JoinTimeout: 60 * time.Second, ReadyTimeout: 90 * time.Second})
	d.wrap = counter.Wrap
	kk := e.karmadaClient()

	// A state without Karmada's kubeconfig (a fresh runner) recovers it from the manager
	// during observation: Karmada is read, not planned as absent.
	if w := e.observe(d, f); w.Karmada == nil || !w.Karmada.Reachable || len(w.Karmada.Members) != 0 {
		t.Fatalf("Karmada not read through a recovered kubeconfig: %+v", w.Karmada)
	}
	if !e.store.Exists(kube.KarmadaKubeconfig) {
		t.Fatal("the recovered Karmada kubeconfig was not stored")
	}

	// The manager's node address: its Ready node's ExternalIP.
	out := apply(t, d, step(plan.KindNodeAddress, plan.Wait, "mgr", plan.Payload{}))
	if len(out) != 1 || out[plan.OutputNodeIP] != karmadaAddr {
		t.Fatalf("node-address outputs %v; want %s=%s", out, plan.OutputNodeIP, karmadaAddr)
	}

	// The kubeconfig: server rewritten to the node port, TLS verified, stored, copied 0600.
	server := fmt.Sprintf("https://%s:%d", out[plan.OutputNodeIP], nodePort)
	copyTo := filepath.Join(e.dir, "out", "karmada-config")
	apply(t, d, karmadaKubeconfig(server, copyTo))
	stored, err := e.store.ReadFile(kube.KarmadaKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(stored)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != server || cfg.Insecure || len(cfg.CAData) == 0 {
		t.Errorf("stored kubeconfig: server %s insecure %v CA %d bytes; want %s, verified", cfg.Host, cfg.Insecure, len(cfg.CAData), server)
	}
	if fi, err := os.Stat(copyTo); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v; want it 0600", copyTo, err)
	} else if copied, _ := os.ReadFile(copyTo); string(copied) != string(stored) {
		t.Errorf("%s differs from the stored kubeconfig", copyTo)
	}
	apply(t, d, step(plan.KindKarmadaReady, plan.Wait, "mgr", plan.Payload{}))
	w := e.observe(d, f)
	if w.Karmada == nil || !w.Karmada.Reachable || !w.Karmada.APIServiceAvailable || len(w.Karmada.Members) != 0 {
		t.Fatalf("Karmada after the kubeconfig: %+v", w.Karmada)
	}

	// Join both members at once, as the executor would.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []string{"eu", "ap"} {
		wg.Go(func() {
			if _, err := d.Apply(ctx, pushJoin(m, e.members[m].Endpoint())); err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = d.Apply(ctx, memberReady(m))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// A second join writes nothing.
	counter.Reset()
	for _, m := range []string{"eu", "ap"} {
		apply(t, d, pushJoin(m, e.members[m].Endpoint()))
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
		counter.Reset()
		apply(t, d, pushJoin("eu", moved))
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
		apply(t, d, memberReady("eu"))
		counter.Reset()
		apply(t, d, pushJoin("eu", moved))
		if n := len(counter.Writes()); n != 0 {
			t.Errorf("the same join again wrote %d times: %v", n, counter.Writes())
		}
		if km := e.observe(d, f).Karmada.Members["eu"]; km == nil || km.APIEndpoint != moved || km.Ready != "True" {
			t.Errorf("member eu after the update: %+v", km)
		}
		apply(t, d, pushJoin("eu", e.members["eu"].Endpoint())) // back to the kubeconfig's server
	})

	t.Run("changed credential is an update", func(t *testing.T) {
		before := e.observe(d, f).Karmada.Members["eu"].SecretHash
		if err := e.kube("eu").CoreV1().Secrets(ClusterNamespace).Delete(ctx, MemberSA("eu"), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if pj := e.observe(d, f).Clusters["eu"].PushJoin; pj == nil || pj.TokensReady {
			t.Fatalf("push join after the member token was deleted: %+v", pj)
		}
		apply(t, d, pushJoin("eu", e.members["eu"].Endpoint()))
		w := e.observe(d, f)
		if after := w.Karmada.Members["eu"].SecretHash; after == before || after != w.Clusters["eu"].PushJoin.CredentialHash {
			t.Errorf("Karmada's credential hash %s (before %s), member's %s", after, before, w.Clusters["eu"].PushJoin.CredentialHash)
		}
		apply(t, d, memberReady("eu"))
		if km := e.observe(d, f).Karmada.Members["eu"]; km == nil || km.Ready != "True" {
			t.Errorf("member eu after the new credential: %+v", km)
		}
	})

	t.Run("unjoin", func(t *testing.T) {
		f3 := e.fleet([]string{"eu"}, nil)
		// The driver of the fleet ap left reaches ap through the stored kubeconfig.
		d3 := New(Config{Access: e.access.For(f3), Store: e.store, JoinTimeout: 60 * time.Second})
		apply(t, d3, unjoin("ap", false))
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
		if w := e.observe(d3, f3); w.Karmada.Members["ap"] != nil || w.Karmada.Members["eu"] == nil {
			t.Errorf("Karmada members after the unjoin: %v", slices.Sorted(maps.Keys(w.Karmada.Members)))
		}
		if _, err := d3.Apply(ctx, unjoin("ap", false)); err != nil {
			t.Errorf("a second unjoin: %v", err)
		}
	})

	t.Run("forced unjoin of an unreachable member", func(t *testing.T) {
		apply(t, d, pushJoin("ap", e.members["ap"].Endpoint()))
		apply(t, d, memberReady("ap"))
		es := ExecutionNamespace("ap")
		kcp, err := kubernetes.NewForConfig(e.cp.RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := poll(ctx, nil, 60*time.Second, "namespace "+es, func(ctx context.Context) (bool, error) {
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
		d3 := New(Config{Access: e.access.For(f3), Store: e.store, JoinTimeout: 3 * time.Second})
		_, err = d3.Apply(ctx, unjoin("ap", false))
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("unjoin of an unreachable member without force: %v; want an error saying it is unreachable", err)
		}
		d3 = New(Config{Access: e.access.For(f3), Store: e.store, JoinTimeout: 30 * time.Second})
		apply(t, d3, unjoin("ap", true))
		if _, err := kk.ClusterV1alpha1().Clusters().Get(ctx, "ap", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster ap after a forced unjoin: %v", err)
		}
		if err := poll(ctx, nil, 30*time.Second, "work "+es+"/stuck gone", func(ctx context.Context) (bool, error) {
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
		d2 := New(Config{Access: kube.Access{Store: store}.For(f), Store: store})
		// The planned server is the proxy's address.
		_, err = d2.Apply(ctx, karmadaKubeconfig(fmt.Sprintf("https://%s:%d", proxyAddr, nodePort), ""))
		if err == nil || !strings.Contains(err.Error(), "TLS") || !strings.Contains(err.Error(), "not valid for "+proxyAddr) {
			t.Fatalf("error %v; want a TLS error naming %s", err, proxyAddr)
		}
		if store.Exists(kube.KarmadaKubeconfig) {
			t.Error("a kubeconfig that fails TLS was stored")
		}
	})

	t.Run("install and Pull join through Helm", func(t *testing.T) {
		rec := &helmRecorder{}
		type load struct {
			src            spec.ChartSource
			name, cacheDir string
		}
		var loads []load
		d3 := New(Config{Access: e.access.For(f), Store: e.store, Helm: rec.client, ChartCache: "/charts",
			LoadChart: func(_ context.Context, src spec.ChartSource, name, cacheDir string) (*chart.Chart, error) {
				loads = append(loads, load{src, name, cacheDir})
				return &chart.Chart{Metadata: &chart.Metadata{Name: name, Version: src.Version}}, nil
			}})
		src := spec.ChartSource{Repo: "https://charts.example.invalid/karmada", Version: "v1.18.2"}
		cpValues := map[string]any{"installMode": "host", "certs": map[string]any{"auto": map[string]any{
			"hosts": []any{"localhost", karmadaAddr}}}}
		cpPayload := &plan.Release{Name: "karmada", Namespace: "kc-system", Chart: src, ChartName: "karmada", Values: cpValues,
			Timeout: spec.Duration{Duration: 7 * time.Minute}, Wait: true, WaitForJobs: true, CreateNamespace: true}
		apply(t, d3, step(plan.KindKarmadaRelease, plan.Create, "mgr", plan.Payload{Release: cpPayload}))

		agentValues := map[string]any{"installMode": "agent", "agent": map[string]any{"clusterName": "eu",
			"clusterEndpoint": e.members["eu"].Endpoint(),
			"kubeconfig":      map[string]any{"server": fmt.Sprintf("https://%s:%d", karmadaAddr, nodePort)}}}
		agentBefore := plan.DeepCopyValues(agentValues)
		join := &plan.Join{Mode: spec.Pull, APIEndpoint: plan.Known(e.members["eu"].Endpoint()),
			Agent: &plan.Release{Name: AgentRelease, Namespace: AgentNamespace, Chart: src, ChartName: "karmada-agent-chart",
				Values: agentValues, Timeout: spec.Duration{Duration: 2 * time.Minute}, Wait: false, WaitForJobs: true},
			Manager: "mgr", CertSecret: "karmada-system/karmada-cert", AgentCertLifetime: &spec.Duration{Duration: 48 * time.Hour}}
		apply(t, d3, step(plan.KindJoin, plan.Create, "eu", plan.Payload{Join: join}))
		if len(rec.releases) != 2 {
			t.Fatalf("releases: %d", len(rec.releases))
		}
		if want := []load{{src, "karmada", "/charts"}, {src, "karmada-agent-chart", "/charts"}}; !slices.Equal(loads, want) {
			t.Errorf("charts loaded %v, want %v", loads, want)
		}
		cpRel, agent := rec.releases[0], rec.releases[1]
		if rec.hosts[0] != e.members["mgr"].Endpoint() || cpRel.Name != "karmada" || cpRel.Namespace != "kc-system" ||
			!cpRel.Wait || !cpRel.WaitForJobs || !cpRel.CreateNamespace || cpRel.Timeout != 7*time.Minute ||
			cpRel.Chart.Metadata.Name != "karmada" || !reflect.DeepEqual(cpRel.Values, cpValues) {
			t.Errorf("control plane release on %s: %+v", rec.hosts[0], cpRel)
		}
		certs := e.cp.Certs()
		kc := agent.Values["agent"].(map[string]any)["kubeconfig"].(map[string]any)
		switch {
		case rec.hosts[1] != e.members["eu"].Endpoint() || agent.Name != AgentRelease || agent.Namespace != AgentNamespace:
			t.Errorf("agent release on %s: %s/%s", rec.hosts[1], agent.Namespace, agent.Name)
		case agent.Wait || !agent.WaitForJobs || agent.CreateNamespace || agent.Timeout != 2*time.Minute:
			t.Errorf("agent release flags: wait %v jobs %v create namespace %v timeout %s; want them as the payload says",
				agent.Wait, agent.WaitForJobs, agent.CreateNamespace, agent.Timeout)
		case kc["caCrt"] != string(certs.CACert):
			t.Error("agent kubeconfig does not carry the Karmada CA of the manager's karmada-cert")
		case kc["crt"] == string(certs.ServerCert) || kc["key"] == string(certs.ServerKey):
			t.Error("the agent was given the control plane's admin certificate")
		case !reusableAgentCert("eu", []byte(kc["crt"].(string)), []byte(kc["key"].(string)), certs.CACert, 48*time.Hour, time.Now()):
			t.Error("the agent's certificate is not its own (system:karmada:agent:eu, signed by Karmada's CA, matching its key)")
		case kc["server"] != fmt.Sprintf("https://%s:%d", karmadaAddr, nodePort):
			t.Errorf("agent server %v", kc["server"])
		case agent.Values["agent"].(map[string]any)["clusterEndpoint"] != e.members["eu"].Endpoint():
			t.Errorf("agent clusterEndpoint %v", agent.Values["agent"].(map[string]any)["clusterEndpoint"])
		}
		// Its RBAC is in Karmada, and no bootstrap token or CSR is left behind.
		kcl, err := d3.karmada()
		if err != nil {
			t.Fatal(err)
		}
		if missing, err := d3.observeAgentRBAC(ctx, kcl.kube, "eu"); err != nil || len(missing) > 0 {
			t.Errorf("agent RBAC missing %v (%v)", missing, err)
		}
		if tokens, err := kcl.kube.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "type=bootstrap.kubernetes.io/token"}); err != nil || len(tokens.Items) > 0 {
			t.Errorf("bootstrap tokens left: %v (%v)", tokens, err)
		}
		if csrs, err := kcl.kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{}); err != nil || len(csrs.Items) > 0 {
			t.Errorf("CSRs left: %d (%v)", len(csrs.Items), err)
		}
		// The credentials went into a copy: the step's payload is as the plan made it.
		if !reflect.DeepEqual(join.Agent.Values, agentBefore) {
			t.Error("the Pull join changed the step's agent values (the certificates leaked into the plan)")
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
