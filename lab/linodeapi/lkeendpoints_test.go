package linodeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
)

// lkeCase is one LKE method of linodego's Client called against a cluster: the
// endpoint it calls, and the call itself with the ids to use.
type lkeCase struct {
	method   string // linodego's method name
	endpoint string // METHOD path, {id} the cluster, {pool} a pool, {node} a node
	call     func(ctx context.Context, c *linodego.Client, id, pool int, node string) error
}

// lkeClusterCases are every LKE method of linodego v1.69.1 that addresses one cluster
// (lke_clusters.go, lke_clusters_control_plane.go, lke_node_pools.go,
// lke_cluster_pools.go), with the endpoint each calls. The catalogue methods (versions,
// tiers, types) and ListLKEClusters/CreateLKECluster address none; see lkeCatalogueCases.
var lkeClusterCases = []lkeCase{
	{"GetLKECluster", "GET lke/clusters/{id}", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.GetLKECluster(ctx, id)
		return err
	}},
	{"UpdateLKECluster", "PUT lke/clusters/{id}", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.UpdateLKECluster(ctx, id, linodego.LKEClusterUpdateOptions{Tags: &[]string{"updated"}})
		return err
	}},
	{"GetLKEClusterKubeconfig", "GET lke/clusters/{id}/kubeconfig", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.GetLKEClusterKubeconfig(ctx, id)
		return err
	}},
	{"DeleteLKEClusterKubeconfig", "DELETE lke/clusters/{id}/kubeconfig", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		return c.DeleteLKEClusterKubeconfig(ctx, id)
	}},
	{"GetLKEClusterDashboard", "GET lke/clusters/{id}/dashboard", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		d, err := c.GetLKEClusterDashboard(ctx, id)
		if err == nil && !strings.HasPrefix(d.URL, "https://") {
			return fmt.Errorf("dashboard url %q", d.URL)
		}
		return err
	}},
	{"RecycleLKEClusterNodes", "POST lke/clusters/{id}/recycle", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		return c.RecycleLKEClusterNodes(ctx, id)
	}},
	{"RegenerateLKECluster", "POST lke/clusters/{id}/regenerate", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		cl, err := c.RegenerateLKECluster(ctx, id, linodego.LKEClusterRegenerateOptions{KubeConfig: true, ServiceToken: true})
		if err == nil && cl.ID != id {
			return fmt.Errorf("regenerate answered cluster %d", cl.ID)
		}
		return err
	}},
	{"DeleteLKEClusterServiceToken", "DELETE lke/clusters/{id}/servicetoken", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		return c.DeleteLKEClusterServiceToken(ctx, id)
	}},
	{"ListLKEClusterAPIEndpoints", "GET lke/clusters/{id}/api-endpoints", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		eps, err := c.ListLKEClusterAPIEndpoints(ctx, id, nil)
		if err == nil && len(eps) == 0 {
			return fmt.Errorf("no api endpoints")
		}
		return err
	}},
	{"GetLKEClusterAPLConsoleURL", "GET lke/clusters/{id}", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.GetLKEClusterAPLConsoleURL(ctx, id)
		return err
	}},
	{"GetLKEClusterAPLHealthCheckURL", "GET lke/clusters/{id}", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.GetLKEClusterAPLHealthCheckURL(ctx, id)
		return err
	}},
	{"GetLKEClusterControlPlaneACL", "GET lke/clusters/{id}/control_plane_acl", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.GetLKEClusterControlPlaneACL(ctx, id)
		return err
	}},
	{"UpdateLKEClusterControlPlaneACL", "PUT lke/clusters/{id}/control_plane_acl", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		on := true
		a, err := c.UpdateLKEClusterControlPlaneACL(ctx, id, linodego.LKEClusterControlPlaneACLUpdateOptions{
			ACL: linodego.LKEClusterControlPlaneACLOptions{Enabled: &on,
				Addresses: &linodego.LKEClusterControlPlaneACLAddressesOptions{IPv4: &[]string{"192.0.2.0/24"}}},
		})
		if err == nil && (!a.ACL.Enabled || a.ACL.RevisionID == "") {
			return fmt.Errorf("ACL answered %+v", a.ACL)
		}
		return err
	}},
	{"DeleteLKEClusterControlPlaneACL", "DELETE lke/clusters/{id}/control_plane_acl", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		return c.DeleteLKEClusterControlPlaneACL(ctx, id)
	}},
	{"ListLKENodePools", "GET lke/clusters/{id}/pools", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.ListLKENodePools(ctx, id, nil)
		return err
	}},
	{"ListLKEClusterPools", "GET lke/clusters/{id}/pools", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.ListLKEClusterPools(ctx, id, nil)
		return err
	}},
	{"CreateLKENodePool", "POST lke/clusters/{id}/pools", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.CreateLKENodePool(ctx, id, linodego.LKENodePoolCreateOptions{Count: 1, Type: "g6-standard-1"})
		return err
	}},
	{"CreateLKEClusterPool", "POST lke/clusters/{id}/pools", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.CreateLKEClusterPool(ctx, id, linodego.LKEClusterPoolCreateOptions{Count: 1, Type: "g6-standard-1"})
		return err
	}},
	{"GetLKENodePool", "GET lke/clusters/{id}/pools/{pool}", func(ctx context.Context, c *linodego.Client, id, pool int, _ string) error {
		_, err := c.GetLKENodePool(ctx, id, pool)
		return err
	}},
	{"GetLKEClusterPool", "GET lke/clusters/{id}/pools/{pool}", func(ctx context.Context, c *linodego.Client, id, pool int, _ string) error {
		_, err := c.GetLKEClusterPool(ctx, id, pool)
		return err
	}},
	{"UpdateLKENodePool", "PUT lke/clusters/{id}/pools/{pool}", func(ctx context.Context, c *linodego.Client, id, pool int, _ string) error {
		p, err := c.UpdateLKENodePool(ctx, id, pool, linodego.LKENodePoolUpdateOptions{Count: 3})
		if err == nil && len(p.Linodes) != 3 {
			return fmt.Errorf("pool resized to 3 has %d nodes", len(p.Linodes))
		}
		return err
	}},
	{"UpdateLKEClusterPool", "PUT lke/clusters/{id}/pools/{pool}", func(ctx context.Context, c *linodego.Client, id, pool int, _ string) error {
		_, err := c.UpdateLKEClusterPool(ctx, id, pool, linodego.LKEClusterPoolUpdateOptions{Count: 2})
		return err
	}},
	{"DeleteLKENodePool", "DELETE lke/clusters/{id}/pools/{pool}", func(ctx context.Context, c *linodego.Client, id, pool int, _ string) error {
		return c.DeleteLKENodePool(ctx, id, pool)
	}},
	{"DeleteLKEClusterPool", "DELETE lke/clusters/{id}/pools/{pool}", func(ctx context.Context, c *linodego.Client, id, pool int, _ string) error {
		return c.DeleteLKEClusterPool(ctx, id, pool)
	}},
	{"RecycleLKENodePool", "POST lke/clusters/{id}/pools/{pool}/recycle", func(ctx context.Context, c *linodego.Client, id, pool int, _ string) error {
		return c.RecycleLKENodePool(ctx, id, pool)
	}},
	{"GetLKENodePoolNode", "GET lke/clusters/{id}/nodes/{node}", func(ctx context.Context, c *linodego.Client, id, _ int, node string) error {
		n, err := c.GetLKENodePoolNode(ctx, id, node)
		if err == nil && n.ID != node {
			return fmt.Errorf("node %q answered %+v", node, n)
		}
		return err
	}},
	{"RecycleLKENodePoolNode", "POST lke/clusters/{id}/nodes/{node}/recycle", func(ctx context.Context, c *linodego.Client, id, _ int, node string) error {
		return c.RecycleLKENodePoolNode(ctx, id, node)
	}},
	{"DeleteLKENodePoolNode", "DELETE lke/clusters/{id}/nodes/{node}", func(ctx context.Context, c *linodego.Client, id, _ int, node string) error {
		return c.DeleteLKENodePoolNode(ctx, id, node)
	}},
	{"DeleteLKEClusterPoolNode", "DELETE lke/clusters/{id}/nodes/{node}", func(ctx context.Context, c *linodego.Client, id, _ int, node string) error {
		return c.DeleteLKEClusterPoolNode(ctx, id, node)
	}},
	{"WaitForLKEClusterStatus", "GET lke/clusters/{id} (polled)", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		_, err := c.WaitForLKEClusterStatus(ctx, id, linodego.LKEClusterReady, 5)
		return err
	}},
	{"DeleteLKECluster", "DELETE lke/clusters/{id}", func(ctx context.Context, c *linodego.Client, id, _ int, _ string) error {
		return c.DeleteLKECluster(ctx, id)
	}},
}

// lkeCatalogueCases are the LKE methods that address no cluster.
var lkeCatalogueCases = []string{
	"ListLKEClusters", "CreateLKECluster", "ListLKEVersions", "GetLKEVersion",
	"ListLKETierVersions", "GetLKETierVersion", "ListLKETypes",
	"WaitForLKEClusterConditions", // polls the kubeconfig: TestEveryLKEFunction
}

// TestLKEEndpointTable: every cluster-addressed LKE method of linodego succeeds on a
// provisioned cluster (with a real pool and node), and answers linodego's 404 "Not found"
// for a cluster that does not exist, under /v4 and /v4beta. A method missing from the
// tables fails the test, so a linodego upgrade that adds one is noticed.
func TestLKEEndpointTable(t *testing.T) {
	t.Parallel()
	s, srv, _ := newTestAPI(t, Options{Backend: &testBackend{}})
	for _, version := range []string{"v4", "v4beta"} {
		c := newClient(srv.URL, testToken)
		c.SetAPIVersion(version)
		c.SetPollDelay(10 * time.Millisecond)
		once := newClient(srv.URL, testToken)
		once.SetAPIVersion(version)
		once.SetRetryCount(0)
		for _, tc := range lkeClusterCases {
			t.Run(version+"/"+tc.method, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cl, err := c.CreateLKECluster(ctx, createOpts(fmt.Sprintf("t%x", time.Now().UnixNano()%0xffffff), "us-ord", 2))
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, 5*time.Second, "kubeconfig", func() bool {
					_, err := once.GetLKEClusterKubeconfig(ctx, cl.ID)
					return err == nil
				})
				pools, err := c.ListLKENodePools(ctx, cl.ID, nil)
				if err != nil || len(pools) != 1 || len(pools[0].Linodes) != 2 {
					t.Fatalf("pools = %+v, %v", pools, err)
				}
				pool, node := pools[0].ID, pools[0].Linodes[0].ID
				if err := tc.call(ctx, c, cl.ID, pool, node); err != nil {
					t.Errorf("%s (%s): %v", tc.method, tc.endpoint, err)
				}
				err = tc.call(ctx, once, cl.ID+100000, pool, node)
				var le *linodego.Error
				if !linodego.ErrHasStatus(err, http.StatusNotFound) || !asLinodeError(err, &le) || le.Message != "Not found" {
					t.Errorf("%s of an unknown cluster: %v, want [404] Not found", tc.method, err)
				}
				if strings.Contains(tc.endpoint, "{pool}") {
					err := tc.call(ctx, once, cl.ID, pool+100000, node)
					if !linodego.ErrHasStatus(err, http.StatusNotFound) {
						t.Errorf("%s of an unknown pool: %v, want 404", tc.method, err)
					}
				}
				if strings.Contains(tc.endpoint, "{node}") {
					err := tc.call(ctx, once, cl.ID, pool, node+"-gone")
					if !linodego.ErrHasStatus(err, http.StatusNotFound) {
						t.Errorf("%s of an unknown node: %v, want 404", tc.method, err)
					}
				}
				_ = c.DeleteLKECluster(ctx, cl.ID)
			})
		}
	}
	_ = s

	covered := map[string]bool{}
	for _, tc := range lkeClusterCases {
		covered[tc.method] = true
	}
	for _, m := range lkeCatalogueCases {
		covered[m] = true
	}
	ct := reflect.TypeOf(&linodego.Client{})
	for i := range ct.NumMethod() {
		if name := ct.Method(i).Name; strings.Contains(name, "LKE") && !covered[name] {
			t.Errorf("linodego's %s is in neither table", name)
		}
	}
}

func asLinodeError(err error, le **linodego.Error) bool {
	e, ok := err.(*linodego.Error)
	if ok {
		*le = e
	}
	return ok
}

// TestUnknownClusterBody: every cluster endpoint answers an unknown cluster with 404 and
// Linode's error envelope, {"errors":[{"reason":"Not found"}]}, as application/json.
func TestUnknownClusterBody(t *testing.T) {
	t.Parallel()
	_, srv, _ := newTestAPI(t, Options{})
	seen := map[string]bool{}
	for _, tc := range lkeClusterCases {
		method, path, _ := strings.Cut(tc.endpoint, " ")
		path, _, _ = strings.Cut(path, " ")
		key := method + " " + path
		if seen[key] {
			continue
		}
		seen[key] = true
		path = strings.NewReplacer("{id}", "999", "{pool}", "1", "{node}", "1-aa").Replace(path)
		for _, version := range []string{"v4", "v4beta"} {
			req, _ := http.NewRequest(method, srv.URL+"/"+version+"/"+path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			want := map[string]any{"errors": []any{map[string]any{"reason": "Not found"}}}
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" ||
				err != nil || !reflect.DeepEqual(body, want) {
				t.Errorf("%s /%s/%s = %d %q %v, want 404 %v", method, version, path, resp.StatusCode,
					resp.Header.Get("Content-Type"), body, want)
			}
		}
	}
}

// TestBetaOnlyFieldsTable: every answer carrying a cluster or a node pool, under /v4,
// lacks each field betaOnlyFields lists for it, and under /v4beta carries those the lab
// answers (the VPC fields and the Enterprise pool fields it never does).
func TestBetaOnlyFieldsTable(t *testing.T) {
	t.Parallel()
	_, srv, c := newTestAPI(t, Options{})
	ctx := context.Background()
	cl, err := c.CreateLKECluster(ctx, createOpts("beta-table", "eu-west", 1))
	if err != nil {
		t.Fatal(err)
	}
	pools, err := c.ListLKENodePools(ctx, cl.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	neverAnswered := map[string]bool{"subnet_id": true, "vpc_id": true, "k8s_version": true, "update_strategy": true}
	do := func(method, url, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s = %d, %v", method, url, resp.StatusCode, err)
		}
		if d, ok := m["data"].([]any); ok {
			if len(d) == 0 {
				t.Fatalf("%s %s: empty list", method, url)
			}
			return d[0].(map[string]any)
		}
		return m
	}
	lookup := func(m map[string]any, path string) bool {
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				return false
			}
			m = sub
		}
		_, ok := m[parts[len(parts)-1]]
		return ok
	}
	answers := []struct {
		object, method, path, body string
	}{
		{objLKECluster, "GET", fmt.Sprintf("lke/clusters/%d", cl.ID), ""},
		{objLKECluster, "GET", "lke/clusters", ""},
		{objLKECluster, "PUT", fmt.Sprintf("lke/clusters/%d", cl.ID), `{"tags":["x"]}`},
		{objLKECluster, "POST", fmt.Sprintf("lke/clusters/%d/regenerate", cl.ID), `{"kubeconfig":false,"servicetoken":false}`},
		{objLKECluster, "POST", "lke/clusters", ""}, // body made per version below
		{objLKENodePool, "GET", fmt.Sprintf("lke/clusters/%d/pools/%d", cl.ID, pools[0].ID), ""},
		{objLKENodePool, "GET", fmt.Sprintf("lke/clusters/%d/pools", cl.ID), ""},
		{objLKENodePool, "PUT", fmt.Sprintf("lke/clusters/%d/pools/%d", cl.ID, pools[0].ID), `{"count":1}`},
		{objLKENodePool, "POST", fmt.Sprintf("lke/clusters/%d/pools", cl.ID), `{"count":1,"type":"g6-standard-1"}`},
	}
	for _, a := range answers {
		for _, version := range []string{"v4", "v4beta"} {
			body := a.body
			if a.method == "POST" && a.path == "lke/clusters" {
				body = fmt.Sprintf(`{"label":"bt-%s","region":"eu-west","k8s_version":"1.33","node_pools":[{"count":1,"type":"g6-standard-1"}]}`, version)
			}
			m := do(a.method, srv.URL+"/"+version+"/"+a.path, body)
			for _, f := range betaOnlyFields {
				if f.object != a.object {
					continue
				}
				has := lookup(m, f.path)
				if version == "v4" && has {
					t.Errorf("%s /v4/%s carries beta-only %s", a.method, a.path, f.path)
				}
				if version == "v4beta" && has == neverAnswered[f.path] {
					t.Errorf("%s /v4beta/%s: has %s = %v, want %v", a.method, a.path, f.path, has, !neverAnswered[f.path])
				}
			}
			if !lookup(m, "id") {
				t.Errorf("%s /%s/%s answered %v", a.method, version, a.path, m)
			}
		}
	}

	// The lab has no VPCs and one IP stack: a create asking for others is refused by field.
	beta := newClient(srv.URL, testToken)
	beta.SetAPIVersion("v4beta")
	for field, mod := range map[string]func(*linodego.LKEClusterCreateOptions){
		"vpc_id":     func(o *linodego.LKEClusterCreateOptions) { o.VpcID = ptr(7) },
		"subnet_id":  func(o *linodego.LKEClusterCreateOptions) { o.SubnetID = ptr(8) },
		"stack_type": func(o *linodego.LKEClusterCreateOptions) { o.StackType = ptr(linodego.LKEClusterDualStack) },
		"tier":       func(o *linodego.LKEClusterCreateOptions) { o.Tier = "enterprise" },
	} {
		o := createOpts("refused-"+strings.ReplaceAll(field, "_", ""), "eu-west", 1)
		mod(&o)
		_, err := beta.CreateLKECluster(ctx, o)
		wantField(t, "create with "+field, err, field)
	}
	o := createOpts("ipv4-stack", "eu-west", 1)
	o.StackType = ptr(linodego.LKEClusterStackIPv4)
	if got, err := beta.CreateLKECluster(ctx, o); err != nil || got.StackType != linodego.LKEClusterStackIPv4 || got.Tier != "standard" {
		t.Errorf("v4beta create with stack ipv4 = %+v, %v", got, err)
	}
}

// TestInstanceDeleteEvents: every node instance that goes (a node deleted or recycled, a
// pool shrunk or deleted, the cluster deleted) leaves a finished linode_delete event in
// GET /account/events, found with the filter Linode's Terraform provider uses to wait for
// an LKE cluster's deletion (entity.type and action, newest first).
func TestInstanceDeleteEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, srv, c := newTestAPI(t, Options{Backend: &testBackend{}})
	once := newClient(srv.URL, testToken)
	once.SetRetryCount(0)
	cl, err := c.CreateLKECluster(ctx, createOpts("events", "us-ord", 4))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "instances", func() bool {
		ps, err := once.ListLKENodePools(ctx, cl.ID, nil)
		return err == nil && ps[0].Linodes[3].InstanceID != 0
	})
	ps, _ := c.ListLKENodePools(ctx, cl.ID, nil)
	var want []int
	for _, n := range ps[0].Linodes {
		want = append(want, n.InstanceID)
	}
	// One node deleted, one recycled, the pool shrunk by one, then the cluster deleted.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.DeleteLKENodePoolNode(ctx, cl.ID, ps[0].Linodes[0].ID))
	must(c.RecycleLKENodePoolNode(ctx, cl.ID, ps[0].Linodes[1].ID))
	_, err = c.UpdateLKENodePool(ctx, cl.ID, ps[0].ID, linodego.LKENodePoolUpdateOptions{Count: 2})
	must(err)
	ps, _ = c.ListLKENodePools(ctx, cl.ID, nil)
	for _, n := range ps[0].Linodes {
		if n.InstanceID != 0 && !slices.Contains(want, n.InstanceID) {
			want = append(want, n.InstanceID)
		}
	}
	must(c.DeleteLKECluster(ctx, cl.ID))

	f := linodego.Filter{OrderBy: "created", Order: linodego.Descending}
	f.AddField(linodego.Eq, "entity.type", linodego.EntityLinode)
	f.AddField(linodego.Eq, "action", linodego.ActionLinodeDelete)
	fb, err := f.MarshalJSON()
	must(err)
	events, err := c.ListEvents(ctx, &linodego.ListOptions{Filter: string(fb), PageOptions: &linodego.PageOptions{Page: 1}})
	must(err)
	got := map[int]bool{}
	for _, e := range events {
		id, ok := e.Entity.ID.(float64)
		if !ok || e.Status != linodego.EventFinished || e.Action != linodego.ActionLinodeDelete || e.Created == nil {
			t.Errorf("event %+v (entity %+v)", e, e.Entity)
			continue
		}
		got[int(id)] = true
	}
	for _, id := range want {
		if !got[id] {
			t.Errorf("no linode_delete event for instance %d; events for %v", id, got)
		}
	}
	if len(events) > 0 {
		one, err := c.GetEvent(ctx, events[0].ID)
		if err != nil || one.ID != events[0].ID {
			t.Errorf("GetEvent(%d) = %+v, %v", events[0].ID, one, err)
		}
	}
	if _, err := once.GetEvent(ctx, 1); !linodego.ErrHasStatus(err, http.StatusNotFound) {
		t.Errorf("GetEvent of an unknown event: %v, want 404", err)
	}
}
