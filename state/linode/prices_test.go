package linode

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/state/world"
)

// The observer reads the prices from the lab's Linode API (real HTTP, linodego) once, caches
// them, reads them from the cache while they are younger than a day, and falls back on the
// cache, saying why, when a read fails; with no cache the cost is unknown, never made up.
func TestObservePrices(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	store := newStore(t)
	now := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	d := newDriver(t, l, store, func(c *Config) { c.Now = func() time.Time { return now } })
	f := testFleet("mgr")

	w := observe(t, d, f)
	p := w.Prices
	if p == nil || w.PricesUnknown != "" {
		t.Fatalf("no prices: %q", w.PricesUnknown)
	}
	if got := p.Types["g6-standard-2"]; got.Monthly != 2400 || got.In("br-gru") != 3360 || got.In("id-cgk") != 2880 || got.In("eu-west") != 2400 {
		t.Errorf("g6-standard-2 = %+v, want $24.00 ($28.80 in id-cgk, $33.60 in br-gru)", got)
	}
	for typ, want := range map[string]int64{"g6-standard-1": 1200, "g6-standard-4": 4800, "g6-dedicated-2": 3600} {
		if got := p.Types[typ].Monthly; got != want {
			t.Errorf("%s = %d cents, want %d", typ, got, want)
		}
	}
	if p.LKEHA == nil || p.LKEHA.Monthly != 6000 || p.NodeBalancer == nil || p.NodeBalancer.Monthly != 1000 {
		t.Errorf("HA control plane %+v, NodeBalancer %+v; want $60.00 and $10.00", p.LKEHA, p.NodeBalancer)
	}
	if !p.FetchedAt.Equal(now) || !store.Exists(pricesCacheName) {
		t.Errorf("fetched at %v (want %v), cached: %v", p.FetchedAt, now, store.Exists(pricesCacheName))
	}
	var read []string
	for _, r := range l.api.Requests() {
		if strings.HasSuffix(r.Path, "/types") {
			read = append(read, r.Method+" "+r.Path)
		}
	}
	if strings.Join(read, ", ") != "GET /v4/linode/types, GET /v4/lke/types, GET /v4/nodebalancers/types" {
		t.Errorf("price reads: %v", read)
	}

	// A second pass within the day: from the cache, no request for them and no write.
	l.api.ResetRequests()
	writes := store.writes.Load()
	now = now.Add(23 * time.Hour)
	if w := observe(t, d, f); w.Prices == nil || !w.Prices.FetchedAt.Equal(p.FetchedAt) {
		t.Errorf("prices not from the cache: %+v", w.Prices)
	}
	for _, r := range l.api.Requests() {
		if strings.HasSuffix(r.Path, "/types") {
			t.Errorf("read %s although the cache is fresh", r.Path)
		}
	}
	if n := store.writes.Load() - writes; n != 0 {
		t.Errorf("a pass with fresh cached prices wrote %d files", n)
	}

	// A day later the read fails: the cached prices, saying why.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"errors":[{"reason":"Bad Gateway"}]}`))
	}))
	t.Cleanup(broken.Close)
	now = now.Add(2 * time.Hour)
	down := func(store Files) *Driver {
		return newDriver(t, l, store, func(c *Config) {
			c.APIURL = broken.URL + "/v4"
			c.RetryCount = 1
			c.Now = func() time.Time { return now }
		})
	}
	w = &world.World{}
	down(store).observePrices(context.Background(), w)
	if w.Prices == nil || !w.Prices.FetchedAt.Equal(p.FetchedAt) || !strings.Contains(w.Prices.RefreshFailed, "Bad Gateway") {
		t.Errorf("a failed read does not fall back on the cache: %+v", w.Prices)
	}
	// Without a cache: unknown.
	w = &world.World{}
	down(newStore(t)).observePrices(context.Background(), w)
	if w.Prices != nil || !strings.Contains(w.PricesUnknown, "none are cached") {
		t.Errorf("prices %+v, unknown %q; want unknown", w.Prices, w.PricesUnknown)
	}
}
