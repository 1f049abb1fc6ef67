package linodeapi

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDocumentedRateLimits: with DocumentedRateLimits on, GETs of paginated
// collections stop at 200 a minute (429 with Retry-After), other requests count
// against their own 1600, and the next minute starts afresh. Off, nothing is limited.
func TestDocumentedRateLimits(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, url string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, on := range []bool{true, false} {
		clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		_, srv, _ := newTestAPI(t, Options{DocumentedRateLimits: on, Clock: clock.Now})
		for i := range 200 {
			if resp := get(t, srv.URL+"/v4/lke/clusters"); resp.StatusCode != http.StatusOK {
				t.Fatalf("on=%v: collection GET %d = %d, want 200", on, i+1, resp.StatusCode)
			}
		}
		resp := get(t, srv.URL+"/v4/lke/clusters")
		if on && (resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60") {
			t.Errorf("201st collection GET = %d, Retry-After %q; want 429, 60", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if !on && resp.StatusCode != http.StatusOK {
			t.Errorf("limits off: 201st collection GET = %d, want 200", resp.StatusCode)
		}
		if resp := get(t, srv.URL+"/v4/lke/versions/1.33"); resp.StatusCode != http.StatusOK ||
			(on && resp.Header.Get("X-RateLimit-Limit") != "1600") {
			t.Errorf("on=%v: single GET = %d, limit %q; want 200 under the general limit", on, resp.StatusCode, resp.Header.Get("X-RateLimit-Limit"))
		}
		clock.Advance(time.Minute)
		if resp := get(t, srv.URL+"/v4/lke/clusters"); resp.StatusCode != http.StatusOK {
			t.Errorf("on=%v: collection GET a minute later = %d, want 200", on, resp.StatusCode)
		}
	}
}

// TestLimitClasses: the DNS and NodeBalancer collections count as paginated
// collections; one item, and every write, as general requests.
func TestLimitClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path, want string
	}{
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
