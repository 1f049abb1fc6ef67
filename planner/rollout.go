package planner

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

func addrRolloutGate(w string) string { return "workload/" + w + "/rollout/gate" }

// rolloutResource is the resource a workload's rollout is computed for: the first named
// resource its policy selects that Karmada holds with replicas ("" and nil when none).
func (b *builder) rolloutResource(w *spec.Workload, namespace string) (string, *world.Workload) {
	if b.w.Karmada == nil {
		return "", nil
	}
	for _, r := range w.Resources {
		if r.Name == "" {
			continue
		}
		key := namespace + "/" + r.Kind + "/" + r.Name
		if obs := b.w.Karmada.Workloads[key]; obs != nil && obs.Replicas > 0 {
			return key, obs
		}
	}
	return "", nil
}

// RolloutStages are the splits a rollout moves through from the split of from to the split
// of target (both divided as Karmada does): each moves at most shift replicas, one at a time
// from the member with the most to give to the member with the most to gain (ties by name),
// and the last is the target's split.
func RolloutStages(from, target map[string]int64, replicas int32, uid string, shift int32) []map[string]int32 {
	cur := Divide(from, replicas, uid)
	want := Divide(target, replicas, uid)
	members := map[string]bool{}
	for m := range cur {
		members[m] = true
	}
	for m := range want {
		members[m] = true
	}
	names := make([]string, 0, len(members))
	for m := range members {
		names = append(names, m)
	}
	sort.Strings(names)
	// most picks the member with the largest positive gap (sign +1: to gain, -1: to give).
	most := func(split map[string]int32, sign int32) string {
		best, gap := "", int32(0)
		for _, m := range names {
			if g := sign * (want[m] - split[m]); g > gap {
				best, gap = m, g
			}
		}
		return best
	}
	var stages []map[string]int32
	for {
		next := maps.Clone(cur)
		moved := int32(0)
		for moved < shift {
			give, gain := most(next, -1), most(next, +1)
			if give == "" || gain == "" {
				break
			}
			next[give]--
			next[gain]++
			moved++
		}
		if moved == 0 {
			break
		}
		for m, n := range next {
			if n == 0 {
				delete(next, m)
			}
		}
		stages = append(stages, next)
		cur = next
	}
	if len(stages) == 0 || !maps.Equal(stages[len(stages)-1], want) {
		// The target's weights divide to want; moving replicas one by one always ends there.
		stages = append(stages, want)
	}
	return stages
}

// stageWeights are the policy weights of a stage: the target's own weights for the last
// stage (the policy then equals fleet.yaml), the stage's replica counts before it (weights
// equal to a split divide to exactly that split).
func stageWeights(stages []map[string]int32, k int, target map[string]int64) map[string]int64 {
	if k == len(stages) {
		return maps.Clone(target)
	}
	out := map[string]int64{}
	for m, n := range stages[k-1] {
		out[m] = int64(n)
	}
	return out
}

// splitText is "ap 2, eu 4, us 4".
func splitText(split map[string]int32) string {
	var parts []string
	for _, m := range sortedKeys(split) {
		parts = append(parts, fmt.Sprintf("%s %d", m, split[m]))
	}
	return strings.Join(parts, ", ")
}

// rollout plans the weights of a workload with a rollout whose policy exists, and reports
// whether it did (false: the policy's weights already are fleet.yaml's and no rollout is under
// way, or nothing is divided: the plain policy step applies). The progress comes from the
// state store through world.Rollouts; the stages are derived from it and the spec, so a plan
// made from the same world always says the same.
func (b *builder) rollout(w *spec.Workload, want, have *world.Policy, tmpl plan.Step) bool {
	r := w.Rollout
	key, obs := b.rolloutResource(w, want.Namespace)
	if obs == nil {
		return false
	}
	rec := b.w.Rollouts[w.Name]
	if rec != nil && (!maps.Equal(rec.Target, want.Weights) || rec.Resource != key || rec.Replicas != obs.Replicas) {
		rec = nil // a rollout to other weights (or of other replicas): fleet.yaml changed since
	}
	if rec != nil && rec.Halted != "" && rec.Spec != SpecFingerprint(b.f) {
		rec = nil // halted, and fleet.yaml changed since: try again from where the policy stands
	}
	var stages []map[string]int32
	if rec != nil {
		stages = RolloutStages(rec.From, rec.Target, rec.Replicas, obs.UID, r.MaxShift.Of(rec.Replicas))
		if len(stages) != rec.Stages || rec.Stage < 0 || rec.Stage > rec.Stages || rec.Stage == 0 && rec.Halted == "" {
			rec = nil // computed for another maxShift: start again from where the policy stands
		}
	}
	if rec == nil {
		if maps.Equal(have.Weights, want.Weights) {
			return false
		}
		from := have.Weights
		stages = RolloutStages(from, want.Weights, obs.Replicas, obs.UID, r.MaxShift.Of(obs.Replicas))
		rec = &world.Rollout{Workload: w.Name, Resource: key, Replicas: obs.Replicas, From: maps.Clone(from),
			Target: maps.Clone(want.Weights), Stages: len(stages), Weights: maps.Clone(from),
			LastGood: maps.Clone(from), GateHeld: true}
		b.stage(w, want, have, tmpl, rec, stages, 1, obs)
		return true
	}
	at := fmt.Sprintf("stage %d/%d", rec.Stage, rec.Stages)
	if rec.Halted != "" {
		if !maps.Equal(have.Weights, rec.LastGood) {
			b.revert(w, want, have, tmpl, rec, stages, obs, rec.Halted)
			return true
		}
		b.note("rollout %s halted at %s (weights %s): %s; not tried again until fleet.yaml changes",
			w.Name, lastGoodText(rec), weightsText(rec.LastGood), rec.Halted)
		return true
	}
	if !maps.Equal(have.Weights, rec.Weights) {
		// The stage's policy is not in force (its step failed, or someone edited the policy):
		// apply the stage again, which restarts its clock.
		b.stage(w, want, have, tmpl, rec, stages, rec.Stage, obs)
		return true
	}
	if !rec.GateHeld || rec.Stage == rec.Stages {
		timeout := r.Timeout.Duration
		if !b.w.Now.IsZero() && b.w.Now.Sub(rec.Started) >= timeout && !gateHolds(obs, b.gaining(stages, rec.Stage, rec.From, obs)) {
			why := fmt.Sprintf("the gate of %s did not hold within %s: %s", at, timeout,
				gateShortfall(obs, b.gaining(stages, rec.Stage, rec.From, obs)))
			b.revert(w, want, have, tmpl, rec, stages, obs, why)
			return true
		}
		b.gate(w, want, rec.Stage, stages, rec.From, obs, "")
		return true
	}
	if due := rec.Started.Add(r.Interval.Duration); !b.w.Now.IsZero() && b.w.Now.Before(due) {
		b.note("rollout %s: %s holds; stage %d/%d waits for the interval (%s): due at %s, in %s",
			w.Name, at, rec.Stage+1, rec.Stages, r.Interval.Duration, due.UTC().Format(time.RFC3339),
			due.Sub(b.w.Now).Round(time.Second))
		return true
	}
	b.stage(w, want, have, tmpl, rec, stages, rec.Stage+1, obs)
	return true
}

// gaining are the members a stage gives replicas to, with the replicas each must report
// available: the stage's split where it exceeds the split before it.
func (b *builder) gaining(stages []map[string]int32, k int, from map[string]int64, obs *world.Workload) map[string]int32 {
	before := Divide(from, obs.Replicas, obs.UID)
	if k > 1 {
		before = stages[k-2]
	}
	out := map[string]int32{}
	for m, n := range stages[k-1] {
		if n > before[m] {
			out[m] = n
		}
	}
	return out
}

func gateHolds(obs *world.Workload, gaining map[string]int32) bool {
	for m, n := range gaining {
		if obs.Available[m] < n || obs.Scheduled[m] != n {
			return false
		}
	}
	return true
}

// gateShortfall says which gaining members fall short: "us reports 2 of 4 available".
func gateShortfall(obs *world.Workload, gaining map[string]int32) string {
	var parts []string
	for _, m := range sortedKeys(gaining) {
		if obs.Available[m] < gaining[m] || obs.Scheduled[m] != gaining[m] {
			parts = append(parts, fmt.Sprintf("%s reports %d of %d available", m, obs.Available[m], gaining[m]))
		}
	}
	return strings.Join(parts, ", ")
}

// lastGoodText names the last good stage: "stage 1/3", or the weights before the rollout.
func lastGoodText(rec *world.Rollout) string {
	if rec.LastGoodStage == 0 {
		return "the weights before the rollout"
	}
	return fmt.Sprintf("stage %d/%d, the last whose gate held", rec.LastGoodStage, rec.Stages)
}

// stage plans stage k: the policy with the stage's weights (recording the progress), then its gate.
func (b *builder) stage(w *spec.Workload, want, have *world.Policy, tmpl plan.Step, rec *world.Rollout, stages []map[string]int32, k int, obs *world.Workload) {
	r := w.Rollout
	p := *want
	p.Weights = stageWeights(stages, k, rec.Target)
	p.Clusters = sortedKeys(p.Weights)
	st := tmpl
	st.Action = plan.Update
	st.Reason = fmt.Sprintf("rollout stage %d/%d toward weights %s (maxShift %s)", k, len(stages),
		weightsText(rec.Target), r.MaxShift)
	st.Changes = policyChanges(have, &p)
	st.Changes = append(st.Changes, b.splitChanges(w, &p)...)
	var plans []string
	for i, s := range stages {
		mark := ""
		if i+1 == k {
			mark = " <- this pass"
		}
		plans = append(plans, fmt.Sprintf("%d/%d %s%s", i+1, len(stages), splitText(s), mark))
	}
	st.Changes = append(st.Changes, plan.Change{Field: "stages", After: strings.Join(plans, "; ")})
	for _, m := range p.Clusters {
		if !b.excluded[m] {
			st.DependsOn = append(st.DependsOn, b.present(addrMemberReady(m))...)
		}
	}
	st.Payload.Policy = policyPayload(&p)
	lastGood, lastGoodStage := rec.LastGood, rec.LastGoodStage
	if rec.GateHeld && k > rec.Stage {
		lastGood, lastGoodStage = rec.Weights, rec.Stage
	}
	st.Payload.Policy.Rollout = &plan.Rollout{Resource: rec.Resource, Replicas: rec.Replicas, From: rec.From,
		Target: rec.Target, Stage: k, Stages: len(stages), Weights: p.Weights, Split: stages[k-1],
		LastGood: lastGood, LastGoodStage: lastGoodStage}
	b.add(st)
	b.gate(w, want, k, stages, rec.From, obs, st.Address)
}

// gate plans the wait for stage k's gate, after the stage's policy step when the plan has one.
func (b *builder) gate(w *spec.Workload, want *world.Policy, k int, stages []map[string]int32, from map[string]int64, obs *world.Workload, after string) {
	gaining := b.gaining(stages, k, from, obs)
	key, _ := b.rolloutResource(w, want.Namespace)
	_, kindName, _ := strings.Cut(key, "/")
	kind, name, _ := strings.Cut(kindName, "/")
	var waits []string
	for _, m := range sortedKeys(gaining) {
		waits = append(waits, fmt.Sprintf("%s %d", m, gaining[m]))
	}
	what := "members gaining replicas report them available: " + strings.Join(waits, ", ")
	if len(gaining) == 0 {
		what = "Karmada divides as planned (no member gains replicas)"
	}
	st := plan.Step{Address: addrRolloutGate(w.Name), Layer: plan.Weights, Kind: plan.KindRolloutGate, Action: plan.Wait,
		Workload: w.Name, Namespace: want.Namespace,
		Reason:  fmt.Sprintf("stage %d/%d holds once its %s (within %s of its start)", k, len(stages), what, w.Rollout.Timeout.Duration),
		Changes: []plan.Change{{Field: "split", After: splitText(stages[k-1])}}}
	if after != "" {
		st.DependsOn = []string{after}
	}
	st.Payload.Gate = &plan.RolloutGate{Namespace: want.Namespace, Kind: kind, Name: name, ClusterScoped: want.ClusterScoped,
		Stage: k, Stages: len(stages), Available: gaining, Split: stages[k-1], Timeout: w.Rollout.Timeout.Duration.String()}
	b.add(st)
}

// revert plans the policy back at the rollout's last good stage, recording it halted.
func (b *builder) revert(w *spec.Workload, want, have *world.Policy, tmpl plan.Step, rec *world.Rollout, stages []map[string]int32, obs *world.Workload, why string) {
	p := *want
	p.Weights = maps.Clone(rec.LastGood)
	p.Clusters = sortedKeys(p.Weights)
	st := tmpl
	st.Action = plan.Update
	st.Reason = fmt.Sprintf("rollout halted: %s; back to %s", why, lastGoodText(rec))
	st.Changes = policyChanges(have, &p)
	st.Changes = append(st.Changes, b.splitChanges(w, &p)...)
	st.Changes = append(st.Changes, plan.Change{Field: "rollout", Before: fmt.Sprintf("stage %d/%d", rec.Stage, rec.Stages), After: "halted: " + why})
	for _, m := range p.Clusters {
		if !b.excluded[m] {
			st.DependsOn = append(st.DependsOn, b.present(addrMemberReady(m))...)
		}
	}
	split := Divide(rec.From, obs.Replicas, obs.UID)
	if rec.LastGoodStage > 0 {
		split = stages[rec.LastGoodStage-1]
	}
	st.Payload.Policy = policyPayload(&p)
	st.Payload.Policy.Rollout = &plan.Rollout{Resource: rec.Resource, Replicas: rec.Replicas, From: rec.From,
		Target: rec.Target, Stage: rec.LastGoodStage, Stages: rec.Stages, Weights: p.Weights, Split: split,
		LastGood: rec.LastGood, LastGoodStage: rec.LastGoodStage, Halted: why, Spec: SpecFingerprint(b.f)}
	b.add(st)
}

// RolloutDue is the earliest time a rollout of f waits for (a stage whose gate held waiting
// for its interval, or a gate's timeout), and whether there is one: the daemon plans again
// then. It reads only what the planner reads.
func RolloutDue(f *spec.Fleet, w *world.World) (time.Time, bool) {
	var due time.Time
	for i := range f.Workloads {
		wl := &f.Workloads[i]
		rec := w.Rollouts[wl.Name]
		if wl.Rollout == nil || rec == nil || rec.Halted != "" || !maps.Equal(rec.Target, DesiredPolicy(f, wl).Weights) {
			continue
		}
		at := rec.Started.Add(wl.Rollout.Timeout.Duration)
		if rec.GateHeld {
			at = rec.Started.Add(wl.Rollout.Interval.Duration)
		}
		if due.IsZero() || at.Before(due) {
			due = at
		}
	}
	return due, !due.IsZero()
}
