package executor

import (
	"context"
	"fmt"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
)

// The drivers below are the outside world as the executor sees it. Each is implemented
// elsewhere (state/linode, state/karmada, state/mesh, ...) and passed in through Drivers.
// Every method is idempotent: called when the world already matches, it changes nothing.

// ClusterDriver creates and changes clusters (LKE through the Linode API).
type ClusterDriver interface {
	// ApplyCluster creates the named cluster or updates it to match the fleet.
	ApplyCluster(ctx context.Context, fleet *spec.Fleet, name string) error
	// DeleteCluster deletes a cluster the fleet owns and returns once it is confirmed gone.
	DeleteCluster(ctx context.Context, fleet *spec.Fleet, name string) error
	// StoreKubeconfig waits (bounded) for the cluster's kubeconfig and stores it 0600.
	StoreKubeconfig(ctx context.Context, fleet *spec.Fleet, name string) error
}

// KarmadaDriver installs the control plane and manages membership.
type KarmadaDriver interface {
	InstallControlPlane(ctx context.Context, fleet *spec.Fleet) error
	StoreKarmadaKubeconfig(ctx context.Context, fleet *spec.Fleet) error
	WaitControlPlaneReady(ctx context.Context, fleet *spec.Fleet) error
	Join(ctx context.Context, fleet *spec.Fleet, member string) error
	WaitMemberReady(ctx context.Context, fleet *spec.Fleet, member string) error
	// Unjoin removes a member that left the fleet (it is no longer in fleet.Members).
	Unjoin(ctx context.Context, fleet *spec.Fleet, member string) error
}

// MeshDriver builds the Istio multi-primary, multi-network mesh.
type MeshDriver interface {
	EnsureRootCA(ctx context.Context, fleet *spec.Fleet) error
	EnsureNamespace(ctx context.Context, fleet *spec.Fleet, member string) error
	EnsureCACerts(ctx context.Context, fleet *spec.Fleet, member string) error
	// EnsureRelease installs or upgrades one chart: "base", "istiod" or "eastwest".
	EnsureRelease(ctx context.Context, fleet *spec.Fleet, member, component string) error
	EnsureGateway(ctx context.Context, fleet *spec.Fleet, member string) error
	EnsureReaderToken(ctx context.Context, fleet *spec.Fleet, member string) error
	// EnsureRemoteSecret writes istio-remote-secret-<from> into member in.
	EnsureRemoteSecret(ctx context.Context, fleet *spec.Fleet, in, from string) error
	DeleteRemoteSecret(ctx context.Context, fleet *spec.Fleet, in, from string) error
	// Teardown removes the mesh objects of a member that left the fleet.
	Teardown(ctx context.Context, fleet *spec.Fleet, member string) error
}

// WeightsDriver writes workloads and policies into Karmada.
type WeightsDriver interface {
	ApplyManifests(ctx context.Context, fleet *spec.Fleet, workload string) error
	ApplyPolicy(ctx context.Context, fleet *spec.Fleet, workload string) error
	// DeletePolicy removes the policy of a workload that left the fleet.
	DeletePolicy(ctx context.Context, fleet *spec.Fleet, step planner.Step) error
}

// Drivers bundles the drivers; a nil driver makes its steps fail with ErrNoDriver.
type Drivers struct {
	Clusters ClusterDriver
	Karmada  KarmadaDriver
	Mesh     MeshDriver
	Weights  WeightsDriver
}

// ErrNoDriver is returned for a step whose layer has no driver configured.
var ErrNoDriver = fmt.Errorf("no driver configured for this layer")

// Dispatch returns the StepFunc that executes plan steps through the drivers.
func Dispatch(d Drivers, fleet *spec.Fleet) StepFunc {
	return func(ctx context.Context, s planner.Step) error {
		switch s.Kind {
		case planner.KindCluster:
			if d.Clusters == nil {
				return ErrNoDriver
			}
			if s.Action == planner.Delete {
				return d.Clusters.DeleteCluster(ctx, fleet, s.Cluster)
			}
			return d.Clusters.ApplyCluster(ctx, fleet, s.Cluster)
		case planner.KindKubeconfig:
			if d.Clusters == nil {
				return ErrNoDriver
			}
			return d.Clusters.StoreKubeconfig(ctx, fleet, s.Cluster)
		case planner.KindKarmadaRelease, planner.KindKarmadaKubeconfig, planner.KindKarmadaReady,
			planner.KindJoin, planner.KindMemberReady, planner.KindUnjoin:
			if d.Karmada == nil {
				return ErrNoDriver
			}
			return dispatchKarmada(ctx, d.Karmada, fleet, s)
		case planner.KindRootCA, planner.KindMeshNamespace, planner.KindCACerts, planner.KindMeshRelease,
			planner.KindExpose, planner.KindReaderToken, planner.KindRemoteSecret, planner.KindMeshTeardown:
			if d.Mesh == nil {
				return ErrNoDriver
			}
			return dispatchMesh(ctx, d.Mesh, fleet, s)
		case planner.KindManifests:
			if d.Weights == nil {
				return ErrNoDriver
			}
			return d.Weights.ApplyManifests(ctx, fleet, s.Workload)
		case planner.KindPolicy:
			if d.Weights == nil {
				return ErrNoDriver
			}
			if s.Action == planner.Delete {
				return d.Weights.DeletePolicy(ctx, fleet, s)
			}
			return d.Weights.ApplyPolicy(ctx, fleet, s.Workload)
		}
		return fmt.Errorf("unknown step kind %q", s.Kind)
	}
}

func dispatchKarmada(ctx context.Context, k KarmadaDriver, fleet *spec.Fleet, s planner.Step) error {
	switch s.Kind {
	case planner.KindKarmadaRelease:
		return k.InstallControlPlane(ctx, fleet)
	case planner.KindKarmadaKubeconfig:
		return k.StoreKarmadaKubeconfig(ctx, fleet)
	case planner.KindKarmadaReady:
		return k.WaitControlPlaneReady(ctx, fleet)
	case planner.KindJoin:
		return k.Join(ctx, fleet, s.Cluster)
	case planner.KindMemberReady:
		return k.WaitMemberReady(ctx, fleet, s.Cluster)
	default: // KindUnjoin
		return k.Unjoin(ctx, fleet, s.Cluster)
	}
}

func dispatchMesh(ctx context.Context, m MeshDriver, fleet *spec.Fleet, s planner.Step) error {
	switch s.Kind {
	case planner.KindRootCA:
		return m.EnsureRootCA(ctx, fleet)
	case planner.KindMeshNamespace:
		return m.EnsureNamespace(ctx, fleet, s.Cluster)
	case planner.KindCACerts:
		return m.EnsureCACerts(ctx, fleet, s.Cluster)
	case planner.KindMeshRelease:
		return m.EnsureRelease(ctx, fleet, s.Cluster, s.Peer)
	case planner.KindExpose:
		return m.EnsureGateway(ctx, fleet, s.Cluster)
	case planner.KindReaderToken:
		return m.EnsureReaderToken(ctx, fleet, s.Cluster)
	case planner.KindRemoteSecret:
		if s.Action == planner.Delete {
			return m.DeleteRemoteSecret(ctx, fleet, s.Cluster, s.Peer)
		}
		return m.EnsureRemoteSecret(ctx, fleet, s.Cluster, s.Peer)
	default: // KindMeshTeardown
		return m.Teardown(ctx, fleet, s.Cluster)
	}
}
