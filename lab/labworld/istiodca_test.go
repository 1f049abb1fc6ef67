package labworld

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/mesh"
)

// ChainRoot tells a chain issued from the mesh root's intermediate from one of another root,
// and IstiodChain reads the chain a TLS server presents (here one serving a leaf issued by a
// mesh intermediate, as istiod does on 15012).
func TestIstiodChain(t *testing.T) {
	now := time.Now()
	ours, err := mesh.NewRoot("ecdsa-p256", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := mesh.NewRoot("ecdsa-p256", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	inter := func(r *mesh.Root) *x509.Certificate {
		cc, err := r.IssueIntermediate("eu", "ecdsa-p256", time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := mesh.ParseCACerts(cc.Data())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		want  bool
	}{
		{"intermediate of ours", []*x509.Certificate{inter(ours)}, true},
		{"intermediate and our root", []*x509.Certificate{inter(ours), ours.Cert}, true},
		{"intermediate of another root", []*x509.Certificate{inter(other)}, false},
		{"another root's full chain", []*x509.Certificate{inter(other), other.Cert}, false},
	} {
		got, top := ChainRoot(tc.chain, ours.Cert)
		if got != tc.want {
			t.Errorf("%s: ChainRoot = %v (%s), want %v", tc.name, got, top, tc.want)
		}
	}
	if _, top := ChainRoot([]*x509.Certificate{inter(other), other.Cert}, ours.Cert); !strings.HasPrefix(top, "root ") {
		t.Errorf("a self-signed top is described as %q", top)
	}

	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	chain, err := IstiodChain(context.Background(), strings.TrimPrefix(srv.URL, "https://"))
	if err != nil || len(chain) == 0 || !chain[0].Equal(srv.Certificate()) {
		t.Fatalf("IstiodChain: %v, %d certificates", err, len(chain))
	}
	if text := chainText(context.Background(), strings.TrimPrefix(srv.URL, "https://"), ours.Cert); !strings.Contains(text, "ANOTHER root") {
		t.Errorf("chainText for a server of another CA: %q", text)
	}
	if text := chainText(context.Background(), "127.0.0.1:1", ours.Cert); !strings.Contains(text, "unreadable") {
		t.Errorf("chainText for nothing listening: %q", text)
	}
}
