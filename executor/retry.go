package executor

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"time"
)

// Retryable classifies err: it is worth another attempt when it, or anything it wraps,
// says so through a Retryable() bool method, carries a RetryAfter() time.Duration (the
// second result, the least wait), is a network timeout, or is context.DeadlineExceeded.
// An explicit Retryable() false wins over everything else. Any other error is terminal.
//
// DeadlineExceeded is retryable here because it usually comes from a per-call timeout;
// Walk itself never retries once its own context is done.
func Retryable(err error) (bool, time.Duration) {
	if err == nil {
		return false, 0
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) && !r.Retryable() {
		return false, 0
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return true, max(ra.RetryAfter(), 0)
	}
	if r != nil {
		return true, 0
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, 0
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true, 0
	}
	return false, 0
}

// backoff is the wait before attempt n+1 after attempt n (n >= 1) failed: exponential from
// BaseDelay, capped at MaxDelay, with equal jitter (half fixed, half random) so steps that
// failed together do not retry in lockstep; never shorter than after.
func (p RetryPolicy) backoff(n int, after time.Duration) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		if d > p.MaxDelay/2 {
			d = p.MaxDelay
			break
		}
		d *= 2
	}
	d = min(d, p.MaxDelay)
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	return max(d, after)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = time.Second
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 30 * time.Second
	}
	p.MaxDelay = max(p.MaxDelay, p.BaseDelay)
	return p
}
