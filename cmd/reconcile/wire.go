package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/entry"
	"github.com/reconcile-dev/reconcile/state/helm"
	"github.com/reconcile-dev/reconcile/state/karmada"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/linode"
	"github.com/reconcile-dev/reconcile/state/mesh"
	"github.com/reconcile-dev/reconcile/state/weights"
)

// wire builds the observers and drivers a fleet needs. Layers whose drivers are not
// configured plan as usual and fail their steps with executor.ErrNoDriver.
func wire(f *spec.Fleet, store state.Backend, log *slog.Logger, opts wireOptions) ([]state.Observer, executor.Drivers, error) {
	var observers []state.Observer
	var drivers executor.Drivers
	var dns entry.DNS
	if f.Provider.Linode != nil && (usesLKE(f) || f.Entry != nil) {
		cfg, err := linode.ConfigFromSpec(f.Metadata.Name, f.Provider.Linode, store, log)
		if err != nil {
			return nil, drivers, fmt.Errorf("linode: %w", err)
		}
		cfg.Declared = f.ClusterNames()
		cfg.ReadOnly = opts.dryRun
		cfg.Requests = opts.requests
		cfg.ReadRetry = opts.retry
		if cfg.APIURL == "" {
			cfg.APIURL = os.Getenv("LINODE_URL") // as linodego's own clients read it
		}
		d, err := linode.New(cfg)
		if err != nil {
			return nil, drivers, fmt.Errorf("linode: %w", err)
		}
		if usesLKE(f) {
			observers = append(observers, d)
			drivers.Clusters = d
		}
		dns = d
	}
	// Order matters: Kubernetes reaches the clusters Linode found; Helm reads releases in the
	// clusters that answered; weights adds policies to what the Karmada observer found.
	// Drivers are built per pass from the fleet in force: what they need of it (which clusters
	// are existing ones, timeouts) is configuration; what to do comes with each step.
	access := kube.Access{Store: store, WrapTransport: opts.wrap}.For(f)
	charts := chartCache(store, f.Metadata.Name)
	km := karmada.New(karmada.Config{Fleet: f.Metadata.Name, Access: access, Store: store, Log: log, ChartCache: charts})
	wd := weights.New(weights.Config{Fleet: f.Metadata.Name, Access: access, Log: log, Store: store})
	observers = append(observers, kube.Observer{Access: access, Retry: opts.retry},
		helm.Observer{Access: access, Log: log, Namespaces: planner.ReleaseNamespaces(f), Retry: opts.retry}, km, wd)
	drivers.Karmada, drivers.Weights = km, wd
	if f.MeshOn() {
		observers = append(observers, mesh.Observer{Access: access, Store: store, Retry: opts.retry})
		drivers.Mesh = mesh.New(mesh.Config{Fleet: f.Metadata.Name, Access: access, Store: store, Log: log, ChartCache: charts, Helm: mesh.HelmSDK(log),
			Timeout: f.Mesh.Timeout.Duration})
	}
	if f.Entry != nil {
		// Last: it reads the Reachable flags the Kubernetes observer sets.
		observers = append(observers, entry.Observer{DNS: dns, Access: access, Store: store, Retry: opts.retry})
		cfg := entry.Config{DNS: dns, Access: access, Log: log}
		if l := f.Provider.Linode; l != nil {
			cfg.PollInterval = l.PollInterval.Duration
		}
		drivers.Entry = entry.New(cfg)
	}
	return observers, drivers, nil
}

// wireOptions are the CLI's choices the drivers need.
type wireOptions struct {
	// wrap wraps the transport of every Kubernetes client (tests count writes with it).
	wrap func(http.RoundTripper) http.RoundTripper
	// dryRun: the drivers only observe; nothing is written outside the (overlay) store.
	dryRun bool
	// requests, when set, counts every Linode API request (the daemon's metrics).
	requests func(endpoint string, status int)
	// retry retries the observers' reads of one cluster (see readRetry).
	retry state.Retry
}

// readRetry retries an observation read that failed with a retryable error with the policy
// and backoff of the executor's step retries, logging each retry. A read it gave up on is
// not retried again by the observer's caller (Reconciler.Observe): the retries do not multiply.
func readRetry(p executor.RetryPolicy, log *slog.Logger) state.Retry {
	return func(ctx context.Context, op func(context.Context) error) error {
		retried := false
		err := p.Do(ctx, op, func(attempt int, wait time.Duration, err error) {
			retried = true
			log.Info("observation read failed; retrying", "attempt", attempt, "wait", wait, "err", err)
		})
		if err != nil && retried {
			return &gaveUp{err}
		}
		return err
	}
}

// gaveUp is a read that was retried until the policy gave up.
type gaveUp struct{ err error }

func (e *gaveUp) Error() string   { return e.err.Error() }
func (e *gaveUp) Unwrap() error   { return e.err }
func (e *gaveUp) Retryable() bool { return false }

func usesLKE(f *spec.Fleet) bool {
	if f.Manager.IsLKE() {
		return true
	}
	for _, m := range f.Members {
		if m.IsLKE() {
			return true
		}
	}
	return false
}

// chartCache is where downloaded charts are kept: inside a local store (as before), or in the
// user's cache directory when the state lives elsewhere. It is a cache: nothing is lost without it.
func chartCache(store state.Backend, fleet string) string {
	if s, ok := store.(*state.Store); ok {
		return filepath.Join(s.Dir(), state.ChartCacheDir)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "reconcile", "charts", strings.ReplaceAll(fleet, string(filepath.Separator), "_"))
}

// linodeFingerprint is the drift watch's cheap Linode poll: one filtered list of the fleet's
// LKE clusters, through a read-only driver; "" for a fleet without LKE clusters.
func linodeFingerprint(store state.Backend, log *slog.Logger) func(context.Context, *spec.Fleet) (string, error) {
	return func(ctx context.Context, f *spec.Fleet) (string, error) {
		if f == nil || f.Provider.Linode == nil || !usesLKE(f) {
			return "", nil
		}
		cfg, err := linode.ConfigFromSpec(f.Metadata.Name, f.Provider.Linode, store, log)
		if err != nil {
			return "", err
		}
		cfg.Declared, cfg.ReadOnly = f.ClusterNames(), true
		if cfg.APIURL == "" {
			cfg.APIURL = os.Getenv("LINODE_URL")
		}
		d, err := linode.New(cfg)
		if err != nil {
			return "", err
		}
		return d.Fingerprint(ctx, f.Metadata.Name)
	}
}
