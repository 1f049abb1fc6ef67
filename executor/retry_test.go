package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state"
)

func TestRetryable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		err   error
		retry bool
		after time.Duration
	}{
		{"nil", nil, false, 0},
		{"plain", errors.New("invalid label"), false, 0},
		{"canceled", context.Canceled, false, 0},
		{"deadline", context.DeadlineExceeded, true, 0},
		{"wrapped deadline", fmt.Errorf("get kubeconfig: %w", context.DeadlineExceeded), true, 0},
		{"net timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, true, 0},
		{"url timeout", &url.Error{Op: "Get", URL: "https://api.linode.com", Err: timeoutErr{}}, true, 0},
		{"net error without timeout", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false, 0},
		{"retryable", flaky{true}, true, 0},
		{"explicitly terminal", fmt.Errorf("x: %w", flaky{false}), false, 0},
		{"explicit terminal wins over deadline", errors.Join(flaky{false}, context.DeadlineExceeded), false, 0},
		{"retry after", fmt.Errorf("429: %w", retryLater{3 * time.Second}), true, 3 * time.Second},
		{"negative retry after", retryLater{-time.Second}, true, 0},
		{"state transient", state.Transient(errors.New("503"), 2*time.Second), true, 2 * time.Second},
		{"wrapped state transient", fmt.Errorf("apply: %w", state.Transient(errors.New("conflict"), 0)), true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			retry, after := Retryable(tc.err)
			if retry != tc.retry || after != tc.after {
				t.Errorf("Retryable(%v) = %v, %v; want %v, %v", tc.err, retry, after, tc.retry, tc.after)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{}.withDefaults()
	if p.MaxAttempts != 5 || p.BaseDelay != time.Second || p.MaxDelay != 30*time.Second {
		t.Fatalf("defaults = %+v", p)
	}
	cases := []struct {
		attempt  int
		after    time.Duration
		min, max time.Duration
	}{
		{1, 0, 500 * time.Millisecond, time.Second},
		{2, 0, time.Second, 2 * time.Second},
		{4, 0, 4 * time.Second, 8 * time.Second},
		{5, 0, 8 * time.Second, 16 * time.Second},
		{6, 0, 15 * time.Second, 30 * time.Second},
		{60, 0, 15 * time.Second, 30 * time.Second},
		{1, 45 * time.Second, 45 * time.Second, 45 * time.Second},
		{3, 3 * time.Second, 3 * time.Second, 4 * time.Second},
	}
	for _, tc := range cases {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.backoff(tc.attempt, tc.after)
			if d < tc.min || d > tc.max {
				t.Fatalf("backoff(%d, %v) = %v, want within [%v, %v]", tc.attempt, tc.after, d, tc.min, tc.max)
			}
			seen[d] = true
		}
		if tc.min != tc.max && len(seen) < 2 {
			t.Errorf("backoff(%d, %v) has no jitter: always %v", tc.attempt, tc.after, seen)
		}
	}
}
