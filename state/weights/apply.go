package weights

import (
	"context"
	"fmt"

	"github.com/reconcile-dev/reconcile/plan"
)

// Apply applies a weights step exactly as planned:
//
//   - manifests, create or update: the payload's objects, server-side applied into Karmada
//     (CRDs first, waited until Established), each annotated with the payload's digest; an
//     object that already matches is not written;
//   - policy, create or update: the (Cluster)PropagationPolicy the payload describes; one
//     that already matches is not written, a hand edit is corrected and logged;
//   - policy, delete: the payload's policy, if reconcile manages it, waiting until it is gone;
//   - a policy step of a rollout's stage (or revert) then records the rollout's progress in the
//     state store, started now;
//   - rollout-gate, wait: until the stage's split holds and its gaining members report their
//     replicas available, bounded by the rollout's timeout from the stage's start; then the
//     stage is recorded as good (the last stage ends the rollout).
func (d *Driver) Apply(ctx context.Context, s plan.Step) (plan.Outputs, error) {
	switch s.Kind {
	case plan.KindManifests:
		m := s.Payload.Manifests
		if m == nil {
			return nil, fmt.Errorf("weights: step %s has no manifests payload", s.Address)
		}
		if s.Action == plan.Create || s.Action == plan.Update {
			return nil, d.applyManifests(ctx, s.Workload, m)
		}
	case plan.KindPolicy:
		p := s.Payload.Policy
		if p == nil {
			return nil, fmt.Errorf("weights: step %s has no policy payload", s.Address)
		}
		switch s.Action {
		case plan.Create, plan.Update:
			if err := d.applyPolicy(ctx, s.Workload, p); err != nil {
				return nil, err
			}
			if p.Rollout != nil {
				if err := d.recordStage(s.Workload, p.Rollout); err != nil {
					return nil, err
				}
			}
			if p.Rebalance {
				return nil, d.rebalance(ctx, s.Workload, p)
			}
			return nil, nil
		case plan.Delete:
			return nil, d.deletePolicy(ctx, s.Workload, p)
		}
	case plan.KindRolloutGate:
		g := s.Payload.Gate
		if g == nil {
			return nil, fmt.Errorf("weights: step %s has no gate payload", s.Address)
		}
		if s.Action == plan.Wait {
			return nil, d.awaitGate(ctx, s.Workload, g)
		}
	default:
		return nil, fmt.Errorf("weights: step %s: kind %q is not the weights driver's", s.Address, s.Kind)
	}
	return nil, fmt.Errorf("weights: step %s: action %q is not supported for %s steps", s.Address, s.Action, s.Kind)
}
