package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/world"
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
	// Lock, when set, takes the fleet's lock: for each pass, or, with LeaderElect, once for
	// as long as this daemon leads. Nil runs passes without a lock (tests).
	Lock func(ctx context.Context, wait time.Duration) (state.Lock, error)
	// LockTimeout is how long a pass waits for a lock another runner holds (not for
	// LeaderElect, which waits as long as it takes).
	LockTimeout time.Duration
	// LeaderElect makes the daemon a candidate: it waits for the lock, and only while it holds
	// it does it observe, plan and apply. When the lock is lost, the pass in flight is
	// cancelled (no step starts after that) and the daemon stands by again.
	LeaderElect bool
	// Health is told what the daemon is doing (the /healthz and /readyz answers, and whether
	// systemd's watchdog is fed); Run makes one when it is nil.
	Health *Health
	// Drift, when set, watches what the fleet owns and triggers a pass (debounced by
	// DriftDebounce, default 2s) when it changes, between resyncs.
	Drift         *DriftWatch
	DriftDebounce time.Duration
	// Metrics, when set, records every pass and observation.
	Metrics *Metrics
	// Systemd, when set, notifies a Type=notify unit (a no-op without $NOTIFY_SOCKET).
	Systemd *Systemd

	entry *entryChecks

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
	if d.Health == nil {
		d.Health = &Health{}
	}
	// The daemon learns of each pass's observation: readiness, the world's gauges, READY=1.
	next := d.Reconciler.Observed
	d.entry = newEntryChecks(d)
	d.Reconciler.Observed = func(f *spec.Fleet, w *world.World) {
		if next != nil {
			next(f, w)
		}
		d.entry.observed(f, w)
		d.Health.sawWorld()
		d.Metrics.observed(f, w)
		d.Systemd.readyNow("observed the world; pass running")
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
	running, stop := context.WithCancel(context.Background())
	defer stop()
	go d.Systemd.watchdog(running, d.Health.alive)
	go func() {
		select {
		case <-ctx.Done():
			d.Systemd.stopping() // at once: the pass in flight may take its grace period
		case <-running.Done():
		}
	}()

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

	if !d.LeaderElect {
		d.loop(ctx, hup, changed)
		d.Log.Info("daemon stopping")
		return nil
	}
	for {
		d.Health.set(standingBy)
		d.Log.Info("standing by for the fleet's lock")
		d.Systemd.readyNow("standing by for the fleet's lock")
		d.Systemd.status("standing by for the fleet's lock")
		lock, err := d.Lock(ctx, forever)
		if ctx.Err() != nil {
			d.Log.Info("daemon stopping")
			return nil
		}
		if err != nil {
			// Not "held by another" (that waits): the backend failed. Try again shortly.
			d.Log.Error("cannot take the fleet's lock", "err", err)
			select {
			case <-ctx.Done():
				d.Log.Info("daemon stopping")
				return nil
			case <-time.After(5 * time.Second):
			}
			continue
		}
		d.Log.Info("leading: this daemon holds the fleet's lock", "holder", lock.Holder().String())
		lead, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lock.Lost():
				d.Log.Error("lost the fleet's lock: no further step starts; standing by")
				cancel()
			case <-lead.Done():
			}
		}()
		d.Health.set(leading)
		if _, err := d.reload(onFileEvent); err != nil {
			d.Log.Warn("leading with the last good spec", "err", err)
		}
		d.loop(lead, hup, changed)
		cancel()
		if err := lock.Release(); err != nil {
			d.Log.Warn("releasing the fleet's lock", "err", err)
		}
		if ctx.Err() != nil {
			d.Log.Info("daemon stopping")
			return nil
		}
	}
}

// forever is how long a leader candidate waits for the lock: until it gets it or stops.
const forever = 100 * 365 * 24 * time.Hour

// loop runs passes on start, on changes, on SIGHUP and on resync until ctx is done.
func (d *Daemon) loop(ctx context.Context, hup <-chan os.Signal, changed <-chan struct{}) {
	resync := time.NewTicker(d.Resync)
	defer resync.Stop()
	beat := time.NewTicker(loopBeat)
	defer beat.Stop()
	var debounce, driftDebounce, rollout <-chan time.Time
	var drift <-chan string
	var driftWhy string
	var quietUntil time.Time
	if d.Drift != nil {
		drift = d.Drift.Events()
		defer d.Drift.Stop()
		if d.DriftDebounce <= 0 {
			d.DriftDebounce = 2 * time.Second
		}
	}
	pass := func(why string) {
		d.pass(ctx, why)
		// A rollout's next stage (or its gate's timeout) is due at a time of its own: plan
		// again then, not only at the next resync.
		var seen *world.World
		rollout, seen = rolloutWake(d.Reconciler.Store, d.current.Load(), time.Now())
		d.Metrics.rollouts(d.current.Load(), seen)
		if d.Drift != nil {
			// What the pass wrote is not drift: drop its events; one arriving within
			// driftQuiet waits until then. Then watch what the fleet now holds.
			d.Drift.Drain()
			quietUntil = time.Now().Add(driftQuiet)
			d.Drift.Sync(ctx, d.current.Load())
		}
	}
	// The entry's health checks run while this daemon leads (their transitions are written
	// to the fleet's state), on their own schedule.
	checks, stopChecks := context.WithCancel(ctx)
	defer stopChecks()
	go d.entry.run(checks)
	pass("start")
	for {
		d.Health.idle()
		select {
		case <-ctx.Done():
			return
		case why := <-drift:
			// A change right after a pass may be the pass's own write arriving late, or a
			// real edit: either way it is looked at, once the quiet time is over.
			if driftDebounce == nil {
				driftWhy = why
				driftDebounce = time.After(max(d.DriftDebounce, time.Until(quietUntil)))
			}
		case <-driftDebounce:
			driftDebounce = nil
			d.Log.Info("drift: something the fleet owns changed", "change", driftWhy)
			pass("drift: " + driftWhy)
		case <-beat.C:
		case <-changed:
			debounce = time.After(d.Debounce)
		case <-debounce:
			debounce = nil
			if fresh, err := d.reload(onFileEvent); err == nil && fresh {
				pass("fleet.yaml or a manifest changed")
			}
		case <-hup:
			if _, err := d.reload(onSIGHUP); err == nil {
				pass("SIGHUP")
			}
		case <-resync.C:
			pass("resync")
		case <-rollout:
			pass("rollout: the next stage or a gate's timeout is due")
		case why := <-d.entry.wakes():
			pass("entry: " + why)
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
	if d.watcher != nil {
		// A swapped symlink points somewhere new: watch where it points now.
		for _, dir := range watchDirs(d.Path) {
			d.addWatch(dir)
		}
	}
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
	d.Health.passStarting()
	d.Systemd.status(fmt.Sprintf("pass running (%s) since %s", why, time.Now().UTC().Format(time.RFC3339)))
	res, start, err := d.lockedPass(ctx, fleet, why)
	end := time.Now()
	if err != nil {
		d.Log.Error("pass failed", "fleet", fleet.Metadata.Name, "err", err)
	}
	skipped := errors.Is(err, errPassSkipped)
	d.Health.passed(err)
	d.Metrics.passed(res, err, skipped, end.Sub(start), end)
	status := passStatus(res, err, skipped, end.Sub(start), end)
	d.Systemd.readyNow(status)
	d.Systemd.status(status)
	if d.Passed != nil {
		d.Passed(fleet, res, err)
	}
}

// errPassSkipped is the error of a pass that did not run: the fleet's lock was not taken.
var errPassSkipped = errors.New("pass skipped")

// lockedPass runs one pass holding the fleet's lock (a leader already holds it) and says
// when the pass began, once it had the lock.
func (d *Daemon) lockedPass(ctx context.Context, fleet *spec.Fleet, why string) (*PassResult, time.Time, error) {
	if d.Lock != nil && !d.LeaderElect {
		lock, err := d.Lock(ctx, d.LockTimeout)
		if err != nil {
			return nil, time.Now(), fmt.Errorf("%w (%s): %w", errPassSkipped, why, err)
		}
		defer lock.Release()
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-lock.Lost():
				d.Log.Error("lost the fleet's lock mid-pass: no further step starts")
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	d.Log.Info("pass starting", "fleet", fleet.Metadata.Name, "trigger", why)
	start := time.Now()
	res, err := d.Reconciler.Reconcile(ctx, fleet, false)
	return res, start, err
}

// watchDirs are the directories whose changes can change the file: its own directory
// (editors and git replace files by rename), its symlink target's (ConfigMap mounts swap a
// ..data symlink), and the directory of every symlink on the way (git-sync swaps a
// "current" link to a new checkout: the swap is an event only in the link's directory).
func watchDirs(path string) []string {
	dirs := []string{filepath.Dir(path)}
	add := func(d string) {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		add(filepath.Dir(real))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return dirs
	}
	for p := filepath.Dir(abs); p != filepath.Dir(p); p = filepath.Dir(p) {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			add(filepath.Dir(p))
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
