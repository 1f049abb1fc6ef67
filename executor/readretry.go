package executor

import (
	"context"
	"time"
)

// Do runs op until it succeeds, fails with an error Retryable calls terminal, or has made
// MaxAttempts attempts, waiting between attempts with the very backoff Walk uses between the
// attempts of a step. Observation reads go through it, so a read retries as a step does.
// onRetry, when set, sees every failed attempt that is retried and the wait before the next.
func (p RetryPolicy) Do(ctx context.Context, op func(ctx context.Context) error, onRetry func(attempt int, wait time.Duration, err error)) error {
	p = p.withDefaults()
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		retry, after := Retryable(err)
		if !retry || attempt >= p.MaxAttempts || ctx.Err() != nil {
			return err
		}
		wait := p.backoff(attempt, after)
		if onRetry != nil {
			onRetry(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}
