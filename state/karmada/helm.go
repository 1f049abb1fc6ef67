package karmada

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/spec"
)

// ChartRelease is one chart installed or upgraded as a release.
type ChartRelease struct {
	Name, Namespace string
	Chart           *chart.Chart
	Values          map[string]any
	Timeout         time.Duration
	Wait            bool
	WaitForJobs     bool
	CreateNamespace bool
}

// HelmClient is the part of a Helm client the driver uses.
type HelmClient interface {
	// Ensure installs or upgrades the release so it matches; hooks run as the chart says.
	Ensure(ctx context.Context, r ChartRelease) error
	// Uninstall removes a release and returns once it is gone; a missing release is no error.
	Uninstall(ctx context.Context, name, namespace string, timeout time.Duration) error
	// LoadChart fetches (or reads from cacheDir) the chart a fleet names.
	LoadChart(ctx context.Context, src spec.ChartSource, defaultName, cacheDir string) (*chart.Chart, error)
}

// errNoHelm is returned until state/helm is wired in as the default.
var errNoHelm = errors.New("no Helm client configured (Config.Helm is nil)")

func defaultHelm(_ *slog.Logger) func(*rest.Config) (HelmClient, error) {
	return func(*rest.Config) (HelmClient, error) { return nil, errNoHelm }
}
