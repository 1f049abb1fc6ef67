package linode

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/progress"
)

func TestCreateFromNothingThenNoWrites(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{ProvisionDelay: 30 * time.Millisecond, NodeReadyDelay: 20 * time.Millisecond})
	store := newStore(t)
	d := newDriver(t, l, store)
	f := testFleet("mgr", "eu")
	f.KubeconfigDir = filepath.Join(t.TempDir(), "kube")

	converge(t, d, f, "mgr", "eu")
	w := waitSettled(t, d, f, "mgr", "eu")

	for _, name := range []string{"mgr", "eu"} {
		sc, _ := specCluster(f, name)
		c := w.Clusters[name]
		if c.LinodeID == 0 || c.Label != name || c.Region != sc.Region || c.K8sVersion != sc.K8sVersion {
			t.Errorf("%s observed as %+v", name, c)
		}
		if !slices.Equal(c.Tags, sortedSet(sc.Tags)) {
			t.Errorf("%s: user tags %v, want %v (no ownership tags)", name, c.Tags, sc.Tags)
		}
		if len(c.Pools) != 1 || c.Pools[0].Type != "g6-standard-2" || c.Pools[0].Count != 2 || len(c.Pools[0].Nodes) != 2 {
			t.Fatalf("%s pools: %+v", name, c.Pools)
		}
		if !slices.Equal(c.Pools[0].Tags, []string{"role:worker"}) {
			t.Errorf("%s pool tags: %v", name, c.Pools[0].Tags)
		}
		if len(c.NodeIPs) != 2 || !slices.IsSorted(c.NodeIPs) {
			t.Errorf("%s node IPs: %v", name, c.NodeIPs)
		}
		for _, n := range c.Pools[0].Nodes {
			if n.PublicIPv4 == "" || n.InstanceID == 0 || n.Status != "ready" {
				t.Errorf("%s node: %+v", name, n)
			}
		}
		if !c.KubeconfigStored || c.APIEndpoint == "" {
			t.Errorf("%s: kubeconfig stored %v, endpoint %q", name, c.KubeconfigStored, c.APIEndpoint)
		}
		assertMode(t, store.Path("kubeconfigs/"+name), 0o600)
		assertMode(t, filepath.Join(f.KubeconfigDir, "kubeconfig-"+name), 0o600)
	}
	assertMode(t, f.KubeconfigDir, 0o700|os.ModeDir)

	// The second pass: observe, apply and store again; nothing may be written anywhere.
	observe(t, d, f) // fills the pool cache now that nodes are ready
	l.api.ResetRequests()
	before := store.writes.Load()
	observe(t, d, f)
	converge(t, d, f, "mgr", "eu")
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("second pass sent writes:\n%s", describe(ws))
	}
	if n := store.writes.Load() - before; n != 0 {
		t.Errorf("second pass wrote %d files to the store", n)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode() & (os.ModeDir | os.ModePerm); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func TestCrashAfterCreateDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	f := testFleet("mgr")
	ctx := context.Background()
	if err := apply(ctx, newDriver(t, l, newStore(t)), createStep(f, "mgr")); err != nil {
		t.Fatal(err)
	}
	// The process died before writing anything: a new driver with an empty store applies
	// the same create step again.
	l.api.ResetRequests()
	d := newDriver(t, l, newStore(t))
	if err := apply(ctx, d, createStep(f, "mgr")); err != nil {
		t.Fatal(err)
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("re-apply after a lost state dir sent writes:\n%s", describe(ws))
	}
	all, err := l.plainClient(t).ListLKEClusters(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("%d clusters after a crash and re-apply, want 1", len(all))
	}
}

func TestConvergesUnderFaultsAndRateLimits(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts linodeapi.Options
		set  func(*linodeapi.Server)
	}{
		{name: "429 bursts", set: func(s *linodeapi.Server) { s.SetRateLimit(4, 50*time.Millisecond) }},
		{name: "20% faults", set: func(s *linodeapi.Server) { s.SetFaultRate(0.2) }},
		{name: "both", opts: linodeapi.Options{Seed: 7}, set: func(s *linodeapi.Server) {
			s.SetFaultRate(0.2)
			s.SetRateLimit(6, 50*time.Millisecond)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t, tc.opts)
			tc.set(l.api)
			d := newDriver(t, l, newStore(t), func(c *Config) { c.RetryCount = 3 })
			f := testFleet("mgr", "eu", "ap")
			converge(t, d, f, "mgr", "eu", "ap")
			w := waitSettled(t, d, f, "mgr", "eu", "ap")
			if len(w.Clusters) != 3 {
				t.Errorf("observed %d clusters, want 3", len(w.Clusters))
			}
			l.api.SetFaultRate(0)
			l.api.SetRateLimit(0, 0)
			all, err := l.plainClient(t).ListLKEClusters(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 3 {
				t.Errorf("%d clusters on the API, want 3 (no duplicates from retried creates)", len(all))
			}
			var statuses []int
			for _, r := range l.api.Requests() {
				statuses = append(statuses, r.Status)
			}
			if !slices.ContainsFunc(statuses, func(s int) bool { return s == 429 || s >= 500 }) {
				t.Errorf("the lab injected nothing; the case tests nothing")
			}
		})
	}
}

func TestTransientErrorsCarryRetryAfter(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	l.api.SetRateLimit(1, time.Hour)
	d := newDriver(t, l, withPrices(t, newStore(t)), func(c *Config) { c.RetryCount = 1 })
	if err := d.Observe(context.Background(), testFleet("mgr"), &world.World{}); err != nil {
		t.Fatalf("first call within the limit: %v", err)
	}
	err := d.Observe(context.Background(), testFleet("mgr"), &world.World{})
	var te *state.TransientError
	if !errors.As(err, &te) {
		t.Fatalf("429 after retries: %v, want a transient error", err)
	}
	if te.RetryAfter() < time.Minute {
		t.Errorf("RetryAfter %v, want the server's Retry-After (about an hour)", te.RetryAfter())
	}
	if !linodego.ErrHasStatus(err, http.StatusTooManyRequests) {
		t.Errorf("error %v does not unwrap to the 429", err)
	}
}

func TestTerminalErrorsNameFieldAndReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(*spec.Cluster)
		want   string
	}{
		{"bad region", func(c *spec.Cluster) { c.Region = "xx-yy" }, "linode: create cluster eu: region: "},
		{"bad version", func(c *spec.Cluster) { c.K8sVersion = "0.1" }, "linode: create cluster eu: k8s_version: "},
		{"bad pool type", func(c *spec.Cluster) { c.Pools[0].Type = "g0-none" }, "linode: create cluster eu: node_pools[0].type: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t, linodeapi.Options{})
			d := newDriver(t, l, newStore(t))
			f := testFleet("mgr", "eu")
			tc.change(&f.Members[0].Cluster)
			err := apply(context.Background(), d, createStep(f, "eu"))
			if err == nil {
				t.Fatal("no error")
			}
			var te *state.TransientError
			if errors.As(err, &te) {
				t.Errorf("%v is transient, want terminal", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) || len(err.Error()) <= len(tc.want) {
				t.Errorf("error %q, want it to start with %q and give the reason", err, tc.want)
			}
			if strings.Contains(err.Error(), ": [") {
				t.Errorf("error %q still has linodego's brackets", err)
			}
		})
	}
}

func TestDeleteOnlyOwnedAndConfirmed(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	ctx := context.Background()
	d := newDriver(t, l, newStore(t))
	f := testFleet("mgr", "eu")
	if err := apply(ctx, d, createStep(f, "eu")); err != nil {
		t.Fatal(err)
	}
	foreign := createForeign(t, l, "ap")

	w := observe(t, d, f)
	id := w.Clusters["eu"].LinodeID
	l.api.ResetRequests()
	if err := apply(ctx, d, deleteStep("eu", id)); err != nil {
		t.Fatal(err)
	}
	reqs := l.api.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != http.MethodGet || !strings.HasSuffix(last.Path, "/lke/clusters/"+itoa(id)) || last.Status != http.StatusNotFound {
		t.Errorf("delete returned before a 404 on the cluster:\n%s", describe(reqs))
	}
	if _, ok := observe(t, d, f).Clusters["eu"]; ok {
		t.Error("eu still observed after delete")
	}

	// ap exists, but not as ours: a delete step naming it deletes nothing and never
	// even requests it.
	l.api.ResetRequests()
	if err := apply(ctx, d, deleteStep("ap", foreign)); err != nil {
		t.Fatal(err)
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("delete of a foreign cluster sent writes:\n%s", describe(ws))
	}
	for _, r := range l.api.Requests() {
		if strings.Contains(r.Path, "/lke/clusters/"+itoa(foreign)) {
			t.Errorf("foreign cluster touched: %s %s", r.Method, r.Path)
		}
	}
	if _, err := l.plainClient(t).GetLKECluster(ctx, foreign); err != nil {
		t.Errorf("foreign cluster: %v", err)
	}
	// Applying the delete again, once the cluster is gone, is fine.
	if err := apply(ctx, d, deleteStep("eu", id)); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

func createForeign(t *testing.T, l *lab, label string) int {
	t.Helper()
	c, err := l.plainClient(t).CreateLKECluster(context.Background(), linodego.LKEClusterCreateOptions{
		Label: label, Region: "us-east", K8sVersion: "1.33", Tags: []string{"someone-else"},
		NodePools: []linodego.LKENodePoolCreateOptions{{Type: "g6-standard-1", Count: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func TestForeignClusterWithOurLabelIsNeverAdopted(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	ctx := context.Background()
	foreign := createForeign(t, l, "eu")
	d := newDriver(t, l, newStore(t))
	f := testFleet("mgr", "eu")
	l.api.ResetRequests()

	err := apply(ctx, d, createStep(f, "eu"))
	want := "label eu is taken by a cluster not owned by fleet demo"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("apply: %v, want %q", err, want)
	}
	if err := apply(ctx, d, kubeconfigStep("eu", "")); err == nil {
		t.Error("kubeconfig of a foreign cluster was fetched")
	}
	if err := apply(ctx, d, deleteStep("eu", foreign)); err != nil {
		t.Errorf("delete: %v", err)
	}
	w := observe(t, d, f)
	if c, ok := w.Clusters["eu"]; ok {
		t.Errorf("foreign cluster observed as ours: %+v", c)
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("writes sent:\n%s", describe(ws))
	}
	for _, r := range l.api.Requests() {
		if strings.Contains(r.Path, "/lke/clusters/"+itoa(foreign)) {
			t.Errorf("foreign cluster touched: %s %s", r.Method, r.Path)
		}
	}
}

func TestPoolChanges(t *testing.T) {
	t.Parallel()
	tags := func(t ...string) *[]string { return &t }
	cases := []struct {
		name string
		// change is the update of the settled cluster, whose one pool is old.
		change func(old world.Pool) plan.ClusterChange
		// check gets the writes of the update, in order.
		check func(t *testing.T, writes []linodeapi.RequestRecord, oldPool int)
		want  func(t *testing.T, pools []world.Pool, oldPool int)
	}{
		{
			name: "count in place",
			change: func(old world.Pool) plan.ClusterChange {
				return plan.ClusterChange{UpdatePools: []plan.PoolUpdate{{ID: old.ID, Type: old.Type, Count: 3}}}
			},
			check: func(t *testing.T, ws []linodeapi.RequestRecord, old int) {
				if len(ws) != 1 || ws[0].Method != http.MethodPut || !strings.HasSuffix(ws[0].Path, "/pools/"+itoa(old)) {
					t.Errorf("want one PUT of pool %d, got:\n%s", old, describe(ws))
				}
			},
			want: func(t *testing.T, ps []world.Pool, old int) {
				if len(ps) != 1 || ps[0].ID != old || ps[0].Count != 3 {
					t.Errorf("pools %+v", ps)
				}
			},
		},
		{
			name: "autoscaler and tags in place",
			change: func(old world.Pool) plan.ClusterChange {
				return plan.ClusterChange{UpdatePools: []plan.PoolUpdate{{ID: old.ID, Type: old.Type,
					Autoscaler: &plan.Autoscaler{Enabled: true, Min: 2, Max: 5}, Tags: tags()}}}
			},
			check: func(t *testing.T, ws []linodeapi.RequestRecord, old int) {
				if len(ws) != 1 || ws[0].Method != http.MethodPut {
					t.Errorf("want one PUT, got:\n%s", describe(ws))
				}
			},
			want: func(t *testing.T, ps []world.Pool, old int) {
				if len(ps) != 1 || ps[0].Autoscaler == nil || *ps[0].Autoscaler != (world.Scaler{Min: 2, Max: 5}) || len(ps[0].Tags) != 0 {
					t.Errorf("pools %+v", ps)
				}
			},
		},
		{
			name: "type replaced, new pool first",
			change: func(old world.Pool) plan.ClusterChange {
				return plan.ClusterChange{
					CreatePools:   []plan.Pool{{Type: "g6-standard-4", Count: 2, Tags: []string{"role:worker"}}},
					DeletePools:   []plan.PoolRef{{ID: old.ID, Type: old.Type}},
					ExistingPools: poolRefs([]world.Pool{old}),
				}
			},
			check: func(t *testing.T, ws []linodeapi.RequestRecord, old int) {
				post := slices.IndexFunc(ws, func(r linodeapi.RequestRecord) bool {
					return r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/pools")
				})
				del := slices.IndexFunc(ws, func(r linodeapi.RequestRecord) bool {
					return r.Method == http.MethodDelete && strings.HasSuffix(r.Path, "/pools/"+itoa(old))
				})
				if post < 0 || del < 0 || post > del || len(ws) != 2 {
					t.Errorf("want POST pool then DELETE pool %d, got:\n%s", old, describe(ws))
				}
			},
			want: func(t *testing.T, ps []world.Pool, old int) {
				if len(ps) != 1 || ps[0].ID == old || ps[0].Type != "g6-standard-4" || ps[0].Count != 2 {
					t.Errorf("pools %+v", ps)
				}
			},
		},
		{
			name: "second pool of the same type added",
			change: func(old world.Pool) plan.ClusterChange {
				return plan.ClusterChange{
					CreatePools:   []plan.Pool{{Type: "g6-standard-2", Count: 1}},
					ExistingPools: poolRefs([]world.Pool{old}),
				}
			},
			check: func(t *testing.T, ws []linodeapi.RequestRecord, old int) {
				if len(ws) != 1 || ws[0].Method != http.MethodPost {
					t.Errorf("want one POST, got:\n%s", describe(ws))
				}
			},
			want: func(t *testing.T, ps []world.Pool, old int) {
				if len(ps) != 2 || ps[0].ID != old || ps[0].Count != 2 || ps[1].Count != 1 {
					t.Errorf("pools %+v", ps)
				}
			},
		},
		{
			name: "autoscaler turned off",
			change: func(old world.Pool) plan.ClusterChange {
				return plan.ClusterChange{UpdatePools: []plan.PoolUpdate{{ID: old.ID, Type: old.Type, Count: 2,
					Autoscaler: &plan.Autoscaler{Enabled: false}}}}
			},
			check: func(t *testing.T, ws []linodeapi.RequestRecord, old int) {
				if len(ws) != 1 || ws[0].Method != http.MethodPut || !strings.HasSuffix(ws[0].Path, "/pools/"+itoa(old)) {
					t.Errorf("want one PUT of pool %d, got:\n%s", old, describe(ws))
				}
			},
			want: func(t *testing.T, ps []world.Pool, old int) {
				if len(ps) != 1 || ps[0].Autoscaler != nil || ps[0].Count != 2 {
					t.Errorf("pools %+v", ps)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t, linodeapi.Options{NodeReadyDelay: 20 * time.Millisecond})
			d := newDriver(t, l, newStore(t))
			f := testFleet("mgr")
			if tc.name == "autoscaler turned off" {
				f.Manager.Pools[0].Autoscaler = &spec.Autoscaler{Min: 1, Max: 4}
			}
			converge(t, d, f, "mgr")
			w := waitSettled(t, d, f, "mgr")
			old := w.Clusters["mgr"].Pools[0]
			step := updateStep("mgr", w.Clusters["mgr"].LinodeID, tc.change(old))

			l.api.ResetRequests()
			if err := apply(context.Background(), d, step); err != nil {
				t.Fatal(err)
			}
			tc.check(t, l.writes(), old.ID)
			w = waitSettled(t, d, f, "mgr")
			tc.want(t, w.Clusters["mgr"].Pools, old.ID)

			// Converged: applying the same step again, by the same driver or by a new one
			// (a retry after a crash), changes nothing.
			for _, d := range []*Driver{d, newDriver(t, l, newStore(t))} {
				l.api.ResetRequests()
				if err := apply(context.Background(), d, step); err != nil {
					t.Fatal(err)
				}
				if ws := l.writes(); len(ws) > 0 {
					t.Errorf("re-apply sent writes:\n%s", describe(ws))
				}
			}
		})
	}
}

func TestClusterFieldUpdates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		change    plan.ClusterChange
		wantPUT   bool
		wantCheck func(*world.Cluster) bool
	}{
		{"tags", plan.ClusterChange{Tags: &[]string{"env:prod"}}, true,
			func(c *world.Cluster) bool { return slices.Equal(c.Tags, []string{"env:prod"}) }},
		{"tags removed", plan.ClusterChange{Tags: &[]string{}}, true,
			func(c *world.Cluster) bool { return len(c.Tags) == 0 }},
		{"upgrade", plan.ClusterChange{K8sVersion: "1.36"}, true,
			func(c *world.Cluster) bool { return c.K8sVersion == "1.36" }},
		{"HA on", plan.ClusterChange{HighAvailability: true}, true,
			func(c *world.Cluster) bool { return c.HighAvailability }},
		{"nothing set", plan.ClusterChange{}, false,
			func(c *world.Cluster) bool {
				return c.K8sVersion == "1.33" && !c.HighAvailability && slices.Equal(c.Tags, []string{"team:platform"})
			}},
		{"fields that already hold", plan.ClusterChange{K8sVersion: "1.33", Tags: &[]string{"team:platform"}}, false,
			func(c *world.Cluster) bool {
				return c.K8sVersion == "1.33" && slices.Equal(c.Tags, []string{"team:platform"})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t, linodeapi.Options{})
			d := newDriver(t, l, newStore(t))
			f := testFleet("mgr")
			converge(t, d, f, "mgr")
			step := updateStep("mgr", observe(t, d, f).Clusters["mgr"].LinodeID, tc.change)
			l.api.ResetRequests()
			if err := apply(context.Background(), d, step); err != nil {
				t.Fatal(err)
			}
			ws := l.writes()
			gotPUT := len(ws) == 1 && ws[0].Method == http.MethodPut && perClusterPath.MatchString(ws[0].Path) && !strings.Contains(ws[0].Path, "/pools")
			if gotPUT != tc.wantPUT || (!tc.wantPUT && len(ws) > 0) {
				t.Errorf("writes:\n%s", describe(ws))
			}
			c := observe(t, d, f).Clusters["mgr"]
			if !tc.wantCheck(c) {
				t.Errorf("observed %+v", c)
			}
			if !hasTagsOf(t, l, c.LinodeID, "demo", "mgr") {
				t.Error("the update lost the ownership tags")
			}
		})
	}
}

// hasTagsOf reports whether LKE cluster id carries the ownership tags of fleet cluster name.
func hasTagsOf(t *testing.T, l *lab, id int, fleet, name string) bool {
	t.Helper()
	c, err := l.plainClient(t).GetLKECluster(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return hasTag(c.Tags, FleetTag(fleet)) && hasTag(c.Tags, ClusterTag(name))
}

func TestKubeconfigWaitIsBounded(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{ProvisionDelay: time.Hour})
	d := newDriver(t, l, newStore(t), func(c *Config) { c.WaitTimeout = 150 * time.Millisecond; c.PollInterval = 20 * time.Millisecond })
	f := testFleet("mgr")
	if err := apply(context.Background(), d, createStep(f, "mgr")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := apply(context.Background(), d, kubeconfigStep("mgr", ""))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("wait took %v with a 150ms timeout", took)
	}
	var te *state.TransientError
	if !errors.As(err, &te) {
		t.Fatalf("error %v, want a transient timeout", err)
	}
	for _, want := range []string{"kubeconfig of cluster mgr", "150ms", "[503]", "not yet available"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Several polls, each answered 503 at once: the no-retry client was used.
	polls := 0
	for _, r := range l.api.Requests() {
		if strings.HasSuffix(r.Path, "/kubeconfig") {
			polls++
			if r.Status != http.StatusServiceUnavailable {
				t.Errorf("kubeconfig answered %d", r.Status)
			}
		}
	}
	if polls < 2 {
		t.Errorf("%d kubeconfig polls, want several", polls)
	}
}

// The kubeconfig's 503s are waited through with progress: what, how long, the bound, the answer.
func TestKubeconfigWaitReportsProgress(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{ProvisionDelay: time.Hour})
	var logs labtest.SyncBuffer
	d := newDriver(t, l, newStore(t), func(c *Config) {
		c.WaitTimeout, c.PollInterval = 600*time.Millisecond, 20*time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if err := apply(context.Background(), d, createStep(testFleet("mgr"), "mgr")); err != nil {
		t.Fatal(err)
	}
	ctx := progress.WithInterval(progress.WithStep(context.Background(), "cluster/mgr/kubeconfig"), 100*time.Millisecond)
	if err := apply(ctx, d, kubeconfigStep("mgr", "")); err == nil {
		t.Fatal("a kubeconfig never served: no error")
	}
	for _, want := range []string{`msg="waiting for the kubeconfig of cluster mgr: `, "last answer: [503]", "step=cluster/mgr/kubeconfig", "level=INFO"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestTokenNeverLogged(t *testing.T) {
	t.Parallel()
	// Provisioning long enough that the kubeconfig wait polls (and logs at debug level) at
	// least once, however fast or slow the machine.
	l := newLab(t, linodeapi.Options{ProvisionDelay: time.Second, NodeReadyDelay: 10 * time.Millisecond})
	l.api.SetFaultRate(0.1)
	var buf labtest.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := newDriver(t, l, newStore(t), func(c *Config) { c.Logger = logger })
	f := testFleet("mgr", "eu")
	converge(t, d, f, "mgr", "eu")
	eu := waitSettled(t, d, f, "mgr", "eu").Clusters["eu"]
	l.api.SetFaultRate(0)
	applyRetrying(t, d, updateStep("eu", eu.LinodeID, plan.ClusterChange{
		CreatePools:   []plan.Pool{{Type: "g6-standard-4", Count: 2}},
		DeletePools:   poolRefs(eu.Pools),
		ExistingPools: poolRefs(eu.Pools),
	}))
	applyRetrying(t, d, kubeconfigStep("eu", ""))
	if err := apply(context.Background(), d, deleteStep("eu", eu.LinodeID)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "creating LKE cluster") || !strings.Contains(out, "level=DEBUG") {
		t.Fatalf("the pass logged too little to prove anything:\n%s", out)
	}
	if strings.Contains(out, testToken) {
		t.Error("the token appears in the log")
	}
}

func TestTokenFromSpec(t *testing.T) {
	const secret = "file-token-8c1d"
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RECONCILE_TEST_TOKEN", "env-token-77aa")
	t.Setenv("RECONCILE_TEST_EMPTY", "")
	t.Setenv(DefaultTokenEnv, "default-env-token-1")
	cases := []struct {
		name    string
		in      *spec.Linode
		want    string
		wantErr string
	}{
		{"file wins", &spec.Linode{TokenFile: good, TokenEnv: "RECONCILE_TEST_TOKEN"}, secret, ""},
		{"env", &spec.Linode{TokenEnv: "RECONCILE_TEST_TOKEN"}, "env-token-77aa", ""},
		{"default env", nil, "default-env-token-1", ""},
		{"empty env", &spec.Linode{TokenEnv: "RECONCILE_TEST_EMPTY"}, "", "RECONCILE_TEST_EMPTY"},
		{"missing file", &spec.Linode{TokenFile: filepath.Join(dir, "nope")}, "", filepath.Join(dir, "nope")},
		{"empty file", &spec.Linode{TokenFile: empty}, "", empty + " is empty"},
	}
	cfg, err := ConfigFromSpec("demo", &spec.Linode{TokenEnv: "RECONCILE_TEST_TOKEN", APIURL: "http://127.0.0.1:1/v4",
		RequestsPerSecond: 3, WaitTimeout: spec.Duration{Duration: time.Minute}}, nil, nil)
	if err != nil || cfg.Fleet != "demo" || cfg.Token != "env-token-77aa" || cfg.APIURL != "http://127.0.0.1:1/v4" || cfg.RequestsPerSecond != 3 || cfg.WaitTimeout != time.Minute {
		t.Errorf("ConfigFromSpec: url %q rps %v wait %v token matches %v, %v", cfg.APIURL, cfg.RequestsPerSecond, cfg.WaitTimeout, cfg.Token == "env-token-77aa", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TokenFromSpec(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to name %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "env-token") {
					t.Errorf("error %q shows a token", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRecreatedClusterNeedsANewKubeconfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// store is what the driver gets; hiding Remove leaves only the cluster ID check.
		store func(*countingStore) Files
		gone  bool
	}{
		{"store with Remove", func(s *countingStore) Files { return s }, true},
		{"store without Remove", func(s *countingStore) Files { return struct{ Files }{s} }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t, linodeapi.Options{})
			st := newStore(t)
			d := newDriver(t, l, tc.store(st))
			f := testFleet("mgr")
			converge(t, d, f, "mgr")
			c := observe(t, d, f).Clusters["mgr"]
			if !c.KubeconfigStored {
				t.Fatal("kubeconfig not stored")
			}
			if err := apply(context.Background(), d, deleteStep("mgr", c.LinodeID)); err != nil {
				t.Fatal(err)
			}
			if got := !st.Exists("kubeconfigs/mgr"); got != tc.gone {
				t.Errorf("kubeconfig removed from the store: %v, want %v", got, tc.gone)
			}
			if err := apply(context.Background(), d, createStep(f, "mgr")); err != nil {
				t.Fatal(err)
			}
			// The observer may fetch the new cluster's own kubeconfig (once it has a ready
			// node); it must never take the old one's for it.
			if c := observe(t, d, f).Clusters["mgr"]; c.KubeconfigStored {
				var rec kubeconfigRecord
				data, err := st.ReadFile(kubeconfigRecordName("mgr"))
				if err != nil || json.Unmarshal(data, &rec) != nil || rec.ClusterID != c.LinodeID {
					t.Errorf("a new cluster %d is taken to have the old one's kubeconfig (record %s, %v)", c.LinodeID, data, err)
				}
			}
			converge(t, d, f, "mgr")
			if !observe(t, d, f).Clusters["mgr"].KubeconfigStored {
				t.Error("kubeconfig of the new cluster not stored")
			}
		})
	}
}

func TestInterruptedPoolReplacementNeverDeletesFirst(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	f := testFleet("mgr")
	converge(t, newDriver(t, l, newStore(t)), f, "mgr")
	mgr := waitSettled(t, newDriver(t, l, newStore(t)), f, "mgr").Clusters["mgr"]
	// The new pool's nodes stay not ready through both impatient attempts, however slow the
	// machine is between them; they are ready again for the restarted driver below.
	l.api.SetNodeReadyDelay(time.Hour)

	f.Manager.Pools[0].Type = "g6-standard-4"
	step := updateStep("mgr", mgr.LinodeID, plan.ClusterChange{
		CreatePools:   []plan.Pool{{Type: "g6-standard-4", Count: 2, Tags: []string{"role:worker"}}},
		DeletePools:   poolRefs(mgr.Pools),
		ExistingPools: poolRefs(mgr.Pools),
	})
	impatient := newDriver(t, l, newStore(t), func(c *Config) { c.WaitTimeout = 30 * time.Millisecond })
	l.api.ResetRequests()
	for attempt := range 2 {
		err := apply(context.Background(), impatient, step)
		var te *state.TransientError
		if !errors.As(err, &te) {
			t.Fatalf("attempt %d: %v, want a transient timeout while the new pool is not ready", attempt, err)
		}
	}
	for _, r := range l.writes() {
		if r.Method == http.MethodDelete {
			t.Fatalf("a pool was deleted before its replacement was ready:\n%s", describe(l.writes()))
		}
	}
	if n := len(l.writes()); n != 1 {
		t.Errorf("want exactly one POST (the retry must not create a second pool):\n%s", describe(l.writes()))
	}
	l.api.SetNodeReadyDelay(0)
	// A new driver (the process restarted) retries the same step: it finds the pool the
	// first attempt created among those the plan did not know, and creates none.
	applyRetrying(t, newDriver(t, l, newStore(t)), step)
	w := waitSettled(t, newDriver(t, l, newStore(t)), f, "mgr")
	if ps := w.Clusters["mgr"].Pools; len(ps) != 1 || ps[0].Type != "g6-standard-4" {
		t.Errorf("pools %+v", ps)
	}
	posts := 0
	for _, r := range l.writes() {
		if r.Method == http.MethodPost {
			posts++
		}
	}
	if posts != 1 {
		t.Errorf("%d pools created, want 1:\n%s", posts, describe(l.writes()))
	}
}

// A forged plan (a delete step added by hand to a saved plan) cannot delete a cluster that
// fleet.yaml declares: the driver refuses, sends no write, and the cluster stays.
func TestDeleteRefusedForADeclaredCluster(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	ctx := context.Background()
	store := newStore(t)
	f := testFleet("mgr", "us")
	d := newDriver(t, l, store)
	if err := apply(ctx, d, createStep(f, "us")); err != nil {
		t.Fatal(err)
	}
	id := observe(t, d, f).Clusters["us"].LinodeID
	guarded := newDriver(t, l, store, func(c *Config) { c.Declared = f.ClusterNames() })
	l.api.ResetRequests()
	err := apply(ctx, guarded, deleteStep("us", id))
	if err == nil || !strings.Contains(err.Error(), "refusing to delete LKE cluster us") || !strings.Contains(err.Error(), "fleet.yaml declares it") {
		t.Fatalf("delete of a declared cluster = %v, want a refusal", err)
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("the refused delete sent writes:\n%s", describe(ws))
	}
	if _, err := l.plainClient(t).GetLKECluster(ctx, id); err != nil {
		t.Errorf("the declared cluster is gone: %v", err)
	}
}
