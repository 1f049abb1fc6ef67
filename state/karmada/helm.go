package karmada

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/state/helm"
)

// HelmClient is the part of *helm.Client the driver uses.
type HelmClient interface {
	// Ensure installs or upgrades the release so it matches; hooks run as the chart says.
	Ensure(ctx context.Context, r helm.Release) (helm.Outcome, error)
	// Uninstall removes a release and returns once it is gone; a missing release is no error.
	Uninstall(ctx context.Context, name, namespace string, timeout time.Duration) error
}

func defaultHelm(log *slog.Logger) func(*rest.Config) (HelmClient, error) {
	return func(cfg *rest.Config) (HelmClient, error) { return helm.New(cfg, log) }
}
