package linodeapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
)

// TestEveryLKEFunction calls every LKE method of linodego's Client against the
// server, under /v4 and, where it differs, /v4beta, and checks the answers. It ends by
// checking, through reflection, that no LKE method of the client was left out, so a
// linodego upgrade that adds one fails here until the server serves it.
func TestEveryLKEFunction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := &testBackend{}
	// Nodes get instances at once and are ready an hour later on the fake clock, so
	// recycling shows not_ready until the test advances it.
	_, srv, c := newTestAPI(t, Options{Backend: b, NodeReadyDelay: time.Hour, Clock: clock.Now})
	beta := newClient(srv.URL, testToken)
	beta.SetAPIVersion("v4beta")
	once := newClient(srv.URL, testToken)
	once.SetRetryCount(0)

	called := map[string]bool{}
	call := func(name string, err error) {
		t.Helper()
		called[name] = true
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	wantStatus := func(what string, err error, code int) {
		t.Helper()
		if !linodego.ErrHasStatus(err, code) {
			t.Errorf("%s: err = %v, want %d", what, err, code)
		}
	}

	// Catalogue.
	versions, err := c.ListLKEVersions(ctx, nil)
	call("ListLKEVersions", err)
	if len(versions) == 0 || versions[0].ID != k8sVersions[0] {
		t.Errorf("ListLKEVersions = %+v, want %v first", versions, k8sVersions[0])
	}
	v, err := c.GetLKEVersion(ctx, "1.33")
	call("GetLKEVersion", err)
	if v.ID != "1.33" {
		t.Errorf("GetLKEVersion = %+v", v)
	}
	types, err := c.ListLKETypes(ctx, nil)
	call("ListLKETypes", err)
	if i := slices.IndexFunc(types, func(ty linodego.LKEType) bool { return ty.ID == "lke-ha" }); i < 0 || types[i].Price.Monthly <= 0 {
		t.Errorf("ListLKETypes = %+v, want lke-ha with a monthly price", types)
	}
	tierVersions, err := beta.ListLKETierVersions(ctx, "standard", nil)
	call("ListLKETierVersions", err)
	if len(tierVersions) != len(k8sVersions) || tierVersions[0].Tier != linodego.LKEVersionStandard {
		t.Errorf("ListLKETierVersions = %+v", tierVersions)
	}
	tv, err := beta.GetLKETierVersion(ctx, "standard", "1.33")
	call("GetLKETierVersion", err)
	if tv.ID != "1.33" || tv.Tier != linodego.LKEVersionStandard {
		t.Errorf("GetLKETierVersion = %+v", tv)
	}
	_, err = once.ListLKETierVersions(ctx, "standard", nil)
	wantStatus("ListLKETierVersions under v4", err, http.StatusNotFound)

	// A cluster with a control plane ACL; "tier" only under v4beta.
	enabled := true
	opts := createOpts("every", "eu-west", 1, "fleet:every")
	opts.ControlPlane = &linodego.LKEClusterControlPlaneOptions{ACL: &linodego.LKEClusterControlPlaneACLOptions{
		Enabled:   &enabled,
		Addresses: &linodego.LKEClusterControlPlaneACLAddressesOptions{IPv4: &[]string{"203.0.113.0/24"}},
	}}
	cl, err := c.CreateLKECluster(ctx, opts)
	call("CreateLKECluster", err)
	id := cl.ID
	if cl.Tier != "" {
		t.Errorf("v4 create answered tier %q, want none", cl.Tier)
	}
	got, err := c.GetLKECluster(ctx, id)
	call("GetLKECluster", err)
	if got.Tier != "" || got.Label != "every" {
		t.Errorf("v4 GetLKECluster = %+v, want label every and no tier", got)
	}
	if got, err := beta.GetLKECluster(ctx, id); err != nil || got.Tier != "standard" {
		t.Errorf("v4beta GetLKECluster tier = %q, %v; want standard", got.Tier, err)
	}
	list, err := c.ListLKEClusters(ctx, nil)
	call("ListLKEClusters", err)
	if len(list) != 1 || list[0].ID != id || list[0].Tier != "" {
		t.Errorf("v4 ListLKEClusters = %+v, want cluster %d without tier", list, id)
	}
	if list, err := beta.ListLKEClusters(ctx, nil); err != nil || len(list) != 1 || list[0].Tier != "standard" {
		t.Errorf("v4beta ListLKEClusters = %+v, %v; want tier standard", list, err)
	}
	upd, err := c.UpdateLKECluster(ctx, id, linodego.LKEClusterUpdateOptions{Label: "every2"})
	call("UpdateLKECluster", err)
	if upd.Label != "every2" || upd.Tier != "" {
		t.Errorf("UpdateLKECluster = %+v", upd)
	}
	console, err := c.GetLKEClusterAPLConsoleURL(ctx, id)
	call("GetLKEClusterAPLConsoleURL", err)
	health, err := c.GetLKEClusterAPLHealthCheckURL(ctx, id)
	call("GetLKEClusterAPLHealthCheckURL", err)
	if console != "" || health != "" {
		t.Errorf("APL URLs = %q, %q for a cluster without APL", console, health)
	}

	// Dashboard and control plane ACL; 404 for a cluster that does not exist.
	dash, err := c.GetLKEClusterDashboard(ctx, id)
	call("GetLKEClusterDashboard", err)
	if !strings.HasPrefix(dash.URL, "https://") {
		t.Errorf("dashboard url = %q", dash.URL)
	}
	_, err = once.GetLKEClusterDashboard(ctx, id+1000)
	wantStatus("dashboard of an unknown cluster", err, http.StatusNotFound)

	acl, err := c.GetLKEClusterControlPlaneACL(ctx, id)
	call("GetLKEClusterControlPlaneACL", err)
	if !acl.ACL.Enabled || acl.ACL.Addresses == nil || !slices.Equal(acl.ACL.Addresses.IPv4, []string{"203.0.113.0/24"}) ||
		acl.ACL.RevisionID == "" {
		t.Errorf("ACL from create = %+v", acl.ACL)
	}
	acl, err = c.UpdateLKEClusterControlPlaneACL(ctx, id, linodego.LKEClusterControlPlaneACLUpdateOptions{
		ACL: linodego.LKEClusterControlPlaneACLOptions{
			RevisionID: "rev-2",
			Addresses: &linodego.LKEClusterControlPlaneACLAddressesOptions{
				IPv4: &[]string{"198.51.100.7"}, IPv6: &[]string{"2001:db8::/32"},
			},
		},
	})
	call("UpdateLKEClusterControlPlaneACL", err)
	if a := acl.ACL; !a.Enabled || a.RevisionID != "rev-2" || !slices.Equal(a.Addresses.IPv4, []string{"198.51.100.7"}) ||
		!slices.Equal(a.Addresses.IPv6, []string{"2001:db8::/32"}) {
		t.Errorf("ACL after update = %+v %+v", a, a.Addresses)
	}
	_, err = once.UpdateLKEClusterControlPlaneACL(ctx, id, linodego.LKEClusterControlPlaneACLUpdateOptions{
		ACL: linodego.LKEClusterControlPlaneACLOptions{
			Addresses: &linodego.LKEClusterControlPlaneACLAddressesOptions{IPv4: &[]string{"2001:db8::1"}},
		},
	})
	wantStatus("ACL with an IPv6 address as ipv4", err, http.StatusBadRequest)
	call("DeleteLKEClusterControlPlaneACL", c.DeleteLKEClusterControlPlaneACL(ctx, id))
	if acl, err := c.GetLKEClusterControlPlaneACL(ctx, id); err != nil || acl.ACL.Enabled ||
		len(acl.ACL.Addresses.IPv4)+len(acl.ACL.Addresses.IPv6) != 0 {
		t.Errorf("ACL after delete = %+v, %v; want disabled and empty", acl, err)
	}
	_, err = once.GetLKEClusterControlPlaneACL(ctx, id+1000)
	wantStatus("ACL of an unknown cluster", err, http.StatusNotFound)

	// Kubeconfig and endpoints; every regeneration retires the kubeconfig before.
	kubeconfig := func() string {
		t.Helper()
		var kc *linodego.LKEClusterKubeconfig
		waitFor(t, 5*time.Second, "kubeconfig", func() bool {
			var err error
			kc, err = once.GetLKEClusterKubeconfig(ctx, id)
			return err == nil
		})
		raw, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
		if err != nil {
			t.Fatalf("kubeconfig is not base64: %v", err)
		}
		return string(raw)
	}
	first := kubeconfig()
	_, err = c.GetLKEClusterKubeconfig(ctx, id)
	call("GetLKEClusterKubeconfig", err)
	eps, err := c.ListLKEClusterAPIEndpoints(ctx, id, nil)
	call("ListLKEClusterAPIEndpoints", err)
	if len(eps) != 1 || !strings.Contains(first, "server: "+eps[0].Endpoint) {
		t.Errorf("api endpoints = %+v, want the kubeconfig's server", eps)
	}
	seen := []string{first}
	renewed := func(what string) {
		t.Helper()
		kc := kubeconfig()
		if slices.Contains(seen, kc) {
			t.Errorf("after %s the kubeconfig served is an old one", what)
		}
		seen = append(seen, kc)
	}
	call("DeleteLKEClusterKubeconfig", c.DeleteLKEClusterKubeconfig(ctx, id))
	renewed("DeleteLKEClusterKubeconfig")
	call("DeleteLKEClusterServiceToken", c.DeleteLKEClusterServiceToken(ctx, id))
	renewed("DeleteLKEClusterServiceToken")
	rc, err := c.RegenerateLKECluster(ctx, id, linodego.LKEClusterRegenerateOptions{KubeConfig: true})
	call("RegenerateLKECluster", err)
	if rc.ID != id {
		t.Errorf("RegenerateLKECluster answered cluster %d", rc.ID)
	}
	renewed("RegenerateLKECluster")

	// The waiters poll the same endpoints; the condition is handed the current kubeconfig.
	c.SetPollDelay(10 * time.Millisecond)
	ready, err := c.WaitForLKEClusterStatus(ctx, id, linodego.LKEClusterReady, 5)
	call("WaitForLKEClusterStatus", err)
	if ready.ID != id {
		t.Errorf("WaitForLKEClusterStatus answered cluster %d", ready.ID)
	}
	call("WaitForLKEClusterConditions", c.WaitForLKEClusterConditions(ctx, id, linodego.LKEClusterPollOptions{TimeoutSeconds: 5},
		func(_ context.Context, o linodego.ClusterConditionOptions) (bool, error) {
			raw, err := base64.StdEncoding.DecodeString(o.LKEClusterKubeconfig.KubeConfig)
			return err == nil && string(raw) == seen[len(seen)-1], err
		}))

	// Pools and nodes, through the current and the deprecated names.
	nodeIDs := func(pools []linodego.LKENodePool) []string {
		var ids []string
		for _, p := range pools {
			for _, n := range p.Linodes {
				ids = append(ids, n.ID)
			}
		}
		return ids
	}
	pools, err := c.ListLKENodePools(ctx, id, nil)
	call("ListLKENodePools", err)
	if len(pools) != 1 || pools[0].Count != 1 {
		t.Fatalf("ListLKENodePools = %+v", pools)
	}
	p2, err := c.CreateLKENodePool(ctx, id, linodego.LKENodePoolCreateOptions{Count: 1, Type: "g6-standard-2"})
	call("CreateLKENodePool", err)
	p2, err = c.UpdateLKENodePool(ctx, id, p2.ID, linodego.LKENodePoolUpdateOptions{Count: 3})
	call("UpdateLKENodePool", err)
	if p2.Count != 3 || len(p2.Linodes) != 3 {
		t.Errorf("UpdateLKENodePool count 3 = %+v", p2)
	}
	p2, err = c.GetLKENodePool(ctx, id, p2.ID)
	call("GetLKENodePool", err)
	clock.Advance(time.Hour)
	n, err := c.GetLKENodePoolNode(ctx, id, p2.Linodes[0].ID)
	call("GetLKENodePoolNode", err)
	if n.Status != linodego.LKELinodeReady || n.InstanceID == 0 {
		t.Errorf("node after an hour = %+v, want ready with an instance", n)
	}

	call("RecycleLKENodePoolNode", c.RecycleLKENodePoolNode(ctx, id, n.ID))
	_, err = once.GetLKENodePoolNode(ctx, id, n.ID)
	wantStatus("recycled node", err, http.StatusNotFound)
	p2, _ = c.GetLKENodePool(ctx, id, p2.ID)
	if len(p2.Linodes) != 3 || p2.Linodes[0].Status != linodego.LKELinodeNotReady {
		t.Errorf("pool after a node recycle = %+v, want 3 nodes, the new one not_ready", p2.Linodes)
	}
	clock.Advance(time.Hour)
	if p2, _ = c.GetLKENodePool(ctx, id, p2.ID); p2.Linodes[0].Status != linodego.LKELinodeReady {
		t.Errorf("recycled node an hour later = %+v, want ready", p2.Linodes[0])
	}

	before := nodeIDs([]linodego.LKENodePool{*p2})
	call("RecycleLKENodePool", c.RecycleLKENodePool(ctx, id, p2.ID))
	p2, _ = c.GetLKENodePool(ctx, id, p2.ID)
	for _, n := range p2.Linodes {
		if slices.Contains(before, n.ID) || n.Status != linodego.LKELinodeNotReady {
			t.Errorf("after a pool recycle node %+v is old or ready", n)
		}
	}
	pools, _ = c.ListLKENodePools(ctx, id, nil)
	before = nodeIDs(pools)
	call("RecycleLKEClusterNodes", c.RecycleLKEClusterNodes(ctx, id))
	pools, _ = c.ListLKENodePools(ctx, id, nil)
	for _, nid := range nodeIDs(pools) {
		if slices.Contains(before, nid) {
			t.Errorf("node %s survived a cluster recycle", nid)
		}
	}
	clock.Advance(time.Hour)

	p2, _ = c.GetLKENodePool(ctx, id, p2.ID)
	call("DeleteLKENodePoolNode", c.DeleteLKENodePoolNode(ctx, id, p2.Linodes[0].ID))
	call("DeleteLKEClusterPoolNode", c.DeleteLKEClusterPoolNode(ctx, id, p2.Linodes[1].ID))
	if p2, _ = c.GetLKENodePool(ctx, id, p2.ID); p2.Count != 1 || len(p2.Linodes) != 1 {
		t.Errorf("pool after deleting two nodes = %+v, want one", p2)
	}
	call("DeleteLKENodePool", c.DeleteLKENodePool(ctx, id, p2.ID))

	old, err := c.ListLKEClusterPools(ctx, id, nil)
	call("ListLKEClusterPools", err)
	if len(old) != 1 || old[0].ID != pools[0].ID {
		t.Errorf("ListLKEClusterPools = %+v, want pool %d alone", old, pools[0].ID)
	}
	p3, err := c.CreateLKEClusterPool(ctx, id, linodego.LKEClusterPoolCreateOptions{Count: 1, Type: "g6-standard-2"})
	call("CreateLKEClusterPool", err)
	_, err = c.UpdateLKEClusterPool(ctx, id, p3.ID, linodego.LKEClusterPoolUpdateOptions{Count: 2})
	call("UpdateLKEClusterPool", err)
	p3, err = c.GetLKEClusterPool(ctx, id, p3.ID)
	call("GetLKEClusterPool", err)
	if p3.Count != 2 {
		t.Errorf("GetLKEClusterPool = %+v, want count 2", p3)
	}
	call("DeleteLKEClusterPool", c.DeleteLKEClusterPool(ctx, id, p3.ID))
	_, err = once.GetLKENodePool(ctx, id, p3.ID)
	wantStatus("deleted pool", err, http.StatusNotFound)

	call("DeleteLKECluster", c.DeleteLKECluster(ctx, id))
	_, err = once.GetLKECluster(ctx, id)
	wantStatus("deleted cluster", err, http.StatusNotFound)

	ct := reflect.TypeOf(c)
	for i := range ct.NumMethod() {
		if name := ct.Method(i).Name; strings.Contains(name, "LKE") && !called[name] {
			t.Errorf("linodego's %s is not exercised", name)
		}
	}
}

// provisionOnly is a Backend that cannot renew credentials.
type provisionOnly struct{ b *testBackend }

func (p provisionOnly) Provision(ctx context.Context, c ClusterInfo) (Provisioned, error) {
	return p.b.Provision(ctx, c)
}
func (p provisionOnly) Deprovision(ctx context.Context, id int) error {
	return p.b.Deprovision(ctx, id)
}

// TestKubeconfigRegeneration: while the Backend issues the new kubeconfig the
// endpoint answers 503 and never the old one; a Backend that cannot renew gets its
// kubeconfig served again.
func TestKubeconfigRegeneration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		renewer bool
	}{{"renewer", true}, {"provision only", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := &testBackend{renewGate: make(chan struct{})}
			var b Backend = tb
			if !tc.renewer {
				b = provisionOnly{tb}
			}
			_, srv, c := newTestAPI(t, Options{Backend: b})
			once := newClient(srv.URL, testToken)
			once.SetRetryCount(0)
			cl, err := c.CreateLKECluster(ctx, createOpts("regen", "eu-west", 1))
			if err != nil {
				t.Fatal(err)
			}
			var old *linodego.LKEClusterKubeconfig
			waitFor(t, 5*time.Second, "first kubeconfig", func() bool {
				old, err = once.GetLKEClusterKubeconfig(ctx, cl.ID)
				return err == nil
			})
			if err := c.DeleteLKEClusterKubeconfig(ctx, cl.ID); err != nil {
				t.Fatal(err)
			}
			if tc.renewer {
				_, err = once.GetLKEClusterKubeconfig(ctx, cl.ID)
				if !linodego.ErrHasStatus(err, http.StatusServiceUnavailable) {
					t.Fatalf("kubeconfig while renewing: err = %v, want 503", err)
				}
			}
			close(tb.renewGate)
			var kc *linodego.LKEClusterKubeconfig
			waitFor(t, 5*time.Second, "renewed kubeconfig", func() bool {
				kc, err = once.GetLKEClusterKubeconfig(ctx, cl.ID)
				return err == nil
			})
			if same := kc.KubeConfig == old.KubeConfig; same == tc.renewer {
				t.Errorf("renewed kubeconfig equal to the old one: %v, want %v", same, !tc.renewer)
			}
		})
	}
}
