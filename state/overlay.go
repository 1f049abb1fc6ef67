package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
)

// Overlay is a Backend that reads through to another and keeps every write in memory: a dry
// run observes with it (observers cache what they fetch, such as a kubeconfig or a pool list)
// and the real state is left exactly as it was. It never locks and records no passes.
type Overlay struct {
	base Backend

	mu      sync.Mutex
	written map[string][]byte
	removed map[string]bool
}

// NewOverlay returns an overlay over base.
func NewOverlay(base Backend) *Overlay {
	return &Overlay{base: base, written: map[string][]byte{}, removed: map[string]bool{}}
}

// WriteFile keeps data in memory.
func (o *Overlay) WriteFile(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.written[name] = append([]byte(nil), data...)
	delete(o.removed, name)
	return nil
}

// ReadFile returns what was written through the overlay, else the base's file.
func (o *Overlay) ReadFile(name string) ([]byte, error) {
	o.mu.Lock()
	data, ok := o.written[name]
	gone := o.removed[name]
	o.mu.Unlock()
	switch {
	case ok:
		return append([]byte(nil), data...), nil
	case gone:
		return nil, fmt.Errorf("state store: %s: %w", name, os.ErrNotExist)
	}
	return o.base.ReadFile(name)
}

// Exists implements Backend.
func (o *Overlay) Exists(name string) bool {
	o.mu.Lock()
	_, ok := o.written[name]
	gone := o.removed[name]
	o.mu.Unlock()
	return ok || !gone && o.base.Exists(name)
}

// Remove hides the base's file from this overlay.
func (o *Overlay) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.written, name)
	o.removed[name] = true
	return nil
}

// List implements Backend.
func (o *Overlay) List() ([]string, error) {
	names, err := o.base.List()
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !o.removed[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for n := range o.written {
		if !seen[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ErrOverlayLock is returned by an overlay's Lock: a run that only reads never locks.
var ErrOverlayLock = errors.New("state store: a dry run does not lock")

// Lock implements Backend; it always fails.
func (o *Overlay) Lock(context.Context, LockOptions) (Lock, error) { return nil, ErrOverlayLock }

// RecordPass implements Backend: a dry run's pass is not recorded.
func (o *Overlay) RecordPass(PassRecord) error { return nil }

// Passes implements Backend.
func (o *Overlay) Passes() ([]PassRecord, error) { return o.base.Passes() }

// Describe implements Backend.
func (o *Overlay) Describe() string { return o.base.Describe() + " (read only)" }

// Written is the names written through the overlay, sorted (tests and logs).
func (o *Overlay) Written() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for n := range o.written {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var _ Backend = (*Overlay)(nil)
