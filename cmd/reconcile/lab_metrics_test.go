package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/labtest"
)

// The daemon's world gauges in the lab: a fleet of a Push member and a Pull member with the
// mesh converges under `reconcile -f fleet.yaml --metrics-addr`, and once a later pass observed
// it, /metrics says both members are Ready, how long the mesh root, each intermediate and the
// Pull agent's certificate have left, and when each token is due for rotation.
func TestLabDaemonMetrics(t *testing.T) {
	labtest.KarmadaBinaries(t)
	lf := upLab(t, net.IPv4(127, 0, 11, 10), net.IPv4(127, 0, 11, 40), 100*time.Millisecond)
	dir, fleetDir := lf.dir, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	// ap joins in Pull mode, so its agent's certificate is measured too.
	body := strings.Replace(strings.Replace(lf.meshFleet("lab-metrics"), "joinMode: Push\n", "", 1), "  - name: ap\n", "  - name: ap\n    joinMode: Pull\n", 1)
	must(t, os.WriteFile(fleetPath, []byte(body), 0o644))

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	var mu sync.Mutex
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"-f", fleetPath, "--state-dir", filepath.Join(dir, "state"),
			"--metrics-addr", addr, "--resync-interval", "10s"}, lockedWriter{&mu, &out}, lockedWriter{&mu, &out})
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the daemon did not stop within a minute")
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("---- reconcile (tail) ----\n%s", tail(out.String(), 60))
			mu.Unlock()
		}
	})

	// Bounded: a cold pass, then a resync pass that observes the converged fleet.
	var s scraped
	ok := waitCond(ctx, 2*e2ePassTimeout, 500*time.Millisecond, func() bool {
		res, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		s = parseMetrics(t, res.Body)
		passes, _ := s.value("reconcile_passes_total", "outcome", "succeeded")
		eu, _ := s.value("reconcile_member_ready", "member", "eu")
		ap, _ := s.value("reconcile_member_ready", "member", "ap")
		return passes >= 2 && eu == 1 && ap == 1
	})
	if !ok {
		t.Fatalf("no pass observed both members Ready within %s; last scrape: passes %v",
			2*e2ePassTimeout, s["reconcile_passes_total"])
	}
	s.want(t, 0, "reconcile_passes_total", "outcome", "failed")
	s.want(t, 0, "reconcile_plan_pending_changes")
	const day = 24 * 3600.0
	for _, c := range []struct {
		metric, kind, member string
		min, max             float64
	}{
		{"reconcile_certificate_expiry_seconds", "mesh-root", "", 3649 * day, 3650 * day},           // rootValidity 87600h
		{"reconcile_certificate_expiry_seconds", "mesh-intermediate", "eu", 3649 * day, 3650 * day}, // intermediateValidity 87600h
		{"reconcile_certificate_expiry_seconds", "mesh-intermediate", "ap", 3649 * day, 3650 * day},
		// Requested for twice tokenRotation; the signer may issue it for less (the lab's: 7 days).
		{"reconcile_certificate_expiry_seconds", "karmada-agent", "ap", 6 * day, 60 * day},
		{"reconcile_token_rotation_due_seconds", "karmada", "eu", 29 * day, 30 * day}, // tokenRotation 720h
		{"reconcile_token_rotation_due_seconds", "istio-reader", "eu", 29 * day, 30 * day},
		{"reconcile_token_rotation_due_seconds", "istio-reader", "ap", 29 * day, 30 * day},
	} {
		v, ok := s.value(c.metric, "kind", c.kind, "member", c.member)
		if !ok || v < c.min || v > c.max {
			t.Errorf("%s{kind=%q,member=%q} = %v (present %v), want between %v and %v days",
				c.metric, c.kind, c.member, v/day, ok, c.min/day, c.max/day)
		}
	}
	if _, ok := s.value("reconcile_token_rotation_due_seconds", "kind", "karmada", "member", "ap"); ok {
		t.Error("a Pull member has a Karmada token sample; it has a certificate")
	}
	if n, _ := s.value("reconcile_linode_api_requests_total", "endpoint", "lke-clusters", "code", "200"); n == 0 {
		t.Error("no Linode API request counted")
	}
}

// lockedWriter lets the daemon's stdout and stderr share one buffer.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
