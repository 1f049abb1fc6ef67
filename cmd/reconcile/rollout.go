package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/weights"
	"github.com/reconcile-dev/reconcile/state/world"
)

// rolloutLines say what a pass did to each gated rollout, one line a workload, for `--once`
// ("rollout hello: stage 1/3 applied, its gate held; run again after 2m0s for stage 2/3").
func rolloutLines(f *spec.Fleet, p *plan.Plan, res *executor.Result) []string {
	if res == nil {
		return nil
	}
	ok := func(addr string) bool { return slices.Contains(res.Succeeded, addr) }
	failed := func(addr string) bool { return slices.Contains(res.Failed, addr) }
	var out []string
	for i := range f.Workloads {
		w := &f.Workloads[i]
		if w.Rollout == nil {
			continue
		}
		var stage, gate *plan.Step
		for j := range p.Steps {
			s := &p.Steps[j]
			switch {
			case s.Workload != w.Name:
			case s.Kind == plan.KindPolicy && s.Payload.Policy != nil && s.Payload.Policy.Rollout != nil:
				stage = s
			case s.Kind == plan.KindRolloutGate && s.Payload.Gate != nil:
				gate = s
			}
		}
		prefix := "rollout " + w.Name + ": "
		switch {
		case stage != nil && stage.Payload.Policy.Rollout.Halted != "":
			r := stage.Payload.Policy.Rollout
			if ok(stage.Address) {
				out = append(out, fmt.Sprintf("%shalted, back at stage %d/%d (weights %s): %s; not tried again until fleet.yaml changes",
					prefix, r.Stage, r.Stages, weightsLine(r.Weights), r.Halted))
			} else {
				out = append(out, prefix+"halted, but going back to the last good stage failed: run again")
			}
		case stage != nil && !ok(stage.Address):
			r := stage.Payload.Policy.Rollout
			out = append(out, fmt.Sprintf("%sstage %d/%d was not applied: run again", prefix, r.Stage, r.Stages))
		case gate != nil:
			g := gate.Payload.Gate
			what := fmt.Sprintf("stage %d/%d", g.Stage, g.Stages)
			if stage != nil {
				what += " applied,"
			} else {
				what += ":"
			}
			switch {
			case ok(gate.Address) && g.Stage == g.Stages:
				out = append(out, fmt.Sprintf("%s%s its gate held: the rollout is complete", prefix, what))
			case ok(gate.Address):
				again := "run again"
				if d := w.Rollout.Interval.Duration; d > 0 {
					again += " after " + d.String()
				}
				out = append(out, fmt.Sprintf("%s%s its gate held; %s for stage %d/%d", prefix, what, again, g.Stage+1, g.Stages))
			case failed(gate.Address):
				out = append(out, fmt.Sprintf("%s%s its gate did not hold: run again to go back to the last good stage", prefix, what))
			}
		}
	}
	return out
}

func weightsLine(w map[string]int64) string {
	s := ""
	for _, k := range sortedMapKeys(w) {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s=%d", k, w[k])
	}
	return s
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// rolloutMinWait is the least time the daemon waits before a pass a rollout asks for, so a
// stage that keeps failing does not spin the loop.
const rolloutMinWait = time.Second

// rolloutWake is when the daemon next plans for f's rollouts (a stage's interval, a gate's
// timeout), read from the state store after a pass; nil when no rollout waits.
func rolloutWake(store state.Backend, f *spec.Fleet, now time.Time) (<-chan time.Time, *world.World) {
	w := &world.World{}
	if store == nil || f == nil || weights.ObserveRollouts(store, f, w) != nil {
		return nil, w
	}
	due, ok := planner.RolloutDue(f, w)
	if !ok {
		return nil, w
	}
	return time.After(max(due.Sub(now), rolloutMinWait)), w
}
