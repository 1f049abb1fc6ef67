package main

import (
	"slices"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/weights"
)

func rolloutFleet() *spec.Fleet {
	return &spec.Fleet{Members: []spec.Member{{Name: "ap"}, {Name: "eu"}, {Name: "us"}},
		Workloads: []spec.Workload{{Name: "hello", Namespace: "default", Weights: map[string]int64{"ap": 1, "eu": 2, "us": 2},
			Rollout: &spec.Rollout{MaxShift: spec.Shift{Count: 1}, Interval: spec.Duration{Duration: 2 * time.Minute},
				Gate: spec.GateAvailable, Timeout: spec.Duration{Duration: 10 * time.Minute}}}}}
}

func TestRolloutLines(t *testing.T) {
	t.Parallel()
	f := rolloutFleet()
	stage := plan.Step{Address: "workload/hello/policy", Kind: plan.KindPolicy, Workload: "hello",
		Payload: plan.Payload{Policy: &plan.Policy{Rollout: &plan.Rollout{Stage: 1, Stages: 2}}}}
	gate := plan.Step{Address: "workload/hello/rollout/gate", Kind: plan.KindRolloutGate, Workload: "hello",
		Payload: plan.Payload{Gate: &plan.RolloutGate{Stage: 1, Stages: 2}}}
	p := &plan.Plan{Steps: []plan.Step{stage, gate}}
	got := rolloutLines(f, p, &executor.Result{Succeeded: []string{stage.Address, gate.Address}})
	if want := []string{"rollout hello: stage 1/2 applied, its gate held; run again after 2m0s for stage 2/2"}; !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	got = rolloutLines(f, p, &executor.Result{Succeeded: []string{stage.Address}, Failed: []string{gate.Address}})
	if want := []string{"rollout hello: stage 1/2 applied, its gate did not hold: run again to go back to the last good stage"}; !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	gate.Payload.Gate = &plan.RolloutGate{Stage: 2, Stages: 2}
	got = rolloutLines(f, &plan.Plan{Steps: []plan.Step{gate}}, &executor.Result{Succeeded: []string{gate.Address}})
	if want := []string{"rollout hello: stage 2/2: its gate held: the rollout is complete"}; !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

// TestRolloutWake: the daemon plans again when a stage's interval has passed, not before
// the least wait, and not for a halted rollout or one toward other weights.
func TestRolloutWake(t *testing.T) {
	t.Parallel()
	store, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := rolloutFleet()
	now := time.Now()
	if ch, _ := rolloutWake(store, f, now); ch != nil {
		t.Fatal("a wake without a rollout")
	}
	write := func(rec string) {
		t.Helper()
		if err := store.WriteFile(weights.RolloutRecord("hello"), []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	started := now.Add(-2*time.Minute + 50*time.Millisecond).UTC().Format(time.RFC3339Nano)
	write(`{"workload":"hello","target":{"ap":1,"eu":2,"us":2},"stage":1,"stages":2,"gateHeld":true,"started":"` + started + `"}`)
	ch, w := rolloutWake(store, f, now)
	if ch == nil || w.Rollouts["hello"] == nil {
		t.Fatal("no wake for a stage whose gate held")
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the wake did not come")
	}
	write(`{"workload":"hello","target":{"ap":1,"eu":2,"us":2},"stage":1,"stages":2,"halted":"no","started":"` + started + `"}`)
	if ch, _ := rolloutWake(store, f, now); ch != nil {
		t.Error("a wake for a halted rollout")
	}
	write(`{"workload":"hello","target":{"ap":1,"eu":1,"us":1},"stage":1,"stages":2,"gateHeld":true,"started":"` + started + `"}`)
	if ch, _ := rolloutWake(store, f, now); ch != nil {
		t.Error("a wake for a rollout toward other weights")
	}
}
