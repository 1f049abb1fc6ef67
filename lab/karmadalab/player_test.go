package karmadalab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clusterv1alpha1 "github.com/karmada-io/karmada/pkg/apis/cluster/v1alpha1"
	karmadaclient "github.com/karmada-io/karmada/pkg/generated/clientset/versioned"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/lab/charts"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/state/helm"
)

// noPodControllers keeps a lab cluster from creating Pods: no Kubelet stand-in runs here to play them
// (lab/labworld runs the ReplicaSet controller, its stand-in plays those Pods).
var noPodControllers = []string{"--controllers", "*,-replicaset-controller,-statefulset-controller,-daemonset-controller,-job-controller,-cronjob-controller"}

// startPlayedCluster starts a lab cluster and a Player serving it; the Player is stopped (and
// with it every process it started) before the cluster.
func startPlayedCluster(t *testing.T, etcd *cluster.Etcd, bins cluster.Binaries, kbins cluster.KarmadaBinaries, name, address string) (*cluster.Cluster, *Player) {
	t.Helper()
	c, err := cluster.StartCluster(context.Background(), cluster.ClusterOptions{
		Name: name, Dir: filepath.Join(t.TempDir(), name), Address: address, Etcd: etcd, Bins: bins,
		Nodes:                      []cluster.NodeSpec{{Name: name + "-node", ExternalIP: address}},
		ExtraControllerManagerArgs: noPodControllers,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p := &Player{Etcd: etcd, Bins: bins, Karmada: kbins, Dir: testDir(t, "player-"+name),
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	go func() { done <- p.Serve(ctx, ClusterRef{Name: name, Address: address, RESTConfig: c.RESTConfig()}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("Serve did not return within 60s of cancel")
		}
		if pids := p.PIDs(); len(pids) != 0 {
			t.Errorf("PIDs after Serve returned: %v", pids)
		}
	})
	return c, p
}

// waitStopped waits until the Player runs no process and every pid in before has exited.
func waitStopped(t *testing.T, p *Player, before []int, what string) {
	t.Helper()
	waitFor(t, 60*time.Second, what+" stopped", func(context.Context) (bool, error) {
		if now := p.PIDs(); len(now) != 0 {
			return false, fmt.Errorf("still running: %v", now)
		}
		return true, nil
	})
	for _, pid := range before {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s: process %d still runs", what, pid)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func karmadaChart(t *testing.T) *chart.Chart {
	t.Helper()
	repo, err := charts.BuildRepo(t.TempDir(), charts.RepoOptions{KarmadaVersion: cluster.KarmadaVersion})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(repo.ChartPath(charts.ChartKarmada))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// hostValues are the values of a host-mode install on NodePort 32443 with certs.auto.hosts =
// the chart's defaults plus extra.
func hostValues(extra ...string) map[string]any {
	hosts := []any{"kubernetes.default.svc", "*.etcd.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}",
		"*.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}", "*.{{ .Release.Namespace }}.svc", "localhost", "127.0.0.1"}
	for _, h := range extra {
		hosts = append(hosts, h)
	}
	return map[string]any{
		"installMode": "host",
		"apiServer":   map[string]any{"serviceType": "NodePort", "nodePort": 32443},
		"certs":       map[string]any{"mode": "auto", "auto": map[string]any{"hosts": hosts}},
	}
}

// karmadaClientFromSecret builds a Karmada client from the release's <R>-kubeconfig Secret with
// its server rewritten to server, as reconcile does.
func karmadaClientFromSecret(t *testing.T, ctx context.Context, kube kubernetes.Interface, server string) (karmadaclient.Interface, string) {
	t.Helper()
	s, err := kube.CoreV1().Secrets("karmada-system").Get(ctx, "karmada-kubeconfig", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(s.Data["kubeconfig"])
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	for _, c := range cfg.Clusters {
		stored = c.Server
		c.Server = server
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	rc.Timeout = 5 * time.Second
	kc, err := karmadaclient.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return kc, stored
}

func TestPlayerKarmadaChart(t *testing.T) {
	etcd, bins, kbins := labEtcd(t)
	ctx := context.Background()
	ch := karmadaChart(t)

	const mgrIP, pullIP = "127.0.0.34", "127.0.0.35"
	mgr, mgrPlayer := startPlayedCluster(t, etcd, bins, kbins, "mgr", mgrIP)
	mgrKube := kubernetes.NewForConfigOrDie(mgr.RESTConfig())
	hc, err := helm.New(mgr.RESTConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	release := helm.Release{Name: "karmada", Namespace: "karmada-system", Chart: ch, Values: hostValues(mgrIP),
		Timeout: 3 * time.Minute, CreateNamespace: true}
	start := time.Now()
	if _, err := hc.Ensure(ctx, release); err != nil {
		t.Fatalf("helm install (host): %v", err)
	}
	t.Logf("helm install done in %s", time.Since(start).Round(time.Millisecond))
	for _, name := range []string{"karmada-cert", "karmada-webhook-cert", "karmada-kubeconfig"} {
		if _, err := mgrKube.CoreV1().Secrets("karmada-system").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
	}
	external := "https://" + net.JoinHostPort(mgrIP, "32443")
	kc, stored := karmadaClientFromSecret(t, ctx, mgrKube, external)
	if want := "https://karmada-apiserver.karmada-system.svc.cluster.local:5443"; stored != want {
		t.Errorf("stored kubeconfig server %q, want %q", stored, want)
	}
	waitFor(t, 120*time.Second, "Clusters listed through "+external, func(ctx context.Context) (bool, error) {
		_, err := kc.ClusterV1alpha1().Clusters().List(ctx, metav1.ListOptions{})
		return err == nil, err
	})

	t.Run("agent", func(t *testing.T) {
		member, memberPlayer := startPlayedCluster(t, etcd, bins, kbins, "pull", pullIP)
		certs, err := mgrKube.CoreV1().Secrets("karmada-system").Get(ctx, "karmada-cert", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mh, err := helm.New(member.RESTConfig(), nil)
		if err != nil {
			t.Fatal(err)
		}
		agent := helm.Release{Name: "karmada-agent", Namespace: "karmada-system", Chart: ch, Timeout: 2 * time.Minute, CreateNamespace: true,
			Values: map[string]any{
				"installMode": "agent",
				"agent": map[string]any{
					"clusterName":     "pull",
					"clusterEndpoint": member.Endpoint(),
					"kubeconfig": map[string]any{
						"caCrt": string(certs.Data["server-ca.crt"]), "crt": string(certs.Data["karmada.crt"]),
						"key": string(certs.Data["karmada.key"]), "server": external,
					},
				},
			}}
		if _, err := mh.Ensure(ctx, agent); err != nil {
			t.Fatalf("helm install (agent): %v", err)
		}
		waitFor(t, 120*time.Second, "Pull cluster registered and Ready", func(ctx context.Context) (bool, error) {
			c, err := kc.ClusterV1alpha1().Clusters().Get(ctx, "pull", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if c.Spec.SyncMode != clusterv1alpha1.Pull || c.Spec.APIEndpoint != member.Endpoint() {
				t.Fatalf("cluster pull: syncMode %q, apiEndpoint %q", c.Spec.SyncMode, c.Spec.APIEndpoint)
			}
			return meta.IsStatusConditionTrue(c.Status.Conditions, clusterv1alpha1.ClusterConditionReady), nil
		})
		agentPIDs := memberPlayer.PIDs()
		if len(agentPIDs) != 1 {
			t.Errorf("member player runs %v, want one karmada-agent", agentPIDs)
		}
		if err := mh.Uninstall(ctx, "karmada-agent", "karmada-system", 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		waitStopped(t, memberPlayer, agentPIDs, "karmada-agent")
	})

	// Uninstall: the post-delete hook removes the generated secrets and the control plane stops.
	hostPIDs := mgrPlayer.PIDs()
	if len(hostPIDs) != 6 {
		t.Errorf("manager player runs %v, want the 6 control plane components", hostPIDs)
	}
	if err := hc.Uninstall(ctx, "karmada", "karmada-system", 3*time.Minute); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	waitFor(t, 60*time.Second, "karmada-apiserver gone from "+external, func(ctx context.Context) (bool, error) {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(mgrIP, "32443"), time.Second)
		if err != nil {
			return true, nil
		}
		conn.Close()
		return false, nil
	})
	waitStopped(t, mgrPlayer, hostPIDs, "karmada control plane")
	if _, err := mgrKube.CoreV1().Secrets("karmada-system").Get(ctx, "karmada-cert", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("karmada-cert after uninstall: %v, want NotFound", err)
	}

	// Without the node IP among the certificate's hosts the API is reachable but TLS fails, as on
	// Linode.
	release.Values = hostValues()
	if _, err := hc.Ensure(ctx, release); err != nil {
		t.Fatalf("helm install without the node IP: %v", err)
	}
	kc, _ = karmadaClientFromSecret(t, ctx, mgrKube, external)
	var tlsErr error
	waitFor(t, 120*time.Second, "a TLS error from "+external, func(ctx context.Context) (bool, error) {
		_, err := kc.ClusterV1alpha1().Clusters().List(ctx, metav1.ListOptions{})
		if err == nil {
			t.Fatal("Clusters listed although the node IP is not among the certificate's hosts")
		}
		tlsErr = err
		return strings.Contains(err.Error(), "certificate"), err
	})
	t.Logf("as expected: %v", tlsErr)
	if !strings.Contains(tlsErr.Error(), mgrIP) {
		t.Errorf("TLS error %q does not name the address %s", tlsErr, mgrIP)
	}
}
