package kubestore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconcile-dev/reconcile/state"
)

func leaseOf(tb testing.TB, ns, fleet string) *coordinationv1.Lease {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := admin(tb).CoordinationV1().Leases(ns).Get(ctx, LeaseName(fleet), metav1.GetOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

func holderID(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func lock(tb testing.TB, s *Store, opts state.LockOptions) state.Lock {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := s.Lock(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Release() })
	return l
}

func TestLockExcludesAndReleases(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	a, b := open(t, ns, "eu"), open(t, ns, "eu")
	since := time.Now().Add(-time.Hour)
	la := lock(t, a, state.LockOptions{Holder: state.Holder{Host: "runner-a", PID: 4242, Since: since}})

	lease := leaseOf(t, ns, "eu")
	if !strings.HasPrefix(holderID(lease), "runner-a/4242/") || *lease.Spec.LeaseDurationSeconds != 15 ||
		lease.Spec.AcquireTime == nil || lease.Spec.RenewTime == nil || lease.Labels[LabelFleet] != "eu" {
		t.Fatalf("the Lease: %+v %+v", lease.ObjectMeta, lease.Spec)
	}

	start := time.Now()
	_, err := b.Lock(context.Background(), state.LockOptions{Holder: state.Holder{Host: "runner-b", PID: 7}})
	var locked *state.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("a second Lock: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Lock without Wait took %s", time.Since(start))
	}
	if locked.Holder.Host != "runner-a" || locked.Holder.PID != 4242 || locked.Holder.Since.IsZero() ||
		locked.Where != b.Describe() || locked.Waited != 0 {
		t.Fatalf("LockedError: %+v", locked)
	}
	if msg := err.Error(); !strings.Contains(msg, "pid 4242 on runner-a since ") || !strings.Contains(msg, "kubernetes "+ns) {
		t.Errorf("LockedError says %q", msg)
	}

	// A waiting Lock gets the lease once the holder releases it, without waiting for expiry.
	type result struct {
		l   state.Lock
		err error
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l, err := b.Lock(ctx, state.LockOptions{Wait: 40 * time.Second, Holder: state.Holder{Host: "runner-b", PID: 7}})
		got <- result{l, err}
	}()
	if err := la.Release(); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(); err != nil {
		t.Fatalf("a second Release: %v", err)
	}
	var r result
	select {
	case r = <-got:
	case <-time.After(50 * time.Second):
		t.Fatal("the waiting Lock never returned")
	}
	if r.err != nil {
		t.Fatalf("the waiting Lock: %v", r.err)
	}
	defer r.l.Release()
	lease = leaseOf(t, ns, "eu")
	if !strings.HasPrefix(holderID(lease), "runner-b/7/") || *lease.Spec.LeaseTransitions != 1 {
		t.Fatalf("after the handover: holder %q, transitions %d", holderID(lease), *lease.Spec.LeaseTransitions)
	}
	if r.l.Holder().Host != "runner-b" || r.l.Holder().ID == "" {
		t.Errorf("Holder() = %+v", r.l.Holder())
	}
	select {
	case <-la.Lost():
		t.Error("a released lock reads as lost")
	default:
	}

	// Waiting for a lock that is not released ends with a LockedError after the wait.
	start = time.Now()
	_, err = a.Lock(context.Background(), state.LockOptions{Wait: 1500 * time.Millisecond})
	if !errors.As(err, &locked) || locked.Waited != 1500*time.Millisecond || locked.Holder.Host != "runner-b" {
		t.Fatalf("a bounded wait: %v", err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("gave up after %s", d)
	}
	// ... and a cancelled context ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Lock(ctx, state.LockOptions{Wait: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v", err)
	}
}

func TestLockRenews(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	s := open(t, ns, "eu", func(c *Config) { c.LeaseDuration = 3 * time.Second })
	l := lock(t, s, state.LockOptions{})
	first := leaseOf(t, ns, "eu").Spec.RenewTime.Time
	eventually(t, 20*time.Second, "the Lease was never renewed", func() bool {
		return leaseOf(t, ns, "eu").Spec.RenewTime.After(first)
	})
	select {
	case <-l.Lost():
		t.Fatal("a renewed lock is lost")
	default:
	}
}

func TestLockTakesOverAnExpiredLease(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	short := func(c *Config) { c.LeaseDuration = 2 * time.Second }
	a, b := open(t, ns, "eu", short), open(t, ns, "eu", short)
	la := lock(t, a, state.LockOptions{Holder: state.Holder{Host: "runner-a", PID: 1}})
	// a is cut off from the API server: it renews no more.
	la.(*leaseLock).paused.Store(true)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lb, err := b.Lock(ctx, state.LockOptions{Wait: 40 * time.Second, Holder: state.Holder{Host: "runner-b", PID: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release()
	// b saw the Lease unchanged for a whole lease duration on its own clock before taking it.
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("took over after %s, before the lease could expire", d)
	}
	if !closedWithin(la.Lost(), 10*time.Second) {
		t.Fatal("the holder that stopped renewing does not know it lost the lock")
	}
	if err := la.Release(); err != nil {
		t.Fatal(err)
	}
	if id := holderID(leaseOf(t, ns, "eu")); !strings.HasPrefix(id, "runner-b/2/") {
		t.Fatalf("the old holder's Release cleared the new holder: %q", id)
	}
	select {
	case <-lb.Lost():
		t.Fatal("the new holder lost the lock")
	default:
	}
}

func TestLockLostToAnotherHolder(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	s := open(t, ns, "eu", func(c *Config) { c.LeaseDuration = 3 * time.Second })
	l := lock(t, s, state.LockOptions{})

	// Another process takes the Lease over (as after a partition).
	lease := leaseOf(t, ns, "eu")
	other := "elsewhere/99/feedface"
	lease.Spec.HolderIdentity = &other
	lease.Annotations[AnnotationHolder] = `{"host":"elsewhere","pid":99,"since":"2026-11-30T12:00:00Z"}`
	if _, err := admin(t).CoordinationV1().Leases(ns).Update(context.Background(), lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(l.Lost(), 20*time.Second) {
		t.Fatal("Lost never closed")
	}
	if err := s.WriteFile("ca", []byte("late")); err == nil || !strings.Contains(err.Error(), "lost the fleet's lock") {
		t.Fatalf("a write after Lost: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if id := holderID(leaseOf(t, ns, "eu")); id != other {
		t.Fatalf("Release after Lost changed the holder to %q", id)
	}
	// The Store's snapshot no longer counts as fresh for the lock's sake.
	_, err := s.Lock(context.Background(), state.LockOptions{})
	var locked *state.LockedError
	if !errors.As(err, &locked) || locked.Holder.Host != "elsewhere" || locked.Holder.PID != 99 {
		t.Fatalf("Lock of a taken Lease: %v", err)
	}
}

func TestLockRefreshesTheSnapshot(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	// Without the lock a snapshot serves reads for an hour here.
	stale := func(c *Config) { c.SnapshotMaxAge = time.Hour }
	a, b := open(t, ns, "eu", stale), open(t, ns, "eu", stale)
	la := lock(t, a, state.LockOptions{})
	if err := a.WriteFile("ca", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(); err != nil {
		t.Fatal(err)
	}
	if b.Exists("ca") {
		t.Fatal("b's snapshot was refreshed without the lock")
	}
	lock(t, b, state.LockOptions{})
	if got, err := b.ReadFile("ca"); err != nil || string(got) != "a" {
		t.Fatalf("after Lock b reads %q, %v", got, err)
	}
	if err := b.WriteFile("ca", []byte("b")); err != nil {
		t.Fatal(err)
	}
}

func TestForeignLeaseIsRefused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	foreign := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName("eu"), Namespace: ns}}
	if _, err := admin(t).CoordinationV1().Leases(ns).Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := open(t, ns, "eu").Lock(context.Background(), state.LockOptions{Wait: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "not this fleet's lock") {
		t.Fatalf("Lock of a foreign Lease: %v", err)
	}
}
