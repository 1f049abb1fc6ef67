package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/reconcile-dev/reconcile/plan"
)

// waitTimeout bounds every wait on a condition; the tests never sleep to synchronize.
const waitTimeout = 10 * time.Second

// fastRetry keeps backoff tiny so retry tests run in milliseconds.
var fastRetry = RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

// plan builds a plan from "addr:dep1,dep2" specs; every step has action Create.
func mkplan(specs ...string) *plan.Plan {
	p := &plan.Plan{Fleet: "test"}
	for _, s := range specs {
		addr, deps, _ := strings.Cut(s, ":")
		st := plan.Step{Address: addr, Action: plan.Create}
		if deps != "" {
			st.DependsOn = strings.Split(deps, ",")
		}
		p.Steps = append(p.Steps, st)
	}
	return p
}

func fanOut(n int) []string {
	specs := []string{"root"}
	for i := range n {
		specs = append(specs, fmt.Sprintf("leaf/%02d:root", i))
	}
	return specs
}

func TestWalkOrdering(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"chain":   {"c:b", "a", "d:c", "b:a"},
		"diamond": {"top", "left:top", "right:top", "bottom:left,right"},
		"fan-out": append(fanOut(25), "join:leaf/00,leaf/07,leaf/24"),
		"mixed":   {"cluster/m", "cluster/m/kubeconfig:cluster/m", "karmada:cluster/m/kubeconfig", "cluster/eu", "join/eu:karmada,cluster/eu", "policy:join/eu,karmada"},
	}
	for name, specs := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := mkplan(specs...)
			// Every start and finish goes through one channel: its order is the real order.
			log := make(chan string, 2*len(p.Steps))
			fn := func(_ context.Context, s plan.Step) error {
				log <- "start " + s.Address
				log <- "finish " + s.Address
				return nil
			}
			res, err := Walk(t.Context(), p, adapt(fn), Options{Parallelism: 4})
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
			close(log)
			pos := map[string]int{}
			i := 0
			for e := range log {
				pos[e] = i
				i++
			}
			if i != 2*len(p.Steps) {
				t.Fatalf("got %d start/finish records, want %d", i, 2*len(p.Steps))
			}
			for _, s := range p.Steps {
				for _, d := range s.DependsOn {
					if pos["finish "+d] > pos["start "+s.Address] {
						t.Errorf("%s started before its dependency %s finished", s.Address, d)
					}
				}
			}
			if len(res.Succeeded) != len(p.Steps) || !slices.IsSorted(res.Succeeded) {
				t.Errorf("Succeeded = %v, want all %d steps sorted", res.Succeeded, len(p.Steps))
			}
		})
	}
}

func TestWalkParallelismBounded(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 2, 10} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			t.Parallel()
			const n = 30
			var specs []string
			for i := range n {
				specs = append(specs, fmt.Sprintf("s/%02d", i))
			}
			var cur, peak atomic.Int32
			started := make(chan string)
			release := make(chan struct{})
			fn := func(_ context.Context, s plan.Step) error {
				c := cur.Add(1)
				for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
				}
				started <- s.Address
				<-release
				cur.Add(-1)
				return nil
			}
			done := make(chan error, 1)
			go func() {
				_, err := Walk(t.Context(), mkplan(specs...), adapt(fn), Options{Parallelism: limit})
				done <- err
			}()
			// Let steps start until limit of them are inside fn, then release one at a time.
			// A walker that ignored the limit would have more than limit inside fn, blocked
			// on started, and peak would show it.
			startedN, releasedN := 0, 0
			for releasedN < n {
				if startedN < n && startedN-releasedN < limit {
					select {
					case <-started:
						startedN++
					case <-time.After(waitTimeout):
						t.Fatalf("only %d of %d steps started", startedN, n)
					}
					continue
				}
				release <- struct{}{}
				releasedN++
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Walk: %v", err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("Walk did not return")
			}
			if got := peak.Load(); got != int32(limit) {
				t.Errorf("peak concurrency = %d, want %d", got, limit)
			}
		})
	}
}

// failing returns a StepFunc that fails the given steps with a terminal error and counts calls.
func failing(calls *sync.Map, fail ...string) StepFunc {
	return adapt(func(_ context.Context, s plan.Step) error {
		n, _ := calls.LoadOrStore(s.Address, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if slices.Contains(fail, s.Address) {
			return fmt.Errorf("boom in %s", s.Address)
		}
		return nil
	})
}

func TestWalkFailureSkipsTransitiveDependents(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                       string
		specs                      []string
		fail                       []string
		succeeded, failed, skipped []string
		reasons                    map[string]string
	}{
		{
			name:      "chain with independent branch",
			specs:     []string{"a", "b:a", "c:b", "d", "e:d", "f:e,c"},
			fail:      []string{"a"},
			succeeded: []string{"d", "e"},
			failed:    []string{"a"},
			skipped:   []string{"b", "c", "f"},
			reasons:   map[string]string{"b": "dependency a failed", "f": "dependency a failed"},
		},
		{
			name:      "diamond below a failure is skipped once",
			specs:     []string{"root", "x:root", "l:x", "r:x", "bottom:l,r", "other:root"},
			fail:      []string{"x"},
			succeeded: []string{"other", "root"},
			failed:    []string{"x"},
			skipped:   []string{"bottom", "l", "r"},
		},
		{
			name:      "two failures share a dependent",
			specs:     []string{"a", "b", "c:a,b", "d:c", "e"},
			fail:      []string{"a", "b"},
			succeeded: []string{"e"},
			failed:    []string{"a", "b"},
			skipped:   []string{"c", "d"},
		},
		{
			name:      "leaf failure skips nothing",
			specs:     []string{"a", "b:a", "c:a"},
			fail:      []string{"c"},
			succeeded: []string{"a", "b"},
			failed:    []string{"c"},
			skipped:   []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls sync.Map
			var mu sync.Mutex
			skipEvents := map[string][]string{}
			opt := Options{Retry: fastRetry, OnEvent: func(e Event) {
				if e.Type == EventSkipped {
					mu.Lock()
					skipEvents[e.Step] = append(skipEvents[e.Step], e.Reason)
					mu.Unlock()
				}
			}}
			res, err := Walk(t.Context(), mkplan(tc.specs...), failing(&calls, tc.fail...), opt)
			if err == nil {
				t.Fatal("Walk returned nil error despite failures")
			}
			if !slices.Equal(res.Succeeded, tc.succeeded) || !slices.Equal(res.Failed, tc.failed) || !slices.Equal(res.Skipped, tc.skipped) {
				t.Errorf("result = %+v, want succeeded %v failed %v skipped %v", *res, tc.succeeded, tc.failed, tc.skipped)
			}
			for _, s := range tc.skipped {
				if _, called := calls.Load(s); called {
					t.Errorf("skipped step %s was called", s)
				}
				if len(skipEvents[s]) != 1 {
					t.Errorf("step %s got %d skipped events, want 1", s, len(skipEvents[s]))
				}
			}
			if len(skipEvents) != len(tc.skipped) {
				t.Errorf("skipped events for %d steps, want %d", len(skipEvents), len(tc.skipped))
			}
			for s, want := range tc.reasons {
				if got := skipEvents[s]; len(got) != 1 || got[0] != want {
					t.Errorf("skip reason for %s = %q, want %q", s, got, want)
				}
			}
			var merr *multierror.Error
			if !errors.As(err, &merr) || len(merr.Errors) != len(tc.failed) {
				t.Fatalf("error %v: want a multierror with %d entries", err, len(tc.failed))
			}
		})
	}
}

func TestWalkErrorListsFailedStepsSorted(t *testing.T) {
	t.Parallel()
	errQuota := errors.New("quota exceeded")
	fn := func(_ context.Context, s plan.Step) error {
		if s.Address == "ok" {
			return nil
		}
		return fmt.Errorf("driver: %w", errQuota)
	}
	res, err := Walk(t.Context(), mkplan("zeta", "alpha", "ok", "mid/x", "mid/a"), adapt(fn), Options{})
	if err == nil {
		t.Fatal("want an error")
	}
	want := []string{"alpha", "mid/a", "mid/x", "zeta"}
	if !slices.Equal(res.Failed, want) {
		t.Errorf("Failed = %v, want %v", res.Failed, want)
	}
	var merr *multierror.Error
	if !errors.As(err, &merr) {
		t.Fatalf("error %T is not a *multierror.Error", err)
	}
	var got []string
	for _, e := range merr.Errors {
		addr, _, _ := strings.Cut(e.Error(), ": ")
		got = append(got, addr)
		if !errors.Is(e, errQuota) {
			t.Errorf("entry %q does not wrap the cause", e)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("error entries = %v, want %v", got, want)
	}
	if !errors.Is(err, errQuota) {
		t.Error("errors.Is through the aggregate failed")
	}
}

type retryLater struct{ after time.Duration }

func (e retryLater) Error() string             { return "rate limited" }
func (e retryLater) RetryAfter() time.Duration { return e.after }

type flaky struct{ retryable bool }

func (e flaky) Error() string   { return fmt.Sprintf("flaky(%v)", e.retryable) }
func (e flaky) Retryable() bool { return e.retryable }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestWalkRetries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		errs      []error // returned by successive calls; nil after the list
		wantCalls int32
		wantOK    bool
	}{
		{"retryable then success", []error{flaky{true}, fmt.Errorf("wrapped: %w", flaky{true})}, 3, true},
		{"timeout then success", []error{timeoutErr{}}, 2, true},
		{"per-call deadline then success", []error{context.DeadlineExceeded}, 2, true},
		{"terminal not retried", []error{errors.New("bad request")}, 1, false},
		{"explicit non-retryable not retried", []error{flaky{false}}, 1, false},
		{"cancelled is terminal", []error{context.Canceled}, 1, false},
		{"gives up after MaxAttempts", []error{flaky{true}, flaky{true}, flaky{true}, flaky{true}, flaky{true}}, int32(fastRetry.MaxAttempts), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			fn := func(context.Context, plan.Step) error {
				n := calls.Add(1)
				if int(n) <= len(tc.errs) {
					return tc.errs[n-1]
				}
				return nil
			}
			var retries atomic.Int32
			opt := Options{Retry: fastRetry, OnEvent: func(e Event) {
				if e.Type == EventRetry {
					retries.Add(1)
				}
			}}
			res, err := Walk(t.Context(), mkplan("s"), adapt(fn), opt)
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d", got, tc.wantCalls)
			}
			if got := retries.Load(); got != tc.wantCalls-1 {
				t.Errorf("retry events = %d, want %d", got, tc.wantCalls-1)
			}
			if tc.wantOK != (err == nil) || tc.wantOK != slices.Equal(res.Succeeded, []string{"s"}) {
				t.Errorf("err = %v, result %+v, want success %v", err, *res, tc.wantOK)
			}
			if !tc.wantOK && !errors.Is(err, tc.errs[len(tc.errs)-1]) {
				t.Errorf("err = %v does not wrap the last cause", err)
			}
		})
	}
}

func TestWalkHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	const after = 30 * time.Millisecond
	var times []time.Time
	fn := func(context.Context, plan.Step) error {
		times = append(times, time.Now()) // calls of one step never overlap
		if len(times) == 1 {
			return fmt.Errorf("linode: %w", retryLater{after})
		}
		return nil
	}
	var wait time.Duration
	opt := Options{Retry: fastRetry, OnEvent: func(e Event) {
		if e.Type == EventRetry {
			wait = e.Duration
		}
	}}
	if _, err := Walk(t.Context(), mkplan("s"), adapt(fn), opt); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if len(times) != 2 {
		t.Fatalf("calls = %d, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < after {
		t.Errorf("second attempt came %v after the first, want >= %v", gap, after)
	}
	if wait < after {
		t.Errorf("retry event wait = %v, want >= %v", wait, after)
	}
}

func TestWalkNoOpStepsSucceedWithoutCalling(t *testing.T) {
	t.Parallel()
	p := mkplan("a", "b:a", "c:b")
	p.Steps[1].Action = plan.NoOp
	var called []string
	fn := func(_ context.Context, s plan.Step) error {
		called = append(called, s.Address) // the chain runs one step at a time
		return nil
	}
	res, err := Walk(t.Context(), p, adapt(fn), Options{})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if !slices.Equal(called, []string{"a", "c"}) {
		t.Errorf("called %v, want [a c]", called)
	}
	if !slices.Equal(res.Succeeded, []string{"a", "b", "c"}) {
		t.Errorf("Succeeded = %v", res.Succeeded)
	}
}

func TestWalkRejectsInvalidPlans(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		specs []string
		want  []string // substrings of the error
	}{
		{"unknown dependency", []string{"a", "b:a,ghost"}, []string{`depends on a step not in the plan: b -> ghost`}},
		{"self loop", []string{"a:a"}, []string{"cycle: a -> a"}},
		{"all cycles at once", []string{"a:b", "b:a", "c", "x:z", "y:x", "z:y,c"}, []string{"cycle: a -> b -> a", "cycle: x -> y -> z -> x"}},
		{"duplicate address", []string{"a", "a"}, []string{"step a appears more than once"}},
		{"empty address", []string{""}, []string{"has no address"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			fn := func(context.Context, plan.Step) error { calls.Add(1); return nil }
			res, err := Walk(t.Context(), mkplan(tc.specs...), adapt(fn), Options{})
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if res != nil || calls.Load() != 0 {
				t.Errorf("invalid plan ran %d steps (result %v)", calls.Load(), res)
			}
		})
	}
}

func TestWalkEmptyPlan(t *testing.T) {
	t.Parallel()
	for _, p := range []*plan.Plan{nil, {}} {
		res, err := Walk(t.Context(), p, nil, Options{})
		if err != nil || len(res.Succeeded)+len(res.Failed)+len(res.Skipped) != 0 {
			t.Errorf("Walk(%v) = %+v, %v; want an empty result", p, res, err)
		}
	}
}

func TestWalkPanicIsAFailure(t *testing.T) {
	t.Parallel()
	fn := func(_ context.Context, s plan.Step) error {
		if s.Address == "bad" {
			panic("driver bug")
		}
		return nil
	}
	res, err := Walk(t.Context(), mkplan("bad", "after:bad", "fine"), adapt(fn), Options{})
	if err == nil || !strings.Contains(err.Error(), "bad: panic: driver bug") {
		t.Errorf("err = %v, want the panic reported for step bad", err)
	}
	if !slices.Equal(res.Skipped, []string{"after"}) || !slices.Equal(res.Succeeded, []string{"fine"}) {
		t.Errorf("result = %+v", *res)
	}
}

func TestWalkEventsAreSerialized(t *testing.T) {
	t.Parallel()
	var inside, overlaps atomic.Int32
	count := map[EventType]int{} // unguarded on purpose: -race flags concurrent calls
	opt := Options{Parallelism: 8, Retry: fastRetry, OnEvent: func(e Event) {
		if inside.Add(1) > 1 {
			overlaps.Add(1)
		}
		count[e.Type]++
		inside.Add(-1)
	}}
	var first sync.Map
	fn := func(_ context.Context, s plan.Step) error {
		if _, again := first.LoadOrStore(s.Address, true); !again {
			return flaky{true}
		}
		return nil
	}
	if _, err := Walk(t.Context(), mkplan(fanOut(40)...), adapt(fn), opt); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if overlaps.Load() != 0 {
		t.Errorf("OnEvent was called concurrently %d times", overlaps.Load())
	}
	if count[EventStart] != 41 || count[EventDone] != 41 || count[EventRetry] != 41 {
		t.Errorf("event counts = %v, want 41 start, retry and done", count)
	}
}

func TestWalkCancellation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		grace time.Duration
		// finish is what the running step does once the walk is cancelled.
		finish    func(ctx context.Context) error
		wantErr   error // nil: the running step succeeds within grace
		stepCtxOK bool  // whether the step's ctx must still be live when it finishes
	}{
		{
			name:      "running step finishes within grace",
			grace:     time.Minute,
			finish:    func(context.Context) error { return nil },
			stepCtxOK: true,
		},
		{
			name:  "running step is cancelled after grace",
			grace: time.Millisecond,
			finish: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			},
			wantErr: context.Canceled,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			started := make(chan string, 10)
			proceed := make(chan struct{})
			var calls atomic.Int32
			var ctxErrAtFinish atomic.Value
			fn := func(sctx context.Context, s plan.Step) error {
				calls.Add(1)
				started <- s.Address
				<-proceed
				err := tc.finish(sctx)
				ctxErrAtFinish.Store(fmt.Sprint(sctx.Err()))
				return err
			}
			// Parallelism 1: one of x, y runs, the other waits for the semaphore.
			p := mkplan("x", "y", "after-x:x", "after-y:y")
			type walkResult struct {
				res *Result
				err error
			}
			done := make(chan walkResult, 1)
			go func() {
				res, err := Walk(ctx, p, adapt(fn), Options{Parallelism: 1, Grace: tc.grace})
				done <- walkResult{res, err}
			}()
			var first string
			select {
			case first = <-started:
			case <-time.After(waitTimeout):
				t.Fatal("no step started")
			}
			cancel()
			close(proceed)
			var r walkResult
			select {
			case r = <-done:
			case <-time.After(waitTimeout):
				t.Fatal("Walk did not return after cancel")
			}
			if calls.Load() != 1 {
				t.Errorf("%d steps were called, want only %s", calls.Load(), first)
			}
			other := map[string]string{"x": "y", "y": "x"}[first]
			wantSkipped := []string{"after-" + first, "after-" + other, other}
			slices.Sort(wantSkipped)
			if !slices.Equal(r.res.Skipped, wantSkipped) {
				t.Errorf("Skipped = %v, want %v", r.res.Skipped, wantSkipped)
			}
			if tc.wantErr == nil {
				if r.err != nil || !slices.Equal(r.res.Succeeded, []string{first}) {
					t.Errorf("result %+v, err %v: want %s succeeded", *r.res, r.err, first)
				}
			} else if !errors.Is(r.err, tc.wantErr) || !slices.Equal(r.res.Failed, []string{first}) {
				t.Errorf("result %+v, err %v: want %s failed with %v", *r.res, r.err, first, tc.wantErr)
			}
			if got := ctxErrAtFinish.Load(); tc.stepCtxOK && got != "<nil>" {
				t.Errorf("step context was %v when the step finished, want live within grace", got)
			}
		})
	}
}

func TestWalkCancelStopsRetryWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var calls atomic.Int32
	fn := func(context.Context, plan.Step) error {
		calls.Add(1)
		return retryLater{time.Hour}
	}
	var reasons []string
	opt := Options{Retry: fastRetry, OnEvent: func(e Event) {
		if e.Type == EventRetry {
			cancel() // cancel while the walker waits an hour to retry
		}
		if e.Type == EventFailed || e.Type == EventSkipped {
			reasons = append(reasons, e.Step+": "+e.Reason)
		}
	}}
	done := make(chan error, 1)
	go func() {
		_, err := Walk(ctx, mkplan("s", "t:s"), adapt(fn), opt)
		done <- err
	}()
	select {
	case err := <-done:
		var rl retryLater
		if !errors.As(err, &rl) {
			t.Errorf("err = %v, want the last retryable error", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Walk kept waiting to retry after cancel")
	}
	if calls.Load() != 1 {
		t.Errorf("calls = %d, want 1", calls.Load())
	}
	want := []string{"s: cancelled while waiting to retry", "t: dependency s failed"}
	if !slices.Equal(reasons, want) {
		t.Errorf("reasons = %q, want %q", reasons, want)
	}
}

func TestWalkCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var calls atomic.Int32
	fn := func(context.Context, plan.Step) error { calls.Add(1); return nil }
	var reasons []string
	opt := Options{OnEvent: func(e Event) { reasons = append(reasons, e.Type.String()+" "+e.Reason) }}
	res, err := Walk(ctx, mkplan("a", "b:a", "c"), adapt(fn), opt)
	if err != nil || calls.Load() != 0 {
		t.Errorf("err = %v, calls = %d: want nothing run and no error", err, calls.Load())
	}
	if !slices.Equal(res.Skipped, []string{"a", "b", "c"}) {
		t.Errorf("Skipped = %v", res.Skipped)
	}
	if len(reasons) != 3 || slices.ContainsFunc(reasons, func(r string) bool { return r != "skipped cancelled" }) {
		t.Errorf("events = %q, want three skipped cancelled", reasons)
	}
}

// expiringContext is done with DeadlineExceeded when the test says so, so that a walk can hit
// its deadline exactly while a step runs.
type expiringContext struct {
	context.Context
	done chan struct{}
	once *sync.Once
}

func newExpiringContext() (expiringContext, context.CancelFunc) {
	c := expiringContext{Context: context.Background(), done: make(chan struct{}), once: new(sync.Once)}
	return c, func() { c.once.Do(func() { close(c.done) }) }
}

func (c expiringContext) Done() <-chan struct{} { return c.done }

func (c expiringContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func TestWalkDoesNotRetryOnceCancelled(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		// err is what the step returns once it sees the walk's context done.
		err error
	}{
		{"walk cancelled", func() (context.Context, context.CancelFunc) { return context.WithCancel(t.Context()) }, flaky{true}},
		{"walk deadline", func() (context.Context, context.CancelFunc) { return newExpiringContext() }, context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := tc.ctx()
			defer cancel()
			var calls atomic.Int32
			fn := func(context.Context, plan.Step) error {
				calls.Add(1)
				cancel()
				<-ctx.Done()
				return tc.err
			}
			var reason string
			opt := Options{Retry: fastRetry, OnEvent: func(e Event) {
				if e.Type == EventFailed {
					reason = e.Reason
				}
			}}
			res, err := Walk(ctx, mkplan("s"), adapt(fn), opt)
			if !errors.Is(err, tc.err) || !slices.Equal(res.Failed, []string{"s"}) {
				t.Errorf("result %+v, err %v: want s failed with %v", *res, err, tc.err)
			}
			if calls.Load() != 1 || reason != ReasonCancelled {
				t.Errorf("calls = %d, reason %q: want 1 call, failed as %q", calls.Load(), reason, ReasonCancelled)
			}
		})
	}
}

// adapt makes a step function without outputs a StepFunc.
func adapt(f func(context.Context, plan.Step) error) StepFunc {
	return func(ctx context.Context, s plan.Step) (plan.Outputs, error) { return nil, f(ctx, s) }
}

// A step's references are resolved from the outputs of the steps it depends on.
func TestWalkResolvesReferences(t *testing.T) {
	t.Parallel()
	p := &plan.Plan{Steps: []plan.Step{
		{Address: "cluster/eu/kubeconfig", Action: plan.Create},
		{Address: "member/eu/join", Action: plan.Create, DependsOn: []string{"cluster/eu/kubeconfig"},
			Payload: plan.Payload{Join: &plan.Join{APIEndpoint: plan.Value{From: &plan.Ref{Step: "cluster/eu/kubeconfig", Output: plan.OutputAPIEndpoint}}}}},
	}}
	var mu sync.Mutex
	var got plan.Value
	fn := func(_ context.Context, s plan.Step) (plan.Outputs, error) {
		if s.Address == "cluster/eu/kubeconfig" {
			return plan.Outputs{plan.OutputAPIEndpoint: "https://eu:6443"}, nil
		}
		mu.Lock()
		got = s.Payload.Join.APIEndpoint
		mu.Unlock()
		return nil, nil
	}
	if _, err := Walk(t.Context(), p, fn, Options{}); err != nil {
		t.Fatal(err)
	}
	if got != plan.Known("https://eu:6443") {
		t.Errorf("join saw %+v", got)
	}
	if p.Steps[1].Payload.Join.APIEndpoint.From == nil {
		t.Error("the walk wrote into the plan")
	}
	// A producer that does not produce: the dependent fails, naming what it missed.
	fn2 := func(_ context.Context, s plan.Step) (plan.Outputs, error) { return nil, nil }
	res, err := Walk(t.Context(), p, fn2, Options{})
	if err == nil || !strings.Contains(err.Error(), "cluster/eu/kubeconfig did not produce") || len(res.Failed) != 1 {
		t.Errorf("err = %v, res = %+v", err, res)
	}
}
