package helm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/reconcile-dev/reconcile/state"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	gr := schema.GroupResource{Resource: "secrets"}
	cases := []struct {
		name      string
		err       error
		transient bool
		after     time.Duration
	}{
		{name: "nil", err: nil},
		{name: "cancelled", err: fmt.Errorf("release a/b: %w", context.Canceled)},
		{name: "deadline", err: fmt.Errorf("release a/b: %w", context.DeadlineExceeded), transient: true},
		{name: "conflict", err: fmt.Errorf("x: %w", apierrors.NewConflict(gr, "s", errors.New("changed"))), transient: true},
		{name: "429 with Retry-After", err: fmt.Errorf("x: %w", apierrors.NewTooManyRequests("slow down", 7)), transient: true, after: 7 * time.Second},
		{name: "503", err: apierrors.NewServiceUnavailable("busy"), transient: true},
		{name: "500", err: apierrors.NewInternalError(errors.New("boom")), transient: true},
		{name: "network", err: fmt.Errorf("x: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), transient: true},
		{name: "hook timeout flattened by Helm", err: errors.New("failed pre-install: timed out waiting for the condition"), transient: true},
		{name: "release busy", err: errors.New("another operation (install/upgrade/rollback) is in progress"), transient: true},
		{name: "forbidden", err: apierrors.NewForbidden(gr, "s", errors.New("no"))},
		{name: "bad chart", err: errors.New("parse error at (demo/templates/cm.yaml:3): function \"nope\" not defined")},
		{name: "hook job failed", err: errors.New("failed pre-install: job setup failed: BackoffLimitExceeded")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := classify(tc.err)
			if !errors.Is(got, tc.err) && tc.err != nil {
				t.Fatalf("classify lost the cause: %v", got)
			}
			var te *state.TransientError
			if is := errors.As(got, &te); is != tc.transient {
				t.Fatalf("transient = %v, want %v (%v)", is, tc.transient, got)
			}
			if te != nil && te.After != tc.after {
				t.Errorf("retry after %s, want %s", te.After, tc.after)
			}
			if tc.err != nil && got.Error() != tc.err.Error() {
				t.Errorf("message changed: %q, want %q", got, tc.err)
			}
		})
	}
}

// Rendering prunes disabled dependencies from the chart it is given; the caller's chart
// must keep them for the next pass, where values may enable them.
func TestCloneChartKeepsCallerChart(t *testing.T) {
	t.Parallel()
	parent := configMapChart("parent", "1.0.0")
	parent.Metadata.Dependencies = []*chart.Dependency{{Name: "sub", Version: "1.0.0", Condition: "sub.enabled"}}
	parent.AddDependency(configMapChart("sub", "1.0.0"))

	clone := cloneChart(parent)
	if err := chartutil.ProcessDependenciesWithMerge(clone, map[string]any{"sub": map[string]any{"enabled": false}}); err != nil {
		t.Fatal(err)
	}
	if n := len(clone.Dependencies()); n != 0 {
		t.Fatalf("disabled dependency still in the rendered clone (%d): the test does not exercise pruning", n)
	}
	if n := len(parent.Dependencies()); n != 1 {
		t.Errorf("caller's chart has %d dependencies after rendering a clone, want 1", n)
	}
	if parent.Metadata.Dependencies[0].Enabled {
		t.Error("caller's dependency metadata was changed")
	}
	if got := clone.Metadata; got == parent.Metadata {
		t.Error("metadata shared")
	}
	if !reflect.DeepEqual(cloneChart(parent).Metadata, parent.Metadata) {
		t.Error("clone metadata differs")
	}
	if d := cloneChart(parent).Dependencies()[0]; d.Parent() == parent {
		t.Error("cloned dependency points at the caller's chart")
	}
}

func TestOperationHearsWhatHelmAwaits(t *testing.T) {
	t.Parallel()
	op := &operation{}
	if got := op.lastAwaited(); got != "" {
		t.Errorf("before Helm said anything: %q", got)
	}
	op.heard("creating 12 resource(s)")
	op.heard("Deployment is not ready: karmada-system/karmada-apiserver. 0 out of 1 expected pods are ready")
	op.heard("checking 3 resources for changes")
	want := "helm: Deployment is not ready: karmada-system/karmada-apiserver. 0 out of 1 expected pods are ready"
	if got := op.lastAwaited(); got != want {
		t.Errorf("lastAwaited() = %q, want %q", got, want)
	}
	op.heard("Job is not completed: karmada-system/karmada-pre-install")
	if got := op.lastAwaited(); got != "helm: Job is not completed: karmada-system/karmada-pre-install" {
		t.Errorf("after a hook Job: %q", got)
	}
}
