package linode

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

func TestMatchPools(t *testing.T) {
	t.Parallel()
	have := func(id int, typ string) linodego.LKENodePool { return linodego.LKENodePool{ID: id, Type: typ} }
	want := func(typ string) spec.Pool { return spec.Pool{Type: typ, Count: 1} }
	cases := []struct {
		name   string
		want   []spec.Pool
		have   []linodego.LKENodePool
		keep   [][2]any // spec index -> pool id
		create []string
		remove []int
	}{
		{"same", []spec.Pool{want("a"), want("b")}, []linodego.LKENodePool{have(2, "b"), have(1, "a")},
			[][2]any{{0, 1}, {1, 2}}, nil, nil},
		{"type changed", []spec.Pool{want("c")}, []linodego.LKENodePool{have(1, "a")},
			nil, []string{"c"}, []int{1}},
		{"same type twice, by id order", []spec.Pool{want("a"), want("a")}, []linodego.LKENodePool{have(9, "a"), have(3, "a")},
			[][2]any{{0, 3}, {1, 9}}, nil, nil},
		{"one of two removed", []spec.Pool{want("a")}, []linodego.LKENodePool{have(9, "a"), have(3, "a")},
			[][2]any{{0, 3}}, nil, []int{9}},
		{"added", []spec.Pool{want("a"), want("b")}, []linodego.LKENodePool{have(3, "a")},
			[][2]any{{0, 3}}, []string{"b"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := matchPools(tc.want, tc.have)
			if len(p.keep) != len(tc.keep) {
				t.Fatalf("keep %+v, want %v", p.keep, tc.keep)
			}
			for i, k := range tc.keep {
				if p.keep[i].want.Type != tc.want[k[0].(int)].Type || p.keep[i].have.ID != k[1].(int) {
					t.Errorf("keep[%d] = %s/%d, want %v", i, p.keep[i].want.Type, p.keep[i].have.ID, k)
				}
			}
			var created []string
			for _, c := range p.create {
				created = append(created, c.Type)
			}
			var removed []int
			for _, r := range p.remove {
				removed = append(removed, r.ID)
			}
			if !slices.Equal(created, tc.create) || !slices.Equal(removed, tc.remove) {
				t.Errorf("create %v remove %v, want %v %v", created, removed, tc.create, tc.remove)
			}
		})
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
	d := newDriver(t, l, newStore(t), func(c *Config) { c.RequestsPerSecond = 40 })
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
