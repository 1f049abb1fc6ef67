package spec

import (
	"encoding/json"
	"reflect"
	"sort"
)

// SchemaID is the JSON Schema dialect Schema produces.
const SchemaID = "https://json-schema.org/draft/2020-12/schema"

// descriptions document the main fields in the schema, keyed "GoType.jsonName". A test
// checks that every key names a real field, so the schema cannot describe a field that
// is gone.
var descriptions = map[string]string{
	"Fleet.apiVersion":                     "Always " + APIVersion + ".",
	"Fleet.kind":                           "Always " + Kind + ".",
	"Fleet.metadata":                       "Names the fleet.",
	"Fleet.provider":                       "Cloud access; provider.linode is needed when any cluster is LKE (it defaults to reading $LINODE_TOKEN).",
	"Fleet.kubeconfigDir":                  "A directory that receives a kubeconfig-<cluster> file per cluster.",
	"Fleet.manager":                        "The cluster that runs the Karmada control plane.",
	"Fleet.joinMode":                       "How members are joined to Karmada (default Push); a member may override it.",
	"Fleet.members":                        "The clusters joined to Karmada, where workloads run.",
	"Fleet.mesh":                           "Istio multi-primary, multi-network across the members.",
	"Fleet.workloads":                      "Resources in Karmada whose replicas are split across members by static weights.",
	"Fleet.safety":                         "Guards for destructive plans.",
	"Fleet.entry":                          "One DNS name for the fleet (Linode DNS Manager) answering with every healthy member's ingress address.",
	"Mesh.ingressGateway":                  "Install Istio's gateway chart as each member's north-south ingress, istio-system/istio-ingressgateway (default true when entry is set).",
	"Entry.domain":                         "The Linode DNS Manager zone, e.g. example.com (created when absent).",
	"Entry.hostname":                       "The name in the zone that answers with every healthy member, e.g. app.",
	"Entry.perMemberNames":                 "Also publish <member>.<hostname> with that member's address.",
	"Entry.ttl":                            "TTL of the records in seconds (default 30; one of the values Linode keeps).",
	"Entry.service":                        "namespace/name of the LoadBalancer Service whose address is published (default istio-system/istio-ingressgateway).",
	"Entry.soaEmail":                       "SOA email of a zone reconcile creates (default hostmaster@<domain>).",
	"Entry.healthCheck":                    "How the daemon checks each member's address.",
	"Entry.shiftReplicas":                  "Also take an unhealthy member out of the workloads' policies until it is healthy.",
	"HealthCheck.protocol":                 "HTTP (default), HTTPS (certificate not verified) or TCP.",
	"HealthCheck.port":                     "Port checked (default 15021, the Istio gateway's status port).",
	"HealthCheck.path":                     "Path of an HTTP(S) check (default /healthz/ready); 2xx and 3xx pass.",
	"HealthCheck.interval":                 "Time between checks (default 10s).",
	"HealthCheck.timeout":                  "Time a check may take (default 3s).",
	"HealthCheck.unhealthyAfter":           "Failed checks in a row that withdraw a member (default 3).",
	"HealthCheck.healthyAfter":             "Passed checks in a row that bring it back (default 2).",
	"Metadata.name":                        "The fleet's name (a DNS-1123 label); it scopes the state directory and the Linode tag.",
	"Linode.tokenEnv":                      "Environment variable holding the Linode API token (default LINODE_TOKEN).",
	"Linode.tokenFile":                     "File holding the Linode API token; wins over tokenEnv.",
	"Linode.apiURL":                        "Overrides the Linode API base URL.",
	"Linode.requestsPerSecond":             "Client-side rate limit for the Linode API (default 10).",
	"Linode.waitTimeout":                   "Bounds every wait on the Linode API (default 20m).",
	"Manager.name":                         "Cluster name (a DNS-1123 label of at most 48 characters), unique in the fleet.",
	"Manager.region":                       "Linode region of an LKE cluster reconcile creates, e.g. eu-west. Set region or kubeconfig.",
	"Manager.k8sVersion":                   "Kubernetes minor version of an LKE cluster, e.g. \"1.33\" (quoted).",
	"Manager.pools":                        "LKE node pools; at least one.",
	"Manager.kubeconfig":                   "An existing cluster, reached through a kubeconfig. Set region or kubeconfig.",
	"Manager.karmada":                      "The Karmada chart and how it is installed.",
	"Member.name":                          "Cluster name (a DNS-1123 label of at most 48 characters), unique in the fleet.",
	"Member.region":                        "Linode region of an LKE cluster reconcile creates, e.g. us-west. Set region or kubeconfig.",
	"Member.k8sVersion":                    "Kubernetes minor version of an LKE cluster, e.g. \"1.33\" (quoted).",
	"Member.pools":                         "LKE node pools; at least one.",
	"Member.kubeconfig":                    "An existing cluster, reached through a kubeconfig. Set region or kubeconfig.",
	"Member.joinMode":                      "Overrides the fleet's joinMode for this member.",
	"Member.network":                       "The member's Istio network; required and distinct per member when the mesh is on.",
	"Member.apiEndpoint":                   "Overrides the member API URL that Karmada and the other members use.",
	"Pool.type":                            "Linode plan, e.g. g6-standard-2.",
	"Pool.count":                           "Number of nodes (at least 1; defaults to autoscaler.min when autoscaled).",
	"Kubeconfig.path":                      "Kubeconfig file; relative to the fleet file, ~/ is $HOME.",
	"Kubeconfig.context":                   "Context in the kubeconfig (default: its current context).",
	"Karmada.chart":                        "Where the Karmada chart comes from: one of repo (with version), oci or path.",
	"Karmada.release":                      "Helm release name (default karmada).",
	"Karmada.namespace":                    "Namespace of the release (default karmada-system).",
	"Karmada.apiNodePort":                  "Node port of the Karmada API, 30000-32767 (default 32443).",
	"Karmada.values":                       "Extra chart values, merged under the ones reconcile sets.",
	"Karmada.timeout":                      "Bounds a chart install or upgrade (default 10m).",
	"ChartSource.repo":                     "Helm repository URL (needs version).",
	"ChartSource.name":                     "Chart name in the repository.",
	"ChartSource.oci":                      "OCI reference, oci://...",
	"ChartSource.path":                     "Local chart directory or .tgz, relative to the fleet file.",
	"ChartSource.version":                  "Chart version.",
	"Mesh.enabled":                         "Turns the mesh off while keeping its settings (default true).",
	"Mesh.version":                         "Istio version, e.g. \"1.30.3\"; required unless chart.path is set.",
	"Mesh.chart":                           "Where base, istiod and gateway come from (default: the Istio Helm repository at version).",
	"Mesh.meshID":                          "The mesh ID shared by every member.",
	"Mesh.eastWestGateway":                 "Install an east-west gateway per member (default true).",
	"Mesh.ca":                              "The mesh PKI: a root CA and an intermediate per member.",
	"Mesh.timeout":                         "Bounds each chart install or upgrade (default 5m).",
	"CA.keyType":                           "Key type of the root and intermediates (default rsa-4096).",
	"CA.rootValidity":                      "Root CA lifetime (default 87600h).",
	"CA.intermediateValidity":              "Intermediate CA lifetime (default 87600h).",
	"CA.renewBefore":                       "Renew an intermediate this long before it expires (default 720h).",
	"Workload.name":                        "Workload name (a DNS-1123 label), unique in the fleet; names the PropagationPolicy.",
	"Workload.namespace":                   "Namespace of the resources and the policy (default default).",
	"Workload.resources":                   "The resources the policy selects; at least one.",
	"Workload.weights":                     "Static weight per member (at least 1); replicas split in proportion.",
	"Workload.manifests":                   "YAML files or directories applied into Karmada, relative to the fleet file.",
	"Workload.clusterScoped":               "Make the policy a ClusterPropagationPolicy.",
	"Workload.rollout":                     "Move replicas to changed weights in gated stages instead of at once.",
	"Rollout.maxShift":                     "The most replicas one stage moves: a share such as \"20%\" (default) or a count such as 2.",
	"Rollout.interval":                     "The least time between the start of a stage and the next (default 0s).",
	"Rollout.gate":                         "What a stage waits for: available (the members gaining replicas report them available).",
	"Rollout.timeout":                      "A stage whose gate does not hold this long halts the rollout and goes back to the last good stage (default 10m).",
	"ResourceRef.labelSelector":            "Selects resources by labels instead of (or with) a name.",
	"Fleet.credentials":                    "Lifetimes of the credentials reconcile makes (Karmada tokens, istio-reader tokens, Pull agents' certificates).",
	"Credentials.tokenRotation":            "Replace a token or an agent certificate once it is this old (default 720h, at least 1h); certificates are issued for twice as long.",
	"Safety.prune":                         "Delete clusters that left the fleet (default false: they are kept).",
	"Safety.maxDeleteShare":                "Largest share of members one plan may delete or unjoin without --allow-destroy, in (0, 1] (default 0.34).",
	"Fleet.state":                          "Where the fleet's state and lock live (default: a local directory).",
	"State.backend":                        "local (default: --state-dir or the default directory) or kubernetes (Secrets and a Lease in a cluster).",
	"State.kubernetes":                     "The kubernetes backend: the cluster (kubeconfig, context) and namespace holding the state.",
	"KubernetesStateBackend.kubeconfig":    "Kubeconfig of the state cluster, relative to the fleet file; empty: in-cluster credentials.",
	"KubernetesStateBackend.context":       "Context of that kubeconfig (default: its current context).",
	"KubernetesStateBackend.namespace":     "Namespace holding the state Secrets and the Lease (default reconcile-system); it must exist.",
	"KubernetesStateBackend.leaseDuration": "How long the lock outlives its holder's last renewal (default 15s, at least 5s).",
	"Autoscaler.min":                       "Fewest nodes (at least 1).",
	"Autoscaler.max":                       "Most nodes (at least min).",
	"Cluster.allowUpgrade":                 "Let a k8sVersion change upgrade the LKE cluster in place.",
	"Cluster.highAvailability":             "HA control plane for an LKE cluster (cannot be turned off again).",
}

// constraints add enums and bounds to fields, keyed as descriptions are.
var constraints = map[string]map[string]any{
	"Fleet.apiVersion":      {"const": APIVersion},
	"Fleet.kind":            {"const": Kind},
	"CA.keyType":            {"enum": []string{"rsa-4096", "rsa-2048", "ecdsa-p256"}},
	"Karmada.apiNodePort":   {"minimum": 30000, "maximum": 32767},
	"Safety.maxDeleteShare": {"exclusiveMinimum": 0, "maximum": 1},
	"Pool.count":            {"minimum": 1},
	"State.backend":         {"enum": []string{LocalState, KubernetesState}},
	"Rollout.gate":          {"enum": []string{GateAvailable}},
	"HealthCheck.protocol":  {"enum": []string{CheckHTTP, CheckHTTPS, CheckTCP}},
	"Entry.ttl":             {"enum": LinodeTTLs},
	"Autoscaler.min":        {"minimum": 1},
	"ChartSource.oci":       {"pattern": "^oci://"},
	"Manager.name":          {"maxLength": maxClusterName, "pattern": dns1123Label.String()},
	"Member.name":           {"maxLength": maxClusterName, "pattern": dns1123Label.String()},
	"Metadata.name":         {"maxLength": 63, "pattern": dns1123Label.String()},
	"Workload.name":         {"maxLength": 63, "pattern": dns1123Label.String()},
	"Manager.k8sVersion":    {"pattern": k8sVersion.String()},
	"Member.k8sVersion":     {"pattern": k8sVersion.String()},
}

// Schema returns a JSON Schema of fleet.yaml for editors (yaml-language-server), built by
// reflecting over the Fleet type's json tags so it follows the types.
func Schema() []byte {
	b := &schemaBuilder{defs: map[string]any{}}
	root := b.object(reflect.TypeOf(Fleet{}))
	root["$schema"] = SchemaID
	root["title"] = "reconcile fleet.yaml"
	root["description"] = "The desired state of a fleet: a Karmada manager, its members, an Istio mesh and weighted workloads."
	delete(b.defs, "Fleet")
	root["$defs"] = b.defs
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		panic("spec: schema does not marshal: " + err.Error()) // only plain maps and slices go in
	}
	return append(out, '\n')
}

type schemaBuilder struct {
	defs map[string]any
}

var joinModeType = reflect.TypeOf(JoinMode(""))

func (b *schemaBuilder) typeSchema(t reflect.Type) map[string]any {
	switch t {
	case durationType:
		return map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, "description": "A duration such as 90s, 10m or 1h30m."}
	case shiftType:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string", "pattern": `^(100|[1-9][0-9]?)%$`},
			map[string]any{"type": "integer", "minimum": 1},
		}, "description": "A share of the replicas such as 20%, or a number of replicas."}
	case joinModeType:
		return map[string]any{"type": "string", "enum": []string{string(Push), string(Pull)}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return b.typeSchema(t.Elem())
	case reflect.Struct:
		if _, done := b.defs[t.Name()]; !done {
			b.defs[t.Name()] = nil // reserve against recursion
			b.defs[t.Name()] = b.object(t)
		}
		return map[string]any{"$ref": "#/$defs/" + t.Name()}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": b.typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": b.typeSchema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	}
	panic("spec: no schema for " + t.String())
}

// object is the schema of a struct: its json fields, the ones without omitempty required,
// nothing else allowed.
func (b *schemaBuilder) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range fieldsOf(t).list {
		s := b.typeSchema(f.typ)
		for _, key := range fieldKeys(t, f) {
			if d := descriptions[key]; d != "" {
				s = withKey(s, "description", d)
			}
			for k, v := range constraints[key] {
				s = withKey(s, k, v)
			}
		}
		if f.typ.Kind() == reflect.Map && f.typ.Elem().Kind() == reflect.Int64 && f.name == "weights" {
			s["additionalProperties"] = map[string]any{"type": "integer", "minimum": 1}
			s["minProperties"] = 1
		}
		props[f.name] = s
		if !f.omitempty {
			required = append(required, f.name)
		}
	}
	sort.Strings(required)
	obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		obj["required"] = required
	}
	return obj
}

// fieldKeys are the description keys of a field: under the struct that shows it and,
// for an inlined field, under the struct that declares it.
func fieldKeys(t reflect.Type, f field) []string {
	keys := []string{t.Name() + "." + f.name}
	if f.owner != t {
		keys = append([]string{f.owner.Name() + "." + f.name}, keys...)
	}
	return keys
}

// withKey sets a keyword; a $ref is wrapped in allOf so siblings stay valid in draft-07 readers too.
func withKey(s map[string]any, k string, v any) map[string]any {
	if _, ref := s["$ref"]; ref {
		s = map[string]any{"allOf": []any{s}}
	}
	s[k] = v
	return s
}
