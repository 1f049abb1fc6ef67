package executor

import (
	"context"
	"errors"
	"testing"
	"time"
)

type transientErr struct{}

func (transientErr) Error() string   { return "503" }
func (transientErr) Retryable() bool { return true }

// Do retries as Walk retries a step: retryable errors until MaxAttempts, terminal ones never.
func TestRetryPolicyDo(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	terminal := errors.New("400")
	for _, tc := range []struct {
		name     string
		errs     []error
		want     error
		attempts int
	}{
		{"succeeds after two 5xx", []error{transientErr{}, transientErr{}, nil}, nil, 3},
		{"gives up at MaxAttempts", []error{transientErr{}, transientErr{}, transientErr{}, nil}, transientErr{}, 3},
		{"never retries a terminal error", []error{terminal, nil}, terminal, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, retries := 0, 0
			err := p.Do(context.Background(), func(context.Context) error {
				n++
				return tc.errs[n-1]
			}, func(int, time.Duration, error) { retries++ })
			if !errors.Is(err, tc.want) || n != tc.attempts || retries != tc.attempts-1 {
				t.Errorf("err %v after %d attempts and %d retries, want %v after %d", err, n, retries, tc.want, tc.attempts)
			}
		})
	}
}
