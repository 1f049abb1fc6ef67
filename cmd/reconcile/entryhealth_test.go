package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/entry"
	"github.com/reconcile-dev/reconcile/state/world"
)

// The daemon's checks: addresses come from the passes' observations (a member a pass did not
// observe keeps its last ones), a member failing unhealthyAfter checks in a row is recorded
// and a pass asked for, and so is its recovery; a quiet member writes nothing.
func TestEntryChecksWakeOnTransitions(t *testing.T) {
	var up atomic.Bool
	up.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	store, err := state.OpenStore(t.TempDir())
	must(t, err)
	f := &spec.Fleet{Metadata: spec.Metadata{Name: "demo"}, Members: []spec.Member{{Name: "eu"}, {Name: "us"}},
		Entry: &spec.Entry{Domain: "example.com", Hostname: "app", HealthCheck: spec.HealthCheck{Protocol: spec.CheckHTTP,
			Port: p, Path: "/", Interval: spec.Duration{Duration: 20 * time.Millisecond}, Timeout: spec.Duration{Duration: time.Second},
			UnhealthyAfter: 2, HealthyAfter: 2}}}
	d := &Daemon{Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(nil), Reconciler: &Reconciler{Store: store}}
	d.current.Store(f)
	c := newEntryChecks(d)
	c.observed(f, &world.World{Entry: &world.Entry{Ingress: map[string][]string{"us": {host}, "eu": {}}}})
	// A pass that did not observe us keeps its address.
	c.observed(f, &world.World{Entry: &world.Entry{}})
	if len(c.targets) != 1 || c.targets["us"][0] != host {
		t.Fatalf("targets %v, want us at %s", c.targets, host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go c.run(ctx)
	wake := func(want string) {
		t.Helper()
		select {
		case why := <-c.wakes():
			if why != want {
				t.Fatalf("woke for %q, want %q", why, want)
			}
		case <-ctx.Done():
			t.Fatalf("no pass asked for %q", want)
		}
	}
	up.Store(false)
	wake("member us is unhealthy: GET http://" + host + ":" + port + "/: 503 Service Unavailable")
	h, err := entry.LoadHealth(store)
	must(t, err)
	if h["us"] == nil || h["us"].Healthy {
		t.Fatalf("stored health %+v", h)
	}
	up.Store(true)
	wake("member us is healthy again")
	cancel()
}
