package plan

import (
	"strings"
	"testing"
)

func TestCentsString(t *testing.T) {
	t.Parallel()
	for c, want := range map[Cents]string{
		0: "$0.00", 5: "$0.05", 7200: "$72.00", 123456: "$1,234.56", 100000000: "$1,000,000.00", -2400: "-$24.00",
	} {
		if got := c.String(); got != want {
			t.Errorf("Cents(%d) = %q, want %q", int64(c), got, want)
		}
	}
}

func TestCostText(t *testing.T) {
	t.Parallel()
	m := func(lo, hi Cents) *Monthly { return &Monthly{lo, hi} }
	p := &Plan{Fleet: "f", Cost: &Cost{
		Before: Monthly{21600, 21600}, After: Monthly{28800, 36000},
		Clusters: []ClusterCost{
			{Cluster: "a", Before: m(7200, 7200), After: m(7200, 7200)},
			{Cluster: "b", Before: m(14400, 14400), After: m(21600, 28800), Items: []CostItem{
				{Item: "pool g6-standard-2", BeforeSize: "6 nodes", AfterSize: "9..12 nodes", Before: m(14400, 14400), After: m(21600, 28800)},
			}},
			{Cluster: "c", Unknown: "no price for type g9-new"},
		},
		Existing: []string{"onprem"},
	}}
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `No changes. The fleet matches fleet.yaml.
Monthly cost (Linode list prices):
  cluster/b: $144.00/mo -> $216.00..$288.00/mo (+$72.00..+$144.00)
        pool g6-standard-2: 6 nodes -> 9..12 nodes, $144.00/mo -> $216.00..$288.00/mo (+$72.00..+$144.00)
  cluster/c: unknown (no price for type g9-new)
Cost: $216.00/mo -> $288.00..$360.00/mo (+$72.00..+$144.00)  (existing clusters not included: onprem)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	p.Cost = &Cost{Unknown: "no prices"}
	b.Reset()
	if err := p.WriteText(&b); err != nil || !strings.Contains(b.String(), "Cost: unknown (no prices).") {
		t.Errorf("unknown cost: %q, %v", b.String(), err)
	}
}
