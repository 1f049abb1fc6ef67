package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// memberAPI answers the reads the observers make of a cluster that has nothing of the fleet
// yet (kube-system, nodes, empty secret lists, no istio-system or karmada-cluster), each
// after latency, as a kube-apiserver across a network would.
func memberAPI(tb testing.TB, name string, latency time.Duration) *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		w.Header().Set("Content-Type", "application/json")
		p := r.URL.Path
		switch {
		case p == "/api/v1/namespaces/kube-system":
			fmt.Fprintf(w, `{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"kube-system","uid":"uid-%s"}}`, name)
		case p == "/api/v1/nodes":
			fmt.Fprint(w, `{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":[]}`)
		case strings.HasSuffix(p, "/secrets"):
			fmt.Fprint(w, `{"kind":"SecretList","apiVersion":"v1","metadata":{},"items":[]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		}
	}))
	// An ECDSA certificate, as kube-apiservers often have: the servers run in this process,
	// and httptest's RSA key would make their handshakes, not the observers, what is measured.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	// HTTP/2, as kube-apiservers speak it: concurrent reads of one cluster share a connection.
	s.EnableHTTP2 = true
	s.StartTLS()
	return s
}

// fakeMembersFleet writes a fleet of existing clusters, a manager and n members, each behind
// its own memberAPI, and returns it read through spec.Load.
func fakeMembersFleet(tb testing.TB, n int, latency time.Duration) *spec.Fleet {
	tb.Helper()
	dir := tb.TempDir()
	names := []string{"manager"}
	for i := range n {
		names = append(names, fmt.Sprintf("m%02d", i))
	}
	// One kubeconfig file per cluster, as fleets give them.
	kcPath := func(name string) string { return filepath.Join(dir, "kubeconfig-"+name) }
	for _, name := range names {
		s := memberAPI(tb, name, latency)
		tb.Cleanup(s.Close)
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.TLS.Certificates[0].Certificate[0]})
		kc := clientcmdapi.NewConfig()
		kc.Clusters[name] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: ca}
		kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: "token-" + name}
		kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
		if err := clientcmd.WriteToFile(*kc, kcPath(name)); err != nil {
			tb.Fatal(err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: reconcile.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: bench\n")
	fmt.Fprintf(&b, "manager:\n  name: manager\n  kubeconfig:\n    path: %s\n    context: manager\n", kcPath("manager"))
	fmt.Fprintf(&b, "  karmada:\n    chart:\n      repo: https://charts.example\n      name: karmada\n      version: v1.18.2\n    apiNodePort: 32443\n")
	fmt.Fprintf(&b, "joinMode: Push\nmembers:\n")
	for i, name := range names[1:] {
		fmt.Fprintf(&b, "  - name: %s\n    kubeconfig:\n      path: %s\n      context: %s\n    network: network%d\n", name, kcPath(name), name, i)
	}
	fmt.Fprintf(&b, "mesh:\n  version: 1.30.3\n  meshID: mesh1\n")
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	f, err := spec.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// BenchmarkObserveMembers is the observation of a no-op pass at 3 and at 30 members, each
// member a fake API server answering after 5 ms: with members observed in parallel the
// pass at 30 costs about what it costs at 3 (issue 13: within 1.5x).
func BenchmarkObserveMembers(b *testing.B) {
	for _, n := range []int{3, 30} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			f := fakeMembersFleet(b, n, 5*time.Millisecond)
			store, err := state.OpenStore(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			r := &Reconciler{Log: log}
			b.ResetTimer()
			for b.Loop() {
				observers, _, err := wire(f, store, log, wireOptions{dryRun: true})
				if err != nil {
					b.Fatal(err)
				}
				w, err := r.Observe(context.Background(), f, observers)
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range f.Members {
					if c := w.Clusters[m.Name]; c == nil || !c.Reachable || c.Unreadable != "" {
						b.Fatalf("%s was not observed: %+v", m.Name, c)
					}
				}
			}
		})
	}
}
