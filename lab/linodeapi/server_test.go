package linodeapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
)

// TestClusterLifecycle walks the path the reconciler takes, with the real client:
// create, find by tag, wait for the kubeconfig, read nodes and their addresses,
// change pools, delete.
func TestClusterLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := &testBackend{gate: make(chan struct{}), nodeIPs: []string{"203.0.113.10", "203.0.113.11"}}
	s, srv, c := newTestAPI(t, Options{Backend: b})

	eu, err := c.CreateLKECluster(ctx, createOpts("eu", "eu-west", 3, "fleet:demo"))
	if err != nil {
		t.Fatalf("create eu: %v", err)
	}
	if _, err := c.CreateLKECluster(ctx, createOpts("ap", "ap-south", 1, "other")); err != nil {
		t.Fatalf("create ap: %v", err)
	}
	if eu.Status != linodego.LKEClusterReady || eu.Label != "eu" || eu.Region != "eu-west" || eu.K8sVersion != "1.33" {
		t.Errorf("create answered %+v", eu)
	}
	if eu.Created == nil || eu.Created.IsZero() {
		t.Errorf("created timestamp not parsed: %v", eu.Created)
	}

	list, err := c.ListLKEClusters(ctx, linodego.NewListOptions(0, `{"tags": "fleet:demo"}`))
	if err != nil {
		t.Fatalf("list by tag: %v", err)
	}
	if len(list) != 1 || list[0].ID != eu.ID {
		t.Fatalf("list by tag = %+v, want only cluster %d", list, eu.ID)
	}

	got, err := c.GetLKECluster(ctx, eu.ID)
	if err != nil || got.ID != eu.ID || !slices.Equal(got.Tags, []string{"fleet:demo"}) {
		t.Fatalf("get = %+v, %v", got, err)
	}

	// Before provisioning: 503 with the real reason, seen by a client that does not retry.
	once := newClient(srv.URL, testToken)
	once.SetRetryCount(0)
	_, err = once.GetLKEClusterKubeconfig(ctx, eu.ID)
	if !linodego.ErrHasStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("kubeconfig before provisioning: err = %v, want 503", err)
	}
	if !strings.Contains(err.Error(), "Cluster kubeconfig is not yet available. Please try again later.") {
		t.Errorf("kubeconfig 503 message = %q", err.Error())
	}
	_, err = once.ListLKEClusterAPIEndpoints(ctx, eu.ID, nil)
	if !linodego.ErrHasStatus(err, http.StatusServiceUnavailable) || !strings.Contains(err.Error(), "Cluster API Endpoints are not yet available") {
		t.Errorf("api-endpoints before provisioning: %v", err)
	}
	pools, err := c.ListLKENodePools(ctx, eu.ID, nil)
	if err != nil || len(pools) != 1 || len(pools[0].Linodes) != 3 {
		t.Fatalf("pools = %+v, %v", pools, err)
	}
	for _, n := range pools[0].Linodes {
		if n.InstanceID != 0 || n.Status != linodego.LKELinodeNotReady {
			t.Errorf("node before provisioning = %+v, want no instance and not_ready", n)
		}
		if !strings.HasPrefix(n.ID, itoa(pools[0].ID)+"-") {
			t.Errorf("node id %q does not start with its pool id %d", n.ID, pools[0].ID)
		}
	}

	close(b.gate)
	// The retrying client now gets through once provisioning ends.
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kc, err := c.GetLKEClusterKubeconfig(kctx, eu.ID)
	if err != nil {
		t.Fatalf("kubeconfig after provisioning: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
	if err != nil || !bytes.Equal(raw, testKubeconfig(eu.ID)) {
		t.Fatalf("kubeconfig = %q (%v), want the backend's", raw, err)
	}
	eps, err := c.ListLKEClusterAPIEndpoints(ctx, eu.ID, nil)
	if err != nil || len(eps) != 1 || eps[0].Endpoint != kubeconfigServer(testKubeconfig(eu.ID)) {
		t.Errorf("api endpoints = %+v, %v", eps, err)
	}

	pools, err = c.ListLKENodePools(ctx, eu.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, n := range pools[0].Linodes {
		if n.InstanceID == 0 || n.Status != linodego.LKELinodeReady {
			t.Fatalf("node after provisioning = %+v, want an instance and ready", n)
		}
		addrs, err := c.GetInstanceIPAddresses(ctx, n.InstanceID)
		if err != nil {
			t.Fatalf("ips of %d: %v", n.InstanceID, err)
		}
		ips = append(ips, addrs.IPv4.Public[0].Address)
		inst, err := c.GetInstance(ctx, n.InstanceID)
		if err != nil {
			t.Fatalf("instance %d: %v", n.InstanceID, err)
		}
		if inst.LKEClusterID != eu.ID || inst.Label != "lke"+itoa(eu.ID)+"-"+n.ID || inst.Region != "eu-west" || inst.Type != "g6-standard-2" {
			t.Errorf("instance = %+v", inst)
		}
	}
	// Three nodes over two addresses: reused cyclically.
	if want := []string{"203.0.113.10", "203.0.113.11", "203.0.113.10"}; !slices.Equal(ips, want) {
		t.Errorf("node ips = %v, want %v", ips, want)
	}

	// Pools: grow, add, delete.
	up, err := c.UpdateLKENodePool(ctx, eu.ID, pools[0].ID, linodego.LKENodePoolUpdateOptions{Count: 4, Tags: &[]string{"b", "a"}})
	if err != nil || up.Count != 4 || len(up.Linodes) != 4 || !slices.Equal(up.Tags, []string{"a", "b"}) {
		t.Fatalf("update pool = %+v, %v", up, err)
	}
	np, err := c.CreateLKENodePool(ctx, eu.ID, linodego.LKENodePoolCreateOptions{Count: 2, Type: "g6-dedicated-4"})
	if err != nil || np.Count != 2 || np.Type != "g6-dedicated-4" {
		t.Fatalf("create pool = %+v, %v", np, err)
	}
	if err := c.DeleteLKENodePool(ctx, eu.ID, np.ID); err != nil {
		t.Fatalf("delete pool: %v", err)
	}
	if _, err := c.GetLKENodePool(ctx, eu.ID, np.ID); !linodego.IsNotFound(err) {
		t.Errorf("deleted pool: err = %v, want 404", err)
	}
	pools, _ = c.ListLKENodePools(ctx, eu.ID, nil)
	if len(pools) != 1 {
		t.Errorf("pools after delete = %d, want 1", len(pools))
	}

	if err := c.DeleteLKECluster(ctx, eu.ID); err != nil {
		t.Fatalf("delete cluster: %v", err)
	}
	if _, err := c.GetLKECluster(ctx, eu.ID); !linodego.IsNotFound(err) {
		t.Errorf("deleted cluster: err = %v, want 404", err)
	}
	var e *linodego.Error
	if _, err := c.GetLKECluster(ctx, eu.ID); !errors.As(err, &e) || e.Message != "Not found" {
		t.Errorf("404 message = %v", err)
	}
	waitFor(t, 5*time.Second, "deprovision of the deleted cluster", func() bool {
		return slices.Contains(b.deprovisionedIDs(), eu.ID)
	})
	insts, err := c.ListInstances(ctx, linodego.NewListOptions(0, `{"lke_cluster_id": `+itoa(eu.ID)+`}`))
	if err != nil || len(insts) != 0 {
		t.Errorf("instances of a deleted cluster = %d, %v", len(insts), err)
	}
	if len(s.Requests()) == 0 {
		t.Error("no requests recorded")
	}
}
