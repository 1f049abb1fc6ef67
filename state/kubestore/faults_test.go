package kubestore

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/spec"
)

// failing answers the first n requests that match with status code, without passing them on;
// the others go to the API server.
type failing struct {
	match func(*http.Request) bool
	n     atomic.Int32
	code  int
	seen  atomic.Int32
}

func (f *failing) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTrip(func(r *http.Request) (*http.Response, error) {
		if f.match(r) {
			f.seen.Add(1)
			if f.n.Add(-1) >= 0 {
				body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected","code":` + strconv.Itoa(f.code) + `}`
				return &http.Response{StatusCode: f.code, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
			}
		}
		return rt.RoundTrip(r)
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransientReadIsRetried(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	if err := open(t, ns, "eu").WriteFile("ca", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f := &failing{code: http.StatusServiceUnavailable, match: func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/secrets")
	}}
	s := open(t, ns, "eu", func(c *Config) {
		c.REST = rest.CopyConfig(c.REST)
		c.REST.Wrap(f.wrap)
		c.SnapshotMaxAge = time.Nanosecond // every read lists
	})
	f.seen.Store(0)
	f.n.Store(2)
	if got, err := s.ReadFile("ca"); err != nil || string(got) != "x" {
		t.Fatalf("read after two 503s: %q, %v", got, err)
	}
	if n := f.seen.Load(); n != 3 {
		t.Errorf("%d lists, want 3", n)
	}
	f.n.Store(100)
	if _, err := s.ReadFile("ca"); err == nil {
		t.Fatal("a read that always fails succeeded")
	}
}

func TestAmbiguousWriteIsNotRetried(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	f := &failing{code: http.StatusInternalServerError, match: func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/secrets/")
	}}
	s := open(t, ns, "eu", func(c *Config) {
		c.REST = rest.CopyConfig(c.REST)
		c.REST.Wrap(f.wrap)
	})
	if err := s.WriteFile("ca", []byte("1")); err != nil {
		t.Fatal(err)
	}
	f.n.Store(1)
	err := s.WriteFile("ca", []byte("2"))
	if err == nil {
		t.Fatal("a write answered by a 500 succeeded")
	}
	if n := f.seen.Load(); n != 1 {
		t.Errorf("%d updates sent after a 500, want 1", n)
	}
	// 429 says the request was not processed: retried.
	f.code = http.StatusTooManyRequests
	f.seen.Store(0)
	f.n.Store(1)
	if err := s.WriteFile("ca", []byte("3")); err != nil {
		t.Fatalf("a write after a 429: %v", err)
	}
}

func TestRESTConfig(t *testing.T) {
	t.Parallel()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["ops"] = &clientcmdapi.Cluster{Server: "https://127.0.3.9:6443"}
	cfg.Clusters["other"] = &clientcmdapi.Cluster{Server: "https://127.0.3.10:6443"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "secret-token"}
	cfg.Contexts["ops"] = &clientcmdapi.Context{Cluster: "ops", AuthInfo: "u"}
	cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "other", AuthInfo: "u"}
	cfg.CurrentContext = "ops"
	path := filepath.Join(t.TempDir(), "ops.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	rc, where, err := RESTConfig(&spec.KubernetesStateBackend{Kubeconfig: path})
	if err != nil || rc.Host != "https://127.0.3.9:6443" || where != path {
		t.Fatalf("current context: %v, %q, %v", rc, where, err)
	}
	rc, where, err = RESTConfig(&spec.KubernetesStateBackend{Kubeconfig: path, Context: "other"})
	if err != nil || rc.Host != "https://127.0.3.10:6443" || where != path+" (context other)" {
		t.Fatalf("context other: %v, %q, %v", rc, where, err)
	}
	_, _, err = RESTConfig(&spec.KubernetesStateBackend{Kubeconfig: path, Context: "nope"})
	if err == nil || !strings.HasPrefix(err.Error(), "state.kubernetes.context: ") || strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("a missing context: %v", err)
	}
	_, _, err = RESTConfig(&spec.KubernetesStateBackend{Kubeconfig: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.HasPrefix(err.Error(), "state.kubernetes.kubeconfig: ") {
		t.Fatalf("a missing kubeconfig: %v", err)
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		if _, _, err := RESTConfig(&spec.KubernetesStateBackend{}); err == nil || !strings.Contains(err.Error(), "not running in a cluster") {
			t.Fatalf("in-cluster outside a cluster: %v", err)
		}
	}
}
