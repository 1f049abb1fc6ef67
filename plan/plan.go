// Package plan holds the plan graph: steps, their typed payloads, the checks of a graph
// (dependencies, cycles) and its renderings. The planner computes plans, the executor walks
// them and the drivers apply their steps; none of them decides what another decided.
// It imports nothing of this project's but spec.
package plan

// Action is what a step does to its object.
type Action string

const (
	NoOp    Action = ""
	Create  Action = "create"
	Update  Action = "update"
	Delete  Action = "delete"
	Replace Action = "replace"
	// Wait gates dependents on a condition (a cluster Ready, an API answering); it writes nothing.
	Wait Action = "wait"
)

// Symbol is the one-glance mark used in plan text.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case Delete:
		return "-"
	case Replace:
		return "-/+"
	case Wait:
		return "<="
	}
	return " "
}

// Layer groups steps for display and ordering of the text output.
type Layer string

const (
	Managers Layer = "managers"
	Members  Layer = "members"
	Mesh     Layer = "mesh"
	Weights  Layer = "weights"
	// Entry is the fleet's DNS name: the zone, each member's ingress address, the records.
	Entry Layer = "entry"
)

// Layers in display order.
var Layers = []Layer{Managers, Members, Mesh, Weights, Entry}

// Kind says which driver call executes a step.
type Kind string

const (
	KindCluster           Kind = "cluster"            // LKE cluster (create/update/replace pools/delete)
	KindKubeconfig        Kind = "kubeconfig"         // fetch and store a cluster's kubeconfig
	KindNodeAddress       Kind = "node-address"       // wait for a Ready node's address (output nodeIP)
	KindKarmadaRelease    Kind = "karmada-release"    // Karmada chart, host mode, on the manager
	KindKarmadaKubeconfig Kind = "karmada-kubeconfig" // read <release>-kubeconfig, rewrite server, store
	KindKarmadaReady      Kind = "karmada-ready"      // Karmada API /readyz and APIService Available
	KindJoin              Kind = "join"               // Push: RBAC + secrets + Cluster; Pull: agent release
	KindMemberReady       Kind = "member-ready"       // Cluster Ready=True
	KindUnjoin            Kind = "unjoin"             // Cluster deleted, member-side objects removed
	KindRootCA            Kind = "root-ca"            // mesh root CA in the state store
	KindMeshNamespace     Kind = "mesh-namespace"     // istio-system with the network label
	KindCACerts           Kind = "cacerts"            // intermediate for a member
	KindMeshRelease       Kind = "mesh-release"       // base, istiod or the east-west gateway chart
	KindExpose            Kind = "expose"             // cross-network Gateway
	KindReaderToken       Kind = "reader-token"       // token secret for istio-reader-service-account
	KindRemoteSecret      Kind = "remote-secret"      // istio-remote-secret-<Peer> in Cluster
	KindMeshTeardown      Kind = "mesh-teardown"      // a member left: remove its mesh objects
	KindManifests         Kind = "manifests"          // a workload's manifests applied into Karmada
	KindPolicy            Kind = "policy"             // (Cluster)PropagationPolicy
	KindRolloutGate       Kind = "rollout-gate"       // a rollout stage's gate: gaining members report available
	KindDNSZone           Kind = "dns-zone"           // the entry's DNS Manager domain
	KindIngressAddress    Kind = "ingress-address"    // wait for a member's entry Service address (output ingressIPs)
	KindDNSRecord         Kind = "dns-record"         // a name's A/AAAA records and its registry TXT record
)

// Step is one node of the plan graph.
type Step struct {
	Address string `json:"address"`
	Layer   Layer  `json:"layer"`
	Kind    Kind   `json:"kind"`
	Action  Action `json:"action"`
	// Cluster is the fleet name of the cluster the step acts on (manager or member).
	Cluster string `json:"cluster,omitempty"`
	// Peer is the other member of a remote-secret step: the member the secret reaches.
	Peer string `json:"peer,omitempty"`
	// Component is the mesh chart a mesh-release step installs (base, istiod, eastwest).
	Component string `json:"component,omitempty"`
	// Workload is the fleet workload a weights step belongs to.
	Workload string `json:"workload,omitempty"`
	// Namespace is the namespace of the policy a weights step acts on ("" when cluster-scoped),
	// so deleting the policy of a workload that left the fleet needs nothing but the step.
	Namespace string `json:"namespace,omitempty"`
	// Changes say, field by field, what the step changes; never secrets.
	Changes []Change `json:"changes,omitempty"`
	// Reason is for people only; apply never decides on it.
	Reason    string   `json:"reason"`
	DependsOn []string `json:"dependsOn,omitempty"`
	// Payload is what the step applies, computed once by the planner. Drivers apply it and
	// never re-derive it from the fleet.
	Payload Payload `json:"payload"`
}

// Change is one field a step changes, rendered for people.
type Change struct {
	Field  string `json:"field"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Plan is the graph of steps, in a deterministic order (layer, then address).
type Plan struct {
	Fleet string `json:"fleet"`
	Steps []Step `json:"steps"`
	// Held are the steps the plan does not decide because a cluster they act in (or read
	// from) was not observed this pass: shown with "?", never executed, planned again by the
	// first pass that observes it. What was not observed is not taken for absent.
	Held []Held `json:"held,omitempty"`
	// Notes are things the plan cannot do or promise (a member not Ready, a lost root CA).
	Notes []string `json:"notes,omitempty"`
	// Cost is what the fleet's LKE clusters cost a month before and after the plan; nil for
	// a fleet without LKE clusters (or a world observed without the Linode observer). It is
	// for people: no step depends on it, and a saved plan is checked without it.
	Cost *Cost `json:"cost,omitempty"`
	// SpecFingerprint and WorldFingerprint tie a saved plan to what it was computed from.
	SpecFingerprint  string `json:"specFingerprint"`
	WorldFingerprint string `json:"worldFingerprint"`
}

// Held is a step the plan holds: its address, the layer it is shown in, the cluster that
// was not observed and why ("not observed: ...").
type Held struct {
	Address string `json:"address"`
	Layer   Layer  `json:"layer"`
	Cluster string `json:"cluster"`
	Reason  string `json:"reason"`
}

// HeldSymbol marks a held step in plan text.
const HeldSymbol = "?"

// Summary counts the steps by action.
type Summary struct {
	Add, Change, Destroy, Wait int
}

// Summary counts what the plan would do; a replace counts as one add and one destroy.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, st := range p.Steps {
		switch st.Action {
		case Create:
			s.Add++
		case Update:
			s.Change++
		case Delete:
			s.Destroy++
		case Replace:
			s.Add++
			s.Destroy++
		case Wait:
			s.Wait++
		}
	}
	return s
}

// Empty reports whether the plan would change nothing.
func (p *Plan) Empty() bool {
	s := p.Summary()
	return s.Add == 0 && s.Change == 0 && s.Destroy == 0
}
