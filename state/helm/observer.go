package helm

import (
	"context"
	"errors"
	"log/slog"
	"sort"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Observer fills Clusters[name].Releases for every cluster the kube observer found reachable.
// It runs after that observer.
type Observer struct {
	Access kube.Access
	// Namespaces to list releases in: where the fleet's releases live (planner.ReleaseNamespaces).
	Namespaces []string
	// Log receives one warning per cluster whose releases could not be read (default slog.Default()).
	Log *slog.Logger
	// Retry retries a read of a cluster's releases that failed with a retryable error.
	Retry state.Retry
}

// Observe implements state.Observer. A cluster whose releases cannot be read is logged and
// left without releases; it does not fail the pass.
func (o Observer) Observe(ctx context.Context, f *spec.Fleet, w *world.World) error {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		return errors.New("helm observer: no namespaces to look in")
	}
	names := make([]string, 0, len(w.Clusters))
	for name, c := range w.Clusters {
		if c != nil && c.Reachable {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	state.EachCluster(ctx, names, 0, func(ctx context.Context, name string) (map[string]*world.Release, error) {
		var rels map[string]*world.Release
		err := o.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			rels, err = o.releases(ctx, f, name, namespaces, log)
			return kube.Classify(err)
		})
		return rels, err
	}, func(name string, rels map[string]*world.Release, err error) {
		if err != nil {
			log.Warn("helm releases not observed", "cluster", name, "err", err)
			w.MarkUnreadable(name, "helm releases: "+err.Error())
			return
		}
		if len(rels) > 0 {
			w.Clusters[name].Releases = rels
		}
	})
	return ctx.Err()
}

func (o Observer) releases(ctx context.Context, f *spec.Fleet, name string, namespaces []string, log *slog.Logger) (map[string]*world.Release, error) {
	cfg, err := o.Access.For(f).RESTConfig(name)
	if err != nil {
		return nil, err
	}
	c, err := New(cfg, log.With("cluster", name))
	if err != nil {
		return nil, err
	}
	return c.List(ctx, namespaces...)
}
