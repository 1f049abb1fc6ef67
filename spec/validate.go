package spec

import (
	"errors"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// validator checks a decoded, defaulted fleet; it reads the file system only to check that
// referenced charts and manifests exist (and to read the manifests), never a cluster.
type validator struct {
	d     *decoder
	dir   string
	fleet *Fleet
}

func (v *validator) errorf(path, format string, args ...any) {
	p := v.d.at(path)
	v.d.errAt(p.line, p.col, path, format, args...)
}

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	k8sVersion   = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
)

const maxClusterName = 48

// checkLabel reports a name that is not a DNS-1123 label of at most max characters.
func (v *validator) checkLabel(path, what, name string, max int) bool {
	switch {
	case name == "":
		v.errorf(path, "%s is required", what)
	case len(name) > max:
		v.errorf(path, "%q is %d characters long: a %s has at most %d", name, len(name), what, max)
	case !dns1123Label.MatchString(name):
		v.errorf(path, "%q is not a valid %s: use lowercase letters, digits and '-', starting and ending with a letter or digit (a DNS-1123 label)", name, what)
	default:
		return true
	}
	return false
}

func (v *validator) validate() {
	f := v.fleet
	if f.APIVersion != APIVersion {
		if f.APIVersion == "" {
			v.errorf("apiVersion", "apiVersion is required: want %s", APIVersion)
		} else {
			v.errorf("apiVersion", "unsupported apiVersion %q: want %s", f.APIVersion, APIVersion)
		}
	}
	if f.Kind != Kind {
		if f.Kind == "" {
			v.errorf("kind", "kind is required: want %s", Kind)
		} else {
			v.errorf("kind", "unsupported kind %q: want %s", f.Kind, Kind)
		}
	}
	v.checkLabel("metadata.name", "fleet name", f.Metadata.Name, 63)
	v.joinMode("joinMode", f.JoinMode)
	v.provider()
	v.names()

	v.cluster("manager", f.Manager.Cluster)
	v.karmada()
	for i, m := range f.Members {
		p := index("members", i)
		v.cluster(p, m.Cluster)
		if m.JoinMode != "" {
			v.joinMode(p+".joinMode", m.JoinMode)
		}
	}
	v.mesh()
	v.workloads()
	v.entry()
	v.safety()
	v.state()
	if r := v.fleet.Credentials.TokenRotation.Duration; r < MinTokenRotation {
		v.errorf("credentials.tokenRotation", "%s is too short: give at least %s (a Pull agent's certificate lives twice as long, and Karmada signs none for less than 10m)", r, MinTokenRotation)
	}
}

func (v *validator) state() {
	st := v.fleet.State
	switch st.Backend {
	case LocalState:
		if st.Kubernetes != nil {
			v.errorf("state.kubernetes", "state.kubernetes is set but state.backend is %s: set backend: kubernetes, or drop the kubernetes block", LocalState)
		}
	case KubernetesState:
		k := st.Kubernetes
		if k == nil {
			v.errorf("state.backend", "state.backend is kubernetes but state.kubernetes is missing: give at least its namespace (and a kubeconfig unless reconcile runs in a Pod)")
			return
		}
		v.checkLabel("state.kubernetes.namespace", "namespace name", k.Namespace, 63)
		v.positive("state.kubernetes.leaseDuration", k.LeaseDuration)
		if k.LeaseDuration.Duration > 0 && k.LeaseDuration.Duration < 5*time.Second {
			v.errorf("state.kubernetes.leaseDuration", "%s is too short: a lease is renewed every third of it, give it at least 5s", k.LeaseDuration.Duration)
		}
		if k.Kubeconfig != "" {
			if fi, err := os.Stat(resolvePath(v.dir, k.Kubeconfig)); err != nil {
				v.errorf("state.kubernetes.kubeconfig", "cannot read the state cluster's kubeconfig %s: %v", k.Kubeconfig, errors.Unwrap(err))
			} else if fi.IsDir() {
				v.errorf("state.kubernetes.kubeconfig", "%s is a directory, not a kubeconfig file", k.Kubeconfig)
			}
		}
	default:
		v.errorf("state.backend", "unknown state backend %q: want local (a directory of this machine, the default) or kubernetes (Secrets and a Lease in a cluster)", st.Backend)
	}
}

func (v *validator) joinMode(path string, m JoinMode) {
	if m != Push && m != Pull {
		v.errorf(path, "unknown join mode %q: want Push (Karmada reaches the member's API) or Pull (karmada-agent in the member reaches Karmada)", m)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d.Duration <= 0 {
		v.errorf(path, "duration %s must be positive", d.Duration)
	}
}

func (v *validator) provider() {
	l := v.fleet.Provider.Linode
	if l == nil {
		return
	}
	if !(l.RequestsPerSecond >= 0) || math.IsInf(l.RequestsPerSecond, 0) {
		v.errorf("provider.linode.requestsPerSecond", "%g must be a positive number", l.RequestsPerSecond)
	}
	if l.APIURL != "" {
		v.apiURL("provider.linode.apiURL", l.APIURL)
	}
	v.positive("provider.linode.waitTimeout", l.WaitTimeout)
	v.positive("provider.linode.pollInterval", l.PollInterval)
}

// apiURL accepts https, and http only to a loopback address (the lab, a local proxy): the
// token travels in every request.
func (v *validator) apiURL(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		v.errorf(path, "%q is not an API URL: want https://host[:port]/v4", raw)
		return
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		v.errorf(path, "%q is plain http to a host that is not loopback: the Linode token would cross the network in clear; use https", raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// names checks manager and member names: DNS-1123 labels, unique across the fleet.
func (v *validator) names() {
	f := v.fleet
	seen := map[string]string{}
	check := func(path, name string) {
		if !v.checkLabel(path, "cluster name", name, maxClusterName) {
			return
		}
		if first, dup := seen[name]; dup {
			v.errorf(path, "duplicate cluster name %q (already used by %s): manager and member names must be unique", name, strings.TrimSuffix(first, ".name"))
			return
		}
		seen[name] = path
	}
	check("manager.name", f.Manager.Name)
	for i, m := range f.Members {
		check(index("members", i)+".name", m.Name)
	}
}

// cluster checks one manager or member cluster: LKE (region) or existing (kubeconfig).
func (v *validator) cluster(path string, c Cluster) {
	hasRegion, hasKubeconfig := c.Region != "", c.Kubeconfig != nil
	switch {
	case hasRegion && hasKubeconfig:
		v.errorf(path+".kubeconfig", "set either region (an LKE cluster reconcile creates) or kubeconfig (an existing cluster), not both")
		return
	case !hasRegion && !hasKubeconfig:
		v.errorf(path, "set region (an LKE cluster reconcile creates, e.g. region: us-west) or kubeconfig (an existing cluster, with path and context)")
		return
	}
	if hasKubeconfig {
		if c.Kubeconfig.Path == "" {
			v.errorf(path+".kubeconfig.path", "path is required: the kubeconfig file of the existing cluster, e.g. ~/.kube/config")
		}
		if len(c.Pools) > 0 {
			v.errorf(path+".pools", "pools apply only to LKE clusters (with region), not to a cluster given by kubeconfig")
		}
		if c.K8sVersion != "" {
			v.errorf(path+".k8sVersion", "k8sVersion applies only to LKE clusters (with region), not to a cluster given by kubeconfig")
		}
		return
	}
	switch {
	case c.K8sVersion == "":
		v.errorf(path+".k8sVersion", `k8sVersion is required for an LKE cluster: a Kubernetes minor version such as "1.33"`)
	case !k8sVersion.MatchString(c.K8sVersion):
		v.errorf(path+".k8sVersion", `invalid k8sVersion %q: want major.minor such as "1.33"`, c.K8sVersion)
	}
	if len(c.Pools) == 0 {
		v.errorf(path+".pools", "an LKE cluster needs at least one pool, e.g. pools: [{type: g6-standard-2, count: 3}]")
	}
	for i, p := range c.Pools {
		pp := index(path+".pools", i)
		if p.Type == "" {
			v.errorf(pp+".type", "type is required: a Linode plan such as g6-standard-2")
		}
		if a := p.Autoscaler; a != nil {
			if a.Min < 1 {
				v.errorf(pp+".autoscaler.min", "min is %d: an autoscaled pool keeps at least 1 node", a.Min)
			}
			if a.Max < a.Min {
				v.errorf(pp+".autoscaler.max", "max %d is below min %d", a.Max, a.Min)
			}
			if a.Min >= 1 && a.Max >= a.Min && (p.Count < a.Min || p.Count > a.Max) {
				v.errorf(pp+".count", "count %d is outside the autoscaler's range [%d, %d]", p.Count, a.Min, a.Max)
			}
		} else if p.Count < 1 {
			v.errorf(pp+".count", "count is %d: a pool needs at least 1 node (or an autoscaler with min and max)", p.Count)
		}
	}
}

func (v *validator) karmada() {
	k := v.fleet.Manager.Karmada
	if k.APINodePort < 30000 || k.APINodePort > 32767 {
		v.errorf("manager.karmada.apiNodePort", "%d is not a node port: want 30000-32767 (default %d)", k.APINodePort, DefaultAPINodePort)
	}
	v.positive("manager.karmada.timeout", k.Timeout)
	v.chart("manager.karmada.chart", k.Chart, true)
}

// chart checks a chart source: at most one of repo, oci and path (exactly one when required).
func (v *validator) chart(path string, c ChartSource, required bool) {
	var set []string
	if c.Repo != "" {
		set = append(set, "repo")
	}
	if c.OCI != "" {
		set = append(set, "oci")
	}
	if c.Path != "" {
		set = append(set, "path")
	}
	switch {
	case len(set) > 1:
		v.errorf(path, "%s are all set: give exactly one of repo (a Helm repository URL, with version), oci (oci://...) or path (a local chart)", strings.Join(set, " and "))
		return
	case len(set) == 0 && required:
		v.errorf(path, "a chart source is required: one of repo (a Helm repository URL, with name and version), oci (oci://...) or path (a local chart directory or .tgz)")
		return
	}
	if c.Repo != "" {
		if !strings.HasPrefix(c.Repo, "https://") && !strings.HasPrefix(c.Repo, "http://") {
			v.errorf(path+".repo", "repo %q is not a URL: want https://...", c.Repo)
		}
		if c.Version == "" {
			v.errorf(path+".version", "version is required with repo, e.g. version: v1.18.2 (a repository serves many)")
		}
	}
	if c.OCI != "" && !strings.HasPrefix(c.OCI, "oci://") {
		v.errorf(path+".oci", "oci %q must start with oci://, e.g. oci://registry.example.com/charts/name", c.OCI)
	}
	if c.Path != "" {
		abs := resolvePath(v.dir, c.Path)
		if _, err := os.Stat(abs); err != nil {
			v.errorf(path+".path", "chart %s does not exist (relative paths start at the fleet file's directory %s)", abs, v.dir)
		}
	}
}

func (v *validator) mesh() {
	f := v.fleet
	m := f.Mesh
	if m == nil {
		return
	}
	if m.MeshID == "" {
		v.errorf("mesh.meshID", "meshID is required, e.g. meshID: mesh1")
	}
	if m.Version == "" && m.Chart.Path == "" {
		v.errorf("mesh.version", `version is required (the Istio version such as "1.30.3") unless chart.path points at local charts`)
	}
	v.chart("mesh.chart", m.Chart, false)
	switch m.CA.KeyType {
	case "rsa-4096", "rsa-2048", "ecdsa-p256":
	default:
		v.errorf("mesh.ca.keyType", "unknown key type %q: want rsa-4096, rsa-2048 or ecdsa-p256", m.CA.KeyType)
	}
	v.positive("mesh.ca.rootValidity", m.CA.RootValidity)
	v.positive("mesh.ca.intermediateValidity", m.CA.IntermediateValidity)
	v.positive("mesh.ca.renewBefore", m.CA.RenewBefore)
	if m.CA.RenewBefore.Duration >= m.CA.IntermediateValidity.Duration && m.CA.RenewBefore.Duration > 0 {
		v.errorf("mesh.ca.renewBefore", "renewBefore %s must be shorter than intermediateValidity %s", m.CA.RenewBefore.Duration, m.CA.IntermediateValidity.Duration)
	}
	v.positive("mesh.timeout", m.Timeout)
	if !m.On() {
		return
	}
	networks := map[string]string{}
	for i, mem := range f.Members {
		p := index("members", i) + ".network"
		if mem.Network == "" {
			v.errorf(index("members", i), "member %q has no network: with the mesh on, every member needs its own Istio network, e.g. network: network%d", mem.Name, i+1)
			continue
		}
		if other, dup := networks[mem.Network]; dup {
			v.errorf(p, "network %q is already member %q's: every member needs a distinct network", mem.Network, other)
			continue
		}
		networks[mem.Network] = mem.Name
	}
}

func (v *validator) workloads() {
	f := v.fleet
	members := map[string]bool{}
	var names []string
	for _, m := range f.Members {
		if !members[m.Name] {
			names = append(names, m.Name)
		}
		members[m.Name] = true
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for i := range f.Workloads {
		w := &f.Workloads[i]
		p := index("workloads", i)
		if v.checkLabel(p+".name", "workload name", w.Name, 63) {
			if seen[w.Name] {
				v.errorf(p+".name", "duplicate workload name %q: workload names must be unique", w.Name)
			}
			seen[w.Name] = true
		}
		if !dns1123Label.MatchString(w.Namespace) || len(w.Namespace) > 63 {
			v.errorf(p+".namespace", "%q is not a valid namespace: use a DNS-1123 label (lowercase letters, digits and '-')", w.Namespace)
		}
		if len(w.Resources) == 0 {
			v.errorf(p+".resources", "at least one resource is required, e.g. {apiVersion: apps/v1, kind: Deployment, name: hello}")
		}
		for j, r := range w.Resources {
			rp := index(p+".resources", j)
			if r.APIVersion == "" {
				v.errorf(rp+".apiVersion", "apiVersion is required, e.g. apps/v1 or v1")
			}
			if r.Kind == "" {
				v.errorf(rp+".kind", "kind is required, e.g. Deployment")
			}
		}
		if len(w.Weights) == 0 {
			v.errorf(p+".weights", "at least one weight is required: member: weight, e.g. {%s: 1}", firstOr(names, "eu"))
		}
		keys := make([]string, 0, len(w.Weights))
		for k := range w.Weights {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			wp := p + ".weights." + k
			switch {
			case !members[k] && k == f.Manager.Name:
				v.errorf(wp, "%q is the manager, not a member: weights go to members (%s)", k, strings.Join(names, ", "))
			case !members[k]:
				v.errorf(wp, "%q is not a member of this fleet: want one of %s", k, listOr(names))
			}
			if w.Weights[k] < 1 {
				v.errorf(wp, "weight %d must be at least 1 (leave the member out to send it nothing)", w.Weights[k])
			}
		}
		v.manifests(p, w)
		if r := w.Rollout; r != nil {
			if r.Gate != GateAvailable {
				v.errorf(p+".rollout.gate", "unknown gate %q: want %s (the members gaining replicas report them available)", r.Gate, GateAvailable)
			}
			if r.Interval.Duration < 0 {
				v.errorf(p+".rollout.interval", "duration %s must not be negative", r.Interval.Duration)
			}
			v.positive(p+".rollout.timeout", r.Timeout)
			if r.MaxShift.Percent > 100 || r.MaxShift.Percent < 0 || r.MaxShift.Count < 0 {
				v.errorf(p+".rollout.maxShift", "%s is out of range: want a share in (0, 100%%] or a positive number of replicas", r.MaxShift)
			}
		}
	}
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}

func listOr(list []string) string {
	if len(list) == 0 {
		return "(no members are declared)"
	}
	return strings.Join(list, ", ")
}

func (v *validator) safety() {
	s := v.fleet.Safety.MaxDeleteShare
	if s != nil && !(*s > 0 && *s <= 1) { // written so that NaN fails too

		v.errorf("safety.maxDeleteShare", "%g is out of range: want a share in (0, 1], e.g. 0.34 lets one plan remove at most a third of the members", *s)
	}
}
