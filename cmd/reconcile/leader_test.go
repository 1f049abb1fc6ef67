package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/world"
)

// candidate is one leader-electing daemon over a fleet in dir and a shared store.
type candidate struct {
	d      *Daemon
	passes chan string
	cancel context.CancelFunc
	done   chan error
	stop   func()
}

func startCandidate(t *testing.T, dir string, store *state.Store, name string) *candidate {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &candidate{passes: make(chan string, 16), done: make(chan error, 1)}
	c.d = &Daemon{
		Path:        filepath.Join(dir, "fleet.yaml"),
		Reconciler:  &Reconciler{Store: store, Log: log, Out: io.Discard},
		Resync:      time.Hour,
		Debounce:    20 * time.Millisecond,
		Log:         log,
		Passed:      func(*spec.Fleet, *PassResult, error) { c.passes <- name },
		LeaderElect: true,
		Health:      &Health{},
		Lock: func(ctx context.Context, wait time.Duration) (state.Lock, error) {
			return store.Lock(ctx, state.LockOptions{Wait: wait})
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- c.d.Run(ctx, nil) }()
	c.stop = c.stopper(t)
	t.Cleanup(c.stop)
	return c
}

func (c *candidate) stopper(t *testing.T) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.cancel()
			select {
			case err := <-c.done:
				if err != nil {
					t.Errorf("daemon: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("daemon did not stop within 20s of cancellation")
			}
		})
	}
}

func readyz(t *testing.T, h *Health) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

// TestLeaderElection: of two candidates on one fleet only the lock holder runs passes; the
// other stands by (and is ready); when the leader stops, the other leads and runs a pass.
func TestLeaderElection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFleetFiles(t, dir)
	store, err := state.OpenStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	a := startCandidate(t, dir, store, "a")
	if got := waitFor(t, a.passes, "the first candidate's first pass"); got != "a" {
		t.Fatalf("pass by %s", got)
	}
	b := startCandidate(t, dir, store, "b")
	// b stands by: ready, no pass. Wait until it says so rather than for a while.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, msg := readyz(t, b.d.Health)
		if code == http.StatusOK && msg == "standing by" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second candidate: /readyz %d %q, want 200 standing by", code, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The leader's passes fail (this fleet's layers have no drivers here): it is not ready.
	if code, msg := readyz(t, a.d.Health); code != http.StatusServiceUnavailable || !strings.HasPrefix(msg, "leading; last pass") ||
		!strings.HasSuffix(msg, "failed") {
		t.Errorf("leader: /readyz %d %q, want 503 leading, last pass failed", code, msg)
	}
	select {
	case who := <-b.passes:
		t.Fatalf("candidate %s ran a pass while standing by", who)
	default:
	}
	a.stop()
	if got := waitFor(t, b.passes, "the leader stopped"); got != "b" {
		t.Fatalf("pass by %s after the leader stopped", got)
	}
}

// TestLeaderLosesLock: a leader whose lock is lost cancels the pass in flight (no step
// starts after that) and stands by again, running no pass until it holds the lock anew.
func TestLeaderLosesLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFleetFiles(t, dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	started := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	blocking := observerFunc(func(ctx context.Context, _ *spec.Fleet, _ *world.World) error {
		started <- struct{}{}
		<-ctx.Done()
		cancelled <- ctx.Err()
		return ctx.Err()
	})
	first := &fakeLock{lost: make(chan struct{})}
	locks := make(chan *fakeLock, 2)
	locks <- first
	asked := make(chan struct{}, 4)
	passes := make(chan error, 4)
	d := &Daemon{
		Path:        filepath.Join(dir, "fleet.yaml"),
		Reconciler:  &Reconciler{Observers: []state.Observer{blocking}, Log: log, Out: io.Discard},
		Resync:      time.Hour,
		Log:         log,
		LeaderElect: true,
		Health:      &Health{},
		Passed:      func(_ *spec.Fleet, _ *PassResult, err error) { passes <- err },
		Lock: func(ctx context.Context, _ time.Duration) (state.Lock, error) {
			asked <- struct{}{}
			select {
			case l := <-locks:
				return l, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
		}
	}()
	waitFor(t, asked, "the daemon asking for the lock")
	waitFor(t, started, "the leader's first pass")
	close(first.lost)
	if err := waitFor(t, cancelled, "the lock was lost"); err == nil {
		t.Fatal("the pass in flight was not cancelled")
	}
	if err := waitFor(t, passes, "the cancelled pass ending"); err == nil {
		t.Error("the cancelled pass reported success")
	}
	waitFor(t, asked, "the daemon standing by again")
	if !first.released() {
		t.Error("the lost lock was not released")
	}
	if code, msg := readyz(t, d.Health); code != http.StatusOK || !strings.HasPrefix(msg, "standing by") {
		t.Errorf("/readyz %d %q after losing the lock, want standing by", code, msg)
	}
	select {
	case <-started:
		t.Fatal("a pass started after the lock was lost")
	default:
	}
}

type observerFunc func(context.Context, *spec.Fleet, *world.World) error

func (f observerFunc) Observe(ctx context.Context, fl *spec.Fleet, w *world.World) error {
	return f(ctx, fl, w)
}

type fakeLock struct {
	lost chan struct{}
	mu   sync.Mutex
	rel  bool
}

func (l *fakeLock) Lost() <-chan struct{} { return l.lost }
func (l *fakeLock) Holder() state.Holder  { return state.Holder{Host: "test", PID: 1} }
func (l *fakeLock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rel = true
	return nil
}

func (l *fakeLock) released() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rel
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("nothing within 20s: %s", what)
	}
	var zero T
	return zero
}

// writeFleetFiles writes the daemon tests' fleet (existing clusters, no drivers) into dir.
func writeFleetFiles(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "chart"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fleet.yaml"), []byte(fleetWithWeight("1")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOnceWaitsForTheLock: --once fails at once when another runner holds the fleet's lock,
// naming the holder; with --lock-timeout it waits that long; a dry run never takes the lock.
func TestOnceWaitsForTheLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFleetFiles(t, dir)
	stateDir := filepath.Join(dir, "state")
	store, err := state.OpenStore(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	held, err := store.Lock(context.Background(), state.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	fleet := filepath.Join(dir, "fleet.yaml")
	run1 := func(args ...string) (int, string) {
		var stdout, stderr strings.Builder
		code := run(context.Background(), append(args, "--state-dir", stateDir, fleet), &stdout, &stderr)
		return code, stderr.String()
	}
	host, _ := os.Hostname()
	code, stderr := run1("--once")
	if code != 1 || !strings.Contains(stderr, "is locked by another reconcile: pid "+strconv.Itoa(os.Getpid())+" on "+host+" since ") {
		t.Fatalf("--once while locked: exit %d, stderr %q; want 1 and the holder", code, stderr)
	}
	start := time.Now()
	code, stderr = run1("--once", "--lock-timeout", "500ms")
	if code != 1 || !strings.Contains(stderr, "waited 500ms") || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("--once --lock-timeout 500ms: exit %d after %s, stderr %q", code, time.Since(start), stderr)
	}
	if code, stderr = run1("--once", "--dry-run"); strings.Contains(stderr, "locked") {
		t.Fatalf("a dry run asked for the lock: exit %d, stderr %q", code, stderr)
	}
}
