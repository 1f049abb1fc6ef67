// Package spec holds the fleet.yaml types: strict parsing, defaults and validation.
// It imports nothing of this project's.
package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// APIVersion and Kind identify a fleet.yaml document.
const (
	APIVersion = "reconcile.dev/v1alpha1"
	Kind       = "Fleet"
)

// JoinMode says how a member is joined to Karmada.
type JoinMode string

const (
	// Push: Karmada's controller-manager reaches the member's API (as `karmadactl join`).
	Push JoinMode = "Push"
	// Pull: karmada-agent runs in the member and reaches the Karmada API.
	Pull JoinMode = "Pull"
)

// Fleet is the whole desired state: one manager, its members, the mesh and the workloads.
type Fleet struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Provider   Provider `json:"provider,omitempty"`
	// KubeconfigDir, when set, receives a ready-to-use kubeconfig-<cluster> file per cluster.
	// Any string is accepted; a relative path is resolved against the fleet file's directory.
	KubeconfigDir string  `json:"kubeconfigDir,omitempty"`
	Manager       Manager `json:"manager"`
	// JoinMode is the fleet-wide default (default Push); a member may override it.
	JoinMode  JoinMode   `json:"joinMode,omitempty"`
	Members   []Member   `json:"members,omitempty"`
	Mesh      *Mesh      `json:"mesh,omitempty"`
	Workloads []Workload `json:"workloads,omitempty"`
	// Entry, when set, publishes one DNS name for the fleet with health-checked failover.
	Entry  *Entry `json:"entry,omitempty"`
	Safety Safety `json:"safety,omitempty"`
	// State says where the fleet's state and its lock live (default: a local directory).
	State State `json:"state,omitempty"`
	// Credentials says how long the credentials reconcile makes for the fleet live.
	Credentials Credentials `json:"credentials,omitempty"`

	// Source is the file the fleet was read from (not part of the document).
	Source string `json:"-"`
}

// Metadata names the fleet; the name scopes the state directory and the Linode tag.
type Metadata struct {
	Name string `json:"name"`
}

// Provider configures cloud access.
type Provider struct {
	// Linode is required when any cluster is LKE; left out, it defaults to Linode{} with its defaults.
	Linode *Linode `json:"linode,omitempty"`
}

// Linode configures the Linode API client.
type Linode struct {
	// TokenEnv names the environment variable holding the token (default LINODE_TOKEN).
	TokenEnv string `json:"tokenEnv,omitempty"`
	// TokenFile is a file holding the token; it wins over TokenEnv when set.
	// A relative path is resolved against the fleet file's directory; ~/ expands to $HOME.
	TokenFile string `json:"tokenFile,omitempty"`
	// APIURL overrides the API base URL (for the lab and for tests).
	APIURL string `json:"apiURL,omitempty"`
	// RequestsPerSecond is the client-side rate limit (default 10).
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	// WaitTimeout bounds every wait on the Linode API (default 20m).
	WaitTimeout Duration `json:"waitTimeout,omitempty"`
	// PollInterval is how often a wait asks the API again (default 10s).
	PollInterval Duration `json:"pollInterval,omitempty"`
}

// Cluster is where a manager or member runs: an LKE cluster (Region set) or an
// existing cluster reached through a kubeconfig (Kubeconfig set), never both.
type Cluster struct {
	Region           string      `json:"region,omitempty"`
	K8sVersion       string      `json:"k8sVersion,omitempty"`
	HighAvailability bool        `json:"highAvailability,omitempty"`
	Tags             []string    `json:"tags,omitempty"`
	Pools            []Pool      `json:"pools,omitempty"`
	Kubeconfig       *Kubeconfig `json:"kubeconfig,omitempty"`
	// AllowUpgrade lets a k8sVersion change upgrade an existing LKE cluster in place.
	AllowUpgrade bool `json:"allowUpgrade,omitempty"`
}

// IsLKE reports whether the cluster is created and owned through the Linode API.
func (c Cluster) IsLKE() bool { return c.Kubeconfig == nil }

// Pool is an LKE node pool.
type Pool struct {
	Type       string      `json:"type"`
	Count      int         `json:"count,omitempty"`
	Autoscaler *Autoscaler `json:"autoscaler,omitempty"`
	Tags       []string    `json:"tags,omitempty"`
}

// Autoscaler bounds an autoscaled pool.
type Autoscaler struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Kubeconfig points at an existing cluster.
type Kubeconfig struct {
	// Path is the kubeconfig file (must be non-empty; it need not exist at validation time).
	// A relative path is resolved against the fleet file's directory; ~/ expands to $HOME.
	Path    string `json:"path"`
	Context string `json:"context,omitempty"`
}

// Manager is the cluster that runs the Karmada control plane.
type Manager struct {
	Name    string `json:"name"`
	Cluster `json:",inline"`
	Karmada Karmada `json:"karmada,omitempty"`
}

// Karmada configures the Karmada chart on the manager.
type Karmada struct {
	// Chart is where the Karmada chart comes from (chart name defaults to "karmada").
	Chart     ChartSource `json:"chart,omitempty"`
	Release   string      `json:"release,omitempty"`   // default "karmada"
	Namespace string      `json:"namespace,omitempty"` // default "karmada-system"
	// APINodePort is the node port the Karmada API is exposed on (default 32443).
	APINodePort int `json:"apiNodePort,omitempty"`
	// Values are extra chart values, merged under the ones reconcile sets.
	Values map[string]any `json:"values,omitempty"`
	// Timeout bounds a chart install or upgrade (default 10m).
	Timeout Duration `json:"timeout,omitempty"`
}

// ChartSource names a Helm chart: a repository URL and chart name, an OCI reference,
// or a local directory or .tgz. Exactly one of Repo, OCI and Path is set.
type ChartSource struct {
	// Repo is a Helm repository URL; it needs Version.
	Repo string `json:"repo,omitempty"`
	Name string `json:"name,omitempty"`
	// OCI is a reference starting with oci://.
	OCI string `json:"oci,omitempty"`
	// Path is a chart directory or .tgz, relative to the fleet file's directory; it must exist.
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"`
}

// Member is a cluster joined to Karmada.
type Member struct {
	Name    string `json:"name"`
	Cluster `json:",inline"`
	// JoinMode overrides the fleet's join mode for this member.
	JoinMode JoinMode `json:"joinMode,omitempty"`
	// Network is the member's Istio network (topology.istio.io/network); distinct per member.
	Network string `json:"network,omitempty"`
	// APIEndpoint overrides the member API URL that Karmada and the other members use.
	APIEndpoint string `json:"apiEndpoint,omitempty"`
}

// Mesh configures Istio multi-primary, multi-network across the members.
type Mesh struct {
	Enabled *bool `json:"enabled,omitempty"` // default true when mesh is present
	// Version is the Istio version, e.g. "1.30.3"; required unless Chart.Path is set.
	Version string `json:"version,omitempty"`
	// Chart holds base, istiod and gateway; with neither OCI nor Path it defaults to the repo
	// https://istio-release.storage.googleapis.com/charts at version Version.
	Chart           ChartSource `json:"chart,omitempty"`
	MeshID          string      `json:"meshID"`
	EastWestGateway *bool       `json:"eastWestGateway,omitempty"` // default true
	// IngressGateway installs Istio's gateway chart as each member's north-south ingress
	// (istio-system/istio-ingressgateway, a LoadBalancer Service); default true when entry is set.
	IngressGateway *bool    `json:"ingressGateway,omitempty"`
	CA             CA       `json:"ca,omitempty"`
	Timeout        Duration `json:"timeout,omitempty"` // per chart, default 5m
}

// On reports whether the mesh layer is wanted.
func (m *Mesh) On() bool { return m != nil && (m.Enabled == nil || *m.Enabled) }

// CA configures the mesh PKI.
type CA struct {
	KeyType              string   `json:"keyType,omitempty"`              // rsa-4096 (default), rsa-2048, ecdsa-p256
	RootValidity         Duration `json:"rootValidity,omitempty"`         // default 87600h
	IntermediateValidity Duration `json:"intermediateValidity,omitempty"` // default 87600h
	RenewBefore          Duration `json:"renewBefore,omitempty"`          // default 720h
}

// Workload is a set of resources in Karmada whose replicas are split across members.
type Workload struct {
	Name      string           `json:"name"`
	Namespace string           `json:"namespace,omitempty"` // default "default"
	Resources []ResourceRef    `json:"resources"`
	Weights   map[string]int64 `json:"weights"`
	// Manifests are YAML files or directories of .yaml/.yml files (multi-document), relative to
	// the fleet file's directory; Load reads them into Objects.
	Manifests []string `json:"manifests,omitempty"`
	// ClusterScoped makes the policy a ClusterPropagationPolicy.
	ClusterScoped bool `json:"clusterScoped,omitempty"`
	// Rollout, when set, moves replicas to changed weights in gated stages instead of at once.
	Rollout *Rollout `json:"rollout,omitempty"`

	// ManifestDigest fingerprints the loaded manifests (filled when loading, not part of the document).
	ManifestDigest string `json:"-"`
	// Objects are the objects the manifests hold (filled when loading, not part of the document).
	Objects []ManifestObject `json:"-"`
}

// ManifestObject is one object read from a workload's manifests.
type ManifestObject struct {
	APIVersion string
	Kind       string
	// Namespace is defaulted to the workload's namespace for namespaced kinds (and in Raw).
	Namespace string
	Name      string
	// Replicas is spec.replicas when the object has one.
	Replicas *int32
	// Raw is the object as JSON, namespace defaulted; ManifestDigest hashes these in order.
	Raw []byte
}

// ResourceRef selects resources for a PropagationPolicy.
type ResourceRef struct {
	APIVersion    string            `json:"apiVersion"`
	Kind          string            `json:"kind"`
	Name          string            `json:"name,omitempty"`
	LabelSelector map[string]string `json:"labelSelector,omitempty"`
}

// Safety guards destructive plans.
type Safety struct {
	// Prune deletes clusters that left fleet.yaml (default false: they are kept).
	Prune bool `json:"prune,omitempty"`
	// MaxDeleteShare is the largest share of members one plan may delete or unjoin
	// without --allow-destroy (default 0.34; must be in (0,1]).
	MaxDeleteShare *float64 `json:"maxDeleteShare,omitempty"`
}

// State backends.
const (
	// LocalState keeps the state in a directory of this machine (--state-dir).
	LocalState = "local"
	// KubernetesState keeps it in Secrets of a namespace, locked by a Lease.
	KubernetesState = "kubernetes"
)

// Defaults of the kubernetes state backend.
const (
	DefaultStateNamespace = "reconcile-system"
	DefaultLeaseDuration  = 15 * time.Second
)

// State says where the fleet's state lives.
type State struct {
	// Backend is local (default) or kubernetes.
	Backend string `json:"backend,omitempty"`
	// Kubernetes configures the kubernetes backend; required when it is chosen.
	Kubernetes *KubernetesStateBackend `json:"kubernetes,omitempty"`
}

// KubernetesStateBackend keeps the state in Secrets of one namespace of a cluster that is not
// part of the fleet, and the lock in a coordination.k8s.io Lease there.
type KubernetesStateBackend struct {
	// Kubeconfig is the path of a kubeconfig for that cluster, relative to the fleet file;
	// empty means in-cluster credentials (reconcile running in a Pod).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context picks a context of the kubeconfig (default: its current context).
	Context string `json:"context,omitempty"`
	// Namespace holds the Secrets and the Lease (default reconcile-system). It must exist.
	Namespace string `json:"namespace,omitempty"`
	// LeaseDuration is how long a lock outlives its holder's last renewal (default 15s).
	LeaseDuration Duration `json:"leaseDuration,omitempty"`
}

// DefaultTokenRotation is credentials.tokenRotation's default.
const DefaultTokenRotation = 720 * time.Hour

// MinTokenRotation is the shortest credentials.tokenRotation: the agents' certificates live
// twice as long, and Karmada's signer will not issue one for less than ten minutes.
const MinTokenRotation = time.Hour

// Credentials are the lifetimes of the credentials reconcile makes: the Push members' Karmada
// tokens, the mesh's istio-reader tokens and the Pull agents' client certificates.
type Credentials struct {
	// TokenRotation is the age at which a token or certificate is replaced (default 720h).
	// A Pull agent's certificate is issued for twice as long, so it outlives one missed pass.
	TokenRotation Duration `json:"tokenRotation,omitempty"`
}

// AgentCertificateLifetime is how long a Pull agent's certificate is issued for.
func (c Credentials) AgentCertificateLifetime() time.Duration { return 2 * c.TokenRotation.Duration }

// Defaults of a workload's rollout.
const (
	DefaultRolloutMaxShiftPercent = 20
	DefaultRolloutTimeout         = 10 * time.Minute
	// GateAvailable waits until the members gaining replicas report them available.
	GateAvailable = "available"
)

// Rollout says how a workload's replicas move when its weights change: in stages of at most
// MaxShift replicas, each held until its gate holds and Interval has passed since it began.
// A stage whose gate does not hold within Timeout halts the rollout and goes back to the last
// good stage; the same weights are not tried again until fleet.yaml changes them.
type Rollout struct {
	// MaxShift is the most replicas one stage moves: "20%" of the replicas (default) or a count.
	MaxShift Shift `json:"maxShift,omitempty"`
	// Interval is the least time between the start of a stage and the next (default 0).
	Interval Duration `json:"interval,omitempty"`
	// Gate is what a stage waits for before the next: available (the default, and the only one).
	Gate string `json:"gate,omitempty"`
	// Timeout bounds the wait for a stage's gate (default 10m).
	Timeout Duration `json:"timeout,omitempty"`
}

// Shift is a number of replicas, given as a share ("20%") or a count (3). Exactly one of
// Percent and Count is set once decoded.
type Shift struct {
	Percent int64
	Count   int64
}

// Of is how many of replicas the shift allows: at least one.
func (s Shift) Of(replicas int32) int32 {
	n := s.Count
	if s.Percent > 0 {
		n = (int64(replicas)*s.Percent + 99) / 100
	}
	return int32(max(min(n, int64(replicas)), 1))
}

func (s Shift) String() string {
	if s.Percent > 0 {
		return strconv.FormatInt(s.Percent, 10) + "%"
	}
	return strconv.FormatInt(s.Count, 10)
}

// MarshalJSON writes "20%" or 3.
func (s Shift) MarshalJSON() ([]byte, error) {
	if s.Percent > 0 {
		return []byte(`"` + s.String() + `"`), nil
	}
	return []byte(strconv.FormatInt(s.Count, 10)), nil
}

// UnmarshalJSON reads "20%" or 3.
func (s *Shift) UnmarshalJSON(b []byte) error {
	v, err := ParseShift(strings.Trim(string(b), `"`))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseShift reads "20%" (a share in (0, 100%]) or "3" (a positive count).
func ParseShift(in string) (Shift, error) {
	if p, ok := strings.CutSuffix(in, "%"); ok {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n <= 0 || n > 100 {
			return Shift{}, fmt.Errorf("%q is not a share of replicas: want a whole percentage in (0, 100%%], such as 20%%", in)
		}
		return Shift{Percent: n}, nil
	}
	n, err := strconv.ParseInt(in, 10, 64)
	if err != nil || n <= 0 {
		return Shift{}, fmt.Errorf("%q is not a number of replicas: want a positive count such as 2, or a share such as 20%%", in)
	}
	return Shift{Count: n}, nil
}

// Duration is a time.Duration written as "5m" in YAML.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as "1h30m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads "90s", "1h30m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return &durationError{s}
	}
	v, err := time.ParseDuration(s[1 : len(s)-1])
	if err != nil {
		return &durationError{s}
	}
	d.Duration = v
	return nil
}

type durationError struct{ in string }

func (e *durationError) Error() string {
	return "invalid duration " + e.in + ` (want a string such as "90s" or "10m")`
}
