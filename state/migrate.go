package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
)

// MigrateReport says what Migrate did, by file name (sorted, as from.List gives them).
type MigrateReport struct {
	// Copied were written to the target (absent there, or different).
	Copied []string
	// Unchanged were already there with the same content.
	Unchanged []string
	// OnlyInTarget are files the target holds and the source lacks: left alone, never deleted.
	OnlyInTarget []string
}

func (r MigrateReport) String() string {
	s := fmt.Sprintf("%d copied, %d unchanged", len(r.Copied), len(r.Unchanged))
	if len(r.OnlyInTarget) > 0 {
		s += fmt.Sprintf(", %d only in the target (kept)", len(r.OnlyInTarget))
	}
	return s
}

// refresher is a backend that caches what it holds (state/kubestore); Migrate has it read
// again before verifying, so the verification reads what the backend holds, not the cache.
type refresher interface {
	Refresh(ctx context.Context) error
}

// Migrate copies every file of from into to, skipping those already equal, and then reads each
// back from to and compares the bytes. It is idempotent: a second run copies nothing. Files
// only to holds are reported, never deleted. The caller holds both backends' locks.
func Migrate(ctx context.Context, from, to Backend) (MigrateReport, error) {
	var r MigrateReport
	names, err := from.List()
	if err != nil {
		return r, fmt.Errorf("migrate from %s: %w", from.Describe(), err)
	}
	want := make(map[string][]byte, len(names))
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		data, err := from.ReadFile(name)
		if err != nil {
			return r, fmt.Errorf("migrate: read %s from %s: %w", name, from.Describe(), err)
		}
		want[name] = data
		old, err := to.ReadFile(name)
		switch {
		case err == nil && bytes.Equal(old, data):
			r.Unchanged = append(r.Unchanged, name)
			continue
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return r, fmt.Errorf("migrate: read %s from %s: %w", name, to.Describe(), err)
		}
		if err := to.WriteFile(name, data); err != nil {
			return r, fmt.Errorf("migrate: write %s to %s: %w", name, to.Describe(), err)
		}
		r.Copied = append(r.Copied, name)
	}
	if rf, ok := to.(refresher); ok {
		if err := rf.Refresh(ctx); err != nil {
			return r, fmt.Errorf("migrate: verify %s: %w", to.Describe(), err)
		}
	}
	for _, name := range names {
		got, err := to.ReadFile(name)
		if err != nil {
			return r, fmt.Errorf("migrate: verify %s in %s: %w", name, to.Describe(), err)
		}
		if !bytes.Equal(got, want[name]) {
			return r, fmt.Errorf("migrate: verify %s in %s: it reads back different from what was copied", name, to.Describe())
		}
	}
	have, err := to.List()
	if err != nil {
		return r, fmt.Errorf("migrate: list %s: %w", to.Describe(), err)
	}
	for _, name := range have {
		if _, ok := want[name]; !ok {
			r.OnlyInTarget = append(r.OnlyInTarget, name)
		}
	}
	return r, nil
}
