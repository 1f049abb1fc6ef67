package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/entry"
	"github.com/reconcile-dev/reconcile/state/world"
)

// entryChecks runs the entry's health checks on their own schedule while the daemon leads:
// every healthCheck.interval it checks each member's ingress address (as the last pass
// observed it) and, when a member's health changes, records it in the state store and asks
// for a pass, which withdraws or restores the member's records.
type entryChecks struct {
	log     *slog.Logger
	metrics *Metrics
	store   state.Backend
	fleet   func() *spec.Fleet
	// wake receives a transition's description; the loop runs a pass for it.
	wake chan string

	mu      sync.Mutex
	targets map[string][]string
	tracker *entry.Tracker
}

func newEntryChecks(d *Daemon) *entryChecks {
	return &entryChecks{log: d.Log, metrics: d.Metrics, store: d.Reconciler.Store, fleet: d.current.Load,
		wake: make(chan string, 1), targets: map[string][]string{}}
}

// observed takes the ingress addresses a pass observed. A member not observed this pass keeps
// the addresses it had: its ingress may well answer while its API does not.
func (c *entryChecks) observed(f *spec.Fleet, w *world.World) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	members := f.MemberNames()
	for m := range c.targets {
		if !slices.Contains(members, m) {
			delete(c.targets, m)
		}
	}
	if w.Entry == nil {
		return
	}
	for m, ips := range w.Entry.Ingress {
		if len(ips) > 0 {
			c.targets[m] = slices.Clone(ips)
		} else {
			delete(c.targets, m)
		}
	}
}

// run checks until ctx ends.
func (c *entryChecks) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		f := c.fleet()
		if f == nil || f.Entry == nil {
			timer.Reset(time.Second) // no entry (yet): look again soon
			continue
		}
		start := time.Now()
		c.round(ctx, f)
		timer.Reset(max(f.Entry.HealthCheck.Interval.Duration-time.Since(start), 0))
	}
}

func (c *entryChecks) round(ctx context.Context, f *spec.Fleet) {
	c.mu.Lock()
	if c.tracker == nil {
		t, err := entry.NewTracker(c.store, nil)
		if err != nil {
			c.mu.Unlock()
			c.log.Error("entry health checks: reading the health the state keeps", "err", err)
			return
		}
		c.tracker = t
	}
	tracker := c.tracker
	targets := map[string][]string{}
	for m, ips := range c.targets {
		targets[m] = slices.Clone(ips)
	}
	c.mu.Unlock()
	if err := tracker.Forget(f.MemberNames()); err != nil {
		c.log.Warn("entry health checks: forgetting members that left", "err", err)
	}
	if len(targets) == 0 {
		return
	}
	transitions, err := tracker.CheckRound(ctx, f.Entry, targets)
	if err != nil {
		c.log.Error("entry health checks", "err", err)
	}
	c.metrics.entryHealth(tracker.Statuses(), transitions)
	for _, t := range transitions {
		if t.Healthy {
			c.log.Info("entry: member healthy again; its records are restored", "member", t.Member,
				"after", f.Entry.HealthCheck.HealthyAfter)
		} else {
			c.log.Warn("entry: member unhealthy; its records are withdrawn", "member", t.Member,
				"after", f.Entry.HealthCheck.UnhealthyAfter, "reason", t.Reason)
		}
	}
	if len(transitions) > 0 {
		select {
		case c.wake <- transitions[0].String():
		default: // a pass is asked for already; it reads every member's health
		}
	}
}

// wakes is the channel the loop selects on; nil (never ready) without checks.
func (c *entryChecks) wakes() <-chan string {
	if c == nil {
		return nil
	}
	return c.wake
}
