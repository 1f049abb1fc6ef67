package labworld

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/helm"
)

// TestLabKarmadaChart installs the Karmada chart from the lab's repository, with reconcile's
// values, into an LKE cluster of the lab, waiting for every Deployment (the Kubelet stand-in)
// and hook Job (the Karmada player), and reaches the Karmada API on the cluster's address
// and node port, as reconcile does.
func TestLabKarmadaChart(t *testing.T) {
	needBinaries(t)
	if _, err := cluster.FindKarmadaBinaries(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	t0 := time.Now()
	l, err := Up(context.Background(), Options{
		Dir: t.TempDir(), LinodeListen: "127.0.0.1:0", ChartsListen: "127.0.0.1:0",
		Addresses: AddressRange{First: net.IPv4(127, 0, 0, 55), Last: net.IPv4(127, 0, 0, 59)},
		Karmada:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Up took %s", time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() { _ = l.Close() })
	ctx := context.Background()

	_, kubeconfig := createCluster(t, l, "cluster-manager", 1)
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	address, _, err := net.SplitHostPort(strings.TrimPrefix(rc.Host, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	f := &spec.Fleet{Manager: spec.Manager{Name: "cluster-manager", Karmada: spec.Karmada{
		Chart: spec.ChartSource{Repo: l.ChartsURL, Name: "karmada", Version: l.KarmadaVersion}, APINodePort: 32443}}}
	spec.ApplyDefaults(f)
	ch, err := helm.LoadChart(ctx, f.Manager.Karmada.Chart, "karmada", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hc, err := helm.New(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	name, ns := f.Manager.Karmada.Release, f.Manager.Karmada.Namespace
	start := time.Now()
	if _, err := hc.Ensure(ctx, helm.Release{Name: name, Namespace: ns, Chart: ch, Values: planner.KarmadaValues(f, plan.Known(address)),
		Timeout: 4 * time.Minute, Wait: true, CreateNamespace: true}); err != nil {
		t.Fatalf("helm install with wait: %v", err)
	}
	t.Logf("Karmada chart installed (Wait) in %s", time.Since(start).Round(time.Millisecond))

	kube := kubernetes.NewForConfigOrDie(rc)
	deploys, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deploys.Items) == 0 {
		t.Fatal("the chart made no Deployment")
	}
	for _, d := range deploys.Items {
		if d.Spec.Replicas != nil && d.Status.AvailableReplicas != *d.Spec.Replicas {
			t.Errorf("Deployment %s: %d of %d available", d.Name, d.Status.AvailableReplicas, *d.Spec.Replicas)
		}
	}
	// The Karmada API answers on the manager's address and node port, verified by the chart's CA.
	s, err := kube.CoreV1().Secrets(ns).Get(ctx, name+"-kubeconfig", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kcfg, err := clientcmd.Load(s.Data["kubeconfig"])
	if err != nil {
		t.Fatal(err)
	}
	external := "https://" + net.JoinHostPort(address, "32443")
	for _, c := range kcfg.Clusters {
		c.Server = external
	}
	krc, err := clientcmd.NewDefaultClientConfig(*kcfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	karmada := kubernetes.NewForConfigOrDie(krc)
	waitFor(t, 2*time.Minute, "Karmada /readyz at "+external, func(ctx context.Context) (bool, error) {
		body, err := karmada.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return false, err
		}
		return string(body) == "ok", nil
	})
	t.Logf("Karmada API ready %s after the install began", time.Since(start).Round(time.Millisecond))

	waitFor(t, 2*time.Minute, "Karmada Clusters served by its aggregated API server", func(ctx context.Context) (bool, error) {
		_, err := karmada.Discovery().RESTClient().Get().AbsPath("/apis/cluster.karmada.io/v1alpha1/clusters").DoRaw(ctx)
		return err == nil, err
	})
	if err := l.pids.recordChildren(); err != nil {
		t.Fatal(err)
	}
	procs, err := readPIDFile(pidFilePath(l.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range procs {
		rss, comm := rssOf(p.PID)
		t.Logf("pid %d %s: RSS %d MiB", p.PID, comm, rss>>20)
		total += rss
	}
	t.Logf("lab processes (etcd, one cluster, Karmada): RSS %d MiB in all", total>>20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.alive() {
			t.Errorf("process %d still runs after Close", p.PID)
		}
	}
	if listening(net.JoinHostPort(address, "32443")) {
		t.Error("the Karmada API still listens after Close")
	}
}

// rssOf reads a process's resident set size and command name from /proc.
func rssOf(pid int) (int64, string) {
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, strings.TrimSpace(string(comm))
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, strings.TrimSpace(string(comm))
		}
	}
	return 0, strings.TrimSpace(string(comm))
}
