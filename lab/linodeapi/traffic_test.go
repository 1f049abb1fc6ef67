package linodeapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
)

func TestPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, c := newTestAPI(t, Options{})
	for i := range 5 {
		if _, err := c.CreateLKECluster(ctx, createOpts(fmt.Sprintf("c%d", i), "us-east", 1)); err != nil {
			t.Fatal(err)
		}
	}
	s.ResetRequests()
	all, err := c.ListLKEClusters(ctx, &linodego.ListOptions{PageOptions: &linodego.PageOptions{}, PageSize: 2})
	if err != nil || len(all) != 5 {
		t.Fatalf("list with page_size 2 = %d clusters, %v; want 5", len(all), err)
	}
	seen := map[int]bool{}
	for _, cl := range all {
		seen[cl.ID] = true
	}
	if len(seen) != 5 {
		t.Errorf("pages overlap: %d distinct ids", len(seen))
	}
	if n := len(s.Requests()); n != 3 {
		t.Errorf("page_size 2 over 5 took %d requests, want 3", n)
	}
	if all, err := c.ListLKEClusters(ctx, nil); err != nil || len(all) != 5 {
		t.Errorf("list with nil options = %d, %v", len(all), err)
	}
	opts := &linodego.ListOptions{PageOptions: &linodego.PageOptions{Page: 3}, PageSize: 2}
	last, err := c.ListLKEClusters(ctx, opts)
	if err != nil || len(last) != 1 || opts.Pages != 3 || opts.Results != 5 {
		t.Errorf("page 3 = %d items, pages %d, results %d, %v", len(last), opts.Pages, opts.Results, err)
	}
}

func TestFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, c := newTestAPI(t, Options{})
	mk := []struct {
		label, region string
		tags          []string
	}{
		{"m1", "eu-west", []string{"fleet:a", "role:manager"}},
		{"m2", "ap-south", []string{"fleet:a"}},
		{"m3", "us-west", []string{"fleet:b"}},
		{"m4", "eu-west", nil},
	}
	for _, m := range mk {
		if _, err := c.CreateLKECluster(ctx, createOpts(m.label, m.region, 1, m.tags...)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		filter string
		want   string
	}{
		{`{"label": "m2"}`, "m2"},
		{`{"region": "eu-west"}`, "m1,m4"},
		{`{"tags": "fleet:a"}`, "m1,m2"},
		{`{"tags": "nope"}`, ""},
		{`{"+and": [{"tags": "fleet:a"}, {"region": "eu-west"}]}`, "m1"},
		{`{"+or": [{"label": "m3"}, {"region": "ap-south"}]}`, "m2,m3"},
		{`{"tags": "fleet:a", "+order_by": "label", "+order": "desc"}`, "m2,m1"},
		{`{"label": {"+contains": "m"}, "region": {"+neq": "eu-west"}}`, "m2,m3"},
	}
	for _, tc := range cases {
		t.Run(tc.filter, func(t *testing.T) {
			got, err := c.ListLKEClusters(ctx, linodego.NewListOptions(0, tc.filter))
			if err != nil {
				t.Fatal(err)
			}
			var labels []string
			for _, cl := range got {
				labels = append(labels, cl.Label)
			}
			if s := strings.Join(labels, ","); s != tc.want {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
}

func TestRateLimitIsRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, srv, c := newTestAPI(t, Options{})
	s.SetRateLimit(2, 1200*time.Millisecond)
	once := newClient(srv.URL, testToken)
	once.SetRetryCount(0)

	var saw429 bool
	var retryAfter string
	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL+"/v4/lke/clusters", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			saw429, retryAfter = true, resp.Header.Get("Retry-After")
			if resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Limit") != "2" {
				t.Errorf("429 headers: %v", resp.Header)
			}
		}
	}
	if !saw429 {
		t.Fatal("third request within the window was not limited")
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 || n > 2 {
		t.Errorf("Retry-After = %q, want integer seconds 1..2", retryAfter)
	}
	if _, err := once.ListLKEClusters(ctx, nil); !linodego.ErrHasStatus(err, http.StatusTooManyRequests) {
		t.Errorf("non-retrying client: err = %v, want 429", err)
	}
	// linodego retries 429 (waits clamped to its 50ms maximum) until the window ends.
	s.ResetRequests()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.ListLKEClusters(cctx, nil); err != nil {
		t.Fatalf("retrying client: %v", err)
	}
	var limited int
	for _, r := range s.Requests() {
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("retrying client never met a 429; the test proves nothing")
	}
}

func TestFaultsAreSurvivedWithRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, c := newTestAPI(t, Options{Seed: 7})
	cl, err := c.CreateLKECluster(ctx, createOpts("f", "eu-central", 1))
	if err != nil {
		t.Fatal(err)
	}
	s.SetFaultRate(0.2)
	retry := func(call func() error) error {
		var err error
		for range 20 {
			if err = call(); err == nil || !linodego.ErrHasStatus(err, 500, 502, 504) {
				return err
			}
		}
		return err
	}
	for i := range 50 {
		if err := retry(func() error { _, err := c.GetLKECluster(ctx, cl.ID); return err }); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	faults := map[int]int{}
	for _, r := range s.Requests() {
		if r.Status >= 500 {
			faults[r.Status]++
		}
	}
	if faults[500]+faults[502]+faults[504] == 0 || len(faults) < 2 {
		t.Errorf("fault mix = %v, want several 5xx kinds", faults)
	}
	s.SetFaultRate(0)
	s.ResetRequests()
	if _, err := c.GetLKECluster(ctx, cl.ID); err != nil {
		t.Errorf("after SetFaultRate(0): %v", err)
	}
}

func TestRequestsCountsGets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, c := newTestAPI(t, Options{})
	cl, err := c.CreateLKECluster(ctx, createOpts("r", "us-east", 1))
	if err != nil {
		t.Fatal(err)
	}
	s.ResetRequests()
	for range 4 {
		if _, err := c.GetLKECluster(ctx, cl.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.UpdateLKECluster(ctx, cl.ID, linodego.LKEClusterUpdateOptions{Label: "r2"}); err != nil {
		t.Fatal(err)
	}
	var gets, puts int
	for _, r := range s.Requests() {
		switch {
		case r.Method == "GET" && r.Path == "/v4/lke/clusters/"+itoa(cl.ID) && r.Status == 200:
			gets++
		case r.Method == "PUT":
			puts++
		}
	}
	if gets != 4 || puts != 1 {
		t.Errorf("recorded %d GETs and %d PUTs, want 4 and 1", gets, puts)
	}
}

// TestInstancesAndReadiness uses a fake clock: nodes become instances when the
// cluster is provisioned, "provisioning" until NodeReadyDelay has passed, then
// "running" with ready nodes.
func TestInstancesAndReadiness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := &testBackend{nodeIPs: []string{"198.51.100.7"}}
	_, _, c := newTestAPI(t, Options{Backend: b, Clock: clk.Now, NodeReadyDelay: time.Minute})
	eu, err := c.CreateLKECluster(ctx, createOpts("eu", "eu-west", 2, "fleet:x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLKECluster(ctx, createOpts("us", "us-east", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "instances of both clusters", func() bool {
		all, err := c.ListInstances(ctx, nil)
		return err == nil && len(all) == 3
	})
	insts, err := c.ListInstances(ctx, linodego.NewListOptions(0, `{"+and": [{"tags": "fleet:x"}, {"region": "eu-west"}]}`))
	if err != nil || len(insts) != 0 {
		// tags are the pool's, not the cluster's
		t.Errorf("instances by cluster tag = %d, %v; want 0", len(insts), err)
	}
	insts, err = c.ListInstances(ctx, linodego.NewListOptions(0, `{"region": "eu-west"}`))
	if err != nil || len(insts) != 2 {
		t.Fatalf("instances in eu-west = %d, %v", len(insts), err)
	}
	label := regexp.MustCompile(`^lke` + itoa(eu.ID) + `-\d+-[0-9a-f]{8}$`)
	for _, in := range insts {
		if !label.MatchString(in.Label) || in.LKEClusterID != eu.ID || in.Status != linodego.InstanceProvisioning {
			t.Errorf("instance = label %q cluster %d status %q", in.Label, in.LKEClusterID, in.Status)
		}
		if len(in.IPv4) == 0 || in.IPv4[0].String() != "198.51.100.7" {
			t.Errorf("instance ipv4 = %v", in.IPv4)
		}
	}
	byLabel, err := c.ListInstances(ctx, linodego.NewListOptions(0, `{"label": "`+insts[0].Label+`"}`))
	if err != nil || len(byLabel) != 1 || byLabel[0].ID != insts[0].ID {
		t.Errorf("instance by label = %+v, %v", byLabel, err)
	}
	pools, _ := c.ListLKENodePools(ctx, eu.ID, nil)
	for _, n := range pools[0].Linodes {
		if n.InstanceID == 0 || n.Status != linodego.LKELinodeNotReady {
			t.Errorf("node before NodeReadyDelay = %+v", n)
		}
	}

	clk.Advance(time.Minute)
	pools, _ = c.ListLKENodePools(ctx, eu.ID, nil)
	for _, n := range pools[0].Linodes {
		if n.Status != linodego.LKELinodeReady {
			t.Errorf("node after NodeReadyDelay = %+v", n)
		}
		in, err := c.GetInstance(ctx, n.InstanceID)
		if err != nil || in.Status != linodego.InstanceRunning {
			t.Errorf("instance after NodeReadyDelay = %+v, %v", in, err)
		}
	}

	// A node added later waits for its own ProvisionDelay (zero here) only.
	if _, err := c.UpdateLKENodePool(ctx, eu.ID, pools[0].ID, linodego.LKENodePoolUpdateOptions{Count: 3}); err != nil {
		t.Fatal(err)
	}
	up, err := c.GetLKENodePool(ctx, eu.ID, pools[0].ID)
	if err != nil || len(up.Linodes) != 3 || up.Linodes[2].InstanceID == 0 || up.Linodes[2].Status != linodego.LKELinodeNotReady {
		t.Errorf("scaled pool = %+v, %v", up, err)
	}
	// Deleting a node shrinks its pool.
	if err := c.DeleteLKENodePoolNode(ctx, eu.ID, up.Linodes[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetLKENodePoolNode(ctx, eu.ID, up.Linodes[0].ID); !linodego.IsNotFound(err) {
		t.Errorf("deleted node: %v", err)
	}
	p, err := c.GetLKENodePool(ctx, eu.ID, up.ID)
	if err != nil || p.Count != 2 {
		t.Errorf("pool after node delete = %+v, %v", p, err)
	}
	// Recycling replaces every node.
	if err := c.RecycleLKENodePool(ctx, eu.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	r, _ := c.GetLKENodePool(ctx, eu.ID, p.ID)
	for i := range r.Linodes {
		if r.Linodes[i].ID == p.Linodes[i].ID {
			t.Errorf("node %s survived recycle", p.Linodes[i].ID)
		}
	}
}

func TestCloseDeprovisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := &testBackend{gate: make(chan struct{})}
	s := New(Options{Token: testToken, Backend: b})
	srv := httpServer(t, s)
	c := newClient(srv, testToken)
	cl, err := c.CreateLKECluster(ctx, createOpts("held", "us-east", 1))
	if err != nil {
		t.Fatal(err)
	}
	// Provisioning runs in the background: Close must come once it is blocked in the
	// backend, or there is nothing to cancel or deprovision (TestCloseBeforeProvisioning).
	waitFor(t, 5*time.Second, "the provisioning to reach the backend", func() bool { return b.enteredCalls() == 1 })
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop a provisioning that was blocked in the backend")
	}
	b.mu.Lock()
	cancelled := b.cancelled
	b.mu.Unlock()
	if cancelled != 1 {
		t.Errorf("backend saw %d cancelled provisions, want 1", cancelled)
	}
	if ids := b.deprovisionedIDs(); len(ids) != 1 || ids[0] != cl.ID {
		t.Errorf("deprovisioned %v, want [%d]", ids, cl.ID)
	}
}

// TestCloseBeforeProvisioning: a cluster whose provisioning delay has not passed is
// never handed to the backend, neither to Provision nor to Deprovision.
func TestCloseBeforeProvisioning(t *testing.T) {
	t.Parallel()
	b := &testBackend{}
	s := New(Options{Token: testToken, Backend: b, ProvisionDelay: time.Hour})
	c := newClient(httpServer(t, s), testToken)
	if _, err := c.CreateLKECluster(context.Background(), createOpts("early", "us-east", 1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := b.enteredCalls(); n != 0 {
		t.Errorf("backend saw %d provisions, want 0", n)
	}
	if ids := b.deprovisionedIDs(); len(ids) != 0 {
		t.Errorf("deprovisioned %v, want none", ids)
	}
}

// TestDeleteAfterClose: Close deprovisions every provisioned cluster once; deleting
// one afterwards (the handler keeps answering) does not deprovision it again.
func TestDeleteAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := &testBackend{}
	s := New(Options{Token: testToken, Backend: b})
	c := newClient(httpServer(t, s), testToken)
	var ids []int
	for _, label := range []string{"one", "two"} {
		cl, err := c.CreateLKECluster(ctx, createOpts(label, "us-east", 1))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cl.ID)
	}
	waitFor(t, 5*time.Second, "both clusters provisioned", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.provisioned) == 2
	})
	s.Close()
	if got := b.deprovisionedIDs(); !slices.Equal(got, ids) {
		t.Fatalf("deprovisioned by Close %v, want %v", got, ids)
	}
	if err := c.DeleteLKECluster(ctx, ids[0]); err != nil {
		t.Fatalf("delete after Close: %v", err)
	}
	s.wg.Wait() // any background deprovision the delete started has finished
	if got := b.deprovisionedIDs(); !slices.Equal(got, ids) {
		t.Errorf("deprovisioned %v after a delete following Close, want %v", got, ids)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, "127.0.0.1:0", Options{}, pw); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`^Linode API listening on (http://127\.0\.0\.1:\d+) \(token: ([0-9a-f]{64})\)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line = %q", line)
	}
	c := newClient(m[1], m[2])
	if _, err := c.ListLKEClusters(ctx, nil); err != nil {
		t.Errorf("list through Run: %v", err)
	}
	if _, err := newClient(m[1], "wrong").ListLKEClusters(ctx, nil); !linodego.ErrHasStatus(err, 401) {
		t.Errorf("wrong token through Run: %v", err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestBackendFailuresAreRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := &testBackend{failFirst: 2}
	_, _, c := newTestAPI(t, Options{Backend: b})
	cl, err := c.CreateLKECluster(ctx, createOpts("flaky", "us-east", 2))
	if err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.GetLKEClusterKubeconfig(kctx, cl.ID); err != nil {
		t.Fatalf("kubeconfig after backend retries: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls != 3 || len(b.provisioned) != 1 || b.provisioned[0].Nodes != 2 || b.provisioned[0].Label != "flaky" {
		t.Errorf("backend calls %d, provisioned %+v", b.calls, b.provisioned)
	}
}

func TestSlowRequests(t *testing.T) {
	t.Parallel()
	const delay = 80 * time.Millisecond
	_, _, c := newTestAPI(t, Options{SlowRate: 1, SlowDelay: delay})
	start := time.Now()
	if _, err := c.ListLKEClusters(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("slow request took %s, want at least %s", took, delay)
	}
}
