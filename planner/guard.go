package planner

import "github.com/reconcile-dev/reconcile/plan"

// guard refuses plans that unjoin or delete too many members at once, or the manager's cluster.
func (b *builder) guard(opts Options) error {
	if opts.AllowDestroy {
		return nil
	}
	maxShare := DefaultMaxDeleteShare
	if b.f.Safety.MaxDeleteShare != nil {
		maxShare = *b.f.Safety.MaxDeleteShare
	}
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
