package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconcile-dev/reconcile/spec"
)

// Daemon keeps a fleet converged: it reconciles when fleet.yaml changes, on SIGHUP, and
// every Resync. One goroutine (Run's) owns the loop, so passes never overlap; a trigger that
// arrives mid-pass is taken right after it.
type Daemon struct {
	Path       string
	Reconciler *Reconciler
	Resync     time.Duration
	Debounce   time.Duration
	Log        *slog.Logger
	// Passed, when set, is called after every pass (tests use it).
	Passed func(fleet *spec.Fleet, res *PassResult, err error)
	// Rejected, when set, is called after an invalid edit was refused (tests use it).
	Rejected func(err error)

	current atomic.Pointer[spec.Fleet]
	digest  [32]byte
}

// Current is the spec in force.
func (d *Daemon) Current() *spec.Fleet { return d.current.Load() }

// Run loads the fleet (an invalid file at start is an error), reconciles, and keeps going
// until ctx is done. hup delivers SIGHUP (or nil).
func (d *Daemon) Run(ctx context.Context, hup <-chan os.Signal) error {
	if d.Debounce <= 0 {
		d.Debounce = 500 * time.Millisecond
	}
	if d.Resync <= 0 {
		d.Resync = 5 * time.Minute
	}
	if _, err := d.reload(); err != nil {
		return err
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", d.Path, err)
	}
	defer watcher.Close()
	for _, dir := range watchDirs(d.Path) {
		if err := watcher.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	d.Log.Info("daemon started", "file", d.Path, "resync", d.Resync.String())

	// Triggers are coalesced into one pending flag each; the loop drains them.
	changed := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case ev, ok := <-watcher.Events:
				if !ok {
					return
				}
				if relevant(ev, d.Path) {
					notify(changed)
				}
			case err, ok := <-watcher.Errors:
				if !ok {
					return
				}
				d.Log.Warn("file watch error", "err", err)
				notify(changed) // re-read: a lost event must not leave us on an old spec
			}
		}
	}()

	resync := time.NewTicker(d.Resync)
	defer resync.Stop()
	var debounce <-chan time.Time
	d.pass(ctx, "start")
	for {
		select {
		case <-ctx.Done():
			d.Log.Info("daemon stopping")
			return nil
		case <-changed:
			debounce = time.After(d.Debounce)
		case <-debounce:
			debounce = nil
			if fresh, err := d.reload(); err == nil && fresh {
				d.pass(ctx, "fleet.yaml changed")
			}
		case <-hup:
			if _, err := d.reload(); err == nil {
				d.pass(ctx, "SIGHUP")
			}
		case <-resync.C:
			d.pass(ctx, "resync")
		}
	}
}

// reload reads fleet.yaml and, only if it is valid, swaps it in. It reports whether the
// content differs from the spec in force.
func (d *Daemon) reload() (bool, error) {
	data, err := os.ReadFile(d.Path)
	if err != nil {
		d.reject(fmt.Errorf("read %s: %w", d.Path, err))
		return false, err
	}
	sum := sha256.Sum256(data)
	if d.current.Load() != nil && bytes.Equal(sum[:], d.digest[:]) {
		return false, nil
	}
	fleet, err := spec.Load(d.Path)
	if err != nil {
		d.reject(err)
		return false, err
	}
	d.current.Store(fleet)
	d.digest = sum
	d.Log.Info("fleet loaded", "file", d.Path, "fleet", fleet.Metadata.Name, "sha256", fmt.Sprintf("%x", sum[:6]))
	return true, nil
}

func (d *Daemon) reject(err error) {
	if d.current.Load() == nil {
		return // at start the caller reports it
	}
	var errs *spec.Errors
	if errors.As(err, &errs) {
		for _, fe := range errs.List {
			d.Log.Error("invalid fleet.yaml; keeping the last good spec", "error", fe.Error())
		}
	} else {
		d.Log.Error("cannot load fleet.yaml; keeping the last good spec", "err", err)
	}
	if d.Rejected != nil {
		d.Rejected(err)
	}
}

func (d *Daemon) pass(ctx context.Context, why string) {
	fleet := d.current.Load()
	d.Log.Info("pass starting", "fleet", fleet.Metadata.Name, "trigger", why)
	res, err := d.Reconciler.Reconcile(ctx, fleet, false)
	if err != nil {
		d.Log.Error("pass failed", "fleet", fleet.Metadata.Name, "err", err)
	}
	if d.Passed != nil {
		d.Passed(fleet, res, err)
	}
}

// watchDirs are the directories whose changes can change the file: its own directory
// (editors and git replace files by rename) and, when it is a symlink, its target's
// (ConfigMap mounts swap a ..data symlink).
func watchDirs(path string) []string {
	dirs := []string{filepath.Dir(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		if rd := filepath.Dir(real); rd != dirs[0] {
			dirs = append(dirs, rd)
		}
	}
	return dirs
}

// relevant reports whether a directory event can concern the fleet file. Anything named
// like the file counts, and so do symlink swaps (..data) and moves into the directory.
func relevant(ev fsnotify.Event, path string) bool {
	base := filepath.Base(ev.Name)
	if base == filepath.Base(path) || base == "..data" {
		return true
	}
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Clean(ev.Name) == real {
		return true
	}
	return ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename)
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
