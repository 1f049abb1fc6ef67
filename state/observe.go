package state

import (
	"context"
	"sync"

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

// ObserveParallelism bounds how many clusters one observer reads at once (EachCluster). A
// pass at 30 members then costs about what it costs at 3: the reads of the members overlap.
const ObserveParallelism = 64

// EachCluster reads every named cluster, at most limit at once (ObserveParallelism when limit
// is 0), and then hands each result to apply, one at a time and in the order of names: reads
// run in parallel, the world is written by one goroutine only and always in the same order.
func EachCluster[T any](ctx context.Context, names []string, limit int, read func(ctx context.Context, name string) (T, error), apply func(name string, v T, err error)) {
	if limit <= 0 {
		limit = ObserveParallelism
	}
	type result struct {
		v   T
		err error
	}
	results := make([]result, len(names))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := ctx.Err(); err != nil {
				results[i].err = err
				return
			}
			results[i].v, results[i].err = read(ctx, name)
		}()
	}
	wg.Wait()
	for i, name := range names {
		apply(name, results[i].v, results[i].err)
	}
}

// Retry runs op again while it fails with an error worth another attempt, waiting between
// attempts as the executor does between the attempts of a step (cmd/reconcile wires the
// executor's policy in). A nil Retry runs op once.
type Retry func(ctx context.Context, op func(ctx context.Context) error) error

// Do runs op through r, or once when r is nil.
func (r Retry) Do(ctx context.Context, op func(ctx context.Context) error) error {
	if r == nil {
		return op(ctx)
	}
	return r(ctx, op)
}
