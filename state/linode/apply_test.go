package linode

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// An update writes exactly the pool operations it lists, in order: updates, creates, and the
// deletes last, once every pool that stays is ready; a pool it does not list is not touched.
func TestUpdateAppliesExactlyThePlannedPoolOperations(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{NodeReadyDelay: 50 * time.Millisecond})
	d := newDriver(t, l, newStore(t))
	f := testFleet("mgr")
	f.Manager.Pools = []spec.Pool{
		{Type: "g6-standard-2", Count: 2},
		{Type: "g6-standard-1", Count: 1},
		{Type: "g6-standard-1", Count: 1, Tags: []string{"untouched"}},
	}
	converge(t, d, f, "mgr")
	mgr := waitSettled(t, d, f, "mgr").Clusters["mgr"]
	a, b, c := mgr.Pools[0], mgr.Pools[1], mgr.Pools[2]

	step := updateStep("mgr", mgr.LinodeID, plan.ClusterChange{
		UpdatePools:   []plan.PoolUpdate{{ID: a.ID, Type: a.Type, Count: 3}},
		CreatePools:   []plan.Pool{{Type: "g6-standard-4", Count: 1}},
		DeletePools:   []plan.PoolRef{{ID: b.ID, Type: b.Type}},
		ExistingPools: poolRefs(mgr.Pools),
	})
	l.api.ResetRequests()
	if err := apply(context.Background(), d, step); err != nil {
		t.Fatal(err)
	}
	ws := l.writes()
	want := []string{
		"PUT /v4/lke/clusters/" + itoa(mgr.LinodeID) + "/pools/" + itoa(a.ID),
		"POST /v4/lke/clusters/" + itoa(mgr.LinodeID) + "/pools",
		"DELETE /v4/lke/clusters/" + itoa(mgr.LinodeID) + "/pools/" + itoa(b.ID),
	}
	if len(ws) != len(want) {
		t.Fatalf("writes:\n%s want %v", describe(ws), want)
	}
	for i, w := range want {
		if got := ws[i].Method + " " + ws[i].Path; got != w {
			t.Errorf("write %d: %s, want %s", i, got, w)
		}
	}
	// The pool the step does not list stays untouched (it is only waited for).
	for _, r := range l.api.Requests() {
		if strings.Contains(r.Path, "/pools/"+itoa(c.ID)) && r.Method != http.MethodGet {
			t.Errorf("pool %d, which the step does not list, was written: %s %s", c.ID, r.Method, r.Path)
		}
	}
	ps := waitSettled(t, d, f, "mgr").Clusters["mgr"].Pools
	if len(ps) != 3 || ps[0].ID != a.ID || ps[0].Count != 3 || ps[1].ID != c.ID || ps[2].Type != "g6-standard-4" || ps[2].Count != 1 {
		t.Errorf("pools after the update: %+v", ps)
	}
}

// An update of an LKE cluster that does not carry the fleet's tag, or that is another fleet
// cluster, is refused before anything is written, and a foreign cluster is never requested.
func TestUpdateOfAClusterNotOwnedIsRefused(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, newStore(t))
	f := testFleet("mgr")
	converge(t, d, f, "mgr")
	mgr := observe(t, d, f).Clusters["mgr"]
	foreign := createForeign(t, l, "ap")

	change := plan.ClusterChange{
		Tags:        &[]string{"env:prod"},
		K8sVersion:  "1.36",
		UpdatePools: []plan.PoolUpdate{{ID: mgr.Pools[0].ID, Count: 5}},
		CreatePools: []plan.Pool{{Type: "g6-standard-1", Count: 1}},
	}
	cases := []struct {
		name, cluster string
		id            int
		want          string
	}{
		{"foreign", "ap", foreign, "is not a cluster of fleet demo"},
		{"another fleet cluster", "eu", mgr.LinodeID, "is fleet demo's cluster mgr, not eu"},
	}
	for _, tc := range cases {
		l.api.ResetRequests()
		err := apply(context.Background(), d, updateStep(tc.cluster, tc.id, change))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		var te *state.TransientError
		if errors.As(err, &te) {
			t.Errorf("%s: %v is transient, want terminal", tc.name, err)
		}
		if ws := l.writes(); len(ws) > 0 {
			t.Errorf("%s: writes:\n%s", tc.name, describe(ws))
		}
		for _, r := range l.api.Requests() {
			if strings.Contains(r.Path, "/lke/clusters/"+itoa(foreign)) {
				t.Errorf("%s: foreign cluster requested: %s %s", tc.name, r.Method, r.Path)
			}
		}
	}
	// A delete of another fleet cluster's ID is refused too.
	l.api.ResetRequests()
	if err := apply(context.Background(), d, deleteStep("eu", mgr.LinodeID)); err == nil {
		t.Error("delete of mgr's ID as eu was not refused")
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("delete: writes:\n%s", describe(ws))
	}
}

// The same update applied twice writes nothing the second time: every field already holds
// and the pool it created is recognised (by the same driver, with no ExistingPools).
func TestUpdateTwiceWritesNothingTheSecondTime(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, newStore(t))
	f := testFleet("mgr")
	converge(t, d, f, "mgr")
	mgr := observe(t, d, f).Clusters["mgr"]
	p := mgr.Pools[0]
	step := updateStep("mgr", mgr.LinodeID, plan.ClusterChange{
		Tags:             &[]string{"env:prod", "team:platform"},
		K8sVersion:       "1.36",
		HighAvailability: true,
		UpdatePools: []plan.PoolUpdate{{ID: p.ID, Type: p.Type, Count: 3, Tags: &[]string{"role:db"},
			Autoscaler: &plan.Autoscaler{Enabled: false}}},
		CreatePools: []plan.Pool{{Type: "g6-standard-1", Autoscaler: &plan.Autoscaler{Enabled: true, Min: 1, Max: 2}}},
	})
	l.api.ResetRequests()
	if err := apply(context.Background(), d, step); err != nil {
		t.Fatal(err)
	}
	if n := len(l.writes()); n != 3 {
		t.Errorf("first apply: want PUT cluster, PUT pool, POST pool:\n%s", describe(l.writes()))
	}
	l.api.ResetRequests()
	if err := apply(context.Background(), d, step); err != nil {
		t.Fatal(err)
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("second apply sent writes:\n%s", describe(ws))
	}
	c := observe(t, d, f).Clusters["mgr"]
	if c.K8sVersion != "1.36" || !c.HighAvailability || len(c.Pools) != 2 || c.Pools[0].Count != 3 ||
		c.Pools[1].Autoscaler == nil || c.Pools[1].Count != 1 {
		t.Errorf("observed %+v, pools %+v", c, c.Pools)
	}
}

// The kubeconfig step outputs the cluster's API endpoint and writes its copy 0600; applied
// again it writes nothing.
func TestKubeconfigStepOutputsEndpointAndWritesCopy(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{ProvisionDelay: 20 * time.Millisecond})
	store := newStore(t)
	d := newDriver(t, l, store)
	f := testFleet("mgr")
	applyRetrying(t, d, createStep(f, "mgr"))
	copyTo := filepath.Join(t.TempDir(), "kube", "mgr.yaml")

	out := applyRetrying(t, d, kubeconfigStep("mgr", copyTo))
	stored, err := store.ReadFile("kubeconfigs/mgr")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := kubeconfigServer(stored)
	if endpoint == "" || !strings.HasPrefix(endpoint, "https://") {
		t.Fatalf("stored kubeconfig names server %q", endpoint)
	}
	if len(out) != 1 || out[plan.OutputAPIEndpoint] != endpoint {
		t.Errorf("outputs %v, want %s=%s", out, plan.OutputAPIEndpoint, endpoint)
	}
	if got := observe(t, d, f).Clusters["mgr"].APIEndpoint; got != endpoint {
		t.Errorf("observed endpoint %q, output %q", got, endpoint)
	}
	copied, err := os.ReadFile(copyTo)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copied, stored) {
		t.Error("the copy differs from the stored kubeconfig")
	}
	assertMode(t, copyTo, 0o600)
	assertMode(t, filepath.Dir(copyTo), 0o700|os.ModeDir)

	st, _ := os.Stat(copyTo)
	before := store.writes.Load()
	l.api.ResetRequests()
	again := applyRetrying(t, d, kubeconfigStep("mgr", copyTo))
	if again[plan.OutputAPIEndpoint] != endpoint {
		t.Errorf("second apply output %v", again)
	}
	if n := store.writes.Load() - before; n != 0 {
		t.Errorf("second apply wrote %d files to the store", n)
	}
	if st2, _ := os.Stat(copyTo); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("the unchanged copy was rewritten")
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("writes:\n%s", describe(ws))
	}
}

// Deleting every pool of a cluster is refused before anything is written.
func TestUpdateRefusesToDeleteEveryPool(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, newStore(t))
	f := testFleet("mgr")
	converge(t, d, f, "mgr")
	mgr := observe(t, d, f).Clusters["mgr"]
	l.api.ResetRequests()
	err := apply(context.Background(), d, updateStep("mgr", mgr.LinodeID, plan.ClusterChange{
		Tags:        &[]string{"x"},
		DeletePools: poolRefs(mgr.Pools),
	}))
	if err == nil || !strings.Contains(err.Error(), "refusing to delete every node pool") {
		t.Errorf("error %v", err)
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("writes:\n%s", describe(ws))
	}
}

// Steps the driver cannot apply fail with a terminal error and write nothing.
func TestApplyRejectsStepsItDoesNotKnow(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, newStore(t))
	steps := []plan.Step{
		{Address: "x", Kind: plan.KindCluster, Action: plan.Create, Cluster: "mgr"},
		clusterStep("mgr", plan.Replace, plan.ClusterChange{LinodeID: 1}),
		{Address: "y", Kind: plan.KindJoin, Action: plan.Create, Cluster: "mgr"},
		updateStep("mgr", 0, plan.ClusterChange{}),
		{Address: "z", Kind: plan.KindKubeconfig, Action: plan.Create},
		{Address: "kubeconfig/mgr", Kind: plan.KindKubeconfig, Action: plan.Delete, Cluster: "mgr"},
	}
	for _, s := range steps {
		if err := apply(context.Background(), d, s); err == nil {
			t.Errorf("%s %s %s: no error", s.Kind, s.Action, s.Address)
		}
	}
	if ws := l.writes(); len(ws) > 0 {
		t.Errorf("writes:\n%s", describe(ws))
	}
}

// The daemon's cheap poll: one list request, a fingerprint that stays while nothing changes
// and moves when a cluster of the fleet is deleted behind its back, and ignores others'.
func TestFingerprint(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, newStore(t))
	f := testFleet("mgr", "eu")
	converge(t, d, f, "mgr", "eu")
	ctx := context.Background()
	l.api.ResetRequests()
	a, err := d.Fingerprint(ctx, f.Metadata.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.api.Requests()); n != 1 {
		t.Errorf("a fingerprint took %d requests, want 1", n)
	}
	createForeign(t, l, "ap")
	if b, err := d.Fingerprint(ctx, f.Metadata.Name); err != nil || b != a {
		t.Errorf("another's cluster moved the fingerprint: %s -> %s (%v)", a, b, err)
	}
	eu := observe(t, d, f).Clusters["eu"]
	if err := l.plainClient(t).DeleteLKECluster(ctx, eu.LinodeID); err != nil {
		t.Fatal(err)
	}
	if c, err := d.Fingerprint(ctx, f.Metadata.Name); err != nil || c == a {
		t.Errorf("a cluster of the fleet deleted by hand left the fingerprint as it was (%v)", err)
	}
}
