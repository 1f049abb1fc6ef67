package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// The Linode poll: the fingerprint at Sync is the baseline (what the pass made), a different
// one at a later poll is drift, a read error is not.
func TestDriftWatchLinodePoll(t *testing.T) {
	t.Parallel()
	store, err := state.OpenStore(t.TempDir())
	must(t, err)
	var fp atomic.Value
	fp.Store("a")
	var fail atomic.Bool
	w := NewDriftWatch(store, slog.New(slog.DiscardHandler))
	w.LinodeEvery = 10 * time.Millisecond
	w.Linode = func(context.Context, *spec.Fleet) (string, error) {
		if fail.Load() {
			return "", context.DeadlineExceeded
		}
		return fp.Load().(string), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer w.Stop()
	f := &spec.Fleet{Metadata: spec.Metadata{Name: "demo"}}
	w.Sync(ctx, f)
	fail.Store(true)
	select {
	case why := <-w.Events():
		t.Fatalf("no change, yet %q", why)
	case <-time.After(100 * time.Millisecond): // ten polls that fail: no drift
	}
	fail.Store(false)
	fp.Store("b")
	select {
	case why := <-w.Events():
		if why != "the fleet's LKE clusters changed" {
			t.Errorf("event %q", why)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a changed fingerprint was not reported")
	}
	// The next pass's Sync makes "b" the baseline: nothing more to report.
	w.Sync(ctx, f)
	w.Drain()
	select {
	case why := <-w.Events():
		t.Fatalf("after the baseline moved, %q", why)
	case <-time.After(100 * time.Millisecond):
	}
}
