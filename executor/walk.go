// Package executor walks a plan: ordering, bounded parallelism, retries, cancellation.
package executor

import (
	"context"

	"github.com/reconcile-dev/reconcile/planner"
)

// StepFunc executes one step.
type StepFunc func(ctx context.Context, s planner.Step) error
