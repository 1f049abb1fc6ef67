package karmada

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	karmadaclient "github.com/karmada-io/karmada/pkg/generated/clientset/versioned"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/charts"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/karmadalab"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/helm"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Addresses of this test (the package's range is 127.0.0.60-127.0.0.79).
const (
	chartManagerAddr = "127.0.0.70" // its node IP: the Player serves karmada-apiserver there on the node port
	chartPullAddr    = "127.0.0.71"
)

// startPlayed starts a lab cluster whose kubelet is played: workloads read as ready
// (labworld.Kubelet) and the Karmada chart's Jobs, control plane and agents run (karmadalab.Player).
func startPlayed(t *testing.T, name, address string) *cluster.Cluster {
	t.Helper()
	etcd, bins, kbins := labEtcd(t)
	c, err := cluster.StartCluster(context.Background(), cluster.ClusterOptions{Name: name, Dir: filepath.Join(t.TempDir(), name),
		Address: address, Etcd: etcd, Bins: bins, Nodes: []cluster.NodeSpec{{Name: name + "-node", ExternalIP: address}},
		ExtraControllerManagerArgs: labworld.ControllerManagerArgs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	kc, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- labworld.Kubelet{Client: kc, Address: address}.Run(ctx) }()
	p := &karmadalab.Player{Etcd: etcd, Bins: bins, Karmada: kbins, Dir: t.TempDir()}
	go func() {
		done <- p.Serve(ctx, karmadalab.ClusterRef{Name: name, Address: address, RESTConfig: c.RESTConfig()})
	}()
	t.Cleanup(func() { // before the cluster stops: Cleanup runs last-in first-out
		cancel()
		for range 2 {
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("%s: kubelet stand-in or player did not stop within 60s", name)
				return
			}
		}
	})
	return c
}

// TestChartInstallAndPullJoin walks a plan of the manager's and a Pull member's steps, as the
// executor does (the manager's node address flowing into the release and the kubeconfig
// through references): it installs the control plane through the Karmada chart with the real
// Helm client, stores its kubeconfig, waits for it, joins a member in Pull mode through the
// agent release, switches it to Push and unjoins it again.
func TestChartInstallAndPullJoin(t *testing.T) {
	labEtcd(t)
	ctx := context.Background()
	dir := t.TempDir()
	repo, err := charts.BuildRepo(filepath.Join(dir, "repo"), charts.RepoOptions{KarmadaVersion: cluster.KarmadaVersion})
	if err != nil {
		t.Fatal(err)
	}
	mgr := startPlayed(t, "cmgr", chartManagerAddr)
	pull := startPlayed(t, "cpull", chartPullAddr)
	store, err := state.OpenStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for name, c := range map[string]*cluster.Cluster{"cmgr": mgr, "cpull": pull} {
		paths[name] = filepath.Join(dir, "kubeconfig-"+name)
		if err := os.WriteFile(paths[name], c.Kubeconfig(), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := store.WriteFile(kube.ClusterKubeconfig(name), c.Kubeconfig()); err != nil {
			t.Fatal(err)
		}
	}
	f, err := spec.Parse(filepath.Join(dir, "fleet.yaml"), fmt.Appendf(nil, `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: chart}
manager:
  name: cmgr
  kubeconfig: {path: %s}
  karmada:
    chart: {path: %s}
members:
  - name: cpull
    kubeconfig: {path: %s}
`, paths["cmgr"], repo.ChartPath(charts.ChartKarmada), paths["cpull"]))
	if err != nil {
		t.Fatal(err)
	}
	access := kube.Access{Store: store, Timeout: 20 * time.Second}
	log := slog.New(slog.DiscardHandler)
	var counter labtest.WriteCounter
	d := New(Config{Access: access.For(f), Store: store, Log: log, ChartCache: filepath.Join(dir, "cache"),
		JoinTimeout: 2 * time.Minute, ReadyTimeout: 2 * time.Minute})
	d.wrap = counter.Wrap
	observe := func() *world.World {
		t.Helper()
		w := &world.World{Now: time.Now()}
		for _, o := range []state.Observer{kube.Observer{Access: access}, helm.Observer{Access: access, Log: log, Namespaces: []string{"karmada-system"}}, d} {
			if err := o.Observe(ctx, f, w); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}
	walk := func(steps ...plan.Step) {
		t.Helper()
		_, err := executor.Walk(ctx, &plan.Plan{Fleet: "chart", Steps: steps}, executor.Dispatch(executor.Drivers{Karmada: d}),
			executor.Options{Retry: executor.RetryPolicy{MaxAttempts: 2}, OnEvent: func(e executor.Event) {
				if e.Type == executor.EventDone || e.Type == executor.EventFailed || e.Type == executor.EventRetry {
					t.Logf("%s %s in %s %v", e.Step, e.Type, e.Duration.Round(time.Millisecond), e.Err)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
	}

	const (
		nodeAddress = "manager/cmgr/node-address"
		release     = "manager/karmada-release"
		kubeconfig  = "manager/karmada-kubeconfig"
		ready       = "manager/karmada-ready"
		join        = "member/cpull/join"
		memberReady = "member/cpull/member-ready"
	)
	chartSrc := spec.ChartSource{Path: repo.ChartPath(charts.ChartKarmada)}
	timeout := spec.Duration{Duration: 3 * time.Minute}
	nodeIP := plan.Ref{Step: nodeAddress, Output: plan.OutputNodeIP}
	server := nodeIP
	server.Format = "https://%s:32443"
	steps := []plan.Step{
		{Address: nodeAddress, Kind: plan.KindNodeAddress, Action: plan.Wait, Cluster: "cmgr"},
		{Address: release, Kind: plan.KindKarmadaRelease, Action: plan.Create, Cluster: "cmgr", DependsOn: []string{nodeAddress},
			Payload: plan.Payload{Release: &plan.Release{Name: "karmada", Namespace: "karmada-system", Chart: chartSrc, ChartName: "karmada",
				Values: map[string]any{
					"installMode": "host",
					"apiServer":   map[string]any{"serviceType": "NodePort", "nodePort": 32443},
					"certs": map[string]any{"auto": map[string]any{"hosts": []any{"kubernetes.default.svc",
						"*.etcd.karmada-system.svc.cluster.local", "*.karmada-system.svc.cluster.local", "*.karmada-system.svc",
						"localhost", "127.0.0.1", ""}}},
				},
				Refs:    []plan.ValueRef{{Path: []string{"certs", "auto", "hosts", "6"}, From: nodeIP}},
				Timeout: timeout, Wait: true, WaitForJobs: true, CreateNamespace: true}}},
		{Address: kubeconfig, Kind: plan.KindKarmadaKubeconfig, Action: plan.Create, Cluster: "cmgr", DependsOn: []string{release, nodeAddress},
			Payload: plan.Payload{KarmadaKubeconfig: &plan.KarmadaKubeconfig{Release: "karmada", Namespace: "karmada-system",
				Server: plan.Value{From: &server}, CopyTo: filepath.Join(dir, "out", "karmada-config")}}},
		{Address: ready, Kind: plan.KindKarmadaReady, Action: plan.Wait, Cluster: "cmgr", DependsOn: []string{kubeconfig}},
		{Address: join, Kind: plan.KindJoin, Action: plan.Create, Cluster: "cpull", DependsOn: []string{ready, nodeAddress},
			Payload: plan.Payload{Join: &plan.Join{Mode: spec.Pull, APIEndpoint: plan.Known(pull.Endpoint()),
				Agent: &plan.Release{Name: AgentRelease, Namespace: AgentNamespace, Chart: chartSrc, ChartName: "karmada",
					Values: map[string]any{"installMode": "agent", "agent": map[string]any{"clusterName": "cpull",
						"clusterEndpoint": pull.Endpoint(), "kubeconfig": map[string]any{}}},
					Refs:    []plan.ValueRef{{Path: []string{"agent", "kubeconfig", "server"}, From: server}},
					Timeout: timeout, Wait: true, WaitForJobs: true, CreateNamespace: true},
				Manager: "cmgr", CertSecret: "karmada-system/karmada-cert"}}},
		{Address: memberReady, Kind: plan.KindMemberReady, Action: plan.Wait, Cluster: "cpull", DependsOn: []string{join}},
	}
	observe()
	walk(steps...)
	w := observe()
	mgrIP := w.Clusters["cmgr"].NodeIPs
	if len(mgrIP) == 0 || mgrIP[0] != chartManagerAddr {
		t.Errorf("manager node IPs %v, want %s first", mgrIP, chartManagerAddr)
	}
	if k := w.Karmada; k == nil || !k.Reachable || !k.APIServiceAvailable {
		t.Fatalf("Karmada after the walk: %+v", k)
	}
	if km := w.Karmada.Members["cpull"]; km == nil || km.SyncMode != "Pull" || km.Ready != "True" || km.APIEndpoint != pull.Endpoint() {
		t.Errorf("Pull member: %+v", km)
	}
	cp := w.Clusters["cmgr"].Releases["karmada-system/karmada"]
	if cp == nil || cp.Status != "deployed" {
		t.Fatalf("control plane release: %+v", cp)
	}
	hosts, _ := cp.Values["certs"].(map[string]any)["auto"].(map[string]any)["hosts"].([]any)
	if len(hosts) != 7 || hosts[6] != chartManagerAddr {
		t.Errorf("control plane certs.auto.hosts %v; want the node address resolved into the last slot", hosts)
	}
	agentKey := releaseKey(AgentNamespace, AgentRelease)
	agent := w.Clusters["cpull"].Releases[agentKey]
	if agent == nil || agent.Status != "deployed" || strings.Contains(fmt.Sprint(agent.Values), plan.Sensitive) {
		t.Errorf("agent release: %v", agent != nil && agent.Status == "deployed")
	}
	if s := steps[4].Payload.Join.Agent; s.Values["agent"].(map[string]any)["kubeconfig"].(map[string]any)["key"] != nil || len(s.Refs) != 1 {
		t.Error("walking the plan changed the join step's payload")
	}

	// The same steps again write nothing.
	counter.Reset()
	walk(steps...)
	if writes := counter.Writes(); len(writes) != 0 {
		t.Errorf("walking the same steps again wrote %d times: %v", len(writes), writes)
	}

	// The member switches to Push: the agent goes, Karmada reaches the member itself.
	walk(plan.Step{Address: join, Kind: plan.KindJoin, Action: plan.Update, Cluster: "cpull",
		Payload: plan.Payload{Join: &plan.Join{Mode: spec.Push, APIEndpoint: plan.Known(pull.Endpoint()), RemoveAgent: true}}},
		plan.Step{Address: memberReady, Kind: plan.KindMemberReady, Action: plan.Wait, Cluster: "cpull", DependsOn: []string{join}})
	w = observe()
	if km := w.Karmada.Members["cpull"]; km == nil || km.SyncMode != "Push" || km.Ready != "True" {
		t.Errorf("member after the switch to Push: %+v", km)
	}
	if _, ok := w.Clusters["cpull"].Releases[agentKey]; ok {
		t.Error("the agent release is still there after the switch to Push")
	}
	if pj := w.Clusters["cpull"].PushJoin; pj == nil || !pj.RBAC || !pj.TokensReady || pj.CredentialHash != w.Karmada.Members["cpull"].SecretHash {
		t.Errorf("push join after the switch: %+v", pj)
	}

	walk(plan.Step{Address: "member/cpull/unjoin", Kind: plan.KindUnjoin, Action: plan.Delete, Cluster: "cpull",
		Payload: plan.Payload{Unjoin: &plan.Unjoin{}}})
	kc, err := karmadaclient.NewForConfig(mustKarmadaConfig(t, access))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.ClusterV1alpha1().Clusters().Get(ctx, "cpull", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster cpull after unjoin: %v", err)
	}
	rels, err := mustHelm(t, pull).List(ctx, AgentNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 0 {
		t.Errorf("releases left in cpull: %v", rels)
	}
	if w := observe(); len(w.Karmada.Members) != 0 || w.Clusters["cpull"].PushJoin != nil {
		t.Errorf("after the unjoin: Karmada members %v, push join %+v", w.Karmada.Members, w.Clusters["cpull"].PushJoin)
	}
}

func mustKarmadaConfig(t *testing.T, a kube.Access) *rest.Config {
	t.Helper()
	cfg, err := a.KarmadaRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustHelm(t *testing.T, c *cluster.Cluster) *helm.Client {
	t.Helper()
	h, err := helm.New(c.RESTConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
