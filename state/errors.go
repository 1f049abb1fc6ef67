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

// LockedError says that another process holds the fleet's state store lock.
type LockedError struct {
	Dir string
	// PID of the holder as it wrote it in the lock file; 0 when it could not be read.
	PID int
}

func (e *LockedError) Error() string {
	if e.PID <= 0 {
		return fmt.Sprintf("fleet %s is locked by another reconcile (pid unknown)", e.Dir)
	}
	return fmt.Sprintf("fleet %s is locked by another reconcile (pid %d)", e.Dir, e.PID)
}
