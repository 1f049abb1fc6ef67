package state

import (
	"fmt"
	"time"
)

// TransientError marks an error as worth retrying, optionally not before After. Drivers under
// state/... return it (through Transient) so the executor retries without either package
// importing the other: the executor only looks for the Retryable and RetryAfter methods.
type TransientError struct {
	Err error
	// After is the least wait before the next attempt (a Retry-After header); zero leaves
	// the delay to the executor's backoff.
	After time.Duration
}

func (e *TransientError) Error() string {
	if e.Err == nil {
		return "transient error"
	}
	return e.Err.Error()
}

func (e *TransientError) Unwrap() error { return e.Err }

// Retryable reports that the operation may succeed if tried again.
func (e *TransientError) Retryable() bool { return true }

// RetryAfter is the least wait before the next attempt.
func (e *TransientError) RetryAfter() time.Duration { return e.After }

// Transient marks err as retryable after at least after; a nil err stays nil.
func Transient(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err, After: after}
}

// LockedError says that another runner holds the fleet's lock.
type LockedError struct {
	// Where the lock lives (Backend.Describe).
	Where string
	// Holder as it wrote itself into the lock; zero fields when they could not be read.
	Holder Holder
	// Waited is how long Lock waited before giving up.
	Waited time.Duration
}

func (e *LockedError) Error() string {
	who := "another reconcile (holder unknown)"
	if e.Holder.PID > 0 || e.Holder.Host != "" {
		who = "another reconcile: " + e.Holder.String()
	}
	msg := fmt.Sprintf("fleet state %s is locked by %s", e.Where, who)
	if e.Waited > 0 {
		msg += fmt.Sprintf(" (waited %s; raise --lock-timeout to wait longer)", e.Waited)
	} else {
		msg += " (--lock-timeout waits for it)"
	}
	return msg
}
