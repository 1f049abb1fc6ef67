package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kubestore"
)

// openBackend opens the state backend fleet.yaml's state block names: the local directory
// (stateDir, or the default one) or the kubernetes backend.
func openBackend(ctx context.Context, f *spec.Fleet, stateDir string) (state.Backend, error) {
	switch f.State.Backend {
	case spec.KubernetesState:
		if stateDir != "" {
			return nil, fmt.Errorf("--state-dir is for the local state backend, but %s keeps this fleet's state in kubernetes (state.backend); drop --state-dir, or use `reconcile state migrate --to local` to bring the state back to a directory", f.Source)
		}
		return openKubernetes(ctx, f)
	default:
		dir := stateDir
		if dir == "" {
			dir = state.DefaultStoreDir(f.Metadata.Name)
		}
		return state.OpenStore(dir)
	}
}

// migrateState copies the fleet's state between the local directory and the kubernetes
// backend of fleet.yaml's state block, holding both locks, verifying every file.
func migrateState(ctx context.Context, f *spec.Fleet, o options, stdout, stderr io.Writer, log *slog.Logger) int {
	if f.State.Kubernetes == nil {
		fmt.Fprintf(stderr, "reconcile: state migrate: %s has no state.kubernetes block: add one (the cluster and namespace to move the state to or from)\n", f.Source)
		return 1
	}
	dir := o.stateDir
	if dir == "" {
		dir = state.DefaultStoreDir(f.Metadata.Name)
	}
	var from, to state.Backend
	local, err := state.OpenStore(dir)
	if err != nil {
		fmt.Fprintf(stderr, "reconcile: state migrate: %v\n", err)
		return 1
	}
	kube, err := openKubernetes(ctx, f)
	if err != nil {
		fmt.Fprintf(stderr, "reconcile: state migrate: %v\n", err)
		return 1
	}
	switch o.to {
	case spec.KubernetesState:
		from, to = local, kube
	case spec.LocalState:
		from, to = kube, local
	default:
		fmt.Fprintf(stderr, "reconcile: state migrate: --to must be kubernetes or local, not %q\n", o.to)
		return 1
	}
	// Both sides are locked: nobody converges the fleet from either while the state moves.
	for _, b := range []state.Backend{from, to} {
		lock, err := b.Lock(ctx, state.LockOptions{Wait: o.lockTimeout})
		if err != nil {
			fmt.Fprintf(stderr, "reconcile: state migrate: %v\n", err)
			return 1
		}
		defer lock.Release()
	}
	start := time.Now()
	rep, err := state.Migrate(ctx, from, to)
	if err != nil {
		fmt.Fprintf(stderr, "reconcile: state migrate: %v\n", err)
		return 1
	}
	log.Info("state migrated", "from", from.Describe(), "to", to.Describe(), "took", time.Since(start).Round(time.Millisecond).String())
	fmt.Fprintf(stdout, "Migrated the state of fleet %q from %s to %s: %s.\n", f.Metadata.Name, from.Describe(), to.Describe(), rep)
	if o.to == spec.KubernetesState && f.State.Backend != spec.KubernetesState {
		fmt.Fprintf(stdout, "Set state.backend: kubernetes in %s to use it.\n", f.Source)
	}
	if o.to == spec.LocalState && f.State.Backend != spec.LocalState {
		fmt.Fprintf(stdout, "Set state.backend: local in %s (and pass --state-dir %s if it is not the default) to use it.\n", f.Source, dir)
	}
	return 0
}

// openKubernetes opens the kubernetes state backend of fleet.yaml's state block.
func openKubernetes(ctx context.Context, f *spec.Fleet) (state.Backend, error) {
	k := f.State.Kubernetes
	cfg, where, err := kubestore.RESTConfig(k)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Source, err)
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := kubestore.Open(octx, kubestore.Config{Fleet: f.Metadata.Name, Namespace: k.Namespace, REST: cfg,
		LeaseDuration: k.LeaseDuration.Duration, Where: where})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Source, err)
	}
	return st, nil
}
