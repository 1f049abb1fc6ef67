package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func probe(h *Health, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

// /readyz: ready once the world is observed, not after a failed pass, and while standing by.
// /healthz: alive while the loop comes around or its pass is within StuckAfter.
func TestHealthProbes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	h := &Health{StuckAfter: time.Hour, Now: func() time.Time { return now }}
	expect := func(path string, code int, body string) {
		t.Helper()
		gotCode, gotBody := probe(h, path)
		if gotCode != code || !strings.Contains(gotBody, body) {
			t.Errorf("%s: %d %q, want %d and %q", path, gotCode, gotBody, code, body)
		}
	}
	expect("/healthz", 200, "starting")
	expect("/readyz", 503, "not observed yet")

	h.passStarting()
	now = now.Add(time.Minute)
	expect("/readyz", 503, "not observed yet")
	h.sawWorld()
	expect("/readyz", 200, "running")
	expect("/healthz", 200, "a pass has run for 1m0s")
	now = now.Add(2 * time.Hour)
	expect("/healthz", 503, "stuck: a pass has run for 2h1m0s, longer than 1h0m0s")

	h.passed(errors.New("cluster/eu: boom"))
	expect("/healthz", 200, "running")
	expect("/readyz", 503, "failed")
	h.idle()
	now = now.Add(time.Minute)
	expect("/healthz", 503, "stuck: the loop last came around 1m0s ago")
	h.passStarting()
	h.passed(nil)
	expect("/readyz", 200, "running; last pass")
	expect("/healthz", 200, "running")

	h.set(standingBy)
	expect("/readyz", 200, "standing by")
	now = now.Add(24 * time.Hour)
	expect("/healthz", 200, "standing by")
	h.set(leading)
	expect("/readyz", 503, "not observed yet") // a new term observes afresh
}
