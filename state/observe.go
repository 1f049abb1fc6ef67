package state

import (
	"context"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
)

// Observer fills its part of the world (Linode clusters, Kubernetes objects, ...).
// Observers run in order; a later one may read what an earlier one found.
type Observer interface {
	Observe(ctx context.Context, fleet *spec.Fleet, w *world.World) error
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, fleet *spec.Fleet, w *world.World) error

// Observe calls f.
func (f ObserverFunc) Observe(ctx context.Context, fleet *spec.Fleet, w *world.World) error {
	return f(ctx, fleet, w)
}
