package planner

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Cost items other than node pools.
const (
	costItemHA           = "HA control plane"
	costItemNodeBalancer = "east-west gateway NodeBalancer"
)

// Cost is what the fleet's LKE clusters cost a month as observed and once steps are
// applied, at the prices the Linode observer read (w.Prices). Before comes from the
// observed clusters (their pools, HA, the east-west gateway's LoadBalancer Service, which
// LKE backs with a NodeBalancer), after from the steps: a cluster a step creates or changes
// costs what fleet.yaml declares, one a step deletes nothing, any other what it does now
// (one that left the fleet without prune included), and a NodeBalancer comes and goes with
// the steps that install the east-west gateway or tear a member's mesh down. So the cost of
// a plan cut down by --target is that of its steps. Nil when there is nothing to price (no
// LKE cluster) or the world says nothing of prices (the Linode observer did not run).
func Cost(f *spec.Fleet, w *world.World, steps []plan.Step) *plan.Cost {
	lke := map[string]*spec.Cluster{}
	var existing []string
	declare := func(name string, c *spec.Cluster) {
		if c.IsLKE() {
			lke[name] = c
		} else {
			existing = append(existing, name)
		}
	}
	declare(f.Manager.Name, &f.Manager.Cluster)
	for i := range f.Members {
		declare(f.Members[i].Name, &f.Members[i].Cluster)
	}
	names := sortedKeys(lke)
	for name, c := range w.Clusters {
		if _, ok := lke[name]; !ok && c.LinodeID != 0 && !c.Existing {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	sort.Strings(existing)
	if len(names) == 0 || w.Prices == nil && w.PricesUnknown == "" {
		return nil
	}
	if w.Prices == nil {
		return &plan.Cost{Unknown: w.PricesUnknown}
	}
	c := &plan.Cost{Existing: existing, PricesFetchedAt: w.Prices.FetchedAt}
	if w.Prices.RefreshFailed != "" {
		c.PricesNote = "prices from the cache, read " + age(w.Now, w.Prices.FetchedAt) +
			"; reading them now failed: " + w.Prices.RefreshFailed
	}
	deleted, changed, eastWestInstalled, tornDown := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range steps {
		switch {
		case s.Kind == plan.KindCluster && s.Action == plan.Delete:
			deleted[s.Cluster] = true
		case s.Kind == plan.KindCluster:
			changed[s.Cluster] = true
		case s.Kind == plan.KindMeshRelease && s.Component == ComponentEastWest && (s.Action == plan.Create || s.Action == plan.Replace):
			eastWestInstalled[s.Cluster] = true
		case s.Kind == plan.KindMeshTeardown:
			tornDown[s.Cluster] = true
		}
	}
	for _, name := range names {
		var before, after *parts
		obs := w.Clusters[name]
		if obs != nil && obs.LinodeID != 0 {
			before = observedParts(obs)
		}
		switch sc := lke[name]; {
		case deleted[name]:
		case sc != nil && (changed[name] || before == nil):
			after = desiredParts(sc)
			after.nodeBalancer = before != nil && before.nodeBalancer
		case before != nil:
			kept := *before
			after = &kept
		}
		if before == nil && after != nil && !changed[name] {
			// Not there and not created by these steps (a plan cut by --target).
			after = nil
		}
		if after != nil {
			switch {
			case tornDown[name]:
				after.nodeBalancer = false
			case eastWestInstalled[name]:
				after.nodeBalancer = true
			}
		}
		cc := priceCluster(name, before, after, w.Prices)
		if cc.Unknown == "" {
			if cc.Before != nil {
				c.Before = c.Before.Add(*cc.Before)
			}
			if cc.After != nil {
				c.After = c.After.Add(*cc.After)
			}
		}
		c.Clusters = append(c.Clusters, cc)
	}
	return c
}

// parts are what a cluster pays for: nodes by type, the HA control plane, a NodeBalancer.
type parts struct {
	region       string
	nodes        map[string]nodeRange
	ha           bool
	nodeBalancer bool
}

// nodeRange is how many nodes of a type: min == max unless autoscaled.
type nodeRange struct{ min, max int }

func (n nodeRange) String() string {
	if n.min == n.max {
		return strconv.Itoa(n.min) + " nodes"
	}
	return fmt.Sprintf("%d..%d nodes", n.min, n.max)
}

func observedParts(c *world.Cluster) *parts {
	p := &parts{region: c.Region, nodes: map[string]nodeRange{}, ha: c.HighAvailability}
	for _, pool := range c.Pools {
		r := nodeRange{pool.Count, pool.Count}
		if pool.Autoscaler != nil {
			r = nodeRange{pool.Autoscaler.Min, pool.Autoscaler.Max}
		}
		n := p.nodes[pool.Type]
		p.nodes[pool.Type] = nodeRange{n.min + r.min, n.max + r.max}
	}
	_, p.nodeBalancer = c.Releases[ReleaseKey(MeshNamespace, MeshReleaseName(ComponentEastWest))]
	return p
}

func desiredParts(c *spec.Cluster) *parts {
	p := &parts{region: c.Region, nodes: map[string]nodeRange{}, ha: c.HighAvailability}
	for _, pool := range c.Pools {
		r := nodeRange{pool.Count, pool.Count}
		if pool.Autoscaler != nil {
			r = nodeRange{pool.Autoscaler.Min, pool.Autoscaler.Max}
		}
		n := p.nodes[pool.Type]
		p.nodes[pool.Type] = nodeRange{n.min + r.min, n.max + r.max}
	}
	return p
}

// priceCluster prices a cluster's parts before and after (nil: the cluster is not there),
// with an item for each part whose size or price changes.
func priceCluster(name string, before, after *parts, prices *world.Prices) plan.ClusterCost {
	cc := plan.ClusterCost{Cluster: name}
	for _, p := range []*parts{after, before} {
		if p != nil && cc.Region == "" {
			cc.Region = p.region
		}
	}
	type item struct {
		name                  string
		beforeSize, afterSize string
		before, after         *plan.Monthly
	}
	var items []item
	var unknown []string
	total := func(p *parts) *plan.Monthly {
		if p == nil {
			return nil
		}
		return &plan.Monthly{}
	}
	tb, ta := total(before), total(after)
	add := func(name string, price *world.Price, side *parts, size string, n nodeRange, sum *plan.Monthly) (*plan.Monthly, string) {
		if side == nil || n.max == 0 {
			return nil, ""
		}
		if price == nil {
			unknown = append(unknown, "no price for "+name)
			return nil, size
		}
		each := plan.Cents(price.In(side.region))
		m := plan.Monthly{Min: each * plan.Cents(n.min), Max: each * plan.Cents(n.max)}
		*sum = sum.Add(m)
		return &m, size
	}
	typesSeen := map[string]bool{}
	var types []string
	for _, p := range []*parts{before, after} {
		if p == nil {
			continue
		}
		for t := range p.nodes {
			if !typesSeen[t] {
				typesSeen[t] = true
				types = append(types, t)
			}
		}
	}
	sort.Strings(types)
	side := func(p *parts, t string) nodeRange {
		if p == nil {
			return nodeRange{}
		}
		return p.nodes[t]
	}
	for _, t := range types {
		var price *world.Price
		if pr, ok := prices.Types[t]; ok {
			price = &pr
		}
		it := item{name: "pool " + t}
		if n := side(before, t); n.max > 0 {
			it.before, it.beforeSize = add("type "+t, price, before, n.String(), n, tb)
		}
		if n := side(after, t); n.max > 0 {
			it.after, it.afterSize = add("type "+t, price, after, n.String(), n, ta)
		}
		items = append(items, it)
	}
	flag := func(name string, price *world.Price, on func(*parts) bool) {
		b, a := before != nil && on(before), after != nil && on(after)
		if !b && !a {
			return
		}
		it := item{name: name}
		if b {
			it.before, it.beforeSize = add(name, price, before, "on", nodeRange{1, 1}, tb)
		} else if before != nil {
			it.beforeSize, it.before = "off", &plan.Monthly{}
		}
		if a {
			it.after, it.afterSize = add(name, price, after, "on", nodeRange{1, 1}, ta)
		} else if after != nil {
			it.afterSize, it.after = "off", &plan.Monthly{}
		}
		items = append(items, it)
	}
	flag(costItemHA, prices.LKEHA, func(p *parts) bool { return p.ha })
	flag(costItemNodeBalancer, prices.NodeBalancer, func(p *parts) bool { return p.nodeBalancer })
	if len(unknown) > 0 {
		sort.Strings(unknown)
		cc.Unknown = unknown[0]
		for _, u := range unknown[1:] {
			if u != unknown[0] {
				cc.Unknown += ", " + u
			}
		}
		return cc
	}
	cc.Before, cc.After = tb, ta
	for _, it := range items {
		if it.beforeSize == it.afterSize && (it.before == nil) == (it.after == nil) && (it.before == nil || *it.before == *it.after) {
			continue
		}
		cc.Items = append(cc.Items, plan.CostItem{Item: it.name, BeforeSize: it.beforeSize, AfterSize: it.afterSize, Before: it.before, After: it.after})
	}
	return cc
}

// age is how long before now t was, as a person says it: "3h ago", "2d ago".
func age(now, t time.Time) string {
	if now.IsZero() {
		return "at " + t.UTC().Format(time.RFC3339)
	}
	d := now.Sub(t)
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
