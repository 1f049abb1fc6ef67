package planner

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// lkeCluster plans cluster/<name> and cluster/<name>/kubeconfig for an LKE cluster.
func (b *builder) lkeCluster(name string, c spec.Cluster, layer plan.Layer) {
	if !c.IsLKE() {
		return
	}
	obs := b.cluster(name)
	if obs == nil || obs.LinodeID == 0 {
		changes := []plan.Change{{Field: "region", After: c.Region}}
		if c.K8sVersion != "" {
			changes = append(changes, plan.Change{Field: "k8sVersion", After: c.K8sVersion})
		}
		if c.HighAvailability {
			changes = append(changes, plan.Change{Field: "highAvailability", After: "true"})
		}
		tags := sortedSet(c.Tags)
		if len(tags) > 0 {
			changes = append(changes, plan.Change{Field: "tags", After: strings.Join(tags, ", ")})
		}
		if tags == nil {
			tags = []string{}
		}
		cc := &plan.ClusterChange{Label: name, Region: c.Region, K8sVersion: c.K8sVersion,
			HighAvailability: c.HighAvailability, Tags: &tags}
		for i, p := range c.Pools {
			changes = append(changes, plan.Change{Field: fmt.Sprintf("pool[%d]", i), After: desiredPool(p)})
			cc.CreatePools = append(cc.CreatePools, newPool(p))
		}
		b.add(plan.Step{Address: addrCluster(name), Layer: layer, Kind: plan.KindCluster, Action: plan.Create,
			Cluster: name, Changes: changes, Reason: "no LKE cluster " + name + " exists",
			Payload: plan.Payload{Cluster: cc}})
	} else {
		b.updateCluster(name, c, obs, layer)
	}
	if obs == nil || !obs.KubeconfigStored {
		kc := &plan.Kubeconfig{}
		if b.f.KubeconfigDir != "" {
			kc.CopyTo = filepath.Join(b.f.KubeconfigDir, "kubeconfig-"+name)
		}
		b.add(plan.Step{Address: addrKubeconfig(name), Layer: layer, Kind: plan.KindKubeconfig, Action: plan.Create,
			Cluster: name, Reason: "no kubeconfig for " + name + " in the state store",
			DependsOn: b.present(addrCluster(name)), Payload: plan.Payload{Kubeconfig: kc}})
	}
}

func newPool(p spec.Pool) plan.Pool {
	out := plan.Pool{Type: p.Type, Count: p.Count, Tags: sortedSet(p.Tags)}
	if a := p.Autoscaler; a != nil {
		out.Autoscaler = &plan.Autoscaler{Enabled: true, Min: a.Min, Max: a.Max}
		if out.Count == 0 {
			out.Count = a.Min
		}
	}
	return out
}

// poolMatch pairs a pool of the spec (by its index) with an existing pool.
type poolMatch struct {
	index int
	have  world.Pool
}

// matchPools pairs spec pools with existing ones by type, in order: the i-th spec pool of
// type T is the i-th existing pool of type T in ascending pool ID order (the order they were
// created in). Spec pools left over are created; existing pools left over are deleted. The
// order of pools in fleet.yaml therefore never matters, only their types and counts.
func matchPools(want []spec.Pool, have []world.Pool) (keep []poolMatch, create []int, remove []world.Pool) {
	sorted := slices.Clone(have)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	byType := map[string][]world.Pool{}
	for _, p := range sorted {
		byType[p.Type] = append(byType[p.Type], p)
	}
	for i, w := range want {
		if q := byType[w.Type]; len(q) > 0 {
			keep = append(keep, poolMatch{index: i, have: q[0]})
			byType[w.Type] = q[1:]
			continue
		}
		create = append(create, i)
	}
	for _, p := range sorted {
		for _, left := range byType[p.Type] {
			if left.ID == p.ID {
				remove = append(remove, p)
			}
		}
	}
	return keep, create, remove
}

func (b *builder) updateCluster(name string, c spec.Cluster, obs *world.Cluster, layer plan.Layer) {
	var changes []plan.Change
	cc := &plan.ClusterChange{Label: name, LinodeID: obs.LinodeID}
	if c.Region != "" && obs.Region != "" && c.Region != obs.Region {
		b.note("cluster/%s: region %s -> %s is refused: an LKE cluster cannot move; "+
			"add a new member in %s and remove this one instead", name, obs.Region, c.Region, c.Region)
	}
	if c.K8sVersion != "" && obs.K8sVersion != "" && c.K8sVersion != obs.K8sVersion {
		if c.AllowUpgrade {
			changes = append(changes, plan.Change{Field: "k8sVersion", Before: obs.K8sVersion, After: c.K8sVersion})
			cc.K8sVersion = c.K8sVersion
		} else {
			b.note("cluster/%s: k8sVersion %s -> %s is not planned: set allowUpgrade: true on the cluster "+
				"to upgrade it in place", name, obs.K8sVersion, c.K8sVersion)
		}
	}
	switch {
	case c.HighAvailability && !obs.HighAvailability:
		changes = append(changes, plan.Change{Field: "highAvailability", Before: "false", After: "true"})
		cc.HighAvailability = true
	case !c.HighAvailability && obs.HighAvailability:
		b.note("cluster/%s: highAvailability stays on: LKE cannot turn an HA control plane off", name)
	}
	if !sameTags(c.Tags, obs.Tags) {
		changes = append(changes, plan.Change{Field: "tags", Before: strings.Join(sortedSet(obs.Tags), ", "), After: strings.Join(sortedSet(c.Tags), ", ")})
		tags := sortedSet(c.Tags)
		if tags == nil {
			tags = []string{}
		}
		cc.Tags = &tags
	}
	keep, create, remove := matchPools(c.Pools, obs.Pools)
	for _, m := range keep {
		field := fmt.Sprintf("pool[%d]", m.index)
		ch, up := poolChanges(field, c.Pools[m.index], m.have)
		changes = append(changes, ch...)
		if up != nil {
			cc.UpdatePools = append(cc.UpdatePools, *up)
		}
	}
	for _, i := range create {
		changes = append(changes, plan.Change{Field: fmt.Sprintf("pool[%d]", i), After: desiredPool(c.Pools[i]) + " (new pool)"})
		cc.CreatePools = append(cc.CreatePools, newPool(c.Pools[i]))
	}
	for _, p := range remove {
		after := removed
		if len(create) > 0 {
			after = removed + " once the new pools are ready"
		}
		changes = append(changes, plan.Change{Field: fmt.Sprintf("pool %d", p.ID), Before: observedPool(p), After: after})
		cc.DeletePools = append(cc.DeletePools, plan.PoolRef{ID: p.ID, Type: p.Type})
	}
	if len(changes) == 0 {
		return
	}
	// What the cluster had when planned: a retried update tells a pool an earlier attempt
	// created from one the plan left alone.
	cc.ExistingPools = []plan.PoolRef{}
	for _, p := range obs.Pools {
		cc.ExistingPools = append(cc.ExistingPools, plan.PoolRef{ID: p.ID, Type: p.Type})
	}
	sort.Slice(cc.ExistingPools, func(i, j int) bool { return cc.ExistingPools[i].ID < cc.ExistingPools[j].ID })
	b.add(plan.Step{Address: addrCluster(name), Layer: layer, Kind: plan.KindCluster, Action: plan.Update,
		Cluster: name, Changes: changes, Reason: "LKE cluster " + name + " differs from fleet.yaml",
		Payload: plan.Payload{Cluster: cc}})
}

// poolChanges are the differences of a matched pool, shown and as an update (nil when none).
// The count is the autoscaler's business when the spec enables one.
func poolChanges(field string, want spec.Pool, have world.Pool) ([]plan.Change, *plan.PoolUpdate) {
	var out []plan.Change
	up := plan.PoolUpdate{ID: have.ID, Type: have.Type}
	changed := false
	w, h := "off", "off"
	if want.Autoscaler != nil {
		w = fmt.Sprintf("%d-%d", want.Autoscaler.Min, want.Autoscaler.Max)
	}
	if have.Autoscaler != nil {
		h = fmt.Sprintf("%d-%d", have.Autoscaler.Min, have.Autoscaler.Max)
	}
	switch {
	case want.Autoscaler != nil:
		if w != h {
			up.Autoscaler = &plan.Autoscaler{Enabled: true, Min: want.Autoscaler.Min, Max: want.Autoscaler.Max}
		}
	case have.Autoscaler != nil:
		up.Autoscaler = &plan.Autoscaler{Enabled: false, Min: have.Autoscaler.Min, Max: have.Autoscaler.Max}
		if want.Count != 0 && want.Count != have.Count {
			up.Count = want.Count
		}
	case want.Count != 0 && want.Count != have.Count:
		up.Count = want.Count
	}
	if up.Count != 0 {
		out = append(out, plan.Change{Field: field + ".count", Before: fmt.Sprint(have.Count), After: fmt.Sprint(want.Count)})
		changed = true
	}
	if up.Autoscaler != nil {
		out = append(out, plan.Change{Field: field + ".autoscaler", Before: h, After: w})
		changed = true
	}
	if !sameTags(want.Tags, have.Tags) {
		out = append(out, plan.Change{Field: field + ".tags", Before: strings.Join(sortedSet(have.Tags), ", "), After: strings.Join(sortedSet(want.Tags), ", ")})
		tags := sortedSet(want.Tags)
		if tags == nil {
			tags = []string{}
		}
		up.Tags = &tags
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return out, &up
}

func desiredPool(p spec.Pool) string {
	s := fmt.Sprintf("%s x%d", p.Type, p.Count)
	if p.Autoscaler != nil {
		s += fmt.Sprintf(" (autoscaler %d-%d)", p.Autoscaler.Min, p.Autoscaler.Max)
	}
	if len(p.Tags) > 0 {
		s += " tags " + strings.Join(sortedSet(p.Tags), ", ")
	}
	return s
}

func observedPool(p world.Pool) string {
	s := fmt.Sprintf("%s x%d", p.Type, p.Count)
	if p.Autoscaler != nil {
		s += fmt.Sprintf(" (autoscaler %d-%d)", p.Autoscaler.Min, p.Autoscaler.Max)
	}
	return s
}

// sameTags compares tag sets without regard to order or case (the Linode API may lowercase
// tags). World tags are the user's only: observers leave out the ownership tags.
func sameTags(want, have []string) bool {
	return slices.Equal(sortedSet(lower(want)), sortedSet(lower(have)))
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}
