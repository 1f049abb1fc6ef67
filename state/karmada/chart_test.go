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

	"github.com/reconcile-dev/reconcile/lab/charts"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/karmadalab"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/planner"
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

// TestChartInstallAndPullJoin installs the control plane through the Karmada chart with the
// real Helm client, stores its kubeconfig, waits for it, joins a member in Pull mode through
// the agent release, and unjoins it again.
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
	fleetYAML := func(members string) *spec.Fleet {
		t.Helper()
		f, err := spec.Parse(filepath.Join(dir, "fleet.yaml"), fmt.Appendf(nil, `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: chart}
manager:
  name: cmgr
  kubeconfig: {path: %s}
  karmada:
    chart: {path: %s}
    timeout: 3m
joinMode: Pull
%s`, paths["cmgr"], repo.ChartPath(charts.ChartKarmada), members))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := fleetYAML(fmt.Sprintf("members:\n  - name: cpull\n    kubeconfig: {path: %s}\n", paths["cpull"]))
	access := kube.Access{Store: store, Timeout: 20 * time.Second}
	log := slog.New(slog.DiscardHandler)
	d := New(Config{Access: access, Store: store, Log: log, ChartCache: filepath.Join(dir, "cache"),
		JoinTimeout: 2 * time.Minute, ReadyTimeout: 2 * time.Minute})
	observe := func(f *spec.Fleet) *world.World {
		t.Helper()
		w := &world.World{Now: time.Now()}
		for _, o := range []state.Observer{kube.Observer{Access: access}, helm.Observer{Access: access, Log: log}, d} {
			if err := o.Observe(ctx, f, w); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}
	plan := func(f *spec.Fleet, w *world.World) []planner.Step {
		t.Helper()
		p, err := planner.Compute(f, w, planner.Options{AllowDestroy: true})
		if err != nil {
			t.Fatal(err)
		}
		return p.Steps
	}

	observe(f)
	steps := []struct {
		name string
		run  func() error
	}{
		{"install", func() error { return d.InstallControlPlane(ctx, f) }},
		{"kubeconfig", func() error { return d.StoreKarmadaKubeconfig(ctx, f) }},
		{"ready", func() error { return d.WaitControlPlaneReady(ctx, f) }},
		{"join", func() error { return d.Join(ctx, f, "cpull") }},
		{"member ready", func() error { return d.WaitMemberReady(ctx, f, "cpull") }},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		t.Logf("%s in %s", s.name, time.Since(start).Round(time.Millisecond))
	}
	w := observe(f)
	if km := w.Karmada.Members["cpull"]; km == nil || km.SyncMode != "Pull" || km.Ready != "True" || km.APIEndpoint != pull.Endpoint() {
		t.Errorf("Pull member: %+v", km)
	}
	if left := plan(f, w); len(left) != 0 {
		t.Errorf("after install and join the plan is not empty: %s", stepText(left))
	}
	agent := w.Clusters["cpull"].Releases[planner.ReleaseKey(planner.AgentNamespace, planner.AgentRelease)]
	if agent == nil || agent.Status != "deployed" || strings.Contains(fmt.Sprint(agent.Values), planner.Sensitive) {
		t.Errorf("agent release: %v", agent != nil && agent.Status == "deployed")
	}

	// The member switches to Push: the agent goes, Karmada reaches the member itself.
	fpush := fleetYAML(fmt.Sprintf("members:\n  - name: cpull\n    kubeconfig: {path: %s}\n    joinMode: Push\n", paths["cpull"]))
	if got := plan(fpush, observe(fpush)); len(got) != 2 || got[0].Address != "member/cpull/join" || got[0].Action != planner.Update {
		t.Fatalf("plan of the switch to Push: %s", stepText(got))
	}
	if err := d.Join(ctx, fpush, "cpull"); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitMemberReady(ctx, fpush, "cpull"); err != nil {
		t.Fatal(err)
	}
	w = observe(fpush)
	if km := w.Karmada.Members["cpull"]; km == nil || km.SyncMode != "Push" || km.Ready != "True" {
		t.Errorf("member after the switch to Push: %+v", km)
	}
	if _, ok := w.Clusters["cpull"].Releases[planner.ReleaseKey(planner.AgentNamespace, planner.AgentRelease)]; ok {
		t.Error("the agent release is still there after the switch to Push")
	}
	if left := plan(fpush, w); len(left) != 0 {
		t.Errorf("after the switch to Push the plan is not empty: %s", stepText(left))
	}

	f2 := fleetYAML("")
	if err := d.Unjoin(ctx, f2, "cpull"); err != nil {
		t.Fatal(err)
	}
	kc, err := karmadaclient.NewForConfig(mustKarmadaConfig(t, access))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.ClusterV1alpha1().Clusters().Get(ctx, "cpull", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster cpull after unjoin: %v", err)
	}
	rels, err := mustHelm(t, pull).List(ctx, planner.AgentNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 0 {
		t.Errorf("releases left in cpull: %v", rels)
	}
	if left := plan(f2, observe(f2)); len(left) != 0 {
		t.Errorf("after the unjoin the plan is not empty: %s", stepText(left))
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
