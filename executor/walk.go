// Package executor walks a plan: ordering, bounded parallelism, retries, cancellation.
package executor

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/progress"
)

// StepFunc executes one step, whose references are resolved, and returns its outputs.
type StepFunc func(ctx context.Context, s plan.Step) (plan.Outputs, error)

// Options tune a walk. The zero value is usable.
type Options struct {
	// Parallelism bounds how many steps run at once; zero means 10.
	Parallelism int
	Retry       RetryPolicy
	// Grace is how long running steps may go on after the walk's context is done before
	// their own context is cancelled; zero means 30s, negative cancels them at once.
	Grace time.Duration
	// OnEvent, when set, sees every event; it is never called concurrently.
	OnEvent func(Event)
}

// RetryPolicy says how often and how patiently a retryable error is retried.
type RetryPolicy struct {
	// MaxAttempts counts the first call too; zero means 5, one means never retry.
	MaxAttempts int
	// BaseDelay and MaxDelay bound the exponential backoff; zero means 1s and 30s.
	// A RetryAfter carried by the error may make the wait longer than MaxDelay.
	BaseDelay, MaxDelay time.Duration
}

// EventType says what happened to a step.
type EventType int

const (
	// EventStart: the step's first attempt begins.
	EventStart EventType = iota + 1
	// EventDone: the step succeeded (a no-op step is done without running).
	EventDone
	// EventRetry: attempt Attempt failed with a retryable Err; the next one follows after Duration.
	EventRetry
	// EventFailed: the step failed for good with Err after Attempt attempts.
	EventFailed
	// EventSkipped: the step never ran; Reason says why (a failed dependency, "cancelled").
	EventSkipped
)

func (t EventType) String() string {
	switch t {
	case EventStart:
		return "start"
	case EventDone:
		return "done"
	case EventRetry:
		return "retry"
	case EventFailed:
		return "failed"
	case EventSkipped:
		return "skipped"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event reports progress of one step.
type Event struct {
	Step    string
	Type    EventType
	Attempt int
	// Duration is the time since the step started for Done and Failed, and the wait before
	// the next attempt for Retry.
	Duration time.Duration
	Err      error
	Reason   string
}

// Result lists step addresses by outcome, each sorted.
type Result struct {
	Succeeded, Failed, Skipped []string
}

// ReasonCancelled is the Reason of a step skipped because the walk's context was done.
const ReasonCancelled = "cancelled"

// Walk executes the plan: every step runs only after all of its DependsOn succeeded, at most
// opt.Parallelism at once; steps without an action count as succeeded without calling fn.
// A step's references (plan.Ref) are resolved from its dependencies' outputs before it runs.
// Retryable errors (see Retryable) are retried with backoff. A failed step's transitive
// dependents are skipped, not failed. When ctx is done no new step starts; running steps
// keep a context of their own for opt.Grace. The plan is validated before anything runs.
//
// The error lists every failed step, sorted by address, each wrapping its cause; it is nil
// when no step failed (steps skipped because of cancellation are not errors).
func Walk(ctx context.Context, p *plan.Plan, fn StepFunc, opt Options) (*Result, error) {
	g, err := newGraph(p)
	if err != nil {
		return nil, err
	}
	if opt.Parallelism <= 0 {
		opt.Parallelism = 10
	}
	if opt.Grace == 0 {
		opt.Grace = 30 * time.Second
	}
	opt.Retry = opt.Retry.withDefaults()

	w := &walker{
		g:         g,
		fn:        fn,
		opt:       opt,
		sem:       make(chan struct{}, opt.Parallelism),
		outcomes:  make(chan outcome, len(g.order)),
		status:    make(map[string]status, len(g.order)),
		remaining: make(map[string]int, len(g.order)),
		errs:      make(map[string]error),
		outputs:   make(map[string]plan.Outputs),
	}
	return w.run(ctx)
}

type status int

const (
	pending status = iota
	running
	succeeded
	failed
	skipped
)

type outcome struct {
	addr       string
	err        error
	outputs    plan.Outputs
	notStarted bool
}

// walker's maps are owned by the goroutine running run; step goroutines only send outcomes.
type walker struct {
	g   *graph
	fn  StepFunc
	opt Options
	sem chan struct{}

	outcomes  chan outcome
	inflight  int
	status    map[string]status
	remaining map[string]int
	errs      map[string]error
	ready     []string
	// outputs of the steps that succeeded; written by run only, read by steps that start
	// after their producers finished (the channel receive orders the two).
	outputsMu sync.RWMutex
	outputs   map[string]plan.Outputs

	eventMu sync.Mutex
}

func (w *walker) run(ctx context.Context) (*Result, error) {
	// Steps run under a context that outlives ctx by the grace period, so a step caught
	// mid-write by a shutdown can finish it.
	stepCtx, cancelSteps := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSteps()
	finished := make(chan struct{})
	defer close(finished)
	stopGrace := context.AfterFunc(ctx, func() {
		if w.opt.Grace < 0 {
			cancelSteps()
			return
		}
		t := time.NewTimer(w.opt.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSteps()
		case <-finished:
		}
	})
	defer stopGrace()

	for _, a := range w.g.order {
		w.remaining[a] = len(w.g.deps[a])
		if w.remaining[a] == 0 {
			w.ready = append(w.ready, a)
		}
	}
	for {
		for len(w.ready) > 0 {
			a := w.ready[0]
			w.ready = w.ready[1:]
			w.start(ctx, stepCtx, a)
		}
		if w.inflight == 0 {
			break
		}
		o := <-w.outcomes
		w.inflight--
		switch {
		case o.notStarted:
			w.skip(o.addr, ReasonCancelled)
		case o.err != nil:
			w.status[o.addr] = failed
			w.errs[o.addr] = o.err
			w.skipDependents(o.addr)
		default:
			w.status[o.addr] = succeeded
			if len(o.outputs) > 0 {
				w.outputsMu.Lock()
				w.outputs[o.addr] = o.outputs
				w.outputsMu.Unlock()
			}
			w.release(o.addr)
		}
	}
	// Whatever is still pending was never reached: the walk was cancelled.
	for _, a := range w.g.order {
		if w.status[a] == pending {
			w.skip(a, ReasonCancelled)
		}
	}
	return w.result()
}

// start launches a ready step, unless the walk is cancelled (it stays pending).
func (w *walker) start(ctx, stepCtx context.Context, a string) {
	if w.status[a] != pending || ctx.Err() != nil {
		return
	}
	s := w.g.steps[a]
	if s.Action == plan.NoOp {
		w.status[a] = succeeded
		w.emit(Event{Step: a, Type: EventDone, Reason: "no-op"})
		w.release(a)
		return
	}
	w.status[a] = running
	w.inflight++
	go func() { w.outcomes <- w.runStep(ctx, stepCtx, s) }()
}

// release counts a's success towards its dependents and queues those now ready.
func (w *walker) release(a string) {
	for _, d := range w.g.dependents[a] {
		w.remaining[d]--
		if w.remaining[d] == 0 && w.status[d] == pending {
			w.ready = append(w.ready, d)
		}
	}
}

func (w *walker) skip(a, reason string) {
	w.status[a] = skipped
	w.emit(Event{Step: a, Type: EventSkipped, Reason: reason})
}

// skipDependents skips every transitive dependent of the failed step a, once each.
func (w *walker) skipDependents(a string) {
	reason := fmt.Sprintf("dependency %s failed", a)
	queue := slices.Clone(w.g.dependents[a])
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if w.status[d] != pending {
			continue
		}
		w.skip(d, reason)
		queue = append(queue, w.g.dependents[d]...)
	}
}

// runStep runs one step with retries, in its own goroutine.
func (w *walker) runStep(ctx, stepCtx context.Context, s *plan.Step) outcome {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return outcome{addr: s.Address, notStarted: true}
	}
	defer func() { <-w.sem }()
	if ctx.Err() != nil {
		return outcome{addr: s.Address, notStarted: true}
	}

	began := time.Now()
	w.emit(Event{Step: s.Address, Type: EventStart, Attempt: 1})
	fail := func(attempt int, err error, reason string) outcome {
		w.emit(Event{Step: s.Address, Type: EventFailed, Attempt: attempt, Duration: time.Since(began), Err: err, Reason: reason})
		return outcome{addr: s.Address, err: err}
	}
	resolved, err := s.Resolve(w.lookup)
	if err != nil {
		return fail(1, err, "unresolved reference")
	}
	// The drivers' waits name the step in their progress lines.
	stepCtx = progress.WithStep(stepCtx, s.Address)
	for attempt := 1; ; attempt++ {
		out, err := w.call(stepCtx, resolved)
		if err == nil {
			w.emit(Event{Step: s.Address, Type: EventDone, Attempt: attempt, Duration: time.Since(began)})
			return outcome{addr: s.Address, outputs: out}
		}
		retry, after := Retryable(err)
		switch {
		case !retry:
			return fail(attempt, err, "terminal error")
		case ctx.Err() != nil || stepCtx.Err() != nil:
			return fail(attempt, err, ReasonCancelled)
		case attempt >= w.opt.Retry.MaxAttempts:
			return fail(attempt, err, fmt.Sprintf("gave up after %d attempts", attempt))
		}
		wait := w.opt.Retry.backoff(attempt, after)
		w.emit(Event{Step: s.Address, Type: EventRetry, Attempt: attempt, Duration: wait, Err: err})
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fail(attempt, err, "cancelled while waiting to retry")
		}
	}
}

// call runs fn, turning a panic into the step's error so one bad driver cannot take the
// daemon down with it.
func (w *walker) call(ctx context.Context, s plan.Step) (out plan.Outputs, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return w.fn(ctx, s)
}

// lookup finds an output of a step that succeeded in this walk.
func (w *walker) lookup(step, output string) (string, bool) {
	w.outputsMu.RLock()
	defer w.outputsMu.RUnlock()
	v, ok := w.outputs[step][output]
	return v, ok
}

func (w *walker) emit(e Event) {
	if w.opt.OnEvent == nil {
		return
	}
	w.eventMu.Lock()
	defer w.eventMu.Unlock()
	w.opt.OnEvent(e)
}

func (w *walker) result() (*Result, error) {
	r := &Result{Succeeded: []string{}, Failed: []string{}, Skipped: []string{}}
	for _, a := range w.g.order {
		switch w.status[a] {
		case succeeded:
			r.Succeeded = append(r.Succeeded, a)
		case failed:
			r.Failed = append(r.Failed, a)
		case skipped:
			r.Skipped = append(r.Skipped, a)
		}
	}
	sort.Strings(r.Succeeded)
	sort.Strings(r.Failed)
	sort.Strings(r.Skipped)
	var merr *multierror.Error
	for _, a := range r.Failed {
		merr = multierror.Append(merr, fmt.Errorf("%s: %w", a, w.errs[a]))
	}
	return r, merr.ErrorOrNil()
}

// graph is the validated plan: steps by address and the edges both ways.
type graph struct {
	order      []string // plan order
	steps      map[string]*plan.Step
	deps       map[string][]string // unique dependencies
	dependents map[string][]string // in plan order
}

// newGraph validates the plan (plan.Validate: unique addresses, known dependencies and
// references, no cycles, all reported at once) and indexes its edges both ways.
func newGraph(p *plan.Plan) (*graph, error) {
	g := &graph{
		steps:      map[string]*plan.Step{},
		deps:       map[string][]string{},
		dependents: map[string][]string{},
	}
	if p == nil {
		return g, nil
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid plan: %w", err)
	}
	for i := range p.Steps {
		s := &p.Steps[i]
		g.steps[s.Address] = s
		g.order = append(g.order, s.Address)
	}
	for _, a := range g.order {
		seen := map[string]bool{}
		for _, d := range g.steps[a].DependsOn {
			if seen[d] {
				continue
			}
			seen[d] = true
			g.deps[a] = append(g.deps[a], d)
			g.dependents[d] = append(g.dependents[d], a)
		}
	}
	return g, nil
}
