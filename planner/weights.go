package planner

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

func workloadNamespace(w *spec.Workload) string {
	if w.ClusterScoped {
		return ""
	}
	return w.Namespace
}

func policyKey(namespace, name string) string { return namespace + "/" + name }

// DesiredPolicy is the (Cluster)PropagationPolicy of a workload: the members of the fleet that
// have a weight, sorted, with their weights, replicas divided.
func DesiredPolicy(f *spec.Fleet, w *spec.Workload) *world.Policy {
	p := &world.Policy{Namespace: workloadNamespace(w), Name: w.Name, ClusterScoped: w.ClusterScoped,
		Weights: map[string]int64{}, Divided: true}
	for _, r := range w.Resources {
		p.Resources = append(p.Resources, world.ResourceRef{APIVersion: r.APIVersion, Kind: r.Kind,
			Name: r.Name, LabelSelector: r.LabelSelector})
	}
	for _, m := range f.Members {
		if wt, ok := w.Weights[m.Name]; ok && wt > 0 {
			p.Clusters = append(p.Clusters, m.Name)
			p.Weights[m.Name] = wt
		}
	}
	sort.Strings(p.Clusters)
	return p
}

func (b *builder) weights() {
	k := b.w.Karmada
	wanted := map[string]bool{}
	for i := range b.f.Workloads {
		w := &b.f.Workloads[i]
		want := DesiredPolicy(b.f, w)
		// A member whose Karmada name another cluster holds gets nothing: a policy naming it
		// would place the fleet's replicas in someone else's cluster.
		for name := range b.conflicts {
			if _, ok := want.Weights[name]; ok {
				delete(want.Weights, name)
				want.Clusters = slices.DeleteFunc(want.Clusters, func(c string) bool { return c == name })
			}
		}
		var shifted []string
		if b.f.Entry != nil && b.f.Entry.ShiftReplicas {
			for _, name := range UnhealthyMembers(b.f, b.w) {
				if _, ok := want.Weights[name]; ok && len(want.Weights) > 1 {
					delete(want.Weights, name)
					want.Clusters = slices.DeleteFunc(want.Clusters, func(c string) bool { return c == name })
					shifted = append(shifted, name)
				}
			}
		}
		key := policyKey(want.Namespace, want.Name)
		wanted[key] = true
		if len(w.Manifests) > 0 || len(w.Objects) > 0 {
			var have string
			if k != nil {
				have = k.ManifestHashes[w.Name]
			}
			if k == nil || have != w.ManifestDigest {
				st := plan.Step{Address: addrManifests(w.Name), Layer: plan.Weights, Kind: plan.KindManifests, Workload: w.Name,
					Namespace: want.Namespace, DependsOn: b.present(AddrKarmadaReady),
					Changes: []plan.Change{{Field: "digest", Before: short(have), After: short(w.ManifestDigest)}}}
				if have == "" {
					st.Action, st.Reason = plan.Create, "the manifests were not applied yet"
				} else {
					st.Action, st.Reason = plan.Update, "the manifests changed since they were applied"
				}
				mp := &plan.Manifests{Namespace: want.Namespace, Digest: w.ManifestDigest}
				for _, o := range w.Objects {
					st.Changes = append(st.Changes, plan.Change{Field: "object", After: objectText(o, want.Namespace)})
					mp.Objects = append(mp.Objects, json.RawMessage(o.Raw))
				}
				st.Payload.Manifests = mp
				b.add(st)
			}
		}
		var have *world.Policy
		if k != nil {
			have = k.Policies[key]
		}
		st := plan.Step{Address: addrPolicy(w.Name), Layer: plan.Weights, Kind: plan.KindPolicy, Workload: w.Name,
			Namespace: want.Namespace, DependsOn: b.nearest(addrManifests(w.Name), AddrKarmadaReady)}
		st.Changes = policyChanges(have, want)
		if len(shifted) > 0 && len(st.Changes) > 0 {
			st.Changes = append(st.Changes, plan.Change{Field: "shifted", After: "away from unhealthy " + strings.Join(shifted, ", ") + " until it is healthy (entry.shiftReplicas)"})
		}
		if have == nil {
			st.Action, st.Reason = plan.Create, "no policy "+policyName(want)+" in Karmada"
		} else {
			st.Action, st.Reason = plan.Update, "policy "+policyName(want)+" differs from fleet.yaml"
		}
		replaced := b.replacedIn(want.Clusters)
		if w.Rollout != nil && have != nil && len(replaced) == 0 && len(shifted) == 0 && b.rollout(w, want, have, st) {
			continue
		}
		if len(replaced) > 0 {
			// Karmada gave the replaced member's share to the others and keeps it there while
			// the policy is unchanged: schedule afresh once the member is Ready.
			if have != nil && st.Action == plan.Update && len(st.Changes) == 0 {
				st.Reason = "member " + strings.Join(replaced, ", ") + " was replaced: its replicas are scheduled back"
			}
			st.Changes = append(st.Changes, plan.Change{Field: "rebalance",
				After: "replicas scheduled afresh once " + strings.Join(replaced, ", ") + " is Ready"})
		}
		if len(st.Changes) == 0 {
			// The policy stays, but new manifests may change the replicas it divides: the
			// manifests step shows the split they lead to.
			if ms, ok := b.steps[addrManifests(w.Name)]; ok {
				ms.Changes = append(ms.Changes, b.splitChanges(w, want)...)
			}
			continue
		}
		for _, m := range want.Clusters {
			if !b.excluded[m] {
				st.DependsOn = append(st.DependsOn, b.present(addrMemberReady(m))...)
			}
		}
		st.Changes = append(st.Changes, b.splitChanges(w, want)...)
		st.Payload.Policy = policyPayload(want)
		st.Payload.Policy.Rebalance = len(replaced) > 0 // the Ready gates come with the members above
		b.add(st)
	}
	if k == nil {
		return
	}
	for _, key := range sortedKeys(k.Policies) {
		if wanted[key] {
			continue
		}
		p := k.Policies[key]
		addr := addrPolicy(p.Name)
		if b.has(addr) {
			addr += "/" + p.Namespace
		}
		b.add(plan.Step{Address: addr, Layer: plan.Weights, Kind: plan.KindPolicy, Action: plan.Delete, Workload: p.Name,
			Namespace: p.Namespace, Reason: "workload " + p.Name + " left fleet.yaml (its resources are left alone)",
			Changes: []plan.Change{{Field: "policy", Before: policyName(p), After: removed}},
			Payload: plan.Payload{Policy: &plan.Policy{Namespace: p.Namespace, Name: p.Name, ClusterScoped: p.ClusterScoped}}})
	}
}

func policyPayload(p *world.Policy) *plan.Policy {
	out := &plan.Policy{Namespace: p.Namespace, Name: p.Name, ClusterScoped: p.ClusterScoped,
		Clusters: p.Clusters, Weights: p.Weights, Divided: p.Divided}
	for _, r := range p.Resources {
		out.Resources = append(out.Resources, plan.ResourceRef{APIVersion: r.APIVersion, Kind: r.Kind,
			Name: r.Name, LabelSelector: r.LabelSelector})
	}
	return out
}

// splitChanges show how each named resource's replicas will be divided, next to the split
// Karmada made last: "eu 4 (was 4), ap 2 (was 3), us 4 (was 3)".
func (b *builder) splitChanges(w *spec.Workload, want *world.Policy) []plan.Change {
	weights := map[string]int64{}
	for m, wt := range want.Weights {
		if !b.excluded[m] {
			weights[m] = wt
		}
	}
	type target struct {
		field string
		text  string
	}
	var targets []target
	for _, r := range w.Resources {
		if r.Name == "" {
			continue
		}
		ns := want.Namespace
		key := ns + "/" + r.Kind + "/" + r.Name
		var obs *world.Workload
		if b.w.Karmada != nil {
			obs = b.w.Karmada.Workloads[key]
		}
		var replicas *int32
		uid := ""
		if obs != nil {
			replicas, uid = &obs.Replicas, obs.UID
		}
		// Manifests about to be applied in this plan set the replica count Karmada will divide;
		// otherwise Karmada's count stands (someone may have scaled it there).
		if obs == nil || b.has(addrManifests(w.Name)) {
			for _, o := range w.Objects {
				if o.Kind == r.Kind && o.Name == r.Name && (o.Namespace == "" || o.Namespace == ns) && o.Replicas != nil {
					replicas = o.Replicas
				}
			}
		}
		if replicas == nil {
			continue
		}
		split := Divide(weights, *replicas, uid)
		var parts []string
		for _, m := range b.members {
			after, inAfter := split[m.Name]
			var before int32
			inBefore := false
			if obs != nil {
				before, inBefore = obs.Scheduled[m.Name]
			}
			if !inAfter && !inBefore {
				continue
			}
			s := fmt.Sprintf("%s %d", m.Name, after)
			if obs != nil {
				s += fmt.Sprintf(" (was %d)", before)
			}
			parts = append(parts, s)
		}
		if obs != nil {
			for _, m := range sortedKeys(obs.Scheduled) {
				if !b.isMember(m) {
					parts = append(parts, fmt.Sprintf("%s 0 (was %d)", m, obs.Scheduled[m]))
				}
			}
		}
		targets = append(targets, target{r.Kind + "/" + r.Name, strings.Join(parts, ", ")})
	}
	var out []plan.Change
	for _, t := range targets {
		// Only resources with replicas are divided; name them when there are several.
		field := "split"
		if len(targets) > 1 {
			field += " " + t.field
		}
		out = append(out, plan.Change{Field: field, After: t.text})
	}
	return out
}

// replacedIn are the members among clusters whose join this plan replaces (a region rebuilt).
func (b *builder) replacedIn(clusters []string) []string {
	var out []string
	for _, m := range clusters {
		if s, ok := b.steps[addrJoin(m)]; ok && s.Action == plan.Replace && !b.excluded[m] {
			out = append(out, m)
		}
	}
	return out
}
