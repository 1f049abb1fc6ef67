package linode

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
)

// bigFleet is a fleet of n one-node clusters, created and settled, its pool cache filled.
func bigFleet(tb testing.TB, n int, mods ...func(*Config)) (*lab, *Driver, *countingStore, *spec.Fleet) {
	tb.Helper()
	// newLab's API clock runs behind ours, so the listing right after the creates is
	// already trusted (see cachedPools). The real API's rate limits are off: creating and
	// settling up to 100 clusters in a second or two sends far more list requests than
	// the 200 a minute a real account may (a real fleet that size takes its time); what is
	// measured here is the number of calls, not how the driver waits out a 429.
	l := newLab(tb, linodeapi.Options{NoRateLimits: true})
	store := newStore(tb)
	d := newDriver(tb, l, store, append([]func(*Config){func(c *Config) { c.Fleet = "big" }}, mods...)...)
	f := &spec.Fleet{Metadata: spec.Metadata{Name: "big"}}
	var names []string
	for i := range n {
		name := fmt.Sprintf("c%03d", i)
		names = append(names, name)
		c := lkeCluster("us-east")
		c.Pools[0].Count = 1
		if i == 0 {
			f.Manager = spec.Manager{Name: name, Cluster: c}
			continue
		}
		f.Members = append(f.Members, spec.Member{Name: name, Cluster: c})
	}
	for _, name := range names {
		if err := retry(context.Background(), 20, func(ctx context.Context) error { return apply(ctx, d, createStep(f, name)) }); err != nil {
			tb.Fatal(err)
		}
	}
	waitSettled(tb, d, f, names...)
	observe(tb, d, f) // the pass that fills the cache
	return l, d, store, f
}

func TestNoopObserveIsConstant(t *testing.T) {
	t.Parallel()
	counts := map[int]int{}
	for _, n := range []int{3, 100} {
		l, d, store, f := bigFleet(t, n)
		l.api.ResetRequests()
		before := store.writes.Load()
		w := observe(t, d, f)
		if len(w.Clusters) != n {
			t.Fatalf("observed %d clusters, want %d", len(w.Clusters), n)
		}
		reqs := l.api.Requests()
		if pc := perCluster(reqs); len(pc) > 0 {
			t.Errorf("%d clusters: a no-op observe sent per-cluster requests: %v", n, pc)
		}
		if ws := l.writes(); len(ws) > 0 {
			t.Errorf("%d clusters: writes:\n%s", n, describe(ws))
		}
		if got := store.writes.Load() - before; got != 0 {
			t.Errorf("%d clusters: %d store writes in a no-op observe", n, got)
		}
		counts[n] = len(reqs)
	}
	// Both fit in one page of each list (500 a page): the same number of calls.
	if counts[3] != counts[100] || counts[3] != 2 {
		t.Errorf("no-op observe calls: %v, want 2 for both sizes", counts)
	}
}

func TestPoolCacheIsInvalidated(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// change moves something; it returns the clusters whose pools must be listed again.
		change func(t *testing.T, l *lab, f *spec.Fleet, clock *skewClock) []string
	}{
		{"nothing", func(*testing.T, *lab, *spec.Fleet, *skewClock) []string { return nil }},
		{"spec changed", func(_ *testing.T, _ *lab, f *spec.Fleet, _ *skewClock) []string {
			f.Members[0].Pools[0].Tags = []string{"changed"}
			return []string{f.Members[0].Name}
		}},
		{"cache older than the TTL", func(_ *testing.T, _ *lab, f *spec.Fleet, clock *skewClock) []string {
			clock.advance(DefaultPoolCacheTTL)
			return []string{f.Manager.Name, f.Members[0].Name}
		}},
		{"cluster updated elsewhere", func(t *testing.T, l *lab, f *spec.Fleet, _ *skewClock) []string {
			w := observe(t, newDriver(t, l, newStore(t)), f)
			id := w.Clusters[f.Manager.Name].LinodeID
			tags := append(desiredTags(f.Metadata.Name, f.Manager.Name, nil), "added-by-hand")
			l.clock.advance(2 * time.Second) // a later second than the create's
			if _, err := l.plainClient(t).UpdateLKECluster(context.Background(), id, linodego.LKEClusterUpdateOptions{Tags: &tags}); err != nil {
				t.Fatal(err)
			}
			return []string{f.Manager.Name}
		}},
		{"node instance replaced", func(t *testing.T, l *lab, f *spec.Fleet, _ *skewClock) []string {
			w := observe(t, newDriver(t, l, newStore(t)), f)
			c := w.Clusters[f.Members[0].Name]
			if err := l.plainClient(t).RecycleLKENodePoolNode(context.Background(), c.LinodeID, c.Pools[0].Nodes[0].ID); err != nil {
				t.Fatal(err)
			}
			return []string{f.Members[0].Name}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &skewClock{}
			l, d, _, f := bigFleet(t, 2, func(c *Config) { c.Now = clock.now })
			ids := map[int]string{}
			for name, c := range observe(t, d, f).Clusters {
				ids[c.LinodeID] = name
			}
			want := tc.change(t, l, f, clock)
			l.api.ResetRequests()
			observe(t, d, f)
			var got []string
			for _, r := range l.api.Requests() {
				var id int
				if _, err := fmt.Sscanf(r.Path, "/v4/lke/clusters/%d/pools", &id); err == nil {
					got = append(got, ids[id])
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("pools listed for %v, want %v; requests:\n%s", got, want, describe(l.api.Requests()))
			}
		})
	}
}

func TestApplyInvalidatesPoolCache(t *testing.T) {
	t.Parallel()
	l, d, _, f := bigFleet(t, 2)
	// The fleet does not change: only the apply can tell the observer that the pools did.
	c := observe(t, d, f).Clusters[f.Members[0].Name]
	p := c.Pools[0]
	step := updateStep(f.Members[0].Name, c.LinodeID, plan.ClusterChange{
		UpdatePools: []plan.PoolUpdate{{ID: p.ID, Type: p.Type, Tags: &[]string{"changed"}}}})
	l.api.ResetRequests()
	if err := apply(context.Background(), d, step); err != nil {
		t.Fatal(err)
	}
	if len(l.writes()) == 0 {
		t.Fatal("the update wrote nothing")
	}
	w := observe(t, d, f)
	if got := w.Clusters[f.Members[0].Name].Pools[0].Tags; len(got) != 1 || got[0] != "changed" {
		t.Errorf("pool tags after apply: %v", got)
	}
}

func BenchmarkNoopPass(b *testing.B) {
	for _, n := range []int{3, 100} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			l, d, _, f := bigFleet(b, n)
			l.api.ResetRequests()
			b.ResetTimer()
			for range b.N {
				w := observe(b, d, f)
				if len(w.Clusters) != n {
					b.Fatalf("observed %d clusters", len(w.Clusters))
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(len(l.api.Requests()))/float64(b.N), "calls/op")
			b.ReportMetric(float64(len(perCluster(l.api.Requests())))/float64(b.N), "per-cluster-calls/op")
		})
	}
}
