package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// Backend is where a fleet's state lives: what cannot be observed (the mesh root CA, minted
// credentials), cached kubeconfigs, the record of passes, and the fleet's lock. Two
// implementations exist: the local directory (*Store, the default) and Kubernetes Secrets
// with a coordination.k8s.io Lease (state/kubestore).
//
// Names are slash-separated, at most one directory deep ("kubeconfigs/us", "passes.jsonl").
// ReadFile of a missing name returns an error that errors.Is(err, os.ErrNotExist).
type Backend interface {
	WriteFile(name string, data []byte) error
	ReadFile(name string) ([]byte, error)
	Exists(name string) bool
	// Remove deletes the named file; removing a missing file is not an error.
	Remove(name string) error
	// List returns every file name the backend holds, sorted (state migrate copies them).
	List() ([]string, error)
	// Lock takes the fleet's exclusive lock for a writing run, waiting up to opts.Wait (zero:
	// fail at once). A lock held by another gives a *LockedError that names the holder.
	Lock(ctx context.Context, opts LockOptions) (Lock, error)
	RecordPass(p PassRecord) error
	Passes() ([]PassRecord, error)
	// Describe says where the state lives, for people ("local /var/lib/reconcile/prod",
	// "kubernetes reconcile-system in ops-kubeconfig").
	Describe() string
}

// LockOptions says how long Lock may wait and who is asking.
type LockOptions struct {
	// Wait is how long to wait for a lock another holds; zero fails at once.
	Wait time.Duration
	// Holder identifies this runner; the zero value is filled by ThisHolder.
	Holder Holder
}

// Holder is who holds a lock: written into the lock (a file, a Lease) so a waiting runner can
// say who it waits for.
type Holder struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	// ID is unique per acquisition (two runs on one host with a reused pid differ).
	ID string `json:"id,omitempty"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on %s", h.PID, h.Host)
	if h.PID <= 0 {
		s = "an unknown process on " + h.Host
	}
	if h.Host == "" {
		s = fmt.Sprintf("pid %d", h.PID)
	}
	if !h.Since.IsZero() {
		s += " since " + h.Since.UTC().Format(time.RFC3339)
	}
	return s
}

// ThisHolder describes this process, holding since now.
func ThisHolder() Holder {
	host, _ := os.Hostname()
	return Holder{Host: host, PID: os.Getpid(), Since: time.Now(), ID: randomID()}
}

// Lock is a held fleet lock.
type Lock interface {
	// Lost is closed when the lock is no longer ours (a Lease that could not be renewed before
	// it expired, or was taken over). A holder stops starting work at once when it closes.
	// A local file lock is never lost while the process lives.
	Lost() <-chan struct{}
	// Release gives the lock up; calling it twice is harmless.
	Release() error
	// Holder is who holds it (this process).
	Holder() Holder
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var _ Backend = (*Store)(nil)
