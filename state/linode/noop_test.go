package linode

import (
	"context"
	"fmt"
	"testing"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/spec"
)

// bigFleet is a fleet of n one-node clusters, created and settled, its pool cache filled.
func bigFleet(tb testing.TB, n int) (*lab, *Driver, *countingStore, *spec.Fleet) {
	tb.Helper()
	l := newLab(tb, linodeapi.Options{})
	store := newStore(tb)
	d := newDriver(tb, l, store)
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
		if err := retry(context.Background(), 20, func(ctx context.Context) error { return d.ApplyCluster(ctx, f, name) }); err != nil {
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
	l, d, _, f := bigFleet(t, 2)
	// A change of the spec: the next observe lists the pools of that cluster only.
	f.Members[0].Pools[0].Tags = []string{"changed"}
	l.api.ResetRequests()
	observe(t, d, f)
	if pc := perCluster(l.api.Requests()); len(pc) != 1 {
		t.Errorf("after a spec change: per-cluster requests %v, want one pools list", pc)
	}
	// Applied through the driver: the cache is stale, and the next observe shows the new tags.
	if err := d.ApplyCluster(context.Background(), f, f.Members[0].Name); err != nil {
		t.Fatal(err)
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
