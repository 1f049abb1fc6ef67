package world

// The marks on everything reconcile creates in Karmada and in the members. An object is the
// fleet's when it carries FleetLabel with the fleet's name; objects written before the label
// existed carry only ManagedByLabel and count as the fleet's too. Nothing else is ever
// updated or deleted.
const (
	FleetLabel     = "reconcile.dev/fleet"
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "reconcile"
	// IdentityAnnotation records the identity of the cluster an object stands for (a Karmada
	// Cluster: the member's kube-system namespace UID).
	IdentityAnnotation = "reconcile.dev/identity"
)

// OwnedBy reports whether labels mark an object as fleet's.
func OwnedBy(labels map[string]string, fleet string) bool {
	if v, ok := labels[FleetLabel]; ok {
		return v == fleet
	}
	return labels[ManagedByLabel] == ManagedByValue
}

// A Pull member's karmada-agent reaches Karmada as its own user, as `karmadactl register`
// makes it: AgentUser(member) in group AgentGroup, with RBAC for that member's objects only.
const (
	AgentUserPrefix = "system:karmada:agent:"
	AgentGroup      = "system:karmada:agents"
)

// AgentUser is the Karmada user of member's karmada-agent.
func AgentUser(member string) string { return AgentUserPrefix + member }

// LinodeFleetTagPrefix starts the Linode tag every Linode object of a fleet carries (its LKE
// clusters, a DNS zone it created): reconcile.fleet:<fleet>.
const LinodeFleetTagPrefix = "reconcile.fleet:"

// LinodeFleetTag is the Linode tag of fleet's objects.
func LinodeFleetTag(fleet string) string { return LinodeFleetTagPrefix + fleet }
