package plan

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Cents is an amount of US dollars in cents: integers, so that sums are exact.
type Cents int64

// String is the amount as people read it: $1,234.56, -$72.00.
func (c Cents) String() string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	whole := strconv.FormatInt(int64(c)/100, 10)
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return fmt.Sprintf("%s$%s.%02d", sign, b.String(), int64(c)%100)
}

// Monthly is a monthly cost: Min equals Max unless an autoscaled pool makes it a range.
type Monthly struct {
	Min Cents `json:"minCents"`
	Max Cents `json:"maxCents"`
}

// Add is m plus o.
func (m Monthly) Add(o Monthly) Monthly { return Monthly{m.Min + o.Min, m.Max + o.Max} }

// String is "$72.00" or, for a range, "$48.00..$120.00".
func (m Monthly) String() string {
	if m.Min == m.Max {
		return m.Min.String()
	}
	return m.Min.String() + ".." + m.Max.String()
}

// Cost is the monthly cost of the fleet's LKE clusters before and after the plan, at the
// Linode list prices the API served. It is what the plan costs, for people: no step
// depends on it, and a saved plan is not refused because prices moved.
type Cost struct {
	// Unknown says why no cost is given (no prices read and none cached); the other fields
	// are empty then. A cost is never guessed.
	Unknown string `json:"unknown,omitempty"`
	// Before is what the fleet's LKE clusters cost as observed, After once the plan is
	// applied; both leave out the clusters in UnknownClusters and Existing.
	Before Monthly `json:"before"`
	After  Monthly `json:"after"`
	// Clusters are the fleet's LKE clusters, in name order, each with its cost.
	Clusters []ClusterCost `json:"clusters,omitempty"`
	// Existing are the clusters given by kubeconfig: not LKE, their cost is not known.
	Existing []string `json:"existing,omitempty"`
	// PricesFetchedAt is when the prices were read from the Linode API; PricesNote says
	// what a reader should know about them (read from an old cache because a read failed).
	PricesFetchedAt time.Time `json:"pricesFetchedAt,omitzero"`
	PricesNote      string    `json:"pricesNote,omitempty"`
}

// ClusterCost is one LKE cluster's monthly cost: Before is nil when it does not exist yet,
// After nil when the plan deletes it. Items are the parts whose cost changes.
type ClusterCost struct {
	Cluster string   `json:"cluster"`
	Region  string   `json:"region,omitempty"`
	Before  *Monthly `json:"before,omitempty"`
	After   *Monthly `json:"after,omitempty"`
	// Unknown says why the cluster's cost is not known (a type the API has no price for);
	// it is then left out of the totals.
	Unknown string     `json:"unknown,omitempty"`
	Items   []CostItem `json:"items,omitempty"`
}

// Changed reports whether the cluster's cost changes.
func (c *ClusterCost) Changed() bool {
	switch {
	case c.Unknown != "":
		return false
	case (c.Before == nil) != (c.After == nil):
		return true
	}
	return c.Before != nil && *c.Before != *c.After
}

// CostItem is a part of a cluster that is paid for (a node pool, the HA control plane, the
// east-west gateway's NodeBalancer), as it is and as it will be.
type CostItem struct {
	// Item names the part: "pool g6-standard-2", "HA control plane", "east-west gateway NodeBalancer".
	Item string `json:"item"`
	// BeforeSize and AfterSize say how much of it ("3 nodes", "2..5 nodes", "on"); "" when absent.
	BeforeSize string   `json:"beforeSize,omitempty"`
	AfterSize  string   `json:"afterSize,omitempty"`
	Before     *Monthly `json:"before,omitempty"`
	After      *Monthly `json:"after,omitempty"`
}

// costLine is "$216.00/mo -> $288.00/mo (+$72.00)", "$216.00/mo (unchanged)", "(none) ->
// $72.00/mo (+$72.00)".
func costLine(before, after *Monthly) string {
	show := func(m *Monthly) string {
		if m == nil {
			return "(none)"
		}
		return m.String() + "/mo"
	}
	var zero Monthly
	b, a := zero, zero
	if before != nil {
		b = *before
	}
	if after != nil {
		a = *after
	}
	if before != nil && after != nil && b == a {
		return show(before) + " (unchanged)"
	}
	return fmt.Sprintf("%s -> %s (%s)", show(before), show(after), delta(b, a))
}

// delta is after minus before with its sign: +$72.00, -$24.00, +$24.00..+$96.00.
func delta(before, after Monthly) string {
	signed := func(c Cents) string {
		if c < 0 {
			return c.String()
		}
		return "+" + c.String()
	}
	lo, hi := after.Min-before.Min, after.Max-before.Max
	if lo == hi {
		return signed(lo)
	}
	return signed(lo) + ".." + signed(hi)
}

// Total is the fleet's monthly cost before and after, as the plan's "Cost:" line says it:
// "$216.00/mo -> $288.00/mo (+$72.00)", "$288.00/mo (unchanged)", "unknown (why)".
func (c *Cost) Total() string {
	if c.Unknown != "" {
		return "unknown (" + c.Unknown + ")"
	}
	return costLine(&c.Before, &c.After)
}

// writeCost draws the cost: the clusters and parts whose cost changes, then the total.
func writeCost(w io.Writer, c *Cost) {
	if c.Unknown != "" {
		fmt.Fprintf(w, "Cost: %s.\n", c.Total())
		return
	}
	var changed []*ClusterCost
	for i := range c.Clusters {
		if c.Clusters[i].Changed() || c.Clusters[i].Unknown != "" {
			changed = append(changed, &c.Clusters[i])
		}
	}
	if len(changed) > 0 {
		fmt.Fprintln(w, "Monthly cost (Linode list prices):")
		for _, cc := range changed {
			if cc.Unknown != "" {
				fmt.Fprintf(w, "  cluster/%s: unknown (%s)\n", cc.Cluster, cc.Unknown)
				continue
			}
			fmt.Fprintf(w, "  cluster/%s: %s\n", cc.Cluster, clusterText(cc))
			for _, it := range cc.Items {
				fmt.Fprintf(w, "        %s\n", itemText(it))
			}
		}
	}
	var notes []string
	if len(c.Existing) > 0 {
		notes = append(notes, "existing clusters not included: "+strings.Join(c.Existing, ", "))
	}
	if c.PricesNote != "" {
		notes = append(notes, c.PricesNote)
	}
	tail := ""
	if len(notes) > 0 {
		tail = "  (" + strings.Join(notes, "; ") + ")"
	}
	fmt.Fprintf(w, "Cost: %s%s\n", c.Total(), tail)
}

// itemText is "pool g6-standard-2: 3 -> 4 nodes, $72.00/mo -> $96.00/mo (+$24.00)", or for a
// part that comes or goes "pool g6-standard-2: 3 nodes, $72.00/mo (new)".
func itemText(it CostItem) string {
	switch {
	case it.Before == nil && it.After != nil:
		return fmt.Sprintf("%s: %s, %s/mo (new)", it.Item, it.AfterSize, it.After)
	case it.After == nil && it.Before != nil:
		return fmt.Sprintf("%s: %s, %s/mo (removed)", it.Item, it.BeforeSize, it.Before)
	}
	size := it.BeforeSize + " -> " + it.AfterSize
	if it.BeforeSize == it.AfterSize {
		size = it.AfterSize
	}
	return fmt.Sprintf("%s: %s, %s", it.Item, size, costLine(it.Before, it.After))
}

// clusterText is the cost line of a cluster: "$82.00/mo (new)", "$82.00/mo (deleted)", or
// before and after.
func clusterText(c *ClusterCost) string {
	switch {
	case c.Before == nil && c.After != nil:
		return c.After.String() + "/mo (new)"
	case c.After == nil && c.Before != nil:
		return c.Before.String() + "/mo (deleted)"
	}
	return costLine(c.Before, c.After)
}
