package weights

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/progress"
	"github.com/reconcile-dev/reconcile/state/world"
)

// RolloutRecord is where the state store keeps a workload's rollout progress.
func RolloutRecord(workload string) string { return "rollouts/" + workload + ".json" }

// gatePoll is how often a gate asks Karmada for the binding again.
const gatePoll = 500 * time.Millisecond

// ObserveRollouts fills World.Rollouts from the state store: the progress of every rollout of
// f's workloads that has one (it cannot be observed anywhere else).
func ObserveRollouts(store RolloutStore, f *spec.Fleet, w *world.World) error {
	if store == nil {
		return nil
	}
	for i := range f.Workloads {
		name := f.Workloads[i].Name
		rec, err := readRollout(store, name)
		if err != nil {
			return err
		}
		if rec == nil {
			continue
		}
		if w.Rollouts == nil {
			w.Rollouts = map[string]*world.Rollout{}
		}
		w.Rollouts[name] = rec
	}
	return nil
}

// RolloutStore is the part of the state store rollouts are kept in (state.Backend).
type RolloutStore interface {
	WriteFile(name string, data []byte) error
	ReadFile(name string) ([]byte, error)
	Remove(name string) error
}

func readRollout(store RolloutStore, workload string) (*world.Rollout, error) {
	b, err := store.ReadFile(RolloutRecord(workload))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read rollout of %s: %w", workload, err)
	}
	var rec world.Rollout
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("state: %s: %w", RolloutRecord(workload), err)
	}
	return &rec, nil
}

func writeRollout(store RolloutStore, rec *world.Rollout) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := store.WriteFile(RolloutRecord(rec.Workload), append(b, '\n')); err != nil {
		return fmt.Errorf("state: record rollout of %s: %w", rec.Workload, err)
	}
	return nil
}

// recordStage keeps the progress a stage (or revert) step's policy now holds, started now.
func (d *Driver) recordStage(workload string, r *plan.Rollout) error {
	if d.store == nil {
		return fmt.Errorf("weights: no state store to record the rollout of %s in", workload)
	}
	rec := &world.Rollout{Workload: workload, Resource: r.Resource, Replicas: r.Replicas, From: r.From,
		Target: r.Target, Stage: r.Stage, Stages: r.Stages, Weights: r.Weights, Split: r.Split,
		Started: d.now().UTC(), LastGood: r.LastGood, LastGoodStage: r.LastGoodStage, Halted: r.Halted, Spec: r.Spec,
		GateHeld: r.Halted != ""} // a revert goes back to a stage whose gate held
	if err := writeRollout(d.store, rec); err != nil {
		return err
	}
	if r.Halted != "" {
		d.log.Warn("rollout halted", "workload", workload, "stage", fmt.Sprintf("%d/%d", r.LastGoodStage, r.Stages), "reason", r.Halted)
	} else {
		d.log.Info("rollout stage applied", "workload", workload, "stage", fmt.Sprintf("%d/%d", r.Stage, r.Stages))
	}
	return nil
}

// GateTimeoutError is a rollout gate that did not hold within its timeout; the next pass
// plans the way back to the last good stage.
type GateTimeoutError struct {
	Workload      string
	Stage, Stages int
	Timeout       time.Duration
	Shortfall     string
}

func (e *GateTimeoutError) Error() string {
	return fmt.Sprintf("rollout %s: the gate of stage %d/%d did not hold within %s: %s (the next pass goes back to the last good stage)",
		e.Workload, e.Stage, e.Stages, e.Timeout, e.Shortfall)
}

// awaitGate waits until Karmada's binding shows the stage's split and every member gaining
// replicas reports them available, bounded by the gate's timeout counted from the stage's
// start (kept in the store), then records the stage as good; the last stage's gate ends the
// rollout (its record is removed).
func (d *Driver) awaitGate(ctx context.Context, workload string, g *plan.RolloutGate) error {
	if d.store == nil {
		return fmt.Errorf("weights: no state store to read the rollout of %s from", workload)
	}
	rec, err := readRollout(d.store, workload)
	if err != nil {
		return err
	}
	if rec == nil || rec.Stage != g.Stage || rec.Stages != g.Stages {
		return fmt.Errorf("rollout %s: the state store does not hold stage %d/%d (%+v): plan again", workload, g.Stage, g.Stages, rec)
	}
	timeout, err := time.ParseDuration(g.Timeout)
	if err != nil {
		return fmt.Errorf("rollout %s: gate timeout %q: %w", workload, g.Timeout, err)
	}
	bound := max(rec.Started.Add(timeout).Sub(d.now()), 0)
	c, err := d.connect()
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = c.dyn.Resource(clusterBindingGVR)
	if !g.ClusterScoped {
		ri = c.dyn.Resource(bindingGVR).Namespace(g.Namespace)
	}
	what := fmt.Sprintf("rollout %s stage %d/%d to be available", workload, g.Stage, g.Stages)
	w := progress.Start(ctx, d.log, what, timeout)
	shortfall := "no binding yet"
	check := func(ctx context.Context) (bool, error) {
		b, err := ri.Get(ctx, BindingName(g.Kind, g.Name), metav1.GetOptions{})
		switch {
		case err == nil:
			shortfall = GateShortfall(g, bindingSplit(b), BindingAvailable(b))
			w.Set(shortfall)
			return shortfall == "", nil
		case !apierrors.IsNotFound(err) && ctx.Err() == nil:
			shortfall = err.Error()
		}
		return false, nil // not there yet, or the API hiccuped: ask again until the bound
	}
	// Asked once whatever the bound, so a gate that holds by now is recorded as held.
	held, _ := check(ctx)
	if !held {
		err = wait.PollUntilContextTimeout(ctx, gatePoll, bound, false, check)
	}
	w.End()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &GateTimeoutError{Workload: workload, Stage: g.Stage, Stages: g.Stages, Timeout: timeout, Shortfall: shortfall}
	}
	if g.Stage == g.Stages {
		if err := d.store.Remove(RolloutRecord(workload)); err != nil {
			return fmt.Errorf("state: end rollout of %s: %w", workload, err)
		}
		d.log.Info("rollout complete", "workload", workload, "stage", fmt.Sprintf("%d/%d", g.Stage, g.Stages))
		return nil
	}
	rec.GateHeld, rec.LastGood, rec.LastGoodStage = true, maps.Clone(rec.Weights), rec.Stage
	if err := writeRollout(d.store, rec); err != nil {
		return err
	}
	d.log.Info("rollout gate held", "workload", workload, "stage", fmt.Sprintf("%d/%d", g.Stage, g.Stages))
	return nil
}

// GateShortfall says what keeps a gate from holding ("" when it holds): Karmada not dividing
// as the stage says yet, or a gaining member reporting fewer replicas available.
func GateShortfall(g *plan.RolloutGate, scheduled, available map[string]int32) string {
	if !maps.Equal(scheduled, g.Split) {
		return fmt.Sprintf("Karmada divides %s, not yet %s", splitString(scheduled), splitString(g.Split))
	}
	var parts []string
	for _, m := range sortedMembers(g.Available) {
		if available[m] < g.Available[m] {
			parts = append(parts, fmt.Sprintf("%s reports %d of %d available", m, available[m], g.Available[m]))
		}
	}
	return strings.Join(parts, ", ")
}

func sortedMembers(m map[string]int32) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func splitString(m map[string]int32) string {
	if len(m) == 0 {
		return "nothing"
	}
	var parts []string
	for _, k := range sortedMembers(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
