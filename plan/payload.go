package plan

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/reconcile-dev/reconcile/spec"
)

// Payload is what a step applies. Exactly the field of the step's kind is set (none for the
// wait steps); the planner fills it once and the drivers apply it as it is.
type Payload struct {
	Cluster           *ClusterChange     `json:"cluster,omitempty"`
	Kubeconfig        *Kubeconfig        `json:"kubeconfig,omitempty"`
	Release           *Release           `json:"release,omitempty"`
	KarmadaKubeconfig *KarmadaKubeconfig `json:"karmadaKubeconfig,omitempty"`
	Join              *Join              `json:"join,omitempty"`
	Unjoin            *Unjoin            `json:"unjoin,omitempty"`
	RootCA            *RootCA            `json:"rootCA,omitempty"`
	Namespace         *Namespace         `json:"namespace,omitempty"`
	CACerts           *CACerts           `json:"cacerts,omitempty"`
	Gateway           *Gateway           `json:"gateway,omitempty"`
	ReaderToken       *ReaderToken       `json:"readerToken,omitempty"`
	RemoteSecret      *RemoteSecret      `json:"remoteSecret,omitempty"`
	Teardown          *Teardown          `json:"teardown,omitempty"`
	Manifests         *Manifests         `json:"manifests,omitempty"`
	Policy            *Policy            `json:"policy,omitempty"`
	Gate              *RolloutGate       `json:"gate,omitempty"`
	DNSZone           *DNSZone           `json:"dnsZone,omitempty"`
	Ingress           *IngressAddress    `json:"ingress,omitempty"`
	DNSRecord         *DNSRecord         `json:"dnsRecord,omitempty"`
}

// ---- references to what earlier steps produce ----

// Outputs are what a step learned while applying that later steps need (a new cluster's API
// endpoint, the manager's node address). Never secrets.
type Outputs map[string]string

// Output names.
const (
	// OutputAPIEndpoint is the API URL of a cluster whose kubeconfig a kubeconfig step stored.
	OutputAPIEndpoint = "apiEndpoint"
	// OutputNodeIP is the address of the first Ready node of a cluster (node-address step).
	OutputNodeIP = "nodeIP"
	// OutputIngressIPs are a member's entry Service addresses, comma-separated (ingress-address step).
	OutputIngressIPs = "ingressIPs"
)

// Ref points at an output of an earlier step, which the step holding it depends on. The
// walker resolves it before the step runs; the plan shows it as KnownAfterApply.
type Ref struct {
	Step   string `json:"step"`
	Output string `json:"output"`
	// Format, when set, is a fmt format with one %s the output is put into.
	Format string `json:"format,omitempty"`
}

func (r Ref) String() string { return r.Step + "." + r.Output }

// Value is a string known when planning, or a reference to one known only after apply.
type Value struct {
	Value string `json:"value,omitempty"`
	From  *Ref   `json:"from,omitempty"`
}

// Known is a Value known when planning.
func Known(s string) Value { return Value{Value: s} }

// Shown is the value as a plan shows it.
func (v Value) Shown() string {
	if v.From != nil {
		return KnownAfterApply
	}
	return v.Value
}

// ValueRef sets the Helm value at Path (map keys, or a list index in decimal) to a Ref.
type ValueRef struct {
	Path []string `json:"path"`
	From Ref      `json:"from"`
}

// Placeholders shown in a plan, never written anywhere.
const (
	// KnownAfterApply stands for a value that exists only once earlier steps ran (a new node's IP).
	KnownAfterApply = "(known after apply)"
	// Sensitive stands for a secret the driver reads at apply time; it never appears in a plan.
	Sensitive = "(sensitive)"
)

// ---- payloads ----

// ClusterChange creates, changes or deletes an LKE cluster. Pools are matched once, by the
// planner: the driver creates, updates and deletes exactly the pools listed.
type ClusterChange struct {
	// Label is the LKE label (the fleet name of the cluster).
	Label string `json:"label"`
	// LinodeID is the cluster changed or deleted; 0 for a create.
	LinodeID int `json:"linodeID,omitempty"`
	// Region, K8sVersion and HighAvailability: every field for a create; for an update,
	// K8sVersion is set only for an upgrade and HighAvailability only to turn it on.
	Region           string `json:"region,omitempty"`
	K8sVersion       string `json:"k8sVersion,omitempty"`
	HighAvailability bool   `json:"highAvailability,omitempty"`
	// Tags are the user's tags (the driver adds the ownership tags): always for a create,
	// for an update only when they change.
	Tags *[]string `json:"tags,omitempty"`
	// CreatePools are created (all of them for a create), UpdatePools changed in place and
	// DeletePools deleted, last, once the pools that stay have Ready nodes.
	CreatePools []Pool       `json:"createPools,omitempty"`
	UpdatePools []PoolUpdate `json:"updatePools,omitempty"`
	DeletePools []PoolRef    `json:"deletePools,omitempty"`
	// ExistingPools, for an update, lists every pool the cluster had when the update was
	// planned. A pool the driver finds that is not among them is taken for one an earlier
	// attempt of this step created (a retry after a timed-out wait, an answer lost on the
	// wire): it counts towards CreatePools of its type instead of being created again.
	// Nil means unknown; the driver then recognises only the pools it created itself.
	ExistingPools []PoolRef `json:"existingPools,omitempty"`
}

// Pool is a node pool to create.
type Pool struct {
	Type       string      `json:"type"`
	Count      int         `json:"count"`
	Autoscaler *Autoscaler `json:"autoscaler,omitempty"`
	Tags       []string    `json:"tags,omitempty"`
}

// Autoscaler is a pool autoscaler's setting; Enabled false turns it off.
type Autoscaler struct {
	Enabled bool `json:"enabled"`
	Min     int  `json:"min"`
	Max     int  `json:"max"`
}

// PoolUpdate changes the fields it sets of an existing pool.
type PoolUpdate struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Count      int         `json:"count,omitempty"`
	Autoscaler *Autoscaler `json:"autoscaler,omitempty"`
	Tags       *[]string   `json:"tags,omitempty"`
}

// PoolRef names an existing pool.
type PoolRef struct {
	ID   int    `json:"id"`
	Type string `json:"type"`
}

// Kubeconfig stores an LKE cluster's kubeconfig (waiting until the API serves it) and, when
// CopyTo is set, writes a copy there. Its output is the cluster's API endpoint.
type Kubeconfig struct {
	CopyTo string `json:"copyTo,omitempty"`
}

// Release installs or upgrades a Helm chart to exactly these values.
type Release struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Chart is where the chart comes from; ChartName is the chart to take from it.
	Chart     spec.ChartSource `json:"chart"`
	ChartName string           `json:"chartName"`
	Values    map[string]any   `json:"values,omitempty"`
	// Refs are values only known once earlier steps ran; Values has no placeholder for them.
	Refs            []ValueRef    `json:"refs,omitempty"`
	Timeout         spec.Duration `json:"timeout"`
	Wait            bool          `json:"wait,omitempty"`
	WaitForJobs     bool          `json:"waitForJobs,omitempty"`
	CreateNamespace bool          `json:"createNamespace,omitempty"`
}

// KarmadaKubeconfig reads the Karmada chart's <Release>-kubeconfig secret in Namespace on the
// manager, points it at Server, checks that Karmada answers there and stores it.
type KarmadaKubeconfig struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	Server    Value  `json:"server"`
	CopyTo    string `json:"copyTo,omitempty"`
}

// Join makes a cluster a Karmada member.
type Join struct {
	// Mode is Push or Pull.
	Mode        spec.JoinMode `json:"mode"`
	APIEndpoint Value         `json:"apiEndpoint"`
	// RemoveAgent uninstalls the agent of an earlier Pull join before a Push join.
	RemoveAgent bool `json:"removeAgent,omitempty"`
	// Agent is the karmada-agent release of a Pull join. Its kubeconfig credentials are read
	// at apply time from CertSecret ("namespace/name" on cluster Manager), never put in a plan.
	// CertSecret only gives the agent the Karmada API's CA: its client certificate is its own
	// (user system:karmada:agent:<member>), issued through a CSR Karmada signs.
	Agent      *Release `json:"agent,omitempty"`
	Manager    string   `json:"manager,omitempty"`
	CertSecret string   `json:"certSecret,omitempty"`
	// AgentCertLifetime is how long a new agent certificate is issued for; the one the agent
	// has is kept while it is the member's own, signed by Karmada's CA and younger than half
	// of it, unless RenewAgentCert says to issue a new one anyway.
	AgentCertLifetime *spec.Duration `json:"agentCertLifetime,omitempty"`
	RenewAgentCert    bool           `json:"renewAgentCert,omitempty"`
	// Adopt takes over a Karmada Cluster that lacks the fleet's mark but stands for this very
	// cluster (the same kube-system UID): joined before by hand or by an older version.
	Adopt bool `json:"adopt,omitempty"`
	// Replaces is the id (kube-system UID) of the cluster Karmada's Cluster of this name stands
	// for when the cluster behind the member was replaced (an LKE cluster recreated): that
	// stale Cluster, the fleet's, is removed first (finalizers stripped if the old cluster is
	// gone), then the member joins afresh.
	Replaces string `json:"replaces,omitempty"`
	// RotateTokens (Push) names the token Secrets in the member the plan saw as current: a
	// service account whose newest token Secret is one of them gets a new one first, and
	// Karmada's secrets are written from the new tokens.
	RotateTokens []string `json:"rotateTokens,omitempty"`
	// RetireTokens (Push) names the member's token Secrets deleted once Karmada's secrets
	// hold the newest tokens: those RotateTokens replaces and older ones a rotation left.
	RetireTokens []string `json:"retireTokens,omitempty"`
}

// Unjoin removes a member from Karmada and its member-side objects.
type Unjoin struct {
	// Force strips finalizers when deleting an unreachable member does not finish.
	Force bool `json:"force,omitempty"`
	// Forget removes the kubeconfig the state keeps of an existing (kubeconfig) cluster that
	// left the fleet, once this, its last teardown step, has succeeded.
	Forget bool `json:"forget,omitempty"`
}

// RootCA generates the mesh root once and keeps it in the state store. A Replace step
// generates a new root even though the store has one (--replace-mesh-root).
type RootCA struct {
	KeyType  string        `json:"keyType"`
	Validity spec.Duration `json:"validity"`
	// Replaces is the store's root the plan saw and replaces (Replace only; nil when the store
	// had none): the driver replaces it only while it is still the store's, keeping its files
	// under a backup name.
	Replaces *Cert `json:"replaces,omitempty"`
}

// Namespace creates or labels a namespace.
type Namespace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

// CACerts issues the member's intermediate from the mesh root into the cacerts secret.
type CACerts struct {
	Namespace string        `json:"namespace"`
	KeyType   string        `json:"keyType"`
	Validity  spec.Duration `json:"validity"`
	// Replaces is the intermediate the plan saw and replaces (nil for a create): the driver
	// writes only while that one (or none, for a create) is still there.
	Replaces *Cert `json:"replaces,omitempty"`
}

// Cert identifies a certificate without its key.
type Cert struct {
	RootFingerprint string `json:"rootFingerprint"`
	NotAfter        string `json:"notAfter"`
}

// Gateway is the cross-network Gateway of the east-west gateway.
type Gateway struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// ReaderToken is the token secret of istio-reader-service-account. A create makes Secret
// (the first generation) if the account has no token of the fleet's; a replace makes the
// next generation (Secret.<n>) while Replaces is still the newest, so a retried step makes no
// second one; a delete (the retire step, after every remote secret holds the newest token)
// deletes the older token Secrets named in Retire.
type ReaderToken struct {
	Namespace      string   `json:"namespace"`
	ServiceAccount string   `json:"serviceAccount"`
	Secret         string   `json:"secret"`
	Replaces       string   `json:"replaces,omitempty"`
	Retire         []string `json:"retire,omitempty"`
}

// RemoteSecret is istio-remote-secret-<peer> in the step's cluster: a kubeconfig for the peer's
// reader token (read from the peer at apply time) and the peer's API endpoint.
type RemoteSecret struct {
	Namespace string `json:"namespace"`
	Endpoint  Value  `json:"endpoint"`
}

// Teardown removes what reconcile put in a member that left the mesh.
type Teardown struct {
	Namespace string `json:"namespace"`
	// Releases are uninstalled in this order.
	Releases []string `json:"releases"`
	// Forget: see Unjoin.Forget.
	Forget bool `json:"forget,omitempty"`
}

// Manifests applies a workload's objects into Karmada. The objects are not in a plan's
// JSON (they may hold secrets); their digest is, and a saved plan is applied only when the
// manifests still have it.
type Manifests struct {
	Namespace string            `json:"namespace"`
	Digest    string            `json:"digest"`
	Objects   []json.RawMessage `json:"-"`
}

// Policy is a (Cluster)PropagationPolicy: to apply, or (for a delete) to remove.
type Policy struct {
	Namespace     string           `json:"namespace,omitempty"`
	Name          string           `json:"name"`
	ClusterScoped bool             `json:"clusterScoped,omitempty"`
	Resources     []ResourceRef    `json:"resources,omitempty"`
	Clusters      []string         `json:"clusters,omitempty"`
	Weights       map[string]int64 `json:"weights,omitempty"`
	Divided       bool             `json:"divided,omitempty"`
	// Rebalance has Karmada schedule the named resources afresh (a WorkloadRebalancer) once the
	// policy holds: a member that was replaced gets its share back, which Karmada does not do
	// by itself while the policy is unchanged.
	Rebalance bool `json:"rebalance,omitempty"`
	// Rollout, for a stage of a gated rollout (or its revert), is the progress recorded in the
	// state store once the policy holds; the driver stamps when.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// Rollout is a gated rollout's progress as a stage step records it (world.Rollout without
// the clock and the gate, which the gate step records).
type Rollout struct {
	Resource      string           `json:"resource"`
	Replicas      int32            `json:"replicas"`
	From          map[string]int64 `json:"from"`
	Target        map[string]int64 `json:"target"`
	Stage         int              `json:"stage"`
	Stages        int              `json:"stages"`
	Weights       map[string]int64 `json:"weights"`
	Split         map[string]int32 `json:"split,omitempty"`
	LastGood      map[string]int64 `json:"lastGood"`
	LastGoodStage int              `json:"lastGoodStage"`
	// Halted, for a revert, says why the rollout stopped at its last good stage, and Spec is
	// the fingerprint of the fleet it halted under (it is not tried again until that changes).
	Halted string `json:"halted,omitempty"`
	Spec   string `json:"spec,omitempty"`
}

// RolloutGate is a stage's gate: the members gaining replicas in it must report at least
// Available of the resource available, within Timeout of the stage's start (kept with the
// rollout in the state store). Once it holds the stage is recorded as good; the final stage's
// holding ends the rollout.
type RolloutGate struct {
	Namespace     string           `json:"namespace,omitempty"`
	Kind          string           `json:"kind"`
	Name          string           `json:"name"`
	ClusterScoped bool             `json:"clusterScoped,omitempty"`
	Stage         int              `json:"stage"`
	Stages        int              `json:"stages"`
	Available     map[string]int32 `json:"available"`
	// Split is the stage's split; Karmada's binding must show it.
	Split   map[string]int32 `json:"split"`
	Timeout string           `json:"timeout"`
}

// ResourceRef is a policy's resource selector.
type ResourceRef struct {
	APIVersion    string            `json:"apiVersion"`
	Kind          string            `json:"kind"`
	Name          string            `json:"name,omitempty"`
	LabelSelector map[string]string `json:"labelSelector,omitempty"`
}

// ---- resolving references ----

// Refs lists every reference of the step's payload.
func (s *Step) Refs() []Ref {
	var out []Ref
	p := s.Payload
	add := func(v Value) {
		if v.From != nil {
			out = append(out, *v.From)
		}
	}
	addRelease := func(r *Release) {
		if r != nil {
			for _, vr := range r.Refs {
				out = append(out, vr.From)
			}
		}
	}
	addRelease(p.Release)
	if p.KarmadaKubeconfig != nil {
		add(p.KarmadaKubeconfig.Server)
	}
	if p.Join != nil {
		add(p.Join.APIEndpoint)
		addRelease(p.Join.Agent)
	}
	if p.RemoteSecret != nil {
		add(p.RemoteSecret.Endpoint)
	}
	if p.DNSRecord != nil {
		for _, v := range p.DNSRecord.Addresses {
			add(v)
		}
	}
	return out
}

// Lookup finds the output of a step that ran.
type Lookup func(step, output string) (string, bool)

// Resolve returns the step with every reference replaced by the output it points at. The
// step itself is left as it is (the plan keeps showing what it showed).
func (s Step) Resolve(lookup Lookup) (Step, error) {
	if len(s.Refs()) == 0 {
		return s, nil
	}
	get := func(r Ref) (string, error) {
		v, ok := lookup(r.Step, r.Output)
		if !ok || v == "" {
			return "", fmt.Errorf("%s needs %s, which step %s did not produce", s.Address, r.Output, r.Step)
		}
		if r.Format != "" {
			v = fmt.Sprintf(r.Format, v)
		}
		return v, nil
	}
	value := func(v Value) (Value, error) {
		if v.From == nil {
			return v, nil
		}
		out, err := get(*v.From)
		return Value{Value: out}, err
	}
	release := func(r *Release) (*Release, error) {
		if r == nil || len(r.Refs) == 0 {
			return r, nil
		}
		c := *r
		c.Values = deepCopy(r.Values)
		if c.Values == nil {
			c.Values = map[string]any{}
		}
		for _, vr := range r.Refs {
			v, err := get(vr.From)
			if err != nil {
				return nil, err
			}
			if err := setPath(c.Values, vr.Path, v); err != nil {
				return nil, fmt.Errorf("%s: value %v: %w", s.Address, vr.Path, err)
			}
		}
		c.Refs = nil
		return &c, nil
	}
	out := s
	var err error
	if out.Payload.Release, err = release(s.Payload.Release); err != nil {
		return s, err
	}
	if k := s.Payload.KarmadaKubeconfig; k != nil {
		c := *k
		if c.Server, err = value(k.Server); err != nil {
			return s, err
		}
		out.Payload.KarmadaKubeconfig = &c
	}
	if j := s.Payload.Join; j != nil {
		c := *j
		if c.APIEndpoint, err = value(j.APIEndpoint); err != nil {
			return s, err
		}
		if c.Agent, err = release(j.Agent); err != nil {
			return s, err
		}
		out.Payload.Join = &c
	}
	if r := s.Payload.RemoteSecret; r != nil {
		c := *r
		if c.Endpoint, err = value(r.Endpoint); err != nil {
			return s, err
		}
		out.Payload.RemoteSecret = &c
	}
	if r := s.Payload.DNSRecord; r != nil {
		c := *r
		c.Addresses = make([]Value, len(r.Addresses))
		for i, a := range r.Addresses {
			if c.Addresses[i], err = value(a); err != nil {
				return s, err
			}
		}
		out.Payload.DNSRecord = &c
	}
	return out, nil
}

// setPath sets the value at path in a values tree: map keys, or a decimal index into a list
// that must already be long enough.
func setPath(values map[string]any, path []string, v string) error {
	if len(path) == 0 {
		return fmt.Errorf("empty path")
	}
	var cur any = values
	for i, key := range path {
		last := i == len(path)-1
		switch node := cur.(type) {
		case map[string]any:
			if last {
				node[key] = v
				return nil
			}
			next, ok := node[key]
			if !ok {
				next = map[string]any{}
				node[key] = next
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(key)
			if err != nil || n < 0 || n >= len(node) {
				return fmt.Errorf("index %q out of range", key)
			}
			if last {
				node[n] = v
				return nil
			}
			cur = node[n]
		default:
			return fmt.Errorf("%q is not a map or a list", path[:i])
		}
	}
	return nil
}

// DeepCopyValues copies a values tree, so that changing the copy never changes a plan.
func DeepCopyValues(m map[string]any) map[string]any { return deepCopy(m) }

func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return deepCopy(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopyValue(e)
		}
		return out
	}
	return v
}

// ---- entry ----

// DNSZone creates the entry's DNS Manager domain (a master zone, tagged with the fleet).
type DNSZone struct {
	Domain   string   `json:"domain"`
	SOAEmail string   `json:"soaEmail"`
	Tags     []string `json:"tags,omitempty"`
}

// IngressAddress waits until a member's entry Service has a LoadBalancer address and outputs
// its addresses (OutputIngressIPs).
type IngressAddress struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// DNSRecord makes the address records at one name of the zone exactly Addresses (A for IPv4,
// AAAA for IPv6; each value may be a comma-separated list from an ingress-address step), with
// TTL, and keeps the name's registry TXT record Owner, which marks the name as the fleet's.
// A delete removes the name's address records and its registry record. The driver refuses a
// name whose records carry no registry record of the fleet's: they are someone else's.
type DNSRecord struct {
	Domain    string  `json:"domain"`
	Name      string  `json:"name"`
	TTL       int     `json:"ttl,omitempty"`
	Addresses []Value `json:"addresses,omitempty"`
	Owner     string  `json:"owner"`
}
