// Package world is what one pass observed: plain data that observers fill and the planner reads.
package world

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// World is everything observed in one pass. The planner reads it and nothing else.
// A nil map or pointer means "nothing there" (or not observable yet, see the Reachable flags).
type World struct {
	// Clusters by fleet name (manager and members), including clusters we own that have
	// left fleet.yaml (found by the fleet's tag), so the planner can unjoin or prune them.
	Clusters map[string]*Cluster `json:"clusters,omitempty"`
	// Karmada is the control plane seen through the manager; nil when not reachable.
	Karmada *Karmada `json:"karmada,omitempty"`
	// Mesh per member name.
	Mesh map[string]*MeshMember `json:"mesh,omitempty"`
	// RootCA is the mesh root kept in the state store; nil when none was generated yet.
	RootCA *CertInfo `json:"rootCA,omitempty"`
	// RootCALost is set when the store records that a root existed but its files are gone.
	RootCALost bool `json:"rootCALost,omitempty"`
	// Rollouts are the gated rollouts of weights in progress (or halted), by workload name, as
	// the state store keeps them (see Rollout).
	Rollouts map[string]*Rollout `json:"rollouts,omitempty"`
	// Entry is the fleet's DNS entry as observed; nil when the fleet has none.
	Entry *Entry `json:"entry,omitempty"`
	// Now is when the world was observed; the planner compares expiries to it (no clock).
	Now time.Time `json:"now"`
	// Prices are Linode's prices as the Linode observer read them (this pass, or from the
	// state store's cache); nil when none are known. PricesUnknown says why they are not
	// ("" when the Linode observer did not run: a fleet without LKE clusters, or a test).
	Prices        *Prices `json:"prices,omitempty"`
	PricesUnknown string  `json:"pricesUnknown,omitempty"`
}

// Prices are the monthly list prices of what an LKE fleet pays for, in US cents (integers,
// so that sums are exact), as the Linode API serves them.
type Prices struct {
	// FetchedAt is when they were read from the API.
	FetchedAt time.Time `json:"fetchedAt"`
	// RefreshFailed says why this pass's read of fresh prices failed ("" when it did not);
	// the prices are then the cached ones, FetchedAt old.
	RefreshFailed string `json:"refreshFailed,omitempty"`
	// Types are the node types (g6-standard-2, ...) by id; LKEHA is the HA control plane
	// (LKE type lke-ha); NodeBalancer is one NodeBalancer (nil when the API serves no price).
	Types        map[string]Price `json:"types"`
	LKEHA        *Price           `json:"lkeHA,omitempty"`
	NodeBalancer *Price           `json:"nodeBalancer,omitempty"`
}

// Price is one monthly price in cents, with the regions that charge another.
type Price struct {
	Monthly int64            `json:"monthly"`
	Regions map[string]int64 `json:"regions,omitempty"`
}

// In is the monthly price in region, in cents.
func (p Price) In(region string) int64 {
	if c, ok := p.Regions[region]; ok {
		return c
	}
	return p.Monthly
}

// Cluster is one Kubernetes cluster of the fleet as observed.
type Cluster struct {
	Name string `json:"name"`
	// LKE part, empty for an existing cluster given by kubeconfig.
	LinodeID         int      `json:"linodeID,omitempty"`
	Label            string   `json:"label,omitempty"`
	Region           string   `json:"region,omitempty"`
	K8sVersion       string   `json:"k8sVersion,omitempty"`
	HighAvailability bool     `json:"highAvailability,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	Status           string   `json:"status,omitempty"`
	Pools            []Pool   `json:"pools,omitempty"`
	// KubeconfigStored: a working kubeconfig for the cluster is in the state store.
	KubeconfigStored bool `json:"kubeconfigStored,omitempty"`
	// Reachable: the cluster's API answered this pass.
	Reachable bool `json:"reachable,omitempty"`
	// Unreachable says why a cluster that has a kubeconfig did not answer this pass (a dial or
	// TLS handshake that ran out of time, a refused connection); "" when it answered or was not
	// tried. Nothing of it was observed: the planner holds the steps that act in it.
	Unreachable string `json:"unreachable,omitempty"`
	// Unreadable says why a cluster that answered could not be read in full this pass (an
	// observer's read failed); "" when every observer read it. See World.MarkUnreadable.
	Unreadable string `json:"unreadable,omitempty"`
	// APIEndpoint is the URL other clusters use to reach this cluster's API.
	APIEndpoint string `json:"apiEndpoint,omitempty"`
	// NodeIPs are public IPv4 addresses of ready nodes, sorted.
	NodeIPs []string `json:"nodeIPs,omitempty"`
	// Existing: a cluster given by kubeconfig (not LKE). One that left the fleet is still
	// reached through the copy of its kubeconfig the state keeps until its teardown is done.
	Existing bool `json:"existing,omitempty"`
	// KubeSystemUID identifies the cluster (Karmada's cluster ID).
	KubeSystemUID string `json:"kubeSystemUID,omitempty"`
	// Releases are Helm releases by "namespace/name".
	Releases map[string]*Release `json:"releases,omitempty"`
	// PushJoin is the member-side part of a Push join (namespace, SAs, RBAC) as observed.
	PushJoin *PushJoin `json:"pushJoin,omitempty"`
	// Agent is the client certificate a Pull member's karmada-agent reaches Karmada with,
	// read from the agent's kubeconfig Secret; nil when there is none (or it was not read).
	Agent *AgentCredential `json:"agent,omitempty"`
}

// AgentCredential describes a karmada-agent's client certificate, never its key.
type AgentCredential struct {
	// Subject is the certificate's common name (the Karmada user), Groups its organizations.
	Subject   string    `json:"subject"`
	Groups    []string  `json:"groups,omitempty"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
}

// MarkUnreadable is the one rule every observer follows when a read of a cluster fails: it
// does not fail the pass (other clusters are fine) and it does not leave the part it could
// not read empty (empty means absent to the planner, which would plan to create it again).
// It records why instead; the planner holds every step that acts in that cluster, with a
// note, until a pass reads it in full.
func (w *World) MarkUnreadable(cluster, why string) {
	if w.Clusters == nil {
		w.Clusters = map[string]*Cluster{}
	}
	c := w.Clusters[cluster]
	if c == nil {
		c = &Cluster{Name: cluster}
		w.Clusters[cluster] = c
	}
	if c.Unreadable == "" {
		c.Unreadable = why
	} else if !strings.Contains(c.Unreadable, why) {
		c.Unreadable += "; " + why
	}
}

// Pool is an LKE node pool.
type Pool struct {
	ID         int      `json:"id"`
	Type       string   `json:"type"`
	Count      int      `json:"count"`
	Autoscaler *Scaler  `json:"autoscaler,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	Nodes      []Node   `json:"nodes,omitempty"`
}

// Scaler is an enabled pool autoscaler.
type Scaler struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Node is an LKE node.
type Node struct {
	ID         string `json:"id"`
	InstanceID int    `json:"instanceID,omitempty"`
	Status     string `json:"status"`
	PublicIPv4 string `json:"publicIPv4,omitempty"`
}

// Ready reports whether every pool has its nodes ready.
func (c *Cluster) Ready() bool {
	if len(c.Pools) == 0 {
		return false
	}
	for _, p := range c.Pools {
		if len(p.Nodes) < p.Count {
			return false
		}
		for _, n := range p.Nodes {
			if n.Status != "ready" {
				return false
			}
		}
	}
	return true
}

// Release is a Helm release as stored in the cluster.
type Release struct {
	Name         string         `json:"name"`
	Namespace    string         `json:"namespace"`
	Chart        string         `json:"chart"`
	ChartVersion string         `json:"chartVersion"`
	Status       string         `json:"status"` // deployed, failed, pending-install, ...
	Values       map[string]any `json:"values,omitempty"`
}

// PushJoin is what a Push join leaves in the member.
type PushJoin struct {
	Namespace   bool `json:"namespace"`
	RBAC        bool `json:"rbac"`
	TokensReady bool `json:"tokensReady"`
	// CredentialHash fingerprints the member credentials (token, CA) for drift detection:
	// those of the current token Secret (the newest filled one of the fleet's).
	CredentialHash string `json:"credentialHash,omitempty"`
	// ImpersonatorHash fingerprints the current impersonator token the same way.
	ImpersonatorHash string `json:"impersonatorHash,omitempty"`
	// Tokens are the current token Secrets (member and impersonator), sorted; TokenCreated is
	// when the older of them was made (zero when unknown: such a token is never rotated for
	// its age). OldTokens are older token Secrets of the fleet's for the same service
	// accounts still present (a rotation that did not finish), sorted.
	Tokens       []string  `json:"tokens,omitempty"`
	TokenCreated time.Time `json:"tokenCreated,omitzero"`
	OldTokens    []string  `json:"oldTokens,omitempty"`
}

// Karmada is the control plane as seen through its API.
type Karmada struct {
	Reachable bool `json:"reachable"`
	// APIServiceAvailable: v1alpha1.cluster.karmada.io is Available.
	APIServiceAvailable bool                      `json:"apiServiceAvailable"`
	Members             map[string]*KarmadaMember `json:"members,omitempty"`
	// Policies by "namespace/name" ("/name" for cluster-scoped ones), only ours (managed-by label).
	Policies map[string]*Policy `json:"policies,omitempty"`
	// Workloads by "namespace/kind/name": resources the policies select.
	Workloads map[string]*Workload `json:"workloads,omitempty"`
	// ManifestHashes by workload name: fingerprint of the manifests last applied.
	ManifestHashes map[string]string `json:"manifestHashes,omitempty"`
}

// KarmadaMember is a cluster.karmada.io Cluster.
type KarmadaMember struct {
	Name        string `json:"name"`
	SyncMode    string `json:"syncMode"`
	APIEndpoint string `json:"apiEndpoint"`
	ID          string `json:"id,omitempty"`
	// SecretHash fingerprints the credentials in the member's secrets in karmada-cluster.
	SecretHash string `json:"secretHash,omitempty"`
	// ImpersonatorHash fingerprints the token in the member's impersonator secret.
	ImpersonatorHash string `json:"impersonatorHash,omitempty"`
	Ready            string `json:"ready"` // True, False, Unknown, or "" when no condition yet
	Reason           string `json:"reason,omitempty"`
	Message          string `json:"message,omitempty"`
	Deleting         bool   `json:"deleting,omitempty"`
	// Fleet is the value of the Cluster's reconcile.dev/fleet label ("" when it has none) and
	// ManagedBy whether it carries app.kubernetes.io/managed-by: reconcile.
	Fleet     string `json:"fleet,omitempty"`
	ManagedBy bool   `json:"managedBy,omitempty"`
	// AgentRBACMissing names the Karmada-side RBAC objects of a Pull member's own agent
	// identity that are absent or differ (read for Pull members only; empty when complete).
	AgentRBACMissing []string `json:"agentRBACMissing,omitempty"`
}

// OwnedBy reports whether the Cluster is fleet's (see OwnedBy).
func (m *KarmadaMember) OwnedBy(fleet string) bool {
	labels := map[string]string{}
	if m.Fleet != "" {
		labels[FleetLabel] = m.Fleet
	}
	if m.ManagedBy {
		labels[ManagedByLabel] = ManagedByValue
	}
	return OwnedBy(labels, fleet)
}

// Policy is a (Cluster)PropagationPolicy written by reconcile.
type Policy struct {
	Namespace     string           `json:"namespace,omitempty"`
	Name          string           `json:"name"`
	ClusterScoped bool             `json:"clusterScoped,omitempty"`
	Resources     []ResourceRef    `json:"resources"`
	Clusters      []string         `json:"clusters"`
	Weights       map[string]int64 `json:"weights"`
	Divided       bool             `json:"divided"`
}

// ResourceRef is a policy's resource selector.
type ResourceRef struct {
	APIVersion    string            `json:"apiVersion"`
	Kind          string            `json:"kind"`
	Name          string            `json:"name,omitempty"`
	LabelSelector map[string]string `json:"labelSelector,omitempty"`
}

// Workload is a resource in Karmada whose replicas are divided.
type Workload struct {
	UID      string `json:"uid,omitempty"`
	Replicas int32  `json:"replicas"`
	// Scheduled is the split Karmada made, by member.
	Scheduled map[string]int32 `json:"scheduled,omitempty"`
	// Available is what each member reports available through the binding's aggregated
	// status (availableReplicas of the member's copy), by member; nil when none reported.
	Available map[string]int32 `json:"available,omitempty"`
}

// Rollout is the progress of a workload's gated rollout of weights, kept in the state store
// (it cannot be observed): where it started, the stage it is at and since when, the last stage
// whose gate held, and why it halted. The planner derives every stage from From, Target and
// the workload's rollout settings, so only the stage number needs keeping.
type Rollout struct {
	Workload string `json:"workload"`
	// Resource is the divided resource the stages are computed for ("namespace/Kind/name")
	// and Replicas its replicas when the rollout began.
	Resource string `json:"resource"`
	Replicas int32  `json:"replicas"`
	// From are the weights in force when the rollout began, Target the weights of fleet.yaml
	// it moves to.
	From   map[string]int64 `json:"from"`
	Target map[string]int64 `json:"target"`
	// Stage is the stage applied last (1-based) of Stages.
	Stage  int `json:"stage"`
	Stages int `json:"stages"`
	// Weights are the policy's weights at Stage, Split the replicas they divide to.
	Weights map[string]int64 `json:"weights"`
	Split   map[string]int32 `json:"split,omitempty"`
	// Started is when Stage was applied (the gate's timeout and the interval count from it).
	Started time.Time `json:"started"`
	// GateHeld: Stage's gate held (its members reported their replicas available).
	GateHeld bool `json:"gateHeld,omitempty"`
	// LastGood are the weights of the last stage whose gate held (From before the first).
	LastGood      map[string]int64 `json:"lastGood"`
	LastGoodStage int              `json:"lastGoodStage"`
	// Halted says why the rollout stopped ("" while it runs); a halted rollout is not tried
	// again until fleet.yaml changes: Spec is the fleet's fingerprint when it halted.
	Halted string `json:"halted,omitempty"`
	Spec   string `json:"spec,omitempty"`
}

// MeshMember is the Istio side of one member.
type MeshMember struct {
	Namespace    bool   `json:"namespace"`
	NetworkLabel string `json:"networkLabel,omitempty"`
	// CACerts is the intermediate in the member's cacerts secret; nil when absent.
	CACerts *CertInfo `json:"cacerts,omitempty"`
	// CACertsInvalid says why a cacerts secret that exists could not be read as an
	// intermediate and the root it chains to (CACerts is nil then); "" when absent or read.
	CACertsInvalid string `json:"cacertsInvalid,omitempty"`
	// Gateway: the cross-network Gateway exists with the expected spec.
	Gateway bool `json:"gateway"`
	// ReaderToken fingerprints the istio-reader token secret; "" when absent or not filled.
	ReaderToken string `json:"readerToken,omitempty"`
	// ReaderTokenSecret names the current reader token Secret (the newest filled one of the
	// fleet's), ReaderTokenCreated is when it was made (zero when unknown: never rotated for
	// its age), and OldReaderTokens are older reader token Secrets of the fleet's still
	// present (a rotation that did not finish), oldest first.
	ReaderTokenSecret  string    `json:"readerTokenSecret,omitempty"`
	ReaderTokenCreated time.Time `json:"readerTokenCreated,omitzero"`
	OldReaderTokens    []string  `json:"oldReaderTokens,omitempty"`
	// RemoteSecrets maps a peer member to the fingerprint of istio-remote-secret-<peer> here.
	RemoteSecrets map[string]string `json:"remoteSecrets,omitempty"`
	// InjectorReady: istiod's injection webhook is served.
	InjectorReady bool `json:"injectorReady"`
}

// CertInfo describes a certificate without its key.
type CertInfo struct {
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"notAfter"`
	// RootFingerprint is the SHA-256 of the root it chains to (of itself for a root).
	RootFingerprint string `json:"rootFingerprint"`
}

// RemoteSecretFingerprint identifies the content of istio-remote-secret-<x>: x's API endpoint
// and the fingerprint of x's istio-reader token (world.MeshMember.ReaderToken). Observers
// compute the same from the secret they find, so a changed endpoint or token shows as drift.
func RemoteSecretFingerprint(endpoint, readerToken string) string {
	sum := sha256.Sum256([]byte("istio-remote-secret\x00" + endpoint + "\x00" + readerToken))
	return hex.EncodeToString(sum[:])
}
