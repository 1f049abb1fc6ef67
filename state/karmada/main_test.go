package karmada

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/state"
)

var (
	_ executor.KarmadaDriver = (*Driver)(nil)
	_ state.Observer         = (*Driver)(nil)
)

// lab is the etcd every test of the package shares, started on first use. This package's
// tests use the loopback addresses 127.0.0.60-127.0.0.79 only.
var lab struct {
	once    sync.Once
	dir     string
	etcd    *cluster.Etcd
	bins    cluster.Binaries
	karmada cluster.KarmadaBinaries
	err     error
	skip    string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if lab.etcd != nil {
		_ = lab.etcd.Stop()
	}
	if lab.dir != "" {
		_ = os.RemoveAll(lab.dir)
	}
	os.Exit(code)
}

// labEtcd returns the shared etcd and binaries, skipping the test when the binaries are not
// built (failing it when RECONCILE_LAB_REQUIRED is set).
func labEtcd(t *testing.T) (*cluster.Etcd, cluster.Binaries, cluster.KarmadaBinaries) {
	t.Helper()
	lab.once.Do(func() {
		bins, err := cluster.FindBinaries()
		if err == nil {
			lab.karmada, err = cluster.FindKarmadaBinaries()
		}
		if err != nil {
			lab.skip = err.Error()
			return
		}
		lab.bins = bins
		if lab.dir, lab.err = os.MkdirTemp("", "state-karmada-"); lab.err != nil {
			return
		}
		lab.etcd, lab.err = cluster.StartEtcd(context.Background(), filepath.Join(lab.dir, "etcd"), bins)
	})
	if lab.skip != "" {
		if os.Getenv("RECONCILE_LAB_REQUIRED") != "" {
			t.Fatalf("RECONCILE_LAB_REQUIRED is set: %s", lab.skip)
		}
		t.Skipf("skipping lab test: %s (set RECONCILE_LAB_REQUIRED=1 to make this a failure)", lab.skip)
	}
	if lab.err != nil {
		t.Fatal(lab.err)
	}
	return lab.etcd, lab.bins, lab.karmada
}

// writeCounter counts the requests that are not reads, by method and path.
type writeCounter struct {
	n      atomic.Int64
	mu     sync.Mutex
	writes []string
}

func (c *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.n.Add(1)
			c.mu.Lock()
			c.writes = append(c.writes, r.Method+" "+r.URL.Path)
			c.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

func (c *writeCounter) reset() {
	c.n.Store(0)
	c.mu.Lock()
	c.writes = nil
	c.mu.Unlock()
}

func (c *writeCounter) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
