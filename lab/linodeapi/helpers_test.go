package linodeapi

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/linode/linodego"
)

const testToken = "test-token-0123456789"

// testBackend records what it is asked and can hold Provision until released.
type testBackend struct {
	mu            sync.Mutex
	gate          chan struct{} // nil: provision at once
	nodeIPs       []string
	provisioned   []ClusterInfo
	deprovisioned []int
	entered       int // Provision calls made (counted before the gate)
	cancelled     int // Provision calls that ended by context
	failFirst     int // Provision calls that fail before one succeeds
	calls         int
	renewals      int           // RenewKubeconfig calls
	renewGate     chan struct{} // nil: renew at once
}

func (b *testBackend) Provision(ctx context.Context, c ClusterInfo) (Provisioned, error) {
	b.mu.Lock()
	b.entered++
	b.mu.Unlock()
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			b.mu.Lock()
			b.cancelled++
			b.mu.Unlock()
			return Provisioned{}, ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.calls <= b.failFirst {
		return Provisioned{}, fmt.Errorf("backend not ready (call %d)", b.calls)
	}
	b.provisioned = append(b.provisioned, c)
	return Provisioned{
		Kubeconfig: testKubeconfig(c.ID),
		NodeIPs:    b.nodeIPs,
	}, nil
}

func (b *testBackend) Deprovision(_ context.Context, id int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deprovisioned = append(b.deprovisioned, id)
	return nil
}

func (b *testBackend) enteredCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entered
}

func (b *testBackend) deprovisionedIDs() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.deprovisioned...)
}

func testKubeconfig(id int) []byte {
	return Kubeconfig(fmt.Sprintf("lke%d", id), fmt.Sprintf("https://127.0.0.1:%d", 6443+id%1000), []byte("ca"), fmt.Sprintf("token-%d", id))
}

// fakeClock is a settable clock for readiness timing.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestAPI starts the server behind httptest and returns a real linodego client
// with the token set and retry waits lowered.
func newTestAPI(t *testing.T, o Options) (*Server, *httptest.Server, *linodego.Client) {
	t.Helper()
	if o.Token == "" {
		o.Token = testToken
	}
	s := New(o)
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return s, srv, newClient(srv.URL, o.Token)
}

func newClient(url, token string) *linodego.Client {
	c := linodego.NewClient(&http.Client{Timeout: 10 * time.Second})
	c.SetBaseURL(url)
	c.SetToken(token)
	c.SetRetryWaitTime(10 * time.Millisecond)
	c.SetRetryMaxWaitTime(50 * time.Millisecond)
	c.SetLogger(quietLogger{})
	return &c
}

type quietLogger struct{}

func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func createOpts(label, region string, count int, tags ...string) linodego.LKEClusterCreateOptions {
	return linodego.LKEClusterCreateOptions{
		Label: label, Region: region, K8sVersion: "1.33", Tags: tags,
		NodePools: []linodego.LKENodePoolCreateOptions{{Count: count, Type: "g6-standard-2"}},
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func httpServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestMain silences linodego's retry notices, which it prints through the standard logger.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// RenewKubeconfig issues the cluster a kubeconfig with a token it never had before.
func (b *testBackend) RenewKubeconfig(ctx context.Context, id int) ([]byte, error) {
	if b.renewGate != nil {
		select {
		case <-b.renewGate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.renewals++
	return Kubeconfig(fmt.Sprintf("lke%d", id), fmt.Sprintf("https://127.0.0.1:%d", 6443+id%1000), []byte("ca"),
		fmt.Sprintf("token-%d-renewed-%d", id, b.renewals)), nil
}
