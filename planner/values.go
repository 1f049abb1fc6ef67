package planner

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
)

// Names the drivers and observers share with the planner.
const (
	DefaultKarmadaRelease   = "karmada"
	DefaultKarmadaNamespace = "karmada-system"
	DefaultKarmadaNodePort  = 32443
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

// KarmadaRelease returns the Karmada release name and namespace, defaulted.
func KarmadaRelease(f *spec.Fleet) (name, namespace string) {
	name, namespace = f.Manager.Karmada.Release, f.Manager.Karmada.Namespace
	if name == "" {
		name = DefaultKarmadaRelease
	}
	if namespace == "" {
		namespace = DefaultKarmadaNamespace
	}
	return name, namespace
}

// KarmadaNodePort is the node port the Karmada API is exposed on, defaulted.
func KarmadaNodePort(f *spec.Fleet) int {
	if p := f.Manager.Karmada.APINodePort; p != 0 {
		return p
	}
	return DefaultKarmadaNodePort
}

// KarmadaServer is the external URL of the Karmada API (plan.KnownAfterApply inside when nodeIP is "").
func KarmadaServer(f *spec.Fleet, nodeIP string) string {
	if nodeIP == "" {
		return plan.KnownAfterApply
	}
	return fmt.Sprintf("https://%s:%d", nodeIP, KarmadaNodePort(f))
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
// manager node the API is reached on ("" when not known yet: the plan shows plan.KnownAfterApply).
// The user's karmada.values are merged on top, so they win.
func KarmadaValues(f *spec.Fleet, nodeIP string) map[string]any {
	_, ns := KarmadaRelease(f)
	domain := "cluster.local"
	if d, ok := f.Manager.Karmada.Values["clusterDomain"].(string); ok && d != "" {
		domain = d
	}
	if nodeIP == "" {
		nodeIP = plan.KnownAfterApply
	}
	// Helm replaces lists wholesale, so the chart's default hosts are repeated before the node IP.
	hosts := []any{
		"kubernetes.default.svc",
		"*.etcd." + ns + ".svc." + domain,
		"*." + ns + ".svc." + domain,
		"*." + ns + ".svc",
		"localhost",
		"127.0.0.1",
		nodeIP,
	}
	v := map[string]any{
		"installMode": "host",
		"apiServer": map[string]any{
			"serviceType": "NodePort",
			"nodePort":    KarmadaNodePort(f),
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
	return mergeValues(v, deepCopy(f.Manager.Karmada.Values))
}

// AgentValues are the values of the Karmada chart in agent mode in a Pull member.
// clusterEndpoint is the member's API URL, nodeIP the manager node the Karmada API is reached on
// ("" when not known yet). The agent's CA, certificate and key are filled by the driver at
// apply time and shown as plan.Sensitive.
func AgentValues(f *spec.Fleet, member, clusterEndpoint, nodeIP string) map[string]any {
	if clusterEndpoint == "" {
		clusterEndpoint = plan.KnownAfterApply
	}
	agent := map[string]any{
		"clusterName":     member,
		"clusterEndpoint": clusterEndpoint,
		"kubeconfig": map[string]any{
			"server": KarmadaServer(f, nodeIP),
			"caCrt":  plan.Sensitive,
			"crt":    plan.Sensitive,
			"key":    plan.Sensitive,
		},
	}
	v := map[string]any{"installMode": "agent", "agent": agent}
	if tag := imageTag(f.Manager.Karmada.Chart.Version); tag != "" {
		v["karmadaImageVersion"] = tag
		agent["image"] = map[string]any{"tag": tag}
	}
	return v
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

// deepCopy copies a values tree so merging never writes into the caller's fleet.
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
