// Package labtest is what the lab tests of several packages share: skipping (or failing) when the
// lab binaries are not built, one etcd per test package, a RoundTripper that records the requests
// that write, and a log sink safe for concurrent writers. It is for tests only: no product code
// imports it.
package labtest

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/reconcile-dev/reconcile/lab/cluster"
)

// RequiredEnv names the environment variable that turns a lab test's skip into a failure.
const RequiredEnv = "RECONCILE_LAB_REQUIRED"

// Skip skips tb because the lab cannot run (why says what is missing), or fails it when
// RECONCILE_LAB_REQUIRED is set.
func Skip(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv(RequiredEnv) != "" {
		tb.Fatalf("%s is set: %s", RequiredEnv, why)
	}
	tb.Skipf("skipping lab test: %s (set %s=1 to make this a failure)", why, RequiredEnv)
}

// Binaries returns the lab's etcd and Kubernetes binaries, calling Skip when they are not built.
func Binaries(tb testing.TB) cluster.Binaries {
	tb.Helper()
	bins, err := cluster.FindBinaries()
	if err != nil {
		Skip(tb, err.Error())
	}
	return bins
}

// KarmadaBinaries returns the lab's Kubernetes and Karmada binaries, calling Skip when either
// set is not built.
func KarmadaBinaries(tb testing.TB) (cluster.Binaries, cluster.KarmadaBinaries) {
	tb.Helper()
	bins := Binaries(tb)
	karmada, err := cluster.FindKarmadaBinaries()
	if err != nil {
		Skip(tb, err.Error())
	}
	return bins, karmada
}

// Etcd is one etcd shared by the tests of a package, started on first use. Declare it as a
// package variable and call Stop from TestMain after m.Run (after stopping the clusters that
// use it).
type Etcd struct {
	// Prefix is the os.MkdirTemp pattern of the directory that holds etcd's data and log (and
	// whatever else the package puts under Dir).
	Prefix string
	// Karmada makes Start require (and return) the Karmada binaries too.
	Karmada bool

	once    sync.Once
	dir     string
	etcd    *cluster.Etcd
	bins    cluster.Binaries
	karmada cluster.KarmadaBinaries
	err     error
	skip    string
}

// Start returns the shared etcd and the binaries (the Karmada ones only when e.Karmada),
// starting etcd on the first call. It calls Skip when the binaries are not built and fails tb
// when etcd does not start.
func (e *Etcd) Start(tb testing.TB) (*cluster.Etcd, cluster.Binaries, cluster.KarmadaBinaries) {
	tb.Helper()
	e.once.Do(func() {
		bins, err := cluster.FindBinaries()
		if err == nil && e.Karmada {
			e.karmada, err = cluster.FindKarmadaBinaries()
		}
		if err != nil {
			e.skip = err.Error()
			return
		}
		e.bins = bins
		if e.dir, e.err = os.MkdirTemp("", e.Prefix); e.err != nil {
			return
		}
		e.etcd, e.err = cluster.StartEtcd(context.Background(), filepath.Join(e.dir, "etcd"), bins)
	})
	if e.skip != "" {
		Skip(tb, e.skip)
	}
	if e.err != nil {
		tb.Fatalf("lab etcd: %v", e.err)
	}
	return e.etcd, e.bins, e.karmada
}

// Dir is the temporary directory holding etcd's files, for other package-wide lab files; empty
// before Start.
func (e *Etcd) Dir() string { return e.dir }

// Main is a TestMain for a package whose only shared lab piece is e: it runs the tests, stops e
// and exits with the tests' status.
func (e *Etcd) Main(m *testing.M) {
	code := m.Run()
	_ = e.Stop()
	os.Exit(code)
}

// Stop stops etcd, if it was started, and removes Dir. Call it once, from TestMain.
func (e *Etcd) Stop() error {
	var err error
	if e.etcd != nil {
		err = e.etcd.Stop()
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
	return err
}

// WriteCounter wraps a RoundTripper (Wrap fits rest.Config.Wrap and WrapTransport options) and
// records every request that is not a read: anything but GET and HEAD (lists and watches are
// GETs), as "METHOD URL" (the URL names the server, useful when several clusters are counted).
// It counts the reads. It is safe for concurrent use.
type WriteCounter struct {
	// Ignore, when set, leaves out the non-read requests for which it returns true (e.g. dry
	// runs). Set it before the first request.
	Ignore func(*http.Request) bool

	mu     sync.Mutex
	writes []string
	reads  int
}

// Wrap returns rt with its requests counted by c.
func (c *WriteCounter) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		switch {
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			c.reads++
		case c.Ignore == nil || !c.Ignore(r):
			c.writes = append(c.writes, r.Method+" "+r.URL.String())
		}
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

// Writes are the writes recorded since the start or the last Reset, oldest first.
func (c *WriteCounter) Writes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

// Reads is how many reads went through since the start or the last Reset.
func (c *WriteCounter) Reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// Reset forgets the recorded writes and reads.
func (c *WriteCounter) Reset() {
	c.mu.Lock()
	c.writes, c.reads = nil, 0
	c.mu.Unlock()
}

// Take returns the writes recorded so far and resets the counter.
func (c *WriteCounter) Take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes, c.reads = nil, 0
	return w
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// SyncBuffer is an io.Writer (a log sink) safe for concurrent writers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len is how many bytes were written so far.
func (b *SyncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// From is what was written since Len returned mark.
func (b *SyncBuffer) From(mark int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if mark > b.buf.Len() {
		return ""
	}
	return string(b.buf.Bytes()[mark:])
}

// Istiod returns the lab's pilot-discovery (istiod), calling Skip when it is not built.
func Istiod(tb testing.TB) string {
	tb.Helper()
	p, err := cluster.FindIstiod()
	if err != nil {
		Skip(tb, err.Error())
	}
	return p
}

// XDSProbe returns the lab's xds-probe (built with istiod by build.sh istio), calling Skip when
// it is not built.
func XDSProbe(tb testing.TB) string {
	tb.Helper()
	p, err := cluster.FindXDSProbe()
	if err != nil {
		Skip(tb, err.Error())
	}
	return p
}
