package cluster

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// labBinaries returns the built binaries, skips the test when they are not built, or fails it when
// RECONCILE_LAB_REQUIRED is set (CI sets it after building them).
func labBinaries(t *testing.T) Binaries {
	t.Helper()
	bins, err := FindBinaries()
	if err == nil {
		return bins
	}
	if os.Getenv("RECONCILE_LAB_REQUIRED") != "" {
		t.Fatalf("RECONCILE_LAB_REQUIRED is set: %v", err)
	}
	t.Skipf("skipping lab test: %v (set RECONCILE_LAB_REQUIRED=1 to make this a failure)", err)
	return Binaries{}
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := PollUntil(ctx, timeout, what, nil, cond); err != nil {
		t.Fatal(err)
	}
}

func TestTwoClusters(t *testing.T) {
	bins := labBinaries(t)
	ctx := context.Background()
	dir := t.TempDir()

	etcdStart := time.Now()
	etcd, err := StartEtcd(ctx, dir+"/etcd", bins)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd at %s healthy in %s", etcd.Endpoint(), time.Since(etcdStart).Round(10*time.Millisecond))
	t.Cleanup(func() {
		if err := etcd.Stop(); err != nil {
			t.Error(err)
		}
	})

	members := []struct {
		name, address string
		heartbeat     time.Duration
	}{
		{"eu", "127.0.0.2", time.Second},
		{"ap", "127.0.0.3", 0},
	}
	clusters := map[string]*Cluster{}
	for _, m := range members {
		start := time.Now()
		c, err := StartCluster(ctx, ClusterOptions{
			Name: m.name, Dir: dir + "/" + m.name, Address: m.address, Etcd: etcd, Bins: bins,
			HeartbeatInterval: m.heartbeat,
			Nodes: []NodeSpec{
				{Name: m.name + "-node-1", ExternalIP: m.address},
				{Name: m.name + "-node-2", ExternalIP: m.address, InternalIP: "127.0.0.1"},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.Stop(); err != nil {
				t.Error(err)
			}
		})
		rss := map[string]int64{}
		for name, p := range map[string]*Process{"kube-apiserver": c.apiServer, "kube-controller-manager": c.controllerManager} {
			if rss[name], err = p.RSSBytes(); err != nil {
				t.Error(err)
			}
		}
		t.Logf("cluster %s at %s ready in %s; RSS kube-apiserver %d MiB, kube-controller-manager %d MiB",
			m.name, c.Endpoint(), time.Since(start).Round(100*time.Millisecond), rss["kube-apiserver"]>>20, rss["kube-controller-manager"]>>20)
		clusters[m.name] = c
	}

	// A group, so the parallel member subtests finish before the ones below stop a cluster.
	t.Run("members", func(t *testing.T) {
		for _, m := range members {
			c := clusters[m.name]
			t.Run(m.name, func(t *testing.T) {
				t.Parallel()
				if !strings.HasPrefix(c.Endpoint(), "https://"+m.address+":") {
					t.Errorf("Endpoint() = %s, want https://%s:<port>", c.Endpoint(), m.address)
				}
				cfg, err := clientcmd.RESTConfigFromKubeConfig(c.Kubeconfig())
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Insecure || len(cfg.CAData) == 0 {
					t.Fatalf("kubeconfig does not verify the server: insecure=%v, CA %d bytes", cfg.Insecure, len(cfg.CAData))
				}
				client := kubernetes.NewForConfigOrDie(cfg)

				t.Run("version", func(t *testing.T) {
					v, err := client.Discovery().ServerVersion()
					if err != nil {
						t.Fatal(err)
					}
					if v.GitVersion != KubernetesVersion {
						t.Errorf("server version = %s, want %s (built without version ldflags?)", v.GitVersion, KubernetesVersion)
					}
				})

				t.Run("namespaces", func(t *testing.T) {
					nss, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
					if err != nil {
						t.Fatal(err)
					}
					seen := map[string]bool{}
					for _, ns := range nss.Items {
						seen[ns.Name] = true
					}
					for _, want := range []string{"default", "kube-system", "kube-public"} {
						if !seen[want] {
							t.Errorf("namespace %s missing; have %v", want, seen)
						}
					}
				})

				t.Run("nodes", func(t *testing.T) {
					nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
					if err != nil {
						t.Fatal(err)
					}
					got := map[string]string{}
					for _, n := range nodes.Items {
						if !nodeReady(&n) {
							t.Errorf("node %s not Ready: %+v", n.Name, n.Status.Conditions)
						}
						got[n.Name] = nodeAddress(&n, corev1.NodeExternalIP)
					}
					want := map[string]string{m.name + "-node-1": m.address, m.name + "-node-2": m.address}
					if len(got) != len(want) {
						t.Errorf("nodes = %v, want %v", got, want)
					}
					for name, ip := range want {
						if got[name] != ip {
							t.Errorf("node %s ExternalIP = %q, want %q", name, got[name], ip)
						}
					}
				})

				t.Run("service account token secret", func(t *testing.T) {
					sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "lab-reader", Namespace: "default"}}
					if _, err := client.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
						t.Fatal(err)
					}
					secret := &corev1.Secret{
						ObjectMeta: metav1.ObjectMeta{Name: "lab-reader-token", Namespace: "default",
							Annotations: map[string]string{corev1.ServiceAccountNameKey: "lab-reader"}},
						Type: corev1.SecretTypeServiceAccountToken,
					}
					if _, err := client.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
						t.Fatal(err)
					}
					var filled *corev1.Secret
					waitFor(t, 30*time.Second, "token and ca.crt in the token Secret", func(ctx context.Context) (bool, error) {
						s, err := client.CoreV1().Secrets("default").Get(ctx, "lab-reader-token", metav1.GetOptions{})
						if err != nil {
							return false, err
						}
						filled = s
						return len(s.Data[corev1.ServiceAccountTokenKey]) > 0 && len(s.Data[corev1.ServiceAccountRootCAKey]) > 0, nil
					})
					if string(filled.Data[corev1.ServiceAccountRootCAKey]) != string(c.CACert()) {
						t.Error("token Secret's ca.crt is not the cluster's CA")
					}
					// The token must authenticate, as the service account, against a server verified by ca.crt.
					tokenClient := kubernetes.NewForConfigOrDie(&rest.Config{
						Host:            c.Endpoint(),
						BearerToken:     string(filled.Data[corev1.ServiceAccountTokenKey]),
						TLSClientConfig: rest.TLSClientConfig{CAData: filled.Data[corev1.ServiceAccountRootCAKey]},
					})
					review, err := tokenClient.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if got, want := review.Status.UserInfo.Username, "system:serviceaccount:default:lab-reader"; got != want {
						t.Errorf("token authenticates as %q, want %q", got, want)
					}
				})
			})
		}
	})

	t.Run("isolation", func(t *testing.T) {
		eu := kubernetes.NewForConfigOrDie(clusters["eu"].RESTConfig())
		ap := kubernetes.NewForConfigOrDie(clusters["ap"].RESTConfig())
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-eu", Namespace: "default"}}
		if _, err := eu.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ap.CoreV1().ConfigMaps("default").Get(ctx, "only-in-eu", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ap sees eu's ConfigMap: err = %v", err)
		}
		if _, err := ap.CoreV1().Nodes().Get(ctx, "eu-node-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ap sees eu's node: err = %v", err)
		}
		// Each cluster has its own CA: eu's admin credentials must not be accepted by ap.
		cross := clusters["eu"].RESTConfig()
		cross.Host = clusters["ap"].Endpoint()
		cross.CAData = clusters["ap"].CACert()
		_, err := kubernetes.NewForConfigOrDie(cross).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("ap accepted eu's admin certificate: err = %v", err)
		}
	})

	t.Run("heartbeat", func(t *testing.T) {
		client := kubernetes.NewForConfigOrDie(clusters["eu"].RESTConfig())
		first := map[string]time.Time{}
		waitFor(t, 15*time.Second, "node heartbeats to advance", func(ctx context.Context) (bool, error) {
			nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			advanced := 0
			for _, n := range nodes.Items {
				hb := readyCondition(&n).LastHeartbeatTime.Time
				if _, ok := first[n.Name]; !ok {
					first[n.Name] = hb
				} else if hb.After(first[n.Name]) && nodeReady(&n) {
					advanced++
				}
			}
			return advanced == len(nodes.Items) && advanced > 0, nil
		})
	})

	t.Run("stop frees the port", func(t *testing.T) {
		c := clusters["ap"]
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		host := strings.TrimPrefix(c.Endpoint(), "https://")
		l, err := net.Listen("tcp", host)
		if err != nil {
			t.Fatalf("port of stopped cluster still taken: %v", err)
		}
		l.Close()
		if err := c.apiServer.Exited(); err == nil {
			t.Error("kube-apiserver still running after Stop")
		}
		if err := c.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return &corev1.NodeCondition{}
}

func nodeReady(n *corev1.Node) bool { return readyCondition(n).Status == corev1.ConditionTrue }

func nodeAddress(n *corev1.Node, typ corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == typ {
			return a.Address
		}
	}
	return ""
}
