package linode

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/state/world"
)

func TestEndpointClass(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/v4/lke/clusters":                       "lke-clusters",
		"/v4/lke/clusters/12":                    "lke-clusters",
		"/v4/lke/clusters/12/kubeconfig":         "lke-clusters",
		"/v4/lke/clusters/12/pools":              "lke-pools",
		"/v4/lke/clusters/12/pools/7":            "lke-pools",
		"/v4/lke/clusters/12/nodes/12-abc":       "lke-pools",
		"/v4beta/lke/versions":                   "lke-meta",
		"/api/v4/lke/types":                      "lke-meta",
		"/v4/linode/instances":                   "instances",
		"/v4/linode/instances/5":                 "instances",
		"/v4/account":                            "other",
		"/":                                      "other",
		"/v4/networking/firewalls/1/devices/lke": "other",
	} {
		if got := EndpointClass(path); got != want {
			t.Errorf("EndpointClass(%q) = %q, want %q", path, got, want)
		}
	}
}

// Every request is counted, retries of a 429 included, with the status the API answered.
func TestRequestsCountedWithStatus(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	l.api.SetRateLimit(1, time.Hour)
	var mu sync.Mutex
	seen := map[string]map[int]int{}
	d := newDriver(t, l, withPrices(t, newStore(t)), func(c *Config) {
		c.RetryCount = 2
		c.Requests = func(class string, status int) {
			mu.Lock()
			defer mu.Unlock()
			if seen[class] == nil {
				seen[class] = map[int]int{}
			}
			seen[class][status]++
		}
	})
	if err := d.Observe(context.Background(), testFleet("mgr"), &world.World{}); err != nil {
		t.Fatalf("first observation within the limit: %v", err)
	}
	if err := d.Observe(context.Background(), testFleet("mgr"), &world.World{}); err == nil {
		t.Fatal("second observation passed the API's rate limit")
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["lke-clusters"][200] != 1 || seen["lke-clusters"][429] != 3 {
		t.Errorf("requests by class and status: %v, want lke-clusters 200 once and 429 three times (a try and 2 retries)", seen)
	}
}
