// Package progress makes every long wait say what it awaits: a line at info level every
// interval (15 s by default) with what is awaited, for how long, the bound, and what the
// wait last saw, so a wait that cannot finish is never silent until its timeout. The step
// being executed, when the executor put it in the context, names the line; a Sink in the
// context (the live table of `--once` on a terminal) sees the same reports more often.
package progress

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how often a wait that is still going on logs a line.
const DefaultInterval = 15 * time.Second

// sinkInterval is how often a Sink hears of a running wait: a table redraws about once a second.
const sinkInterval = time.Second

// Report is what a wait says about itself.
type Report struct {
	// Step is the address of the step waiting, "" when not known.
	Step string
	// What is awaited, in words: "cluster eu Ready".
	What string
	// Elapsed is the time since the wait began; Bound its timeout (0: none known).
	Elapsed, Bound time.Duration
	// State is what the wait last saw ("Ready=False reason ...").
	State string
	// Done is set on the last report of a wait, when it ended either way.
	Done bool
}

// Line is the report as one line: "waiting for <what>: <elapsed> of <bound>, <state>".
func (r Report) Line() string {
	s := "waiting for " + r.What + ": " + Duration(r.Elapsed)
	if r.Bound > 0 {
		s += " of " + Duration(r.Bound)
	}
	if r.State != "" {
		s += ", " + r.State
	}
	return s
}

// Duration rounds d for people: to the millisecond below a second, else to the second.
func Duration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Sink receives reports of running waits; it may be called from several goroutines at once.
type Sink func(Report)

type ctxKey int

const (
	stepKey ctxKey = iota
	sinkKey
	intervalKey
)

// WithStep names the step whose waits ctx carries (the executor sets it for every step).
func WithStep(ctx context.Context, address string) context.Context {
	return context.WithValue(ctx, stepKey, address)
}

// Step is the step address WithStep put in ctx, or "".
func Step(ctx context.Context) string {
	s, _ := ctx.Value(stepKey).(string)
	return s
}

// WithSink makes the waits under ctx report to sink as well, about once a second.
func WithSink(ctx context.Context, sink Sink) context.Context {
	return context.WithValue(ctx, sinkKey, sink)
}

// WithInterval sets how often the waits under ctx log a line (tests shorten it); zero or
// negative keeps DefaultInterval.
func WithInterval(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, intervalKey, d)
}

// Interval is how often the waits under ctx log a line: DefaultInterval unless WithInterval.
func Interval(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(intervalKey).(time.Duration); ok && d > 0 {
		return d
	}
	return DefaultInterval
}

// Wait is one wait being reported on. Set records what it last saw; End stops the reports.
// A nil *Wait does nothing, so callers need no checks.
type Wait struct {
	mu    sync.Mutex
	state string
	stop  func()
}

// Start begins reporting on a wait for what, bounded by bound (0: unknown). Until End, every
// interval of ctx (DefaultInterval unless WithInterval) it logs at info level
// "waiting for <what>: <elapsed> of <bound>, <state>" with the keys step (when ctx names
// one), for, elapsed and bound. A wait that ends within the interval logs nothing.
func Start(ctx context.Context, log *slog.Logger, what string, bound time.Duration) *Wait {
	w := &Wait{}
	w.stop = Every(ctx, log, Interval(ctx), what, bound, w.get)
	return w
}

// Set records the wait's current state, shown in its next report.
func (w *Wait) Set(state string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.state = state
	w.mu.Unlock()
}

func (w *Wait) get() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// End stops the reports; it returns once no report is being made. Calling it twice is fine.
func (w *Wait) End() {
	if w == nil {
		return
	}
	w.stop()
}

// Every reports on a wait for what until the returned stop is called: a log line every
// interval, and a report to the Sink of ctx (if any) about once a second, each with the
// state current returns then (current runs on the reporting goroutine, never concurrently
// with itself). stop returns once no report is being made; calling it again does nothing.
func Every(ctx context.Context, log *slog.Logger, interval time.Duration, what string, bound time.Duration, current func() string) (stop func()) {
	if log == nil {
		log = slog.Default()
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	sink, _ := ctx.Value(sinkKey).(Sink)
	step := Step(ctx)
	began := time.Now()
	tick := interval
	if sink != nil && sinkInterval < tick {
		tick = sinkInterval
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(tick)
		defer t.Stop()
		nextLog := began.Add(interval)
		for {
			select {
			case <-quit:
				if sink != nil {
					sink(Report{Step: step, What: what, Elapsed: time.Since(began), Bound: bound, Done: true})
				}
				return
			case <-ctx.Done():
				if sink != nil {
					sink(Report{Step: step, What: what, Elapsed: time.Since(began), Bound: bound, Done: true})
				}
				return
			case now := <-t.C:
				r := Report{Step: step, What: what, Elapsed: now.Sub(began), Bound: bound, State: current()}
				if sink != nil {
					sink(r)
				}
				if now.Before(nextLog) {
					continue
				}
				nextLog = now.Add(interval)
				attrs := []any{"for", what, "elapsed", Duration(r.Elapsed)}
				if step != "" {
					attrs = append([]any{"step", step}, attrs...)
				}
				if bound > 0 {
					attrs = append(attrs, "bound", Duration(bound))
				}
				log.Info(r.Line(), attrs...)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-finished
	}
}
