package planner

import (
	"fmt"
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
		if tags := sortedSet(c.Tags); len(tags) > 0 {
			changes = append(changes, plan.Change{Field: "tags", After: strings.Join(tags, ", ")})
		}
		for i, p := range c.Pools {
			changes = append(changes, plan.Change{Field: fmt.Sprintf("pool[%d]", i), After: desiredPool(p)})
		}
		b.add(plan.Step{Address: addrCluster(name), Layer: layer, Kind: plan.KindCluster, Action: plan.Create,
			Cluster: name, Changes: changes, Reason: "no LKE cluster " + name + " exists"})
	} else {
		b.updateCluster(name, c, obs, layer)
	}
	if obs == nil || !obs.KubeconfigStored {
		b.add(plan.Step{Address: addrKubeconfig(name), Layer: layer, Kind: plan.KindKubeconfig, Action: plan.Create,
			Cluster: name, Reason: "no kubeconfig for " + name + " in the state store",
			DependsOn: b.present(addrCluster(name))})
	}
}

func (b *builder) updateCluster(name string, c spec.Cluster, obs *world.Cluster, layer plan.Layer) {
	var changes []plan.Change
	if c.Region != "" && obs.Region != "" && c.Region != obs.Region {
		b.note("cluster/%s: region %s -> %s is refused: an LKE cluster cannot move; "+
			"add a new member in %s and remove this one instead", name, obs.Region, c.Region, c.Region)
	}
	if c.K8sVersion != "" && obs.K8sVersion != "" && c.K8sVersion != obs.K8sVersion {
		if c.AllowUpgrade {
			changes = append(changes, plan.Change{Field: "k8sVersion", Before: obs.K8sVersion, After: c.K8sVersion})
		} else {
			b.note("cluster/%s: k8sVersion %s -> %s is not planned: set allowUpgrade: true on the cluster "+
				"to upgrade it in place", name, obs.K8sVersion, c.K8sVersion)
		}
	}
	switch {
	case c.HighAvailability && !obs.HighAvailability:
		changes = append(changes, plan.Change{Field: "highAvailability", Before: "false", After: "true"})
	case !c.HighAvailability && obs.HighAvailability:
		b.note("cluster/%s: highAvailability stays on: LKE cannot turn an HA control plane off", name)
	}
	if !sameTags(c.Tags, obs.Tags) {
		changes = append(changes, plan.Change{Field: "tags", Before: strings.Join(sortedSet(obs.Tags), ", "), After: strings.Join(sortedSet(c.Tags), ", ")})
	}
	pools := slices.Clone(obs.Pools)
	sort.SliceStable(pools, func(i, j int) bool { return pools[i].ID < pools[j].ID })
	for i := 0; i < max(len(c.Pools), len(pools)); i++ {
		field := fmt.Sprintf("pool[%d]", i)
		switch {
		case i >= len(pools):
			changes = append(changes, plan.Change{Field: field, After: desiredPool(c.Pools[i])})
		case i >= len(c.Pools):
			changes = append(changes, plan.Change{Field: field, Before: observedPool(pools[i]), After: removed})
		default:
			changes = append(changes, poolChanges(field, c.Pools[i], pools[i])...)
		}
	}
	if len(changes) == 0 {
		return
	}
	b.add(plan.Step{Address: addrCluster(name), Layer: layer, Kind: plan.KindCluster, Action: plan.Update,
		Cluster: name, Changes: changes, Reason: "LKE cluster " + name + " differs from fleet.yaml"})
}

func poolChanges(field string, want spec.Pool, have world.Pool) []plan.Change {
	if want.Type != have.Type {
		return []plan.Change{{Field: field + ".type", Before: have.Type,
			After: want.Type + " (pool replaced: the new pool is created first, then the old one deleted)"}}
	}
	var out []plan.Change
	if want.Autoscaler == nil && want.Count != 0 && want.Count != have.Count {
		out = append(out, plan.Change{Field: field + ".count", Before: fmt.Sprint(have.Count), After: fmt.Sprint(want.Count)})
	}
	w, h := "off", "off"
	if want.Autoscaler != nil {
		w = fmt.Sprintf("%d-%d", want.Autoscaler.Min, want.Autoscaler.Max)
	}
	if have.Autoscaler != nil {
		h = fmt.Sprintf("%d-%d", have.Autoscaler.Min, have.Autoscaler.Max)
	}
	if w != h {
		out = append(out, plan.Change{Field: field + ".autoscaler", Before: h, After: w})
	}
	if !sameTags(want.Tags, have.Tags) {
		out = append(out, plan.Change{Field: field + ".tags", Before: strings.Join(sortedSet(have.Tags), ", "), After: strings.Join(sortedSet(want.Tags), ", ")})
	}
	return out
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
