package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconcile-dev/reconcile/planner"
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

	current     atomic.Pointer[spec.Fleet]
	fingerprint string
	lastReject  string
	watcher     *fsnotify.Watcher
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
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", d.Path, err)
	}
	defer watcher.Close()
	d.watcher = watcher
	for _, dir := range watchDirs(d.Path) {
		if err := watcher.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	if _, err := d.reload(onStart); err != nil {
		return err
	}
	d.Log.Info("daemon started", "file", d.Path, "resync", d.Resync.String())

	// Every event in a watched directory (fleet.yaml's, its symlink target's, the manifests')
	// may change the spec; reload tells by content. Triggers coalesce into one pending flag.
	changed := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case _, ok := <-watcher.Events:
				if !ok {
					return
				}
				notify(changed)
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
			if fresh, err := d.reload(onFileEvent); err == nil && fresh {
				d.pass(ctx, "fleet.yaml or a manifest changed")
			}
		case <-hup:
			if _, err := d.reload(onSIGHUP); err == nil {
				d.pass(ctx, "SIGHUP")
			}
		case <-resync.C:
			d.pass(ctx, "resync")
		}
	}
}

// reload reads fleet.yaml and its manifests and, only if they are valid, swaps them in. It
// reports whether they differ from the spec in force (fleet.yaml's content after defaults,
// and every manifest's content).
func (d *Daemon) reload(why trigger) (bool, error) {
	fleet, err := spec.Load(d.Path)
	if err != nil {
		d.reject(err, why)
		return false, err
	}
	d.lastReject = ""
	fp := planner.SpecFingerprint(fleet)
	if d.current.Load() != nil && fp == d.fingerprint {
		return false, nil
	}
	d.current.Store(fleet)
	d.fingerprint = fp
	d.watchManifests(fleet)
	d.Log.Info("fleet loaded", "file", d.Path, "fleet", fleet.Metadata.Name, "fingerprint", fp)
	return true, nil
}

// watchManifests adds the directories holding the workloads' manifests to the watch, so an
// edit of a manifest alone is a change too.
func (d *Daemon) watchManifests(f *spec.Fleet) {
	if d.watcher == nil {
		return
	}
	for _, w := range f.Workloads {
		for _, m := range w.Manifests {
			fi, err := os.Stat(m)
			if err != nil {
				continue
			}
			if !fi.IsDir() {
				d.addWatch(filepath.Dir(m))
				continue
			}
			filepath.WalkDir(m, func(p string, e fs.DirEntry, err error) error {
				if err == nil && e.IsDir() {
					d.addWatch(p)
				}
				return nil
			})
		}
	}
}

func (d *Daemon) addWatch(dir string) {
	if err := d.watcher.Add(dir); err != nil {
		d.Log.Warn("cannot watch a manifest directory; its edits are taken at the next resync", "dir", dir, "err", err)
	}
}

// trigger says why the spec is read again.
type trigger int

const (
	onStart trigger = iota
	onFileEvent
	onSIGHUP
)

func (d *Daemon) reject(err error, why trigger) {
	if d.current.Load() == nil {
		return // at start the caller reports it
	}
	if why == onFileEvent && err.Error() == d.lastReject {
		return // the same broken edit, seen again through another event: said once
	}
	d.lastReject = err.Error()
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

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
