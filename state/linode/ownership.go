package linode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/spec"
)

// Ownership tags: a cluster belongs to fleet F, as fleet cluster N, when it carries both
// reconcile.fleet:F and reconcile.cluster:N. The label alone never makes a cluster ours.
const (
	fleetTagPrefix   = world.LinodeFleetTagPrefix
	clusterTagPrefix = "reconcile.cluster:"
)

// listPageSize is the largest page the API serves; fewer pages, fewer calls per pass.
const listPageSize = 500

// FleetTag is the tag every cluster of the fleet carries.
func FleetTag(fleet string) string { return world.LinodeFleetTag(fleet) }

// ClusterTag is the tag naming the fleet cluster an LKE cluster is.
func ClusterTag(name string) string { return clusterTagPrefix + name }

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if strings.EqualFold(t, tag) {
			return true
		}
	}
	return false
}

// clusterName is the fleet name of an owned cluster: its cluster tag, else its label.
func clusterName(c *linodego.LKECluster) string {
	for _, t := range c.Tags {
		if len(t) > len(clusterTagPrefix) && strings.EqualFold(t[:len(clusterTagPrefix)], clusterTagPrefix) {
			return t[len(clusterTagPrefix):]
		}
	}
	return c.Label
}

// userTags are the cluster's tags without ours, sorted.
func userTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		l := strings.ToLower(t)
		if strings.HasPrefix(l, fleetTagPrefix) || strings.HasPrefix(l, clusterTagPrefix) {
			continue
		}
		out = append(out, t)
	}
	return sortedSet(out)
}

// desiredTags are the user's tags plus the two ownership tags, sorted.
func desiredTags(fleet, name string, tags []string) []string {
	return sortedSet(append(slices.Clone(tags), FleetTag(fleet), ClusterTag(name)))
}

func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// sameSet compares tag sets without regard to order or case (the API may lowercase tags).
func sameSet(a, b []string) bool { return slices.Equal(lowerSet(a), lowerSet(b)) }

func lowerSet(s []string) []string {
	out := make([]string, len(s))
	for i, t := range s {
		out[i] = strings.ToLower(t)
	}
	return sortedSet(out)
}

// specCluster finds the fleet's cluster (manager or member) by name.
func specCluster(f *spec.Fleet, name string) (*spec.Cluster, bool) {
	if f.Manager.Name == name {
		return &f.Manager.Cluster, true
	}
	for i := range f.Members {
		if f.Members[i].Name == name {
			return &f.Members[i].Cluster, true
		}
	}
	return nil, false
}

// listOwned lists the fleet's clusters with one filtered, paginated call. The filter is
// re-checked here: a cluster without the fleet tag is never returned, whatever the API did.
func (d *Driver) listOwned(ctx context.Context, fleet string) ([]linodego.LKECluster, error) {
	filter, err := json.Marshal(map[string]string{"tags": FleetTag(fleet)})
	if err != nil {
		return nil, err
	}
	// A fresh ListOptions per call: linodego writes the page back into it (linodego#511).
	all, err := d.api.ListLKEClusters(ctx, &linodego.ListOptions{PageSize: listPageSize, Filter: string(filter)})
	if err != nil {
		return nil, classify(ctx, "list clusters of fleet "+fleet, err)
	}
	owned := all[:0]
	for _, c := range all {
		if hasTag(c.Tags, FleetTag(fleet)) {
			owned = append(owned, c)
		}
	}
	slices.SortFunc(owned, func(a, b linodego.LKECluster) int { return a.ID - b.ID })
	return owned, nil
}

// Fingerprint summarizes the fleet's LKE clusters as one filtered list shows them (ID, label,
// status, version, tags, last update): it changes when one is created, deleted or changed
// behind the fleet's back. One request; the daemon polls it between passes.
func (d *Driver) Fingerprint(ctx context.Context, fleet string) (string, error) {
	owned, err := d.listOwned(ctx, fleet)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for i := range owned {
		c := &owned[i]
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s\x00%v\n", c.ID, c.Label, c.Status, c.K8sVersion, updatedString(c), c.Tags)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// findOwned re-observes the fleet's cluster called name; nil when the fleet has none.
func (d *Driver) findOwned(ctx context.Context, fleet, name string) (*linodego.LKECluster, error) {
	owned, err := d.listOwned(ctx, fleet)
	if err != nil {
		return nil, err
	}
	for i := range owned {
		if clusterName(&owned[i]) == name {
			return &owned[i], nil
		}
	}
	return nil, nil
}

// checkLabelFree fails when a cluster outside the fleet already has the label: creating a
// second one would be confusing, and adopting it would touch what is not ours.
func (d *Driver) checkLabelFree(ctx context.Context, fleet, name string) error {
	filter, err := json.Marshal(map[string]string{"label": name})
	if err != nil {
		return err
	}
	found, err := d.api.ListLKEClusters(ctx, &linodego.ListOptions{PageSize: listPageSize, Filter: string(filter)})
	if err != nil {
		return classify(ctx, "create cluster "+name+": look up label", err)
	}
	for _, c := range found {
		if c.Label != name {
			continue
		}
		if !hasTag(c.Tags, FleetTag(fleet)) {
			return fmt.Errorf("linode: create cluster %s: label %s is taken by a cluster not owned by fleet %s (LKE cluster %d)", name, name, fleet, c.ID)
		}
		return fmt.Errorf("linode: create cluster %s: label %s is taken by LKE cluster %d of fleet %s, which is tagged as cluster %q", name, name, c.ID, fleet, clusterName(&c))
	}
	return nil
}
