package cluster

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func parseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestWritePKI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := net.ParseIP("127.0.0.7")
	endpoint := "https://127.0.0.7:6443"
	f, err := writePKI(dir, "eu", addr, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(f.caPEM) {
		t.Fatal("CA PEM does not parse")
	}

	serving := parseCert(t, f.servingCert)
	for _, host := range []string{"127.0.0.7", "127.0.0.1", "localhost", "kubernetes.default.svc", "10.0.0.1"} {
		if _, err := serving.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("serving cert for %s: %v", host, err)
		}
	}
	if _, err := serving.Verify(x509.VerifyOptions{DNSName: "127.0.0.8", Roots: pool}); err == nil {
		t.Error("serving cert verifies for 127.0.0.8, an address it was not issued for")
	}

	cfg, err := clientcmd.Load(f.adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("admin kubeconfig has no complete current context: %+v", cfg)
	}
	cl := cfg.Clusters[ctx.Cluster]
	if cl.Server != endpoint || cl.InsecureSkipTLSVerify || string(cl.CertificateAuthorityData) != string(f.caPEM) {
		t.Errorf("admin kubeconfig cluster = %s insecure=%v, want %s verified by the cluster CA", cl.Server, cl.InsecureSkipTLSVerify, endpoint)
	}
	block, _ := pem.Decode(cfg.AuthInfos[ctx.AuthInfo].ClientCertificateData)
	if block == nil {
		t.Fatal("admin kubeconfig has no client certificate")
	}
	admin, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin client cert: %v", err)
	}
	if !slices.Contains(admin.Subject.Organization, "system:masters") {
		t.Errorf("admin organizations = %v, want system:masters", admin.Subject.Organization)
	}

	if fi, err := os.Stat(filepath.Join(dir, "pki")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("pki dir mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStartClusterRejectsBadOptions(t *testing.T) {
	t.Parallel()
	good := ClusterOptions{
		Name: "eu", Dir: t.TempDir(), Address: "127.0.0.2", Etcd: &Etcd{clientURL: "http://127.0.0.1:1"},
		Bins: Binaries{KubeAPIServer: "/nonexistent/kube-apiserver", KubeControllerManager: "/nonexistent/kcm"},
	}
	tests := []struct {
		name   string
		mutate func(*ClusterOptions)
		want   string
	}{
		{"not loopback", func(o *ClusterOptions) { o.Address = "192.0.2.1" }, "not a loopback"},
		{"bad name", func(o *ClusterOptions) { o.Name = "EU_1" }, "DNS label"},
		{"no etcd", func(o *ClusterOptions) { o.Etcd = nil }, "no Etcd"},
		{"no dir", func(o *ClusterOptions) { o.Dir = "" }, "no Dir"},
		{"missing binary", func(o *ClusterOptions) {}, "kube-apiserver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := good
			opts.Dir = t.TempDir()
			tt.mutate(&opts)
			c, err := StartCluster(context.Background(), opts)
			if err == nil {
				c.Stop()
				t.Fatal("StartCluster succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
