package planner

import (
	"github.com/reconcile-dev/reconcile/state/world"
)

// A member whose name Karmada already gives to a Cluster that is not the fleet's (no
// reconcile.dev/fleet mark of this fleet) is a conflict, unless that Cluster stands for the
// very same cluster (its id is the member's kube-system UID): then the join adopts it and
// puts the mark on. A conflicting member's steps are all held with a note, it gets no
// replicas, and the rest of the fleet proceeds.

// conflict says why member name conflicts with another's Karmada Cluster, or "".
func (b *builder) conflict(name string) string {
	if _, ok := b.f.Member(name); !ok {
		return ""
	}
	km := b.karmadaMember(name)
	if km == nil || km.OwnedBy(b.f.Metadata.Name) {
		return ""
	}
	owner := "not marked as any fleet's"
	if km.Fleet != "" {
		owner = "fleet " + km.Fleet + "'s"
	}
	c := b.cluster(name)
	switch {
	case c == nil || c.KubeSystemUID == "":
		return "Karmada already has a Cluster " + name + ", " + owner + ", and " + name + "'s identity could not be read to tell whether it is this cluster"
	case km.ID != c.KubeSystemUID:
		return "Karmada already has a Cluster " + name + ", " + owner + ", for another cluster (id " + km.ID + ", this member's kube-system UID is " + c.KubeSystemUID + "); rename the member or unjoin that Cluster"
	}
	return ""
}

// adopts reports whether the member's join takes over a Cluster that is this very cluster
// but lacks the fleet's mark.
func (b *builder) adopts(name string) bool {
	km := b.karmadaMember(name)
	return km != nil && !km.OwnedBy(b.f.Metadata.Name) && b.conflict(name) == ""
}

// ownedKarmadaMember is the member's Karmada Cluster when it is the fleet's.
func (b *builder) ownedKarmadaMember(name string) *world.KarmadaMember {
	km := b.karmadaMember(name)
	if km == nil || !km.OwnedBy(b.f.Metadata.Name) {
		return nil
	}
	return km
}

// holdConflicts marks every conflicting member: held, and excluded from placement.
func (b *builder) holdConflicts() {
	for _, m := range b.members {
		if why := b.conflict(m.Name); why != "" {
			if b.conflicts == nil {
				b.conflicts = map[string]string{}
			}
			b.conflicts[m.Name] = why
			b.excluded[m.Name] = true
			b.note("member %s is held: %s", m.Name, why)
		}
	}
}
