package linode

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/state/world"
)

// pricesCacheName is where the prices last read are kept in the state store: a cache, so
// a pass whose read fails still shows a cost (saying how old), and an unchanged fleet reads
// them once a day, not once a pass.
const pricesCacheName = "linode/prices.json"

// DefaultPriceCacheTTL is how long cached prices are used before they are read again.
const DefaultPriceCacheTTL = 24 * time.Hour

// lkeHAType is the LKE type of the HA control plane (GET /lke/types).
const lkeHAType = "lke-ha"

// nodeBalancerType is the NodeBalancer type a LoadBalancer Service gets (GET /nodebalancers/types).
const nodeBalancerType = "common"

// observePrices sets w.Prices: from the cache while it is younger than PriceCacheTTL,
// otherwise read afresh (three lists: node types, LKE types, NodeBalancer types) and cached.
// A failed read never fails the pass: the cached prices are used, however old, and saying
// so; without any, w.PricesUnknown says why. The cache is written only when prices were read,
// so an unchanged fleet writes nothing (and a dry run's store is an overlay).
func (d *Driver) observePrices(ctx context.Context, w *world.World) {
	cached := d.cachedPrices()
	if cached != nil {
		if age := d.cfg.Now().Sub(cached.FetchedAt); age >= 0 && age < d.cfg.PriceCacheTTL {
			w.Prices = cached
			return
		}
	}
	var fresh *world.Prices
	err := d.cfg.ReadRetry.Do(ctx, func(ctx context.Context) error {
		var err error
		fresh, err = d.readPrices(ctx)
		return err
	})
	if err == nil {
		if data, err := json.Marshal(fresh); err == nil {
			if err := d.cfg.Store.WriteFile(pricesCacheName, data); err != nil {
				d.log.Warn("could not cache the Linode prices", "err", err)
			}
		}
		w.Prices = fresh
		return
	}
	d.log.Warn("could not read the Linode prices", "err", err)
	if cached != nil {
		cached.RefreshFailed = err.Error()
		w.Prices = cached
		return
	}
	w.PricesUnknown = "the Linode prices could not be read (" + err.Error() + ") and none are cached"
}

func (d *Driver) cachedPrices() *world.Prices {
	if !d.cfg.Store.Exists(pricesCacheName) {
		return nil
	}
	data, err := d.cfg.Store.ReadFile(pricesCacheName)
	if err != nil {
		return nil
	}
	var p world.Prices
	if err := json.Unmarshal(data, &p); err != nil || p.FetchedAt.IsZero() || len(p.Types) == 0 {
		return nil
	}
	return &p
}

// readPrices reads the catalogue's prices: every node type, the LKE types (the HA control
// plane), and the NodeBalancer types when the API serves them.
func (d *Driver) readPrices(ctx context.Context) (*world.Prices, error) {
	opts := &linodego.ListOptions{PageSize: listPageSize}
	types, err := d.api.ListTypes(ctx, opts)
	if err != nil {
		return nil, classify(ctx, "list Linode types", err)
	}
	p := &world.Prices{FetchedAt: d.cfg.Now().UTC(), Types: map[string]world.Price{}}
	for _, t := range types {
		if t.Price == nil {
			continue
		}
		p.Types[t.ID] = worldPrice(float64(t.Price.Monthly), t.RegionPrices,
			func(rp linodego.LinodeRegionPrice) (string, float64) { return rp.ID, float64(rp.Monthly) })
	}
	if len(p.Types) == 0 {
		return nil, errors.New("linode: list Linode types: no priced types")
	}
	lke, err := d.api.ListLKETypes(ctx, opts)
	if err != nil {
		return nil, classify(ctx, "list LKE types", err)
	}
	for _, t := range lke {
		if t.ID != lkeHAType {
			continue
		}
		pr := worldPrice(t.Price.Monthly, t.RegionPrices,
			func(rp linodego.LKETypeRegionPrice) (string, float64) { return rp.ID, rp.Monthly })
		p.LKEHA = &pr
	}
	nb, err := d.api.ListNodeBalancerTypes(ctx, opts)
	var le *linodego.Error
	switch {
	case errors.As(err, &le) && le.Code == http.StatusNotFound:
		// An API without NodeBalancer types: their cost is left out, not made up.
	case err != nil:
		return nil, classify(ctx, "list NodeBalancer types", err)
	}
	for i, t := range nb {
		// The one a LoadBalancer Service gets is "common"; the first when none has that id.
		if t.ID != nodeBalancerType && (i > 0 || slices.ContainsFunc(nb, func(t linodego.NodeBalancerType) bool { return t.ID == nodeBalancerType })) {
			continue
		}
		pr := worldPrice(t.Price.Monthly, t.RegionPrices,
			func(rp linodego.NodeBalancerTypeRegionPrice) (string, float64) { return rp.ID, rp.Monthly })
		p.NodeBalancer = &pr
		break
	}
	return p, nil
}

// cents is a price in dollars as the API serves it (a float), in whole cents.
func cents(dollars float64) int64 { return int64(math.Round(dollars * 100)) }

// worldPrice is a catalogue price in cents, with the regions that are priced otherwise.
func worldPrice[R any](monthly float64, regions []R, region func(R) (string, float64)) world.Price {
	pr := world.Price{Monthly: cents(monthly)}
	for _, rp := range regions {
		if pr.Regions == nil {
			pr.Regions = map[string]int64{}
		}
		id, m := region(rp)
		pr.Regions[id] = cents(m)
	}
	return pr
}
