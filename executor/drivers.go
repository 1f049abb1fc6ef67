package executor

import (
	"context"
	"fmt"

	"github.com/reconcile-dev/reconcile/plan"
)

// Driver applies the steps of its kinds, exactly as planned: the payload carries what to write,
// the action whether to create, change or delete it. Every Apply is idempotent: called when
// the world already matches, it writes nothing. Outputs are what later steps reference
// (plan.Ref); most steps have none.
type Driver interface {
	Apply(ctx context.Context, s plan.Step) (plan.Outputs, error)
}

// Drivers bundles the drivers, one per part of the outside world; a nil driver makes its
// steps fail with ErrNoDriver. They are implemented in state/linode, state/karmada,
// state/mesh and state/weights.
type Drivers struct {
	// Clusters: cluster, kubeconfig.
	Clusters Driver
	// Karmada: node-address, karmada-release, karmada-kubeconfig, karmada-ready, join,
	// member-ready, unjoin.
	Karmada Driver
	// Mesh: root-ca, mesh-namespace, cacerts, mesh-release, expose, reader-token,
	// remote-secret, mesh-teardown.
	Mesh Driver
	// Weights: manifests, policy, rollout gates.
	Weights Driver
	// Entry: dns-zone, ingress-address, dns-record.
	Entry Driver
}

// ErrNoDriver is returned for a step whose layer has no driver configured.
var ErrNoDriver = fmt.Errorf("no driver configured for this layer")

// Dispatch returns the StepFunc that applies plan steps through the drivers.
func Dispatch(d Drivers) StepFunc {
	return func(ctx context.Context, s plan.Step) (plan.Outputs, error) {
		drv, err := d.For(s.Kind)
		if err != nil {
			return nil, err
		}
		return drv.Apply(ctx, s)
	}
}

// For is the driver of a step kind.
func (d Drivers) For(k plan.Kind) (Driver, error) {
	var drv Driver
	switch k {
	case plan.KindCluster, plan.KindKubeconfig:
		drv = d.Clusters
	case plan.KindNodeAddress, plan.KindKarmadaRelease, plan.KindKarmadaKubeconfig, plan.KindKarmadaReady,
		plan.KindJoin, plan.KindMemberReady, plan.KindUnjoin:
		drv = d.Karmada
	case plan.KindRootCA, plan.KindMeshNamespace, plan.KindCACerts, plan.KindMeshRelease,
		plan.KindExpose, plan.KindReaderToken, plan.KindRemoteSecret, plan.KindMeshTeardown:
		drv = d.Mesh
	case plan.KindManifests, plan.KindPolicy, plan.KindRolloutGate:
		drv = d.Weights
	case plan.KindDNSZone, plan.KindIngressAddress, plan.KindDNSRecord:
		drv = d.Entry
	default:
		return nil, fmt.Errorf("unknown step kind %q", k)
	}
	if drv == nil {
		return nil, ErrNoDriver
	}
	return drv, nil
}
