package planner

import (
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Region prices, the HA control plane, an existing cluster (left out, and said so) and a type
// the API has no price for (that cluster's cost unknown, left out of the totals).
func TestCostRegionsExistingAndUnknownTypes(t *testing.T) {
	t.Parallel()
	f := &spec.Fleet{
		Manager: spec.Manager{Name: "mgr", Cluster: spec.Cluster{Region: "br-gru", HighAvailability: true,
			Pools: []spec.Pool{{Type: "g6-standard-4", Count: 2}, {Type: "g6-standard-2", Autoscaler: &spec.Autoscaler{Min: 1, Max: 3}}}}},
		Members: []spec.Member{
			{Name: "edge", Cluster: spec.Cluster{Kubeconfig: &spec.Kubeconfig{Path: "edge.yaml"}}},
			{Name: "new", Cluster: spec.Cluster{Region: "us-east", Pools: []spec.Pool{{Type: "g9-unreleased", Count: 1}}}},
		},
	}
	w := &world.World{Prices: &world.Prices{
		Types: map[string]world.Price{
			"g6-standard-2": {Monthly: 2400, Regions: map[string]int64{"br-gru": 3360}},
			"g6-standard-4": {Monthly: 4800, Regions: map[string]int64{"br-gru": 6720}},
		},
		LKEHA: &world.Price{Monthly: 6000, Regions: map[string]int64{"br-gru": 8400}},
	}}
	steps := []plan.Step{
		{Address: "cluster/mgr", Kind: plan.KindCluster, Action: plan.Create, Cluster: "mgr"},
		{Address: "cluster/new", Kind: plan.KindCluster, Action: plan.Create, Cluster: "new"},
	}
	c := Cost(f, w, steps)
	if c == nil {
		t.Fatal("no cost")
	}
	// 2 x $67.20 + 1..3 x $33.60 + $84.00 in São Paulo.
	want := plan.Monthly{Min: 2*6720 + 3360 + 8400, Max: 2*6720 + 3*3360 + 8400}
	if c.Before != (plan.Monthly{}) || c.After != want {
		t.Errorf("cost %s -> %s, want $0.00 -> %s", c.Before, c.After, want)
	}
	if len(c.Existing) != 1 || c.Existing[0] != "edge" {
		t.Errorf("existing = %v, want [edge]", c.Existing)
	}
	if len(c.Clusters) != 2 || c.Clusters[1].Cluster != "new" || !strings.Contains(c.Clusters[1].Unknown, "no price for type g9-unreleased") {
		t.Errorf("clusters = %+v", c.Clusters)
	}
	var b strings.Builder
	if err := (&plan.Plan{Steps: steps, Cost: c}).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"HA control plane: on, $84.00/mo (new)",
		"pool g6-standard-2: 1..3 nodes, $33.60..$100.80/mo (new)",
		"cluster/new: unknown (no price for type g9-unreleased)",
		"(existing clusters not included: edge)",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("the text lacks %q:\n%s", line, b.String())
		}
	}

	// No prices and no reason: the Linode observer did not run; no cost rather than a guess.
	if c := Cost(f, &world.World{}, steps); c != nil {
		t.Errorf("cost without prices = %+v", c)
	}
	// Only existing clusters: nothing to price.
	onlyExisting := &spec.Fleet{Manager: spec.Manager{Name: "m", Cluster: spec.Cluster{Kubeconfig: &spec.Kubeconfig{Path: "k"}}}}
	if c := Cost(onlyExisting, w, nil); c != nil {
		t.Errorf("cost of a fleet without LKE clusters = %+v", c)
	}
}
