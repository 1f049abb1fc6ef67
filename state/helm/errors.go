package helm

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/reconcile-dev/reconcile/state"
)

// transientMessages mark errors worth retrying that Helm flattens into text ("failed
// pre-install: %s"), so only their message is left to recognise.
var transientMessages = []string{
	"another operation (install/upgrade/rollback) is in progress",
	"timed out waiting for the condition",
	"context deadline exceeded",
	"kubernetes cluster unreachable",
	"connection refused",
	"connection reset by peer",
	"i/o timeout",
	"tls handshake timeout",
	"the object has been modified",
}

// classify marks errors that may pass on their own (timeouts, conflicts, 429 and 5xx, an
// unreachable API, a release busy with another operation) as state.Transient, honouring a
// Retry-After the API server sent. Cancellation and anything else stay terminal.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var after time.Duration
	if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
		after = time.Duration(s) * time.Second
	}
	var netErr net.Error
	switch {
	case apierrors.IsConflict(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsUnexpectedServerError(err):
	case errors.Is(err, context.DeadlineExceeded), wait.Interrupted(err), errors.As(err, &netErr):
	default:
		msg := strings.ToLower(err.Error())
		found := false
		for _, m := range transientMessages {
			if strings.Contains(msg, m) {
				found = true
				break
			}
		}
		if !found {
			return err
		}
	}
	return state.Transient(err, after)
}

// cloneChart copies the parts of a chart Helm changes while rendering (dependency flags,
// imported values, the dependency list), so a chart loaded once can be given to Ensure again.
func cloneChart(c *chart.Chart) *chart.Chart {
	out := *c
	if c.Metadata != nil {
		md := *c.Metadata
		md.Dependencies = make([]*chart.Dependency, len(c.Metadata.Dependencies))
		for i, d := range c.Metadata.Dependencies {
			dc := *d
			md.Dependencies[i] = &dc
		}
		out.Metadata = &md
	}
	deps := make([]*chart.Chart, 0, len(c.Dependencies()))
	for _, d := range c.Dependencies() {
		deps = append(deps, cloneChart(d))
	}
	out.SetDependencies(deps...)
	return &out
}
