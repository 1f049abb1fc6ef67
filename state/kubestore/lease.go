package kubestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconcile-dev/reconcile/state"
)

// maxPoll is the longest a waiting Lock sleeps between looks at the Lease.
const maxPoll = time.Second

// LeaseName is the name of the fleet's lock Lease.
func LeaseName(fleet string) string { return "reconcile-" + fleet }

// Lock takes the fleet's Lease. It creates the Lease when there is none, and takes it over
// when it has no holder (released) or has expired. Expiry is judged as client-go's leader
// election does, on our own clock: a Lease has expired when it has not been seen to change for
// its leaseDurationSeconds since this call first saw it, so clocks need not agree. Takeovers
// are Updates preconditioned on the resourceVersion seen, so two takers cannot both win.
// It waits up to opts.Wait, looking at least once a second, and then returns a
// *state.LockedError naming the holder. The acquired lock renews the Lease every third of
// its duration until Release; once the Lease would have expired since the last successful
// renewal, or shows another holder, Lost is closed and renewal stops. On acquisition the
// Store takes a fresh snapshot of the files. The Lease's holderIdentity is
// "<host>/<pid>/<ID>", with an ID minted for this acquisition.
func (s *Store) Lock(ctx context.Context, opts state.LockOptions) (state.Lock, error) {
	holder := opts.Holder
	if holder.PID == 0 && holder.Host == "" {
		holder = state.ThisHolder()
	}
	// Minted per call even when the caller gave one: Release and renewal tell this acquisition
	// from any other by it, a later one of the same runner included.
	holder.ID = randomHex(8)
	start := time.Now()
	deadline := start.Add(opts.Wait)
	a := acquirer{s: s, holder: holder, identity: fmt.Sprintf("%s/%d/%s", holder.Host, holder.PID, holder.ID)}
	races := 0
	for {
		l, wait, err := a.try(ctx)
		if l != nil {
			s.mu.Lock()
			s.held = l
			s.taken = time.Time{} // written under another holder, perhaps: list again
			if err := s.refresh(ctx); err != nil {
				s.taken = time.Time{} // the first read lists again
			}
			s.mu.Unlock()
			return l, nil
		}
		var foreign *foreignError
		if errors.As(err, &foreign) {
			return nil, fmt.Errorf("state %s: lock: %w", s.Describe(), err)
		}
		if err != nil && (time.Now().After(deadline) || !transient(err)) {
			return nil, fmt.Errorf("state %s: lock: %w", s.Describe(), s.apiError(err))
		}
		if err == nil && wait == 0 && races < 3 {
			races++ // another runner wrote the Lease between our read and our write: look again
			continue
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, &state.LockedError{Where: s.Describe(), Holder: a.seen, Waited: opts.Wait}
		}
		if !sleep(ctx, min(wait, left, maxPoll)) {
			return nil, fmt.Errorf("state %s: waiting for the lock held by %s: %w", s.Describe(), a.seen, ctx.Err())
		}
	}
}

// acquirer is one Lock call's view of the Lease.
type acquirer struct {
	s        *Store
	holder   state.Holder
	identity string
	// observedRV and observedAt are the Lease's version and when (our clock) we first saw it.
	observedRV string
	observedAt time.Time
	seen       state.Holder
}

// try takes the Lease if it is free; otherwise it says how long until it may have expired.
func (a *acquirer) try(ctx context.Context) (*leaseLock, time.Duration, error) {
	s := a.s
	leases := s.client.CoordinationV1().Leases(s.ns)
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cur, err := leases.Get(cctx, LeaseName(s.fleet), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		sent := s.now()
		lease := a.lease(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName(s.fleet), Namespace: s.ns}}, sent, true)
		got, err := leases.Create(cctx, lease, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, 0, nil // another runner was quicker: look again at once
		}
		if err != nil {
			return nil, maxPoll, err
		}
		return a.won(got, sent), 0, nil
	}
	if err != nil {
		return nil, maxPoll, err
	}
	if !s.ours(cur, stateLock) {
		return nil, 0, &foreignError{fmt.Sprintf("Lease %s/%s exists but is not this fleet's lock (it lacks the labels %s=%s, %s=%s, %s=%s); refusing to take it",
			s.ns, cur.Name, LabelFleet, s.fleet, LabelManagedBy, managedBy, LabelState, stateLock)}
	}
	now := s.now()
	if cur.ResourceVersion != a.observedRV {
		a.observedRV, a.observedAt = cur.ResourceVersion, now
	}
	holderID := ""
	if cur.Spec.HolderIdentity != nil {
		holderID = *cur.Spec.HolderIdentity
	}
	a.seen = holderOf(cur)
	expires := a.observedAt.Add(leaseDuration(cur, s.leaseDuration))
	if holderID != "" && now.Before(expires) {
		return nil, expires.Sub(now), nil
	}
	lease := a.lease(cur.DeepCopy(), now, holderID != a.identity)
	got, err := leases.Update(cctx, lease, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil, 0, nil // the Lease changed: look again
	}
	if err != nil {
		return nil, maxPoll, err
	}
	return a.won(got, now), 0, nil
}

// lease fills lease with our holding, from now.
func (a *acquirer) lease(lease *coordinationv1.Lease, now time.Time, newHolder bool) *coordinationv1.Lease {
	s := a.s
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	for k, v := range s.labels(stateLock) {
		lease.Labels[k] = v
	}
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	h := a.holder
	h.Since = now
	js, _ := json.Marshal(h)
	lease.Annotations[AnnotationHolder] = string(js)
	id := a.identity
	secs := int32(max(1, (s.leaseDuration+time.Second-1)/time.Second))
	mt := metav1.NewMicroTime(now)
	lease.Spec.HolderIdentity = &id
	lease.Spec.LeaseDurationSeconds = &secs
	lease.Spec.AcquireTime = &mt
	lease.Spec.RenewTime = &mt
	if newHolder {
		var t int32
		if lease.Spec.LeaseTransitions != nil {
			t = *lease.Spec.LeaseTransitions + 1
		}
		if lease.ResourceVersion == "" {
			t = 0
		}
		lease.Spec.LeaseTransitions = &t
	}
	return lease
}

// won starts holding the Lease as written at sent (our clock, before the request went out).
func (a *acquirer) won(lease *coordinationv1.Lease, sent time.Time) *leaseLock {
	h := a.holder
	h.Since = sent
	ctx, cancel := context.WithCancel(context.Background())
	l := &leaseLock{
		s: a.s, holder: h, identity: a.identity, lease: lease,
		acquired: sent, renewed: sent, duration: leaseDuration(lease, a.s.leaseDuration),
		lost: make(chan struct{}), cancel: cancel, done: make(chan struct{}),
	}
	go l.renew(ctx)
	return l
}

// leaseDuration is the duration the Lease's holder promised; def when it promised none.
func leaseDuration(l *coordinationv1.Lease, def time.Duration) time.Duration {
	if l.Spec.LeaseDurationSeconds != nil && *l.Spec.LeaseDurationSeconds > 0 {
		return time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return def
}

// holderOf reads who holds a Lease: the holder annotation, or else what holderIdentity says.
func holderOf(l *coordinationv1.Lease) state.Holder {
	var h state.Holder
	if js := l.Annotations[AnnotationHolder]; js != "" && json.Unmarshal([]byte(js), &h) == nil {
		return h
	}
	if l.Spec.HolderIdentity != nil {
		parts := strings.SplitN(*l.Spec.HolderIdentity, "/", 3)
		h.Host = parts[0]
		if len(parts) > 1 {
			h.PID, _ = strconv.Atoi(parts[1])
		}
		if len(parts) > 2 {
			h.ID = parts[2]
		}
	}
	return h
}

// leaseLock is a held Lease.
type leaseLock struct {
	s        *Store
	holder   state.Holder
	identity string
	acquired time.Time
	duration time.Duration

	lost     chan struct{}
	lostOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
	// paused makes renewal skip its API calls (tests: a holder cut off from the API server).
	paused atomic.Bool

	// lease and renewed are owned by the renew goroutine until done is closed, then by Release.
	lease   *coordinationv1.Lease
	renewed time.Time

	releaseOnce sync.Once
	releaseErr  error
}

func (l *leaseLock) Lost() <-chan struct{} { return l.lost }
func (l *leaseLock) Holder() state.Holder  { return l.holder }

func (l *leaseLock) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

func (l *leaseLock) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// foreignError says that an object we would use is not ours.
type foreignError struct{ msg string }

func (e *foreignError) Error() string { return e.msg }

// errTaken says the Lease is no longer ours.
var errTaken = errors.New("the Lease has another holder")

// renew keeps the Lease ours until ctx ends, or until it is lost.
func (l *leaseLock) renew(ctx context.Context) {
	defer close(l.done)
	interval := l.duration / 3
	next := interval
	for {
		// Wake no later than the moment the Lease would expire, to say it is lost at once.
		expires := l.renewed.Add(l.duration)
		wait := min(next, expires.Sub(l.s.now()))
		if !sleep(ctx, max(wait, 0)) {
			return
		}
		now := l.s.now()
		if !now.Before(expires) {
			l.markLost()
			return
		}
		if l.paused.Load() {
			next = interval
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, expires.Sub(now))
		err := l.renewOnce(rctx, now)
		cancel()
		switch {
		case err == nil:
			l.renewed = now
			next = interval
		case errors.Is(err, errTaken):
			l.markLost()
			return
		case ctx.Err() != nil:
			return
		default:
			next = min(interval, maxPoll) // try again soon: the Lease runs out
		}
	}
}

// renewOnce writes a new renewTime, preconditioned on the Lease as we last wrote it.
func (l *leaseLock) renewOnce(ctx context.Context, now time.Time) error {
	leases := l.s.client.CoordinationV1().Leases(l.s.ns)
	for range 2 {
		lease := l.lease.DeepCopy()
		mt := metav1.NewMicroTime(now)
		lease.Spec.RenewTime = &mt
		got, err := leases.Update(ctx, lease, metav1.UpdateOptions{})
		if err == nil {
			l.lease = got
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return err
		}
		// Someone wrote the Lease: still ours (an edited label, say), or taken?
		cur, err := leases.Get(ctx, l.lease.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return errTaken
		}
		if err != nil {
			return err
		}
		if cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != l.identity {
			return errTaken
		}
		l.lease = cur
	}
	return errors.New("the Lease keeps changing")
}

// Release stops renewing and clears the Lease's holder, so the next runner need not wait for
// it to expire. A lost lock is left alone: the Lease is another's now. Calling it twice is
// harmless.
func (l *leaseLock) Release() error {
	l.releaseOnce.Do(func() {
		l.cancel()
		<-l.done
		s := l.s
		s.mu.Lock()
		if s.held == l {
			s.held = nil
		}
		s.mu.Unlock()
		if l.isLost() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		leases := s.client.CoordinationV1().Leases(s.ns)
		for range 2 {
			lease := l.lease.DeepCopy()
			empty := ""
			mt := metav1.NewMicroTime(s.now())
			lease.Spec.HolderIdentity = &empty
			lease.Spec.RenewTime = &mt
			delete(lease.Annotations, AnnotationHolder)
			_, err := leases.Update(ctx, lease, metav1.UpdateOptions{})
			if err == nil || apierrors.IsNotFound(err) {
				return
			}
			if !apierrors.IsConflict(err) {
				l.releaseErr = fmt.Errorf("state %s: release the lock: %w", s.Describe(), s.apiError(err))
				return
			}
			cur, err := leases.Get(ctx, lease.Name, metav1.GetOptions{})
			if err != nil || cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != l.identity {
				return // gone or another's: nothing of ours to release
			}
			l.lease = cur
		}
	})
	return l.releaseErr
}
