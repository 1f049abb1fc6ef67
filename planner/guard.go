package planner

import (
	"fmt"
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
)

// guard refuses plans that unjoin or delete too many members at once, or the manager's cluster.
func (b *builder) guard(opts Options) error {
	if opts.AllowDestroy {
		return nil
	}
	maxShare := *b.f.Safety.MaxDeleteShare
	e := &GuardError{MaxShare: maxShare}
	gone := map[string]bool{}
	for _, addr := range sortedKeys(b.steps) {
		s := b.steps[addr]
		switch {
		case s.Kind == plan.KindUnjoin:
			gone[s.Cluster] = true
		case s.Kind == plan.KindCluster && s.Action == plan.Delete:
			if s.Cluster == b.f.Manager.Name || b.holdsKarmada(b.cluster(s.Cluster)) {
				e.Manager = s.Cluster
			} else {
				gone[s.Cluster] = true
			}
		default:
			continue
		}
		e.Removals = append(e.Removals, addr)
	}
	observed := map[string]bool{}
	if k := b.w.Karmada; k != nil {
		for n := range k.Members {
			observed[n] = true
		}
	}
	for n, c := range b.w.Clusters {
		if n != b.f.Manager.Name && !b.holdsKarmada(c) {
			observed[n] = true
		}
	}
	e.Members, e.Observed = len(gone), len(observed)
	tooMany := e.Members > 0 && float64(e.Members) > maxShare*float64(e.Observed)
	if e.Manager == "" && !tooMany {
		return nil
	}
	return e
}

// GuardError is returned when a plan would destroy more than the fleet allows in one pass.
type GuardError struct {
	// Removals are the addresses of the unjoin and delete steps that tripped the guard.
	Removals []string
	// Members is how many of the Observed members would be unjoined or deleted.
	Members, Observed int
	// MaxShare is safety.maxDeleteShare.
	MaxShare float64
	// Manager names the manager cluster the plan would delete ("" when none).
	Manager string
}

func (e *GuardError) Error() string {
	var why []string
	if e.Manager != "" {
		why = append(why, fmt.Sprintf("it would delete cluster %q, which runs the Karmada control plane", e.Manager))
	}
	if e.Observed > 0 && float64(e.Members) > e.MaxShare*float64(e.Observed) {
		why = append(why, fmt.Sprintf("it would unjoin or delete %d of %d members (%.0f%%), more than safety.maxDeleteShare %.0f%%",
			e.Members, e.Observed, 100*float64(e.Members)/float64(e.Observed), 100*e.MaxShare))
	}
	return "refusing the plan: " + strings.Join(why, ", and ") +
		" (" + strings.Join(e.Removals, ", ") + "); if this is intended, run again with --allow-destroy" +
		" or raise safety.maxDeleteShare"
}
