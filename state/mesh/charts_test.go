package mesh

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/lab/charts"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/helm"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// playKubelet marks every pod of istio-system Running and Ready, as a kubelet would once its
// containers pass their probes, until ctx ends: lab clusters run no kubelet.
func playKubelet(ctx context.Context, t *testing.T, c *cluster.Cluster) {
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		pods, err := cs.CoreV1().Pods(MeshNamespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.Status.Phase == corev1.PodRunning {
					continue
				}
				now := metav1.Now()
				p.Status.Phase, p.Status.StartTime = corev1.PodRunning, &now
				p.Status.Conditions = []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
					{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
					{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				}
				if _, err := cs.CoreV1().Pods(MeshNamespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) {
					t.Logf("kubelet stand-in: %v", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// TestMeshWithLabCharts runs the mesh layer with the real Helm client and Istio's own charts
// served by the lab's Helm repository: the reader account, its RBAC and the Gateway CRD come
// from the charts, and istiod is waited on until Available.
func TestMeshWithLabCharts(t *testing.T) {
	dir := t.TempDir()
	members := []string{"eu", "ap"}
	cls := startClusters(t, dir, "charts", 85, members...)
	if err := os.WriteFile(filepath.Join(dir, "hub.kubeconfig"), cls["eu"].Kubeconfig(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	repo, err := charts.BuildRepo(filepath.Join(dir, "repo"), charts.RepoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	url, err := charts.Serve(ctx, "127.0.0.1:0", repo)
	if err != nil {
		t.Fatal(err)
	}
	kubeletCtx, stopKubelets := context.WithCancel(ctx)
	done := make(chan struct{}, len(cls))
	for _, c := range cls {
		go func() { playKubelet(kubeletCtx, t, c); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		stopKubelets()
		for range cls {
			<-done
		}
	})

	store, err := state.OpenStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	access := kube.Access{Store: store}
	count := &labtest.WriteCounter{}
	h := &harness{store: store, access: access, count: count,
		releases: helm.Observer{Access: access, Log: quiet, Namespaces: []string{MeshNamespace}},
		obs:      Observer{Access: access, Store: store, WrapTransport: count.Wrap}}
	f := parseFleetCharts(t, dir, url, members...)
	h.driver = New(Config{Access: access.For(f), Store: store, Log: quiet, Helm: HelmSDK(quiet), ChartCache: filepath.Join(dir, "cache"),
		Timeout: 2 * time.Minute, Now: h.now, WrapTransport: count.Wrap})

	// The chart source as the planner gives it: fleet.yaml's mesh.chart with the mesh version.
	p := meshPlan(labMembers(cls, members...), spec.ChartSource{Repo: url, Version: charts.DefaultIstioVersion}, 2*time.Hour)
	h.walk(ctx, t, p)
	w := h.observe(ctx, t, f)
	checkMesh(t, w, labMembers(cls, members...))
	for _, m := range members {
		if got := len(w.Clusters[m].Releases); got != 3 {
			t.Errorf("%s: %d releases observed, want 3", m, got)
		}
		for _, r := range w.Clusters[m].Releases {
			if r.ChartVersion != charts.DefaultIstioVersion || r.Status != "deployed" {
				t.Errorf("%s: release %s chart %s %s, %s", m, r.Name, r.Chart, r.ChartVersion, r.Status)
			}
		}
	}
	count.Reset()
	h.walk(ctx, t, p)
	if n := count.Writes(); len(n) != 0 {
		t.Errorf("second pass: %d writes: %v", len(n), n)
	}
	// Istio's validating webhooks (base's istiod-default-validator, istiod's
	// istio-validator-istio-system) see every networking.istio.io write, and no istiod answers
	// them in the lab: installed with failurePolicy Ignore, they must let a Gateway through at
	// once, not after the webhook's 10 s timeout.
	for _, m := range members {
		dyn, err := kube.Dynamic(cls[m].RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = dyn.Resource(GatewayResource).Namespace(MeshNamespace).Create(ctx, gatewayObject(MeshNamespace, "admission-probe", nil),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		took := time.Since(start)
		t.Logf("%s: a Gateway admitted in %s", m, took.Round(time.Millisecond))
		if err != nil || took > 3*time.Second {
			t.Errorf("%s: a Gateway create took %s: %v", m, took, err)
		}
	}
	// The charts' reader RBAC is what the remote secrets carry: read, never write.
	for _, pair := range [][2]string{{"eu", "ap"}, {"ap", "eu"}} {
		x, y := pair[0], pair[1]
		s, err := kubernetes.NewForConfigOrDie(cls[y].RESTConfig()).CoreV1().Secrets(MeshNamespace).Get(ctx, RemoteSecretName(x), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[x])
		if err != nil {
			t.Fatal(err)
		}
		cfg.WarningHandler = rest.NoWarnings{}
		remote := kubernetes.NewForConfigOrDie(cfg)
		pods, err := remote.CoreV1().Pods(MeshNamespace).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			t.Errorf("%s's secret in %s: istiod pods not listed: %v", x, y, err)
		}
		if _, err := remote.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("%s's secret in %s: nodes: %v", x, y, err)
		}
		_, err = remote.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s's secret in %s: creating a ConfigMap gave %v, want 403", x, y, err)
		}
	}
}
