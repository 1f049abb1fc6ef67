package linode

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state"
)

func TestPoolUpdate(t *testing.T) {
	t.Parallel()
	tags := func(t ...string) *[]string { return &t }
	have := linodego.LKENodePool{ID: 7, Type: "g6-standard-2", Count: 2, Tags: []string{"b", "a"},
		Autoscaler: linodego.LKENodePoolAutoscaler{Enabled: true, Min: 1, Max: 3}}
	cases := []struct {
		name   string
		u      plan.PoolUpdate
		fields []string
		want   linodego.LKENodePoolUpdateOptions
	}{
		{"nothing set", plan.PoolUpdate{ID: 7}, nil, linodego.LKENodePoolUpdateOptions{}},
		{"all hold", plan.PoolUpdate{ID: 7, Count: 2, Autoscaler: &plan.Autoscaler{Enabled: true, Min: 1, Max: 3}, Tags: tags("a", "b")},
			nil, linodego.LKENodePoolUpdateOptions{}},
		{"count", plan.PoolUpdate{ID: 7, Count: 4}, []string{"count"}, linodego.LKENodePoolUpdateOptions{Count: 4}},
		{"autoscaler bounds", plan.PoolUpdate{ID: 7, Autoscaler: &plan.Autoscaler{Enabled: true, Min: 2, Max: 5}}, []string{"autoscaler"},
			linodego.LKENodePoolUpdateOptions{Autoscaler: &linodego.LKENodePoolAutoscaler{Enabled: true, Min: 2, Max: 5}}},
		{"autoscaler off keeps valid bounds", plan.PoolUpdate{ID: 7, Autoscaler: &plan.Autoscaler{}}, []string{"autoscaler"},
			linodego.LKENodePoolUpdateOptions{Autoscaler: &linodego.LKENodePoolAutoscaler{Enabled: false, Min: 1, Max: 3}}},
		{"tags cleared", plan.PoolUpdate{ID: 7, Tags: tags()}, []string{"tags"},
			linodego.LKENodePoolUpdateOptions{Tags: &[]string{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, fields := poolUpdate(tc.u, have)
			if !slices.Equal(fields, tc.fields) || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v %v, want %+v %v", got, fields, tc.want, tc.fields)
			}
		})
	}
	// An autoscaler that is already off stays untouched.
	off := have
	off.Autoscaler.Enabled = false
	if _, fields := poolUpdate(plan.PoolUpdate{ID: 7, Autoscaler: &plan.Autoscaler{}}, off); len(fields) != 0 {
		t.Errorf("turning off an autoscaler that is off: %v", fields)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	resp := &http.Response{Header: http.Header{"Retry-After": []string{"7"}}}
	cases := []struct {
		name      string
		err       error
		transient bool
		after     time.Duration
		msg       string
	}{
		{"429", &linodego.Error{Code: 429, Message: "Too many requests", Response: resp}, true, 7 * time.Second, "linode: op: Too many requests"},
		{"502 value", linodego.Error{Code: 502, Message: "Bad Gateway"}, true, 0, "linode: op: Bad Gateway"},
		{"wire", &linodego.Error{Code: linodego.ErrorFromError, Message: "connection refused"}, true, 0, "linode: op: connection refused"},
		{"400 fields", &linodego.Error{Code: 400, Message: "[region] region is not valid; [label] too long"}, false, 0,
			"linode: op: region: region is not valid; label: too long"},
		{"404", &linodego.Error{Code: 404, Message: "Not found"}, false, 0, "linode: op: Not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := classify(context.Background(), "op", tc.err)
			var te *state.TransientError
			if errors.As(err, &te) != tc.transient {
				t.Errorf("transient = %v, want %v (%v)", !tc.transient, tc.transient, err)
			}
			if tc.transient && te.RetryAfter() != tc.after {
				t.Errorf("after %v, want %v", te.RetryAfter(), tc.after)
			}
			if err.Error() != tc.msg {
				t.Errorf("message %q, want %q", err, tc.msg)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := classify(ctx, "op", &linodego.Error{Code: 2, Message: "context canceled"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
}

func TestRequestsAreRateLimited(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, withPrices(t, newStore(t)), func(c *Config) { c.RequestsPerSecond = 40 })
	f := testFleet("mgr") // owns nothing: one request per observe
	start := time.Now()
	for range 60 {
		if err := d.Observe(context.Background(), f, &world.World{}); err != nil {
			t.Fatal(err)
		}
	}
	// A burst of 40, then 20 more at 40/s take at least half a second.
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("60 requests at 40/s took %v", took)
	}
	if n := len(l.api.Requests()); n != 60 {
		t.Errorf("%d requests, want 60", n)
	}
}

func TestObserveKeepsClustersThatLeftTheFleet(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, newStore(t))
	f := testFleet("mgr", "eu")
	converge(t, d, f, "mgr", "eu")
	f.Members = nil
	w := observe(t, d, f)
	if c := w.Clusters["eu"]; c == nil || c.LinodeID == 0 || c.Label != "eu" {
		t.Errorf("eu left the fleet and is not observed: %+v", c)
	}
}
