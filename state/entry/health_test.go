package entry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

func check(proto string, port int, path string) spec.HealthCheck {
	return spec.HealthCheck{Protocol: proto, Port: port, Path: path, Interval: spec.Duration{Duration: time.Second},
		Timeout: spec.Duration{Duration: 2 * time.Second}, UnhealthyAfter: 3, HealthyAfter: 2}
}

func hostPort(t *testing.T, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func TestProbe(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(200)
	var gotHost, gotPath atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
		gotPath.Store(r.URL.Path)
		w.WriteHeader(int(status.Load()))
	})
	plain := httptest.NewServer(h)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(h)
	defer tlsSrv.Close()
	ctx := context.Background()

	ip, port := hostPort(t, plain.URL)
	if err := Probe(ctx, check(spec.CheckHTTP, port, "/healthz/ready"), "app.example.com", ip); err != nil {
		t.Fatalf("HTTP 200: %v", err)
	}
	if gotHost.Load() != "app.example.com" || gotPath.Load() != "/healthz/ready" {
		t.Errorf("asked %v %v, want Host app.example.com and the path", gotHost.Load(), gotPath.Load())
	}
	status.Store(503)
	if err := Probe(ctx, check(spec.CheckHTTP, port, "/"), "app.example.com", ip); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("HTTP 503 passed: %v", err)
	}
	status.Store(302)
	if err := Probe(ctx, check(spec.CheckHTTP, port, "/"), "app.example.com", ip); err != nil {
		t.Errorf("a redirect is an answer: %v", err)
	}
	status.Store(200)
	ip, tport := hostPort(t, tlsSrv.URL)
	if err := Probe(ctx, check(spec.CheckHTTPS, tport, "/"), "app.example.com", ip); err != nil {
		t.Errorf("HTTPS with a certificate nobody verifies: %v", err)
	}
	if err := Probe(ctx, check(spec.CheckTCP, port, ""), "app.example.com", ip); err != nil {
		t.Errorf("TCP: %v", err)
	}
	// A port nothing listens on: refused, said so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed := hostPort(t, "http://"+l.Addr().String())
	l.Close()
	for _, proto := range []string{spec.CheckHTTP, spec.CheckTCP} {
		if err := Probe(ctx, check(proto, closed, "/"), "app.example.com", "127.0.0.1"); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s to a closed port: %v", proto, err)
		}
	}
}

type countingFiles struct {
	*state.Store
	writes atomic.Int32
	fail   atomic.Bool
}

func (c *countingFiles) WriteFile(name string, data []byte) error {
	if c.fail.Load() {
		return errors.New("disk full")
	}
	c.writes.Add(1)
	return c.Store.WriteFile(name, data)
}

func TestTrackerTransitions(t *testing.T) {
	t.Parallel()
	st, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	files := &countingFiles{Store: st}
	tr, err := NewTracker(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := check(spec.CheckHTTP, 1, "/")
	down := errors.New("connection refused")
	addrs := []string{"192.0.2.1"}
	step := func(err error) *Transition {
		t.Helper()
		got, rerr := tr.Record(hc, "us", addrs, err)
		if rerr != nil {
			t.Fatal(rerr)
		}
		return got
	}
	// Passes and failures short of the threshold change nothing and write nothing.
	for _, e := range []error{nil, down, down, nil, down, down} {
		if got := step(e); got != nil {
			t.Fatalf("transition %+v before 3 failures in a row", got)
		}
	}
	if got := step(down); got == nil || got.Healthy || got.Reason != "connection refused" {
		t.Fatalf("3rd failure in a row: %+v, want unhealthy", got)
	}
	if files.writes.Load() != 1 {
		t.Errorf("%d writes, want 1 (the transition)", files.writes.Load())
	}
	if got := step(down); got != nil {
		t.Errorf("another failure: %+v", got)
	}
	if got := step(nil); got != nil {
		t.Errorf("1 pass of 2: %+v", got)
	}
	if got := step(nil); got == nil || !got.Healthy {
		t.Fatalf("2nd pass in a row: %+v, want healthy", got)
	}
	// A new tracker starts from what the store kept.
	for range 3 {
		step(down)
	}
	again, err := NewTracker(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := LoadHealth(files)
	if h["us"] == nil || h["us"].Healthy || h["us"].Addresses[0] != "192.0.2.1" {
		t.Fatalf("stored health %+v", h["us"])
	}
	if got, _ := again.Record(hc, "us", addrs, nil); got != nil {
		t.Errorf("a restarted tracker forgot us is unhealthy: %+v after one pass", got)
	}
	if got, _ := again.Record(hc, "us", addrs, nil); got == nil || !got.Healthy {
		t.Errorf("a restarted tracker: %+v after two passes", got)
	}
	// A transition the store cannot keep is not one: tried again by the next check.
	files.fail.Store(true)
	for range 2 {
		if got, _ := again.Record(hc, "us", addrs, down); got != nil {
			t.Fatal(got)
		}
	}
	if got, err := again.Record(hc, "us", addrs, down); got != nil || err == nil {
		t.Errorf("unwritable store: transition %+v, err %v", got, err)
	}
	files.fail.Store(false)
	if got, err := again.Record(hc, "us", addrs, down); got == nil || err != nil {
		t.Errorf("the next failure makes it: %+v, %v", got, err)
	}
}

func TestCheckRound(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	ip, port := hostPort(t, ok.URL)
	st, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTracker(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &spec.Entry{Domain: "example.com", Hostname: "app", HealthCheck: check(spec.CheckHTTP, port, "/")}
	e.HealthCheck.UnhealthyAfter = 1
	// eu answers on one of its two addresses; us on none (127.0.0.2 has no listener there).
	targets := map[string][]string{"eu": {"127.0.0.2", ip}, "us": {"127.0.0.2"}}
	got, err := tr.CheckRound(context.Background(), e, targets)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Member != "us" || got[0].Healthy {
		t.Fatalf("transitions %+v, want us unhealthy", got)
	}
	statuses := tr.Statuses()
	if len(statuses) != 2 || !statuses[0].Healthy || statuses[1].Healthy {
		t.Errorf("statuses %+v", statuses)
	}
	if err := tr.Forget([]string{"eu"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := LoadHealth(st); h["us"] != nil {
		t.Errorf("us left the fleet but its health stays: %+v", h)
	}
}
