package planner

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
)

// Names of what reconcile installs, shared with the observers.
const (
	// AgentRelease is the karmada chart in agent mode, installed in a Pull member.
	AgentRelease   = "karmada-agent"
	AgentNamespace = "karmada-system"
	// MeshNamespace holds istiod, cacerts, the gateways and the remote secrets in every member.
	MeshNamespace = "istio-system"
	// Mesh chart components, in install order.
	ComponentBase     = "base"
	ComponentIstiod   = "istiod"
	ComponentEastWest = "eastwest"
)

// karmadaComponents are the chart's components whose image.tag is an alias of
// karmadaImageVersion in values.yaml; aliases do not follow an override, so each is pinned.
var karmadaComponents = []string{
	"aggregatedApiServer", "controllerManager", "descheduler", "metricsAdapter",
	"scheduler", "schedulerEstimator", "search", "webhook",
}

// KarmadaServer is the external URL of the Karmada API on the manager node nodeIP.
func KarmadaServer(f *spec.Fleet, nodeIP plan.Value) plan.Value {
	format := "https://%s:" + strconv.Itoa(f.Manager.Karmada.APINodePort)
	if nodeIP.From != nil {
		r := *nodeIP.From
		r.Format = format
		return plan.Value{From: &r}
	}
	return plan.Known(fmt.Sprintf(format, nodeIP.Value))
}

// MeshReleaseName is the Helm release name of a mesh component (base, istiod, eastwest).
func MeshReleaseName(component string) string {
	switch component {
	case ComponentBase:
		return "istio-base"
	case ComponentIstiod:
		return "istiod"
	case ComponentEastWest:
		return "istio-eastwestgateway"
	case ComponentIngress:
		return "istio-ingressgateway"
	}
	return component
}

// ReleaseKey is how world.Cluster.Releases is keyed: "namespace/name".
func ReleaseKey(namespace, name string) string { return namespace + "/" + name }

// imageTag is the tag of the Karmada images for a chart version: chart and images share
// the release version, and the images always carry the leading "v".
func imageTag(version string) string {
	if version == "" {
		return ""
	}
	return "v" + strings.TrimPrefix(version, "v")
}

// KarmadaValues are the values of the Karmada chart in host mode on the manager. nodeIP is the
// manager node the API is reached on (a reference when it is known only after apply). The
// user's karmada.values are merged on top, so they win. Unknown leaves are plan.Value; see
// splitValues.
func KarmadaValues(f *spec.Fleet, nodeIP plan.Value) map[string]any {
	ns := f.Manager.Karmada.Namespace
	domain := "cluster.local"
	if d, ok := f.Manager.Karmada.Values["clusterDomain"].(string); ok && d != "" {
		domain = d
	}
	// Helm replaces lists wholesale, so the chart's default hosts are repeated before the node IP.
	hosts := []any{
		"kubernetes.default.svc",
		"*.etcd." + ns + ".svc." + domain,
		"*." + ns + ".svc." + domain,
		"*." + ns + ".svc",
		"localhost",
		"127.0.0.1",
		leaf(nodeIP),
	}
	v := map[string]any{
		"installMode": "host",
		"apiServer": map[string]any{
			"serviceType": "NodePort",
			"nodePort":    f.Manager.Karmada.APINodePort,
		},
		"certs": map[string]any{
			"auto": map[string]any{"hosts": hosts},
		},
	}
	if tag := imageTag(f.Manager.Karmada.Chart.Version); tag != "" {
		v["karmadaImageVersion"] = tag
		for _, c := range karmadaComponents {
			v[c] = map[string]any{"image": map[string]any{"tag": tag}}
		}
	}
	return mergeValues(v, plan.DeepCopyValues(f.Manager.Karmada.Values))
}

// sensitive is a leaf the driver fills at apply time from a secret; a plan shows
// plan.Sensitive and never carries it.
type sensitive struct{}

// leaf is a known value as itself, an unknown one as the plan.Value splitValues resolves.
func leaf(v plan.Value) any {
	if v.From == nil {
		return v.Value
	}
	return v
}

// AgentValues are the values of the Karmada chart in agent mode in a Pull member.
// clusterEndpoint is the member's API URL, nodeIP the manager node the Karmada API is reached
// on. The agent's CA, certificate and key are read by the driver at apply time.
func AgentValues(f *spec.Fleet, member string, clusterEndpoint, nodeIP plan.Value) map[string]any {
	agent := map[string]any{
		"clusterName":     member,
		"clusterEndpoint": leaf(clusterEndpoint),
		"kubeconfig": map[string]any{
			"server": leaf(KarmadaServer(f, nodeIP)),
			"caCrt":  sensitive{},
			"crt":    sensitive{},
			"key":    sensitive{},
		},
		// The driver sets it to the certificate's fingerprint, so the agent restarts on a new one.
		"podAnnotations": map[string]any{"reconcile.dev/agent-credential": sensitive{}},
	}
	v := map[string]any{"installMode": "agent", "agent": agent}
	if tag := imageTag(f.Manager.Karmada.Chart.Version); tag != "" {
		v["karmadaImageVersion"] = tag
		agent["image"] = map[string]any{"tag": tag}
	}
	return v
}

// splitValues turns a values tree whose unknown leaves are plan.Value references (and whose
// secrets are sensitive{}) into what a Release payload carries (values without them, the
// references by path) and what a plan shows (KnownAfterApply and Sensitive in their place).
func splitValues(tree map[string]any) (values map[string]any, refs []plan.ValueRef, display map[string]any) {
	var walk func(v any, path []string) (val any, keep bool, shown any)
	walk = func(v any, path []string) (any, bool, any) {
		switch t := v.(type) {
		case plan.Value:
			refs = append(refs, plan.ValueRef{Path: append([]string(nil), path...), From: *t.From})
			return "", false, plan.KnownAfterApply
		case sensitive:
			return nil, false, plan.Sensitive
		case map[string]any:
			out, shown := map[string]any{}, map[string]any{}
			for _, k := range sortedKeys(t) {
				val, keep, sh := walk(t[k], append(path, k))
				if keep {
					out[k] = val
				}
				shown[k] = sh
			}
			// A map whose every entry is filled in at apply time is left out whole, so the
			// payload does not carry an empty map where the release will hold values.
			return out, len(out) > 0 || len(t) == 0, shown
		case []any:
			out, shown := make([]any, len(t)), make([]any, len(t))
			for i, e := range t {
				// A list keeps its slots: a reference fills one in place.
				val, _, sh := walk(e, append(path, strconv.Itoa(i)))
				out[i], shown[i] = val, sh
			}
			return out, true, shown
		}
		return v, true, v
	}
	val, _, shown := walk(tree, nil)
	return val.(map[string]any), refs, shown.(map[string]any)
}

// IstioBaseValues are the values of the Istio base chart in a member.
func IstioBaseValues(f *spec.Fleet, member string) map[string]any {
	return map[string]any{
		"global": map[string]any{"istioNamespace": MeshNamespace},
	}
}

// IstiodValues are the values of the istiod chart in a member: one mesh, one cluster name per
// member, the member's network.
func IstiodValues(f *spec.Fleet, member string) map[string]any {
	meshID := ""
	if f.Mesh != nil {
		meshID = f.Mesh.MeshID
	}
	return map[string]any{
		"global": map[string]any{
			"meshID":       meshID,
			"multiCluster": map[string]any{"clusterName": member},
			"network":      memberNetwork(f, member),
		},
	}
}

// EastWestValues are the values of the Istio gateway chart for a member's east-west gateway.
func EastWestValues(f *spec.Fleet, member string) map[string]any {
	network := memberNetwork(f, member)
	return map[string]any{
		"name":           MeshReleaseName(ComponentEastWest),
		"networkGateway": network,
		"labels": map[string]any{
			"istio":                     "eastwestgateway",
			"app":                       "istio-eastwestgateway",
			"topology.istio.io/network": network,
		},
	}
}

func memberNetwork(f *spec.Fleet, member string) string {
	for _, m := range f.Members {
		if m.Name == member {
			return m.Network
		}
	}
	return ""
}

// mergeValues merges over into base: maps merge key by key, anything else replaces.
func mergeValues(base, over map[string]any) map[string]any {
	for k, ov := range over {
		if om, ok := ov.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				base[k] = mergeValues(bm, om)
				continue
			}
		}
		base[k] = ov
	}
	return base
}

// flatten turns a values tree into "a.b.c" -> JSON text of the leaf; lists are leaves
// (Helm replaces them wholesale). Numbers are normalized through JSON so 3 and 3.0 agree.
func flatten(v map[string]any) map[string]string {
	out := map[string]string{}
	if v == nil {
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		out[""] = fmt.Sprintf("unencodable values: %v", err)
		return out
	}
	var norm map[string]any
	if err := json.Unmarshal(b, &norm); err != nil {
		out[""] = fmt.Sprintf("undecodable values: %v", err)
		return out
	}
	flattenInto(out, "", norm)
	return out
}

func flattenInto(out map[string]string, prefix string, v map[string]any) {
	for k, e := range v {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if m, ok := e.(map[string]any); ok && len(m) > 0 {
			flattenInto(out, key, m)
			continue
		}
		out[key] = leafText(e)
	}
}

func leafText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// unknownLeaf reports whether a desired leaf cannot be compared before apply.
func unknownLeaf(s string) bool {
	return strings.Contains(s, plan.KnownAfterApply) || strings.Contains(s, plan.Sensitive)
}

// diffValues lists the leaves that differ between observed and desired values, prefixed
// with field. Leaves not known before apply never count as a difference.
func diffValues(field string, observed, desired map[string]any) []plan.Change {
	before, after := flatten(observed), flatten(desired)
	keys := make([]string, 0, len(before)+len(after))
	for k := range after {
		keys = append(keys, k)
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []plan.Change
	for _, k := range keys {
		b, inBefore := before[k]
		a, inAfter := after[k]
		switch {
		case !inAfter:
			out = append(out, plan.Change{Field: field + "." + k, Before: b, After: removed})
		case !inBefore:
			if !unknownLeaf(a) || observed == nil {
				out = append(out, plan.Change{Field: field + "." + k, After: a})
			}
		case a != b && !unknownLeaf(a):
			out = append(out, plan.Change{Field: field + "." + k, Before: b, After: a})
		}
	}
	return out
}

// removed is the After of a field that goes away.
const removed = "(removed)"

// ReleaseNamespaces are the namespaces where the fleet's Helm releases live: the Karmada
// chart's (fleet.yaml's manager.karmada.namespace), the Pull agents' and the mesh's. The Helm
// observer looks there and nowhere else, so it sees every release the plan compares.
func ReleaseNamespaces(f *spec.Fleet) []string {
	set := map[string]bool{f.Manager.Karmada.Namespace: true, AgentNamespace: true}
	if f.Mesh.On() {
		set[MeshNamespace] = true
	}
	return sortedKeys(set)
}
