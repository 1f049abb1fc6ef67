package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/progress"
)

// Reconciler runs one pass: observe, plan, and (unless dry-run) execute. The daemon and
// --once run the very same Reconcile; --dry-run is that path stopped before any write.
type Reconciler struct {
	Observers []state.Observer
	Drivers   executor.Drivers
	// Wire, when set, builds the observers and drivers for each pass from the fleet in force
	// (a daemon's edit may change the provider); it replaces Observers and Drivers.
	Wire  func(fleet *spec.Fleet) ([]state.Observer, executor.Drivers, error)
	Store state.Backend
	Plan  planner.Options
	Exec  executor.Options
	// Targets, when set, limit the plan to matching addresses and what they depend on.
	Targets []string
	// Saved, when set, is a plan made earlier (--plan): it is executed only if a fresh plan
	// computed now has the same fingerprints and the very same steps and payloads, so nothing
	// runs against a world that moved and nothing runs that the plan did not show.
	Saved *plan.Plan
	// SaveTo, when set, receives the plan as JSON (--save-plan).
	SaveTo string
	// Out receives the plan and the progress lines meant for people.
	Out    io.Writer
	Format string // "text" or "json" for the plan
	// Verbose draws every step of a text plan, however many are alike (--verbose).
	Verbose bool
	// Table, when set (--once on a terminal), shows the running steps while the plan executes;
	// the progress lines are drawn above it.
	Table *executor.Table
	Log   *slog.Logger
	Now   func() time.Time
	// Observed, when set, is told of the world each pass observed, before it plans (the
	// daemon's readiness and metrics).
	Observed func(fleet *spec.Fleet, w *world.World)
}

// refresher is a state backend that caches what it read and can read it all again.
type refresher interface {
	Refresh(ctx context.Context) error
}

// PassResult is what one pass did.
type PassResult struct {
	Plan   *plan.Plan
	Result *executor.Result
}

// Observe builds the world from every observer, in order. An observer that fails with a
// retryable error (a 5xx of the Linode API, Karmada not answering a list) is run again with
// the executor's retry policy and backoff, as a step would be: one failed read does not fail
// the pass.
func (r *Reconciler) Observe(ctx context.Context, fleet *spec.Fleet, observers []state.Observer) (*world.World, error) {
	w := &world.World{Now: r.now()}
	for _, o := range observers {
		err := r.Exec.Retry.Do(ctx, func(ctx context.Context) error { return o.Observe(ctx, fleet, w) },
			func(attempt int, wait time.Duration, err error) {
				r.logger().Info("observation failed; retrying", "attempt", attempt, "wait", wait, "err", err)
			})
		if err != nil {
			return nil, fmt.Errorf("observe: %w", err)
		}
	}
	return w, nil
}

// Reconcile observes, plans, prints the plan and, unless dryRun, executes it.
func (r *Reconciler) Reconcile(ctx context.Context, fleet *spec.Fleet, dryRun bool) (*PassResult, error) {
	start := r.now()
	// A backend that caches (the kubernetes one) reads the state afresh once per pass: another
	// runner may have written it between two passes of a daemon.
	if rf, ok := r.Store.(refresher); ok {
		if err := rf.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	observers, drivers := r.Observers, r.Drivers
	if r.Wire != nil {
		var err error
		if observers, drivers, err = r.Wire(fleet); err != nil {
			return nil, err
		}
	}
	observed, err := r.Observe(ctx, fleet, observers)
	if err != nil {
		return nil, err
	}
	if r.Observed != nil {
		r.Observed(fleet, observed)
	}
	p, err := planner.Compute(fleet, observed, r.Plan)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if len(r.Targets) > 0 {
		p = p.Target(r.Targets)
		p.Cost = planner.Cost(fleet, observed, p.Steps) // what the targeted steps cost
	}
	if r.Saved != nil {
		// The fresh plan is what runs: equal to the saved one in everything a plan file holds,
		// and holding what it does not (the manifests' objects, pinned by their digest).
		if err := checkSaved(r.Saved, p); err != nil {
			return nil, err
		}
	}
	if r.SaveTo != "" {
		if err := savePlan(r.SaveTo, p); err != nil {
			return nil, err
		}
	}
	if err := r.writePlan(p); err != nil {
		return nil, err
	}
	res := &PassResult{Plan: p}
	if dryRun || len(p.Steps) == 0 {
		return res, nil
	}
	opts := r.Exec
	opts.OnEvent = r.progress
	if also := r.Exec.OnEvent; also != nil {
		opts.OnEvent = func(e executor.Event) { r.progress(e); also(e) }
	}
	if r.Table != nil {
		ctx = progress.WithSink(ctx, r.Table.Progress)
	}
	result, walkErr := executor.Walk(ctx, p, executor.Dispatch(drivers), opts)
	if r.Table != nil {
		r.Table.Close()
	}
	res.Result = result
	r.summary(p, result, r.now().Sub(start), walkErr)
	for _, line := range rolloutLines(fleet, p, result) {
		r.logger().Info(line)
		if r.Out != nil && r.Format != "json" {
			fmt.Fprintln(r.Out, line)
		}
	}
	if r.Store != nil {
		rec := state.PassRecord{Time: start, Duration: r.now().Sub(start)}
		fillRecord(&rec, p, result, walkErr)
		if err := r.Store.RecordPass(rec); err != nil {
			r.Log.Warn("recording the pass failed", "err", err)
		}
	}
	return res, walkErr
}

func (r *Reconciler) logger() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) writePlan(p *plan.Plan) error {
	if r.Out == nil {
		return nil
	}
	if r.Format == "json" {
		return p.WriteJSON(r.Out)
	}
	return p.WriteTextWith(r.Out, plan.TextOptions{Verbose: r.Verbose})
}

// progress prints one line per step start and finish; in JSON output mode progress goes
// to the log instead so stdout stays one JSON document.
func (r *Reconciler) progress(e executor.Event) {
	attrs := []any{"step", e.Step}
	if e.Duration > 0 {
		attrs = append(attrs, "duration", e.Duration.Round(time.Millisecond).String())
	}
	if e.Err != nil {
		attrs = append(attrs, "err", e.Err)
	}
	if e.Reason != "" {
		attrs = append(attrs, "reason", e.Reason)
	}
	r.Log.Debug("step "+e.Type.String(), attrs...)
	if r.Table != nil {
		r.Table.Event(e)
	}
	if r.Out == nil || r.Format == "json" {
		return
	}
	var line string
	switch e.Type {
	case executor.EventStart:
		if r.Table != nil {
			return // the table shows it running
		}
		line = fmt.Sprintf("%s: starting", e.Step)
	case executor.EventDone:
		line = fmt.Sprintf("%s: done after %s", e.Step, e.Duration.Round(time.Millisecond))
	case executor.EventRetry:
		line = fmt.Sprintf("%s: attempt %d failed, retrying: %v", e.Step, e.Attempt, e.Err)
	case executor.EventFailed:
		line = fmt.Sprintf("%s: FAILED after %s: %v", e.Step, e.Duration.Round(time.Millisecond), e.Err)
	case executor.EventSkipped:
		line = fmt.Sprintf("%s: skipped (%s)", e.Step, e.Reason)
	default:
		return
	}
	if r.Table != nil {
		r.Table.Println(line)
		return
	}
	fmt.Fprintln(r.Out, line)
}

func (r *Reconciler) summary(p *plan.Plan, res *executor.Result, d time.Duration, err error) {
	ok, failed, skipped := 0, 0, 0
	if res != nil {
		ok, failed, skipped = len(res.Succeeded), len(res.Failed), len(res.Skipped)
	}
	r.Log.Info("pass finished", "fleet", p.Fleet, "steps", len(p.Steps), "succeeded", ok,
		"failed", failed, "skipped", skipped, "duration", d.Round(time.Millisecond).String())
	if r.Out == nil || r.Format == "json" {
		return
	}
	verdict := "Apply complete"
	if err != nil {
		verdict = "Apply failed"
	}
	fmt.Fprintf(r.Out, "\n%s: %d succeeded, %d failed, %d skipped in %s.\n", verdict, ok, failed, skipped,
		d.Round(time.Second))
}

func fillRecord(rec *state.PassRecord, p *plan.Plan, res *executor.Result, err error) {
	s := p.Summary()
	rec.Plan = state.PassPlan{Add: s.Add, Change: s.Change, Destroy: s.Destroy, Wait: s.Wait}
	if res != nil {
		rec.Succeeded, rec.Failed, rec.Skipped = len(res.Succeeded), len(res.Failed), len(res.Skipped)
	}
	if err != nil {
		rec.Error = err.Error()
	}
}

// ErrStalePlan refuses a saved plan whose fleet or world has changed since it was made.
var ErrStalePlan = errors.New("plan is stale")

func checkSaved(saved, fresh *plan.Plan) error {
	switch {
	case saved.Fleet != fresh.Fleet:
		return fmt.Errorf("%w: it is for fleet %q, not %q", ErrStalePlan, saved.Fleet, fresh.Fleet)
	case saved.SpecFingerprint != fresh.SpecFingerprint:
		return fmt.Errorf("%w: fleet.yaml (or a manifest) changed since the plan was made; make a new plan", ErrStalePlan)
	case saved.WorldFingerprint != fresh.WorldFingerprint:
		return fmt.Errorf("%w: the world changed since the plan was made; make a new plan", ErrStalePlan)
	}
	return sameSteps(saved, fresh)
}

// sameSteps refuses a saved plan whose steps are not exactly the ones planning yields now: a
// step added, removed or edited by hand, or a payload that differs, is never applied.
func sameSteps(saved, fresh *plan.Plan) error {
	key := func(s plan.Step) string {
		b, err := json.Marshal(s)
		if err != nil {
			return "unencodable: " + err.Error()
		}
		return string(b)
	}
	want := map[string]string{}
	for _, s := range fresh.Steps {
		want[s.Address] = key(s)
	}
	var problems []string
	seen := map[string]bool{}
	for _, s := range saved.Steps {
		seen[s.Address] = true
		w, ok := want[s.Address]
		switch {
		case !ok:
			problems = append(problems, s.Address+" is not in the plan made now")
		case w != key(s):
			problems = append(problems, s.Address+" differs from the plan made now")
		}
	}
	for _, s := range fresh.Steps {
		if !seen[s.Address] {
			problems = append(problems, s.Address+" is missing from the saved plan")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%w: the saved plan does not match what planning yields now (%s); it was edited "+
			"or made by another version; make a new plan", ErrStalePlan, strings.Join(problems, "; "))
	}
	if !slices.Equal(saved.Notes, fresh.Notes) {
		return fmt.Errorf("%w: the plan's notes changed; make a new plan", ErrStalePlan)
	}
	return nil
}

// savedPlanFile is what --save-plan writes: the plan as -o json shows it, and a digest of
// exactly those bytes, so a file edited after it was saved is refused before anything else.
type savedPlanFile struct {
	Kind   string          `json:"kind"`
	Digest string          `json:"digest"`
	Plan   json.RawMessage `json:"plan"`
}

const savedPlanKind = "reconcile.dev/saved-plan/v1"

func planDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func savePlan(path string, p *plan.Plan) error {
	var buf bytes.Buffer
	if err := p.WriteJSON(&buf); err != nil {
		return err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, buf.Bytes()); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	raw := compact.Bytes()
	data, err := json.MarshalIndent(savedPlanFile{Kind: savedPlanKind, Digest: planDigest(raw), Plan: raw}, "", "  ")
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return nil
}

// loadPlan reads a plan saved with --save-plan and checks its digest.
func loadPlan(path string) (*plan.Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file savedPlanFile
	if err := json.Unmarshal(data, &file); err != nil || file.Kind != savedPlanKind || len(file.Plan) == 0 {
		return nil, fmt.Errorf("%s: not a plan saved by reconcile --save-plan", path)
	}
	// Compact: indentation is not content, and MarshalIndent re-indented the plan.
	var compact bytes.Buffer
	if err := json.Compact(&compact, file.Plan); err != nil {
		return nil, fmt.Errorf("%s: not a plan saved by reconcile --save-plan", path)
	}
	if planDigest(compact.Bytes()) != file.Digest {
		return nil, fmt.Errorf("%w: %s was edited after it was saved (its digest does not match its content); make a new plan", ErrStalePlan, path)
	}
	var p plan.Plan
	if err := json.Unmarshal(file.Plan, &p); err != nil {
		return nil, fmt.Errorf("%s: not a saved plan: %w", path, err)
	}
	if p.SpecFingerprint == "" || p.WorldFingerprint == "" {
		return nil, fmt.Errorf("%s: the plan has no fingerprints", path)
	}
	return &p, nil
}

// exitCode maps a pass to --detailed-exitcode semantics: 0 nothing to do, 1 error, 2 the plan
// had changes (pending with --dry-run, applied without).
func exitCode(res *PassResult, err error, detailed bool) int {
	if err != nil {
		return 1
	}
	if detailed && res != nil && res.Plan != nil && !res.Plan.Empty() {
		return 2
	}
	return 0
}
