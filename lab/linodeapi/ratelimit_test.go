package linodeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
)

// rawGet sends one GET with the token (or none when token is empty) and returns the
// answer with its body read.
func rawGet(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestDocumentedRateLimits: by default (and with NoRateLimits off) GETs of paginated
// collections stop at 200 a minute with a 429 that carries Retry-After in seconds and
// Linode's error body; other requests count against their own 1600; the next minute
// starts afresh. With NoRateLimits nothing is limited.
func TestDocumentedRateLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		on   bool
	}{
		{"default", Options{}, true},
		{"NoRateLimits", Options{NoRateLimits: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			o := tc.opts
			o.Clock = clock.Now
			_, srv, _ := newTestAPI(t, o)
			for i := range 200 {
				if resp, _ := rawGet(t, srv.URL+"/v4/lke/clusters", testToken); resp.StatusCode != http.StatusOK {
					t.Fatalf("collection GET %d = %d, want 200", i+1, resp.StatusCode)
				}
			}
			clock.Advance(20 * time.Second)
			resp, body := rawGet(t, srv.URL+"/v4/lke/clusters", testToken)
			if tc.on {
				var e apiError
				if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "40" ||
					resp.Header.Get("Content-Type") != "application/json" ||
					json.Unmarshal(body, &e) != nil || len(e.Errors) != 1 || e.Errors[0].Reason == "" {
					t.Errorf("201st collection GET = %d, Retry-After %q, %s; want 429, 40 and an errors body",
						resp.StatusCode, resp.Header.Get("Retry-After"), body)
				}
				if resp.Header.Get("X-RateLimit-Limit") != "200" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
					t.Errorf("429 headers %v, want limit 200, remaining 0", resp.Header)
				}
			} else if resp.StatusCode != http.StatusOK {
				t.Errorf("limits off: 201st collection GET = %d, want 200", resp.StatusCode)
			}
			// Single objects and the public catalogue count elsewhere.
			if resp, _ := rawGet(t, srv.URL+"/v4/lke/versions/1.33", testToken); resp.StatusCode != http.StatusOK ||
				(tc.on && resp.Header.Get("X-RateLimit-Limit") != "1600") {
				t.Errorf("single GET = %d, limit %q; want 200 under the general limit", resp.StatusCode, resp.Header.Get("X-RateLimit-Limit"))
			}
			if resp, _ := rawGet(t, srv.URL+"/v4/lke/types", ""); resp.StatusCode != http.StatusOK {
				t.Errorf("public catalogue without a token = %d, want 200 (counted by address, not token)", resp.StatusCode)
			}
			clock.Advance(40 * time.Second)
			if resp, _ := rawGet(t, srv.URL+"/v4/lke/clusters", testToken); resp.StatusCode != http.StatusOK {
				t.Errorf("collection GET a minute later = %d, want 200", resp.StatusCode)
			}
		})
	}
}

// TestRateLimitedClientWaits: linodego (as the product uses it, retries on) meets the
// documented limit's 429 and waits out Retry-After instead of failing; a client with
// retries off sees the 429 as an error with ErrHasStatus.
func TestRateLimitedClientWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, srv, c := newTestAPI(t, Options{})
	once := newClient(srv.URL, testToken)
	once.SetRetryCount(0)
	// One cheap window: a limit of 3 a second stands in for 200 a minute, so the test
	// does not wait a minute; the documented classes are checked above.
	s.SetRateLimit(3, time.Second)
	for range 3 {
		if _, err := once.ListLKEClusters(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err := once.ListLKEClusters(ctx, nil)
	var le *linodego.Error
	if !linodego.ErrHasStatus(err, http.StatusTooManyRequests) || !errors.As(err, &le) || le.Message == "" {
		t.Fatalf("fourth list without retries: %v, want a 429 linodego.Error", err)
	}
	start := time.Now()
	if _, err := c.ListLKEClusters(ctx, nil); err != nil {
		t.Fatalf("retrying client: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("retrying client took %s", d)
	}
	var limited, ok int
	for _, r := range s.Requests() {
		switch r.Status {
		case http.StatusTooManyRequests:
			limited++
		case http.StatusOK:
			ok++
		}
	}
	if limited < 2 || ok != 4 {
		t.Errorf("requests: %d limited, %d ok; want the retrying client to have met a 429 and then succeeded", limited, ok)
	}
}

// TestRetryAfterIsHonoured: linodego's own default waits (3 s to 30 s) are clamped
// around Retry-After; a client with them waits at least Retry-After's seconds (here 1,
// clamped up to linodego's 3 s minimum) before its retry succeeds.
func TestRetryAfterIsHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a real Retry-After")
	}
	t.Parallel()
	ctx := context.Background()
	s, srv, _ := newTestAPI(t, Options{})
	s.SetRateLimit(1, time.Second)
	c := linodego.NewClient(&http.Client{Timeout: 10 * time.Second})
	c.SetBaseURL(srv.URL)
	c.SetToken(testToken)
	c.SetLogger(quietLogger{})
	if _, err := c.ListLKEClusters(ctx, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.ListLKEClusters(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("second list came back after %s, before Retry-After", d)
	}
}

// TestLimitClasses: the DNS and NodeBalancer collections count as paginated
// collections; one item, and every write, as general requests.
func TestLimitClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path, want string
	}{
		{"GET", "lke/clusters", "collection"},
		{"GET", "lke/clusters/5/pools", "collection"},
		{"GET", "lke/clusters/5/api-endpoints", "collection"},
		{"GET", "lke/versions", "collection"},
		{"GET", "lke/types", "collection"},
		{"GET", "lke/tiers/standard/versions", "collection"},
		{"GET", "lke/clusters/5", "general"},
		{"GET", "lke/clusters/5/kubeconfig", "general"},
		{"GET", "lke/clusters/5/dashboard", "general"},
		{"GET", "lke/clusters/5/control_plane_acl", "general"},
		{"POST", "lke/clusters", "general"},
		{"POST", "lke/clusters/5/recycle", "general"},
		{"GET", "domains", "collection"},
		{"GET", "domains/5/records", "collection"},
		{"GET", "domains/5", "general"},
		{"GET", "domains/5/records/7", "general"},
		{"POST", "domains/5/records", "general"},
		{"GET", "nodebalancers", "collection"},
		{"GET", "nodebalancers/types", "collection"},
		{"GET", "nodebalancers/9/configs", "collection"},
		{"GET", "nodebalancers/9", "general"},
		{"DELETE", "nodebalancers/9", "general"},
	} {
		if got := limitClass(tc.method, strings.Split(tc.path, "/")); got != tc.want {
			t.Errorf("limitClass(%s %s) = %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestRateLimitsPerCaller: windows are kept per token, and per address for requests
// without one, as the real API keeps them per user.
func TestRateLimitsPerCaller(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	_, srv, _ := newTestAPI(t, Options{Clock: clock.Now})
	for range 200 {
		rawGet(t, srv.URL+"/v4/lke/types", "")
	}
	if resp, _ := rawGet(t, srv.URL+"/v4/lke/types", ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("201st anonymous catalogue GET = %d, want 429", resp.StatusCode)
	}
	resp, _ := rawGet(t, srv.URL+"/v4/lke/types", testToken)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("first catalogue GET with the token = %d, want 200 (its own window)", resp.StatusCode)
	}
	if n, _ := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); n != 199 {
		t.Errorf("remaining for the token = %q, want 199", resp.Header.Get("X-RateLimit-Remaining"))
	}
}
