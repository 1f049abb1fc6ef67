package planner

import (
	"fmt"
	"slices"
	"sort"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/world"
)

// holdsKarmada reports whether a cluster runs a Karmada control plane.
func (b *builder) holdsKarmada(c *world.Cluster) bool {
	relName, ns := b.f.Manager.Karmada.Release, b.f.Manager.Karmada.Namespace
	return c != nil && c.Releases[ReleaseKey(ns, relName)] != nil
}

func (b *builder) removedNames() []string {
	set := map[string]bool{}
	if k := b.w.Karmada; k != nil {
		for n := range k.Members {
			set[n] = true
		}
	}
	for n := range b.w.Clusters {
		set[n] = true
	}
	if b.f.Mesh.On() {
		for n := range b.w.Mesh {
			set[n] = true
		}
	}
	var out []string
	for n := range set {
		if n != b.f.Manager.Name && !b.isMember(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (b *builder) removals() {
	for _, r := range b.removedNames() {
		b.removal(r)
	}
}

func (b *builder) removal(r string) {
	{
		// Only the fleet's own Clusters are unjoined: one joined by someone else is not ours.
		if b.ownedKarmadaMember(r) != nil {
			st := plan.Step{Address: addrUnjoin(r), Layer: plan.Members, Kind: plan.KindUnjoin, Action: plan.Delete, Cluster: r,
				Reason:  r + " left fleet.yaml",
				Changes: []plan.Change{{Field: "karmada member", Before: r, After: removed}},
				Payload: plan.Payload{Unjoin: &plan.Unjoin{Force: b.opts.ForceUnjoin}}}
			if b.opts.ForceUnjoin {
				st.Changes = append(st.Changes, plan.Change{Field: "force", After: "finalizers stripped if deleting does not finish (--force-unjoin)"})
			}
			// Replicas move off the member before it goes.
			if k := b.w.Karmada; k != nil {
				for _, key := range sortedKeys(k.Policies) {
					p := k.Policies[key]
					if slices.Contains(p.Clusters, r) {
						for _, s := range b.steps {
							if s.Kind == plan.KindPolicy && s.Namespace == p.Namespace && s.Workload == p.Name {
								st.DependsOn = append(st.DependsOn, s.Address)
							}
						}
					}
				}
			}
			b.add(st)
		}
		obs := b.cluster(r)
		deleting := false
		if obs != nil && obs.LinodeID != 0 {
			if b.f.Safety.Prune {
				b.add(plan.Step{Address: addrCluster(r), Layer: plan.Members, Kind: plan.KindCluster, Action: plan.Delete, Cluster: r,
					Reason:    r + " left fleet.yaml and safety.prune is on",
					DependsOn: b.present(addrUnjoin(r)),
					Changes:   []plan.Change{{Field: "LKE cluster", Before: fmt.Sprintf("%s (id %d, %s)", obs.Label, obs.LinodeID, obs.Region), After: removed}},
					Payload:   plan.Payload{Cluster: &plan.ClusterChange{Label: obs.Label, LinodeID: obs.LinodeID}}})
				deleting = true
			} else {
				b.note("cluster/%s left fleet.yaml and is kept (LKE cluster %d): safety.prune is off, "+
					"so only its membership and mesh secrets are withdrawn", r, obs.LinodeID)
			}
		}
		if b.f.Mesh.On() && !deleting && obs != nil && obs.Reachable && hasMeshObjects(b.meshMember(r)) {
			var deps []string
			for _, m := range b.members {
				deps = append(deps, b.present(addrRemoteSecret(m.Name, r))...)
			}
			b.add(plan.Step{Address: addrMesh(r, "teardown"), Layer: plan.Mesh, Kind: plan.KindMeshTeardown, Action: plan.Delete,
				Cluster: r, Reason: r + " left the fleet: its mesh objects are removed", DependsOn: deps,
				Changes: []plan.Change{{Field: "mesh", Before: MeshNamespace + " objects of reconcile", After: removed}},
				Payload: plan.Payload{Teardown: &plan.Teardown{Namespace: MeshNamespace, Releases: []string{
					MeshReleaseName(ComponentEastWest), MeshReleaseName(ComponentIstiod), MeshReleaseName(ComponentBase)}}}})
		}
	}
	// An existing cluster is reached through the kubeconfig the state keeps of it: forgotten
	// by the last of its teardown steps (the mesh teardown after the unjoin).
	if obs := b.cluster(r); obs != nil && obs.Existing {
		unjoin, hasUnjoin := b.steps[addrUnjoin(r)]
		teardown, hasTeardown := b.steps[addrMesh(r, "teardown")]
		switch {
		case hasTeardown:
			if hasUnjoin {
				teardown.DependsOn = append(teardown.DependsOn, unjoin.Address)
			}
			teardown.Payload.Teardown.Forget = true
		case hasUnjoin:
			unjoin.Payload.Unjoin.Forget = true
		}
	}
}
