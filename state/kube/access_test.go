package kube

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// A kubeconfig with two contexts, one of them referring to a CA file: what a k3d user has.
func writeKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["one"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443", CertificateAuthority: ca}
	cfg.Clusters["two"] = &clientcmdapi.Cluster{Server: "https://127.0.0.2:6443"}
	cfg.AuthInfos["one"] = &clientcmdapi.AuthInfo{Token: "token-one"}
	cfg.AuthInfos["two"] = &clientcmdapi.AuthInfo{Token: "token-two"}
	cfg.Contexts["k3d-one"] = &clientcmdapi.Context{Cluster: "one", AuthInfo: "one"}
	cfg.Contexts["k3d-two"] = &clientcmdapi.Context{Cluster: "two", AuthInfo: "two"}
	cfg.CurrentContext = "k3d-two"
	path := filepath.Join(dir, "config")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubeconfigOfExistingClusterIsMinifiedAndFlattened(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeKubeconfig(t, dir)
	store, err := state.OpenStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	f := &spec.Fleet{Manager: spec.Manager{Name: "manager", Cluster: spec.Cluster{Kubeconfig: &spec.Kubeconfig{Path: path, Context: "k3d-one"}}}}
	data, err := Access{Store: store}.For(f).Kubeconfig("manager")
	if err != nil {
		t.Fatal(err)
	}
	if s := string(data); strings.Contains(s, "token-two") || strings.Contains(s, "127.0.0.2") || strings.Contains(s, "ca.crt") {
		t.Fatalf("the kubeconfig carries another context's credentials or a file reference:\n%s", s)
	}
	cfg, err := Access{Store: store}.For(f).RESTConfig("manager")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "token-one" || len(cfg.CAData) == 0 || cfg.Timeout == 0 {
		t.Fatalf("rest config = host %q token %q CA %d bytes timeout %s", cfg.Host, cfg.BearerToken, len(cfg.CAData), cfg.Timeout)
	}

	f.Manager.Kubeconfig.Context = "k3d-three"
	if _, err := (Access{Store: store}).For(f).Kubeconfig("manager"); err == nil || !strings.Contains(err.Error(), `no context "k3d-three"`) {
		t.Fatalf("unknown context: %v", err)
	}
}

func TestKubeconfigOfLKEClusterComesFromTheStore(t *testing.T) {
	t.Parallel()
	store, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &spec.Fleet{Manager: spec.Manager{Name: "manager", Cluster: spec.Cluster{Region: "eu-west"}}}
	a := Access{Store: store}
	if _, err := a.For(f).Kubeconfig("manager"); !errors.Is(err, ErrNoKubeconfig) {
		t.Fatalf("before the kubeconfig is stored: %v, want ErrNoKubeconfig", err)
	}
	if _, err := a.KarmadaRESTConfig(); !errors.Is(err, ErrNoKubeconfig) {
		t.Fatalf("karmada before its kubeconfig is stored: %v, want ErrNoKubeconfig", err)
	}
	if err := store.WriteFile(ClusterKubeconfig("manager"), []byte("stored")); err != nil {
		t.Fatal(err)
	}
	// A cluster that left the fleet is still found in the store.
	for _, name := range []string{"manager", "gone"} {
		if name == "gone" {
			if err := store.WriteFile(ClusterKubeconfig("gone"), []byte("stored")); err != nil {
				t.Fatal(err)
			}
		}
		if data, err := a.For(f).Kubeconfig(name); err != nil || string(data) != "stored" {
			t.Fatalf("%s: %q, %v", name, data, err)
		}
	}
}

func TestNodeIPsAreExternalOfReadyNodesSorted(t *testing.T) {
	t.Parallel()
	node := func(ready corev1.ConditionStatus, addrs ...corev1.NodeAddress) corev1.Node {
		return corev1.Node{Status: corev1.NodeStatus{Addresses: addrs,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
	}
	ext := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip}
	}
	internal := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
	}
	got := nodeIPs([]corev1.Node{
		node(corev1.ConditionTrue, internal("10.0.0.9"), ext("198.51.100.9")),
		node(corev1.ConditionTrue, internal("10.0.0.2")), // no external: the internal one
		node(corev1.ConditionFalse, ext("198.51.100.1")), // not ready: left out
		node(corev1.ConditionTrue, ext("not-an-ip")),
	})
	if strings.Join(got, ",") != "10.0.0.2,198.51.100.9" {
		t.Fatalf("nodeIPs = %v", got)
	}
	if Host("https://198.51.100.9:6443") != "198.51.100.9" || Host("::bad") != "" {
		t.Fatal("Host")
	}
}
