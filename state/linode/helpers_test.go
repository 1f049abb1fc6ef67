package linode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// The driver is what the executor and the observers take it for.
var (
	_ executor.Driver = (*Driver)(nil)
	_ state.Observer  = (*Driver)(nil)
)

const testToken = "lab-token-5b1f0c7e9d2a4c38"

type lab struct {
	api *linodeapi.Server
	url string
	// clock is the API's clock; it lags ours by a few seconds unless the test set Clock.
	clock *skewClock
}

// skewClock is the real clock moved by an offset that tests can advance.
type skewClock struct{ off atomic.Int64 }

func (c *skewClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *skewClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func lagging() *skewClock {
	c := &skewClock{}
	c.advance(-5 * time.Second)
	return c
}

func newLab(t testing.TB, o linodeapi.Options) *lab {
	t.Helper()
	o.Token = testToken
	clock := lagging()
	if o.Clock == nil {
		o.Clock = clock.now
	}
	api := linodeapi.New(o)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		api.Close()
	})
	return &lab{api: api, url: srv.URL, clock: clock}
}

// writes are the requests that change something.
func (l *lab) writes() []linodeapi.RequestRecord {
	var out []linodeapi.RequestRecord
	for _, r := range l.api.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

// plainClient is a linodego client outside the driver, playing someone else on the account.
func (l *lab) plainClient(t testing.TB) *linodego.Client {
	t.Helper()
	c := linodego.NewClient(nil)
	if _, err := c.UseURL(l.url + "/v4"); err != nil {
		t.Fatal(err)
	}
	c.SetToken(testToken)
	c.SetRetryWaitTime(5 * time.Millisecond).SetRetryMaxWaitTime(20 * time.Millisecond)
	return &c
}

// countingStore is the real state store, counting writes.
type countingStore struct {
	*state.Store
	writes atomic.Int64
}

func (s *countingStore) WriteFile(name string, data []byte) error {
	s.writes.Add(1)
	return s.Store.WriteFile(name, data)
}

func newStore(t testing.TB) *countingStore {
	t.Helper()
	st, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &countingStore{Store: st}
}

// withPrices caches fresh prices in store, so that an observation costs only the requests of
// the clusters (the tests that count them are about those).
func withPrices(t testing.TB, store Files) Files {
	t.Helper()
	data, err := json.Marshal(world.Prices{FetchedAt: time.Now(), Types: map[string]world.Price{"g6-standard-2": {Monthly: 2400}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.WriteFile(pricesCacheName, data); err != nil {
		t.Fatal(err)
	}
	return store
}

func newDriver(t testing.TB, l *lab, store Files, mods ...func(*Config)) *Driver {
	t.Helper()
	cfg := Config{
		Fleet:             "demo",
		Token:             testToken,
		APIURL:            l.url + "/v4",
		RequestsPerSecond: 5000,
		WaitTimeout:       10 * time.Second,
		PollInterval:      5 * time.Millisecond,
		RetryWait:         2 * time.Millisecond,
		RetryMaxWait:      20 * time.Millisecond,
		Store:             store,
	}
	for _, m := range mods {
		m(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testFleet(manager string, members ...string) *spec.Fleet {
	f := &spec.Fleet{
		APIVersion: spec.APIVersion, Kind: spec.Kind,
		Metadata: spec.Metadata{Name: "demo"},
		Manager:  spec.Manager{Name: manager, Cluster: lkeCluster("us-east", "team:platform")},
	}
	for _, m := range members {
		f.Members = append(f.Members, spec.Member{Name: m, Cluster: lkeCluster("eu-central")})
	}
	return f
}

func lkeCluster(region string, tags ...string) spec.Cluster {
	return spec.Cluster{
		Region: region, K8sVersion: "1.33", Tags: tags,
		Pools: []spec.Pool{{Type: "g6-standard-2", Count: 2, Tags: []string{"role:worker"}}},
	}
}

// retry runs op like the executor does: transient errors are retried (after their
// Retry-After, capped for tests) up to a bound; a terminal error stops at once.
func retry(ctx context.Context, attempts int, op func(context.Context) error) error {
	var err error
	for range attempts {
		if err = op(ctx); err == nil {
			return nil
		}
		var te *state.TransientError
		if !errors.As(err, &te) {
			return err
		}
		wait := min(max(te.RetryAfter(), 5*time.Millisecond), 200*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return fmt.Errorf("still failing after %d attempts: %w", attempts, err)
}

// clusterStep is a cluster step of the fleet's cluster name with a hand-written payload.
func clusterStep(name string, a plan.Action, c plan.ClusterChange) plan.Step {
	if c.Label == "" {
		c.Label = name
	}
	return plan.Step{Address: "cluster/" + name, Layer: plan.Members, Kind: plan.KindCluster, Action: a,
		Cluster: name, Payload: plan.Payload{Cluster: &c}}
}

// createStep is the create step of the fleet's cluster name, as the planner makes it.
func createStep(f *spec.Fleet, name string) plan.Step {
	sc, ok := specCluster(f, name)
	if !ok {
		panic("no cluster " + name)
	}
	tags := slices.Clone(sc.Tags)
	c := plan.ClusterChange{Label: name, Region: sc.Region, K8sVersion: sc.K8sVersion,
		HighAvailability: sc.HighAvailability, Tags: &tags}
	for _, p := range sc.Pools {
		c.CreatePools = append(c.CreatePools, planPool(p))
	}
	return clusterStep(name, plan.Create, c)
}

func planPool(p spec.Pool) plan.Pool {
	out := plan.Pool{Type: p.Type, Count: p.Count, Tags: slices.Clone(p.Tags)}
	if p.Autoscaler != nil {
		out.Autoscaler = &plan.Autoscaler{Enabled: true, Min: p.Autoscaler.Min, Max: p.Autoscaler.Max}
	}
	return out
}

func updateStep(name string, id int, c plan.ClusterChange) plan.Step {
	c.LinodeID = id
	return clusterStep(name, plan.Update, c)
}

func deleteStep(name string, id int) plan.Step {
	return clusterStep(name, plan.Delete, plan.ClusterChange{LinodeID: id})
}

// kubeconfigStep stores the kubeconfig of name; copyTo may be empty.
func kubeconfigStep(name, copyTo string) plan.Step {
	return plan.Step{Address: "kubeconfig/" + name, Layer: plan.Members, Kind: plan.KindKubeconfig, Action: plan.Create,
		Cluster: name, Payload: plan.Payload{Kubeconfig: &plan.Kubeconfig{CopyTo: copyTo}}}
}

// apply applies one step once.
func apply(ctx context.Context, d *Driver, s plan.Step) error {
	_, err := d.Apply(ctx, s)
	return err
}

// applyRetrying applies one step as the executor does, failing the test when it never succeeds.
func applyRetrying(t testing.TB, d *Driver, s plan.Step) plan.Outputs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out plan.Outputs
	err := retry(ctx, 100, func(ctx context.Context) error {
		var err error
		out, err = d.Apply(ctx, s)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", s.Address, err)
	}
	return out
}

// converge creates the named clusters (a no-op for those the fleet owns) and stores their
// kubeconfigs (and their copies in f.KubeconfigDir when set), retrying transient errors.
func converge(t testing.TB, d *Driver, f *spec.Fleet, names ...string) {
	t.Helper()
	for _, n := range names {
		applyRetrying(t, d, createStep(f, n))
		var copyTo string
		if f.KubeconfigDir != "" {
			copyTo = filepath.Join(f.KubeconfigDir, "kubeconfig-"+n)
		}
		applyRetrying(t, d, kubeconfigStep(n, copyTo))
	}
}

// poolRefs are the pools as a plan names them.
func poolRefs(ps []world.Pool) []plan.PoolRef {
	out := []plan.PoolRef{}
	for _, p := range ps {
		out = append(out, plan.PoolRef{ID: p.ID, Type: p.Type})
	}
	return out
}

func observe(t testing.TB, d *Driver, f *spec.Fleet) *world.World {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var w *world.World
	err := retry(ctx, 100, func(ctx context.Context) error {
		w = &world.World{}
		return d.Observe(ctx, f, w)
	})
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	return w
}

// waitSettled observes until every named cluster has all its nodes ready (bounded).
func waitSettled(t testing.TB, d *Driver, f *spec.Fleet, names ...string) *world.World {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		w := observe(t, d, f)
		ok := true
		for _, n := range names {
			c := w.Clusters[n]
			if c == nil || !c.Ready() {
				ok = false
			}
		}
		if ok {
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("clusters %v not ready in time", names)
		}
		time.Sleep(10 * time.Millisecond) // polling an external server's clock-driven state
	}
}

var perClusterPath = regexp.MustCompile(`/lke/clusters/\d+`)

// perCluster are the requests that name one cluster.
func perCluster(reqs []linodeapi.RequestRecord) []string {
	var out []string
	for _, r := range reqs {
		if perClusterPath.MatchString(r.Path) {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

func describe(reqs []linodeapi.RequestRecord) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "  %s %s -> %d\n", r.Method, r.Path, r.Status)
	}
	return b.String()
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)) }

func itoa(n int) string { return strconv.Itoa(n) }
