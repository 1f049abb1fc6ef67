package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/helm"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/linode"
	"github.com/reconcile-dev/reconcile/state/mesh"
	"github.com/reconcile-dev/reconcile/state/weights"
)

// wire builds the observers and drivers a fleet needs. Layers whose drivers are not
// configured plan as usual and fail their steps with executor.ErrNoDriver.
func wire(f *spec.Fleet, store *state.Store, log *slog.Logger) ([]state.Observer, executor.Drivers, error) {
	var observers []state.Observer
	var drivers executor.Drivers
	if f.Provider.Linode != nil && usesLKE(f) {
		cfg, err := linode.ConfigFromSpec(f.Provider.Linode, store, log)
		if err != nil {
			return nil, drivers, fmt.Errorf("linode: %w", err)
		}
		if cfg.APIURL == "" {
			cfg.APIURL = os.Getenv("LINODE_URL") // as linodego's own clients read it
		}
		d, err := linode.New(cfg)
		if err != nil {
			return nil, drivers, fmt.Errorf("linode: %w", err)
		}
		observers = append(observers, d)
		drivers.Clusters = d
	}
	// Kubernetes comes after Linode: it reaches the clusters Linode found.
	access := kube.Access{Store: store}
	observers = append(observers, kube.Observer{Access: access}, helm.Observer{Access: access, Log: log})
	charts := filepath.Join(store.Dir(), "charts")
	// Weights reads what the Karmada observer found and adds policies and workloads to it.
	observers = append(observers, weights.New(weights.Config{Access: access, Log: log}))
	drivers.Weights = weights.New(weights.Config{Access: access, Log: log})
	if f.MeshOn() {
		observers = append(observers, mesh.Observer{Access: access, Store: store})
		drivers.Mesh = mesh.New(mesh.Config{Access: access, Store: store, Log: log, ChartCache: charts, Helm: mesh.HelmSDK(log)})
	}
	return observers, drivers, nil
}

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
