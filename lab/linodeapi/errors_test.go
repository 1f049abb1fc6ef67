package linodeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/linode/linodego"
)

func TestWrongTokenIs401(t *testing.T) {
	t.Parallel()
	_, srv, _ := newTestAPI(t, Options{})
	bad := newClient(srv.URL, "not-the-token")
	_, err := bad.ListLKEClusters(context.Background(), nil)
	var e *linodego.Error
	if !errors.As(err, &e) || e.Code != http.StatusUnauthorized || e.Message != "Invalid Token" {
		t.Fatalf("err = %v, want [401] Invalid Token", err)
	}
	// The catalogue is public without a token, as on the real API.
	resp, err := http.Get(srv.URL + "/v4/regions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("anonymous GET regions = %d, want 200", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + "/v4/lke/clusters")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET lke/clusters = %d, want 401", resp.StatusCode)
	}
}

// TestCreateValidation checks that bad input is a 400 naming the field, through
// the real client's error type.
func TestCreateValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, c := newTestAPI(t, Options{})
	if _, err := c.CreateLKECluster(ctx, createOpts("taken", "us-east", 1)); err != nil {
		t.Fatal(err)
	}
	pool := func(count int, typ string) []linodego.LKENodePoolCreateOptions {
		return []linodego.LKENodePoolCreateOptions{{Count: count, Type: typ}}
	}
	cases := []struct {
		name  string
		opts  linodego.LKEClusterCreateOptions
		field string
	}{
		{"unknown region", linodego.LKEClusterCreateOptions{Label: "a", Region: "mars-1", K8sVersion: "1.33", NodePools: pool(1, "g6-standard-1")}, "region"},
		{"unknown version", linodego.LKEClusterCreateOptions{Label: "a", Region: "us-east", K8sVersion: "1.20", NodePools: pool(1, "g6-standard-1")}, "k8s_version"},
		{"unknown type", linodego.LKEClusterCreateOptions{Label: "a", Region: "us-east", K8sVersion: "1.33", NodePools: pool(1, "g9-huge")}, "node_pools[0].type"},
		{"count below one", linodego.LKEClusterCreateOptions{Label: "a", Region: "us-east", K8sVersion: "1.33", NodePools: pool(0, "g6-standard-1")}, "node_pools[0].count"},
		{"no node pools", linodego.LKEClusterCreateOptions{Label: "a", Region: "us-east", K8sVersion: "1.33"}, "node_pools"},
		{"duplicate label", linodego.LKEClusterCreateOptions{Label: "taken", Region: "us-east", K8sVersion: "1.33", NodePools: pool(1, "g6-standard-1")}, "label"},
		{"empty label", linodego.LKEClusterCreateOptions{Region: "us-east", K8sVersion: "1.33", NodePools: pool(1, "g6-standard-1")}, "label"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateLKECluster(ctx, tc.opts)
			var e *linodego.Error
			if !errors.As(err, &e) || e.Code != http.StatusBadRequest {
				t.Fatalf("err = %v, want 400", err)
			}
			if !strings.Contains(e.Message, "["+tc.field+"]") {
				t.Errorf("message %q does not name field %q", e.Message, tc.field)
			}
		})
	}
	list, err := c.ListLKEClusters(ctx, nil)
	if err != nil || len(list) != 1 {
		t.Errorf("refused creates left clusters behind: %d, %v", len(list), err)
	}
}

// TestRawErrors checks what the client library hides: the exact error body, the
// field of the bad-region error, strict decoding, 405 and the headers.
func TestRawErrors(t *testing.T) {
	t.Parallel()
	_, srv, _ := newTestAPI(t, Options{})
	cases := []struct {
		name, method, path, body string
		status                   int
		reason, field            string
	}{
		{"bad region", "POST", "/v4/lke/clusters", `{"label":"x","region":"nowhere","k8s_version":"1.33","node_pools":[{"count":1,"type":"g6-standard-1"}]}`, 400, "region is not valid", "region"},
		{"unknown field in create", "POST", "/v4/lke/clusters", `{"label":"x","region":"us-east","k8s_version":"1.33","node_pools":[{"count":1,"type":"g6-standard-1"}],"colour":"red"}`, 400, "", "colour"},
		{"unknown field in pool", "POST", "/v4/lke/clusters", `{"label":"x","region":"us-east","k8s_version":"1.33","node_pools":[{"count":1,"type":"g6-standard-1","size":3}]}`, 400, "", "size"},
		{"wrong type", "POST", "/v4/lke/clusters", `{"label":"x","region":"us-east","k8s_version":"1.33","node_pools":[{"count":"one","type":"g6-standard-1"}]}`, 400, "", "node_pools.count"},
		{"not json", "POST", "/v4/lke/clusters", `{`, 400, "Invalid JSON", ""},
		{"missing cluster", "GET", "/v4/lke/clusters/1", "", 404, "Not found", ""},
		{"unknown path", "GET", "/v4/nothing/here", "", 404, "Not found", ""},
		{"no version prefix", "GET", "/lke/clusters", "", 404, "Not found", ""},
		{"wrong method", "PATCH", "/v4/lke/clusters", "", 405, "Method Not Allowed", ""},
		{"wrong method on versions", "POST", "/v4/lke/versions", "{}", 405, "Method Not Allowed", ""},
		{"bad filter field", "GET", "/v4/lke/clusters", "", 400, "Cannot filter on colour", "X-Filter"},
		{"v4beta works", "GET", "/v4beta/lke/clusters", "", 200, "", ""},
		{"profile", "GET", "/v4/profile", "", 200, "", ""},
		{"catalogue: types", "GET", "/v4/linode/types/g6-standard-2", "", 200, "", ""},
		{"catalogue: missing type", "GET", "/v4/linode/types/g9-huge", "", 404, "Not found", ""},
		{"catalogue: region", "GET", "/v4/regions/eu-west", "", 200, "", ""},
		{"catalogue: version", "GET", "/v4/lke/versions/1.36", "", 200, "", ""},
		{"catalogue: missing version", "GET", "/v4/lke/versions/1.20", "", 404, "Not found", ""},
		{"missing instance", "GET", "/v4/linode/instances/42/ips", "", 404, "Not found", ""},
		{"master domain without soa_email", "POST", "/v4/domains", `{"domain":"example.com","type":"master"}`, 400, "soa_email required when type=master", "soa_email"},
		{"unknown field in domain", "POST", "/v4/domains", `{"domain":"example.com","type":"master","soa_email":"a@example.com","colour":"red"}`, 400, "", "colour"},
		{"ttl of the wrong type", "POST", "/v4/domains", `{"domain":"example.com","type":"master","soa_email":"a@example.com","ttl_sec":"30"}`, 400, "", "ttl_sec"},
		{"missing domain", "GET", "/v4/domains/1/records", "", 404, "Not found", ""},
		{"wrong method on records", "PATCH", "/v4/domains/1/records", "", 404, "Not found", ""},
		{"domains list", "GET", "/v4/domains", "", 200, "", ""},
		{"missing nodebalancer", "GET", "/v4/nodebalancers/1/configs", "", 404, "Not found", ""},
		{"nodebalancer config not modelled", "GET", "/v4/nodebalancers/1/configs/2", "", 404, "Not found", ""},
		{"catalogue: nodebalancer types", "GET", "/v4/nodebalancers/types", "", 200, "", ""},
		{"wrong method on nodebalancer types", "POST", "/v4/nodebalancers/types", "{}", 405, "Method Not Allowed", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			if tc.name == "bad filter field" {
				req.Header.Set("X-Filter", `{"colour":"red"}`)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("missing header %s", h)
				}
			}
			if tc.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if tc.status < 400 {
				return
			}
			b, _ := io.ReadAll(resp.Body)
			var body apiError
			if err := json.Unmarshal(b, &body); err != nil || len(body.Errors) == 0 {
				t.Fatalf("error body %q is not the API's envelope", b)
			}
			if tc.reason != "" && body.Errors[0].Reason != tc.reason {
				t.Errorf("reason = %q, want %q", body.Errors[0].Reason, tc.reason)
			}
			if body.Errors[0].Field != tc.field {
				t.Errorf("field = %q, want %q (body %s)", body.Errors[0].Field, tc.field, b)
			}
		})
	}
}

func TestClusterUpdateRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, c := newTestAPI(t, Options{})
	cl, err := c.CreateLKECluster(ctx, createOpts("up", "us-west", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLKECluster(ctx, createOpts("other", "us-west", 1)); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	steps := []struct {
		name    string
		opts    linodego.LKEClusterUpdateOptions
		wantErr string // field named in the 400, "" for success
		check   func(*linodego.LKECluster) bool
	}{
		{"label and tags", linodego.LKEClusterUpdateOptions{Label: "up2", Tags: &[]string{"x", "a"}}, "",
			func(l *linodego.LKECluster) bool { return l.Label == "up2" && strings.Join(l.Tags, ",") == "a,x" }},
		{"label taken", linodego.LKEClusterUpdateOptions{Label: "other"}, "label", nil},
		{"upgrade", linodego.LKEClusterUpdateOptions{K8sVersion: "1.36"}, "",
			func(l *linodego.LKECluster) bool { return l.K8sVersion == "1.36" }},
		{"downgrade", linodego.LKEClusterUpdateOptions{K8sVersion: "1.32"}, "k8s_version", nil},
		{"unknown version", linodego.LKEClusterUpdateOptions{K8sVersion: "1.99"}, "k8s_version", nil},
		{"enable HA", linodego.LKEClusterUpdateOptions{ControlPlane: &linodego.LKEClusterControlPlaneOptions{HighAvailability: &yes}}, "",
			func(l *linodego.LKECluster) bool { return l.ControlPlane.HighAvailability }},
		{"disable HA", linodego.LKEClusterUpdateOptions{ControlPlane: &linodego.LKEClusterControlPlaneOptions{HighAvailability: &no}}, "control_plane.high_availability", nil},
		{"clear tags", linodego.LKEClusterUpdateOptions{Tags: &[]string{}}, "",
			func(l *linodego.LKECluster) bool {
				return len(l.Tags) == 0 && l.Label == "up2" && l.ControlPlane.HighAvailability
			}},
	}
	for _, st := range steps { // in order: each step builds on the last
		got, err := c.UpdateLKECluster(ctx, cl.ID, st.opts)
		if st.wantErr != "" {
			var e *linodego.Error
			if !errors.As(err, &e) || e.Code != 400 || !strings.Contains(e.Message, "["+st.wantErr+"]") {
				t.Errorf("%s: err = %v, want 400 on %s", st.name, err, st.wantErr)
			}
			continue
		}
		if err != nil || !st.check(got) {
			t.Errorf("%s: got %+v, %v", st.name, got, err)
		}
	}
}
