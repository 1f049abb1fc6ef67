package spec

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestRules: one case per validation rule; each must be rejected with an error on the
// named path whose message says what is wrong.
func TestRules(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 49)
	kubeconfig := map[string]any{"path": "~/.kube/config", "context": "k3d-one"}
	tests := []struct {
		name   string
		modify func(t *testing.T, doc map[string]any)
		files  map[string]string
		path   string
		msg    string
	}{
		{"apiVersion", func(t *testing.T, d map[string]any) { set(t, d, "apiVersion", "reconcile.dev/v1") }, nil,
			"apiVersion", `unsupported apiVersion "reconcile.dev/v1": want reconcile.dev/v1alpha1`},
		{"apiVersion missing", func(t *testing.T, d map[string]any) { del(t, d, "apiVersion") }, nil,
			"apiVersion", "apiVersion is required"},
		{"kind", func(t *testing.T, d map[string]any) { set(t, d, "kind", "Cluster") }, nil,
			"kind", `unsupported kind "Cluster": want Fleet`},
		{"fleet name DNS-1123", func(t *testing.T, d map[string]any) { set(t, d, "metadata.name", "My_Fleet") }, nil,
			"metadata.name", "DNS-1123"},
		{"fleet name required", func(t *testing.T, d map[string]any) { del(t, d, "metadata.name") }, nil,
			"metadata.name", "fleet name is required"},
		{"cluster names unique", func(t *testing.T, d map[string]any) { set(t, d, "members[1].name", "cluster-manager") }, nil,
			"members[1].name", `duplicate cluster name "cluster-manager" (already used by manager)`},
		{"member names unique", func(t *testing.T, d map[string]any) { set(t, d, "members[1].name", "eu") }, nil,
			"members[1].name", `already used by members[0]`},
		{"cluster name at most 48", func(t *testing.T, d map[string]any) { set(t, d, "members[0].name", long) }, nil,
			"members[0].name", "49 characters long: a cluster name has at most 48"},
		{"cluster name DNS-1123", func(t *testing.T, d map[string]any) { set(t, d, "manager.name", "Manager") }, nil,
			"manager.name", "DNS-1123"},
		{"region and kubeconfig", func(t *testing.T, d map[string]any) { set(t, d, "members[0].kubeconfig", kubeconfig) }, nil,
			"members[0].kubeconfig", "not both"},
		{"neither region nor kubeconfig", func(t *testing.T, d map[string]any) { del(t, d, "members[0].region") }, nil,
			"members[0]", "set region"},
		{"LKE needs k8sVersion", func(t *testing.T, d map[string]any) { del(t, d, "manager.k8sVersion") }, nil,
			"manager.k8sVersion", "k8sVersion is required for an LKE cluster"},
		{"k8sVersion form", func(t *testing.T, d map[string]any) { set(t, d, "members[1].k8sVersion", "v1.33.2") }, nil,
			"members[1].k8sVersion", `invalid k8sVersion "v1.33.2": want major.minor`},
		{"LKE needs a pool", func(t *testing.T, d map[string]any) { set(t, d, "members[0].pools", []any{}) }, nil,
			"members[0].pools", "at least one pool"},
		{"pool type", func(t *testing.T, d map[string]any) { del(t, d, "members[0].pools[0].type") }, nil,
			"members[0].pools[0].type", "type is required"},
		{"pool count", func(t *testing.T, d map[string]any) { set(t, d, "members[0].pools[0].count", 0) }, nil,
			"members[0].pools[0].count", "at least 1 node"},
		{"autoscaler min", func(t *testing.T, d map[string]any) {
			set(t, d, "members[0].pools[0]", map[string]any{"type": "g6-standard-2", "autoscaler": map[string]any{"min": 0, "max": 3}})
		}, nil, "members[0].pools[0].autoscaler.min", "at least 1 node"},
		{"autoscaler max", func(t *testing.T, d map[string]any) {
			set(t, d, "members[0].pools[0]", map[string]any{"type": "g6-standard-2", "autoscaler": map[string]any{"min": 3, "max": 2}})
		}, nil, "members[0].pools[0].autoscaler.max", "max 2 is below min 3"},
		{"autoscaler count in range", func(t *testing.T, d map[string]any) {
			set(t, d, "members[0].pools[0]", map[string]any{"type": "g6-standard-2", "count": 9, "autoscaler": map[string]any{"min": 1, "max": 3}})
		}, nil, "members[0].pools[0].count", "outside the autoscaler's range [1, 3]"},
		{"kubeconfig path", func(t *testing.T, d map[string]any) {
			del(t, d, "members[0].region")
			del(t, d, "members[0].k8sVersion")
			del(t, d, "members[0].pools")
			set(t, d, "members[0].kubeconfig", map[string]any{"path": ""})
		}, nil, "members[0].kubeconfig.path", "path is required"},
		{"pools only for LKE", func(t *testing.T, d map[string]any) {
			del(t, d, "members[0].region")
			del(t, d, "members[0].k8sVersion")
			set(t, d, "members[0].kubeconfig", kubeconfig)
		}, nil, "members[0].pools", "only to LKE clusters"},
		{"fleet joinMode", func(t *testing.T, d map[string]any) { set(t, d, "joinMode", "push") }, nil,
			"joinMode", `unknown join mode "push": want Push`},
		{"member joinMode", func(t *testing.T, d map[string]any) { set(t, d, "members[1].joinMode", "Both") }, nil,
			"members[1].joinMode", `unknown join mode "Both"`},
		{"apiNodePort range", func(t *testing.T, d map[string]any) { set(t, d, "manager.karmada.apiNodePort", 6443) }, nil,
			"manager.karmada.apiNodePort", "6443 is not a node port: want 30000-32767"},
		{"chart: at most one source", func(t *testing.T, d map[string]any) {
			set(t, d, "manager.karmada.chart.oci", "oci://example.com/karmada")
		}, nil, "manager.karmada.chart", "repo and oci are all set: give exactly one"},
		{"karmada chart required", func(t *testing.T, d map[string]any) { del(t, d, "manager.karmada.chart") }, nil,
			"manager.karmada.chart", "a chart source is required"},
		{"repo needs version", func(t *testing.T, d map[string]any) { del(t, d, "manager.karmada.chart.version") }, nil,
			"manager.karmada.chart.version", "version is required with repo"},
		{"oci prefix", func(t *testing.T, d map[string]any) {
			set(t, d, "manager.karmada.chart", map[string]any{"oci": "example.com/karmada"})
		}, nil, "manager.karmada.chart.oci", "must start with oci://"},
		{"chart path exists", func(t *testing.T, d map[string]any) {
			set(t, d, "mesh.chart", map[string]any{"path": "charts/istio"})
		}, nil, "mesh.chart.path", "charts/istio does not exist"},
		{"meshID", func(t *testing.T, d map[string]any) { del(t, d, "mesh.meshID") }, nil,
			"mesh.meshID", "meshID is required"},
		{"mesh version", func(t *testing.T, d map[string]any) { del(t, d, "mesh.version") }, nil,
			"mesh.version", "version is required"},
		{"member network with mesh", func(t *testing.T, d map[string]any) { del(t, d, "members[1].network") }, nil,
			"members[1]", `member "ap" has no network`},
		{"networks distinct", func(t *testing.T, d map[string]any) { set(t, d, "members[1].network", "network1") }, nil,
			"members[1].network", `network "network1" is already member "eu"'s`},
		{"CA key type", func(t *testing.T, d map[string]any) { set(t, d, "mesh.ca.keyType", "dsa") }, nil,
			"mesh.ca.keyType", `unknown key type "dsa": want rsa-4096, rsa-2048 or ecdsa-p256`},
		{"renewBefore below validity", func(t *testing.T, d map[string]any) {
			set(t, d, "mesh.ca.intermediateValidity", "24h")
		}, nil, "mesh.ca.renewBefore", "must be shorter than intermediateValidity"},
		{"durations positive", func(t *testing.T, d map[string]any) { set(t, d, "manager.karmada.timeout", "-5m") }, nil,
			"manager.karmada.timeout", "duration -5m0s must be positive"},
		{"linode wait timeout positive", func(t *testing.T, d map[string]any) {
			set(t, d, "provider.linode.waitTimeout", "-1s")
		}, nil, "provider.linode.waitTimeout", "must be positive"},
		{"workload name DNS-1123", func(t *testing.T, d map[string]any) { set(t, d, "workloads[0].name", "Hello") }, nil,
			"workloads[0].name", "not a valid workload name"},
		{"workload names unique", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads", append(d["workloads"].([]any), baseFleet()["workloads"].([]any)[0]))
		}, nil, "workloads[1].name", `duplicate workload name "hello"`},
		{"rollout maxShift share", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].rollout", map[string]any{"maxShift": "120%"})
		}, nil, "workloads[0].rollout.maxShift", "want a whole percentage in (0, 100%]"},
		{"rollout maxShift count", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].rollout", map[string]any{"maxShift": 0})
		}, nil, "workloads[0].rollout.maxShift", "want a positive count"},
		{"rollout gate", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].rollout", map[string]any{"gate": "healthy"})
		}, nil, "workloads[0].rollout.gate", `unknown gate "healthy": want available`},
		{"rollout interval", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].rollout", map[string]any{"interval": "-1m"})
		}, nil, "workloads[0].rollout.interval", "must not be negative"},
		{"rollout timeout", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].rollout", map[string]any{"timeout": "-1m"})
		}, nil, "workloads[0].rollout.timeout", "must be positive"},
		{"rollout unknown field", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].rollout", map[string]any{"maxSurge": 1})
		}, nil, "workloads[0].rollout.maxSurge", ""},
		{"workload needs a resource", func(t *testing.T, d map[string]any) { set(t, d, "workloads[0].resources", []any{}) }, nil,
			"workloads[0].resources", "at least one resource"},
		{"resource apiVersion", func(t *testing.T, d map[string]any) { del(t, d, "workloads[0].resources[0].apiVersion") }, nil,
			"workloads[0].resources[0].apiVersion", "apiVersion is required"},
		{"resource kind", func(t *testing.T, d map[string]any) { del(t, d, "workloads[0].resources[0].kind") }, nil,
			"workloads[0].resources[0].kind", "kind is required"},
		{"weights at least 1", func(t *testing.T, d map[string]any) { set(t, d, "workloads[0].weights.eu", 0) }, nil,
			"workloads[0].weights.eu", "weight 0 must be at least 1"},
		{"weights only for members", func(t *testing.T, d map[string]any) { set(t, d, "workloads[0].weights.us", 1) }, nil,
			"workloads[0].weights.us", `"us" is not a member of this fleet: want one of ap, eu`},
		{"weights not for the manager", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].weights.cluster-manager", 1)
		}, nil, "workloads[0].weights.cluster-manager", `"cluster-manager" is the manager, not a member`},
		{"at least one weight", func(t *testing.T, d map[string]any) { set(t, d, "workloads[0].weights", map[string]any{}) }, nil,
			"workloads[0].weights", "at least one weight is required"},
		{"manifest exists", func(t *testing.T, d map[string]any) { set(t, d, "workloads[0].manifests", []any{"./missing.yaml"}) }, nil,
			"workloads[0].manifests[0]", "missing.yaml does not exist"},
		{"manifest directory has YAML", func(t *testing.T, d map[string]any) { set(t, d, "workloads[0].manifests", []any{"deploy"}) },
			map[string]string{"deploy/README.md": "not yaml"}, "workloads[0].manifests[0]", "holds no .yaml or .yml files"},
		{"state backend unknown", func(t *testing.T, d map[string]any) { set(t, d, "state.backend", "s3") }, nil,
			"state.backend", `unknown state backend "s3": want local`},
		{"state kubernetes block missing", func(t *testing.T, d map[string]any) { set(t, d, "state.backend", "kubernetes") }, nil,
			"state.backend", "state.kubernetes is missing"},
		{"state kubernetes block with local", func(t *testing.T, d map[string]any) {
			set(t, d, "state.kubernetes", map[string]any{"namespace": "ops"})
		}, nil, "state.kubernetes", "state.backend is local"},
		{"state namespace", func(t *testing.T, d map[string]any) {
			set(t, d, "state", map[string]any{"backend": "kubernetes", "kubernetes": map[string]any{"namespace": "Ops_State"}})
		}, nil, "state.kubernetes.namespace", "DNS-1123"},
		{"state kubeconfig missing", func(t *testing.T, d map[string]any) {
			set(t, d, "state", map[string]any{"backend": "kubernetes", "kubernetes": map[string]any{"kubeconfig": "./ops-kubeconfig"}})
		}, nil, "state.kubernetes.kubeconfig", "cannot read the state cluster's kubeconfig"},
		{"state lease too short", func(t *testing.T, d map[string]any) {
			set(t, d, "state", map[string]any{"backend": "kubernetes", "kubernetes": map[string]any{"leaseDuration": "2s"}})
		}, nil, "state.kubernetes.leaseDuration", "at least 5s"},
		{"token rotation too short", func(t *testing.T, d map[string]any) {
			set(t, d, "credentials", map[string]any{"tokenRotation": "30m"})
		}, nil, "credentials.tokenRotation", "at least 1h0m0s"},
		{"token rotation negative", func(t *testing.T, d map[string]any) {
			set(t, d, "credentials", map[string]any{"tokenRotation": "-1h"})
		}, nil, "credentials.tokenRotation", "too short"},
		{"maxDeleteShare NaN", func(t *testing.T, d map[string]any) { set(t, d, "safety.maxDeleteShare", math.NaN()) }, nil,
			"safety.maxDeleteShare", "want a finite number, got .nan"},
		{"maxDeleteShare infinite", func(t *testing.T, d map[string]any) { set(t, d, "safety.maxDeleteShare", math.Inf(1)) }, nil,
			"safety.maxDeleteShare", "want a finite number, got .inf"},
		{"requestsPerSecond NaN", func(t *testing.T, d map[string]any) {
			set(t, d, "provider", map[string]any{"linode": map[string]any{"requestsPerSecond": math.NaN()}})
		}, nil,
			"provider.linode.requestsPerSecond", "want a finite number"},
		{"apiURL plain http off loopback", func(t *testing.T, d map[string]any) {
			set(t, d, "provider", map[string]any{"linode": map[string]any{"apiURL": "http://api.example.com/v4"}})
		}, nil, "provider.linode.apiURL", "plain http to a host that is not loopback"},
		{"apiURL not a URL", func(t *testing.T, d map[string]any) {
			set(t, d, "provider", map[string]any{"linode": map[string]any{"apiURL": "api.linode.com"}})
		}, nil, "provider.linode.apiURL", "is not an API URL"},
		{"maxDeleteShare above 1", func(t *testing.T, d map[string]any) { set(t, d, "safety.maxDeleteShare", 1.5) }, nil,
			"safety.maxDeleteShare", "1.5 is out of range: want a share in (0, 1]"},
		{"maxDeleteShare zero", func(t *testing.T, d map[string]any) { set(t, d, "safety.maxDeleteShare", 0) }, nil,
			"safety.maxDeleteShare", "0 is out of range"},
		{"string wanted, number given", func(t *testing.T, d map[string]any) { set(t, d, "members[0].k8sVersion", 1.33) }, nil,
			"members[0].k8sVersion", `want a string, got the number 1.33 (YAML reads it as a float; quote it: "1.33")`},
		{"bad duration", func(t *testing.T, d map[string]any) { set(t, d, "mesh.timeout", "5 minutes") }, nil,
			"mesh.timeout", `invalid duration "5 minutes"`},
		{"list wanted", func(t *testing.T, d map[string]any) { set(t, d, "members", "eu") }, nil,
			"members", `want a list (lines starting with "- "), got the string "eu"`},
		{"entry domain missing", func(t *testing.T, d map[string]any) { set(t, d, "entry", map[string]any{"hostname": "app"}) }, nil,
			"entry.domain", "domain is required"},
		{"entry domain not a name", func(t *testing.T, d map[string]any) {
			set(t, d, "entry", map[string]any{"domain": "example", "hostname": "app"})
		}, nil, "entry.domain", "is not a domain name"},
		{"entry hostname bad label", func(t *testing.T, d map[string]any) {
			set(t, d, "entry", map[string]any{"domain": "example.com", "hostname": "App_1"})
		}, nil, "entry.hostname", "DNS-1123"},
		{"entry ttl Linode rounds", func(t *testing.T, d map[string]any) {
			set(t, d, "entry", map[string]any{"domain": "example.com", "hostname": "app", "ttl": 60})
		}, nil, "entry.ttl", "ttl 60 is not one Linode's DNS Manager keeps"},
		{"entry service not namespace/name", func(t *testing.T, d map[string]any) {
			set(t, d, "entry", map[string]any{"domain": "example.com", "hostname": "app", "service": "ingress"})
		}, nil, "entry.service", "is not namespace/name"},
		{"entry protocol unknown", func(t *testing.T, d map[string]any) {
			set(t, d, "entry", map[string]any{"domain": "example.com", "hostname": "app", "healthCheck": map[string]any{"protocol": "ICMP"}})
		}, nil, "entry.healthCheck.protocol", `unknown protocol "ICMP"`},
		{"entry timeout over interval", func(t *testing.T, d map[string]any) {
			set(t, d, "entry", map[string]any{"domain": "example.com", "hostname": "app",
				"healthCheck": map[string]any{"interval": "2s", "timeout": "5s"}})
		}, nil, "entry.healthCheck.timeout", "longer than the interval"},
		{"entry unhealthyAfter out of range", func(t *testing.T, d map[string]any) {
			set(t, d, "entry", map[string]any{"domain": "example.com", "hostname": "app", "healthCheck": map[string]any{"unhealthyAfter": 50}})
		}, nil, "entry.healthCheck.unhealthyAfter", "out of range"},
		{"entry tcp with path", func(t *testing.T, d map[string]any) {
			set(t, d, "entry", map[string]any{"domain": "example.com", "hostname": "app",
				"healthCheck": map[string]any{"protocol": "TCP", "path": "/x"}})
		}, nil, "entry.healthCheck.path", "a TCP check has no path"},
		{"unknown field without a near name", func(t *testing.T, d map[string]any) { set(t, d, "mesh.zone", "a") }, nil,
			"mesh.zone", "unknown field `zone`; known fields here: ca, chart, eastWestGateway, enabled, ingressGateway, meshID, timeout, version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := baseFleet()
			tc.modify(t, doc)
			list := loadErrors(t, writeFleet(t, doc, tc.files))
			for _, e := range list {
				if e.Path == tc.path && strings.Contains(e.Msg, tc.msg) {
					if e.Line < 1 || e.Col < 1 {
						t.Errorf("error %q has no position", e.Error())
					}
					return
				}
			}
			t.Errorf("no error at %s containing %q; got:\n%v", tc.path, tc.msg, (&Errors{List: list}).Error())
		})
	}
}

// TestValidVariants: the rules' allowed sides load.
func TestValidVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(t *testing.T, doc map[string]any)
		files  map[string]string
		check  func(t *testing.T, f *Fleet)
	}{
		{"base", func(*testing.T, map[string]any) {}, nil, nil},
		{"autoscaled pool count defaults to min", func(t *testing.T, d map[string]any) {
			set(t, d, "members[0].pools[0]", map[string]any{"type": "g6-standard-2", "autoscaler": map[string]any{"min": 2, "max": 5}})
		}, nil, func(t *testing.T, f *Fleet) {
			if got := f.Members[0].Pools[0].Count; got != 2 {
				t.Errorf("count = %d, want the autoscaler min 2", got)
			}
		}},
		{"rollout defaults", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].rollout", map[string]any{})
		}, nil, func(t *testing.T, f *Fleet) {
			r := f.Workloads[0].Rollout
			if r == nil || r.MaxShift != (Shift{Percent: 20}) || r.Gate != GateAvailable || r.Timeout.Duration != DefaultRolloutTimeout || r.Interval.Duration != 0 {
				t.Errorf("rollout = %+v, want maxShift 20%%, gate available, timeout 10m, interval 0", r)
			}
		}},
		{"rollout count", func(t *testing.T, d map[string]any) {
			set(t, d, "workloads[0].rollout", map[string]any{"maxShift": 2, "interval": "2m", "timeout": "5m"})
		}, nil, func(t *testing.T, f *Fleet) {
			r := f.Workloads[0].Rollout
			if r.MaxShift != (Shift{Count: 2}) || r.MaxShift.Of(10) != 2 || r.Interval.Duration != 2*time.Minute {
				t.Errorf("rollout = %+v", r)
			}
			if got := (Shift{Percent: 20}).Of(10); got != 2 {
				t.Errorf("20%% of 10 = %d, want 2", got)
			}
			if got := (Shift{Percent: 1}).Of(10); got != 1 {
				t.Errorf("1%% of 10 = %d, want at least 1", got)
			}
		}},
		{"state defaults to local", func(*testing.T, map[string]any) {}, nil, func(t *testing.T, f *Fleet) {
			if f.State.Backend != LocalState || f.State.Kubernetes != nil {
				t.Errorf("state = %+v, want the local backend", f.State)
			}
		}},
		{"state kubernetes defaults", func(t *testing.T, d map[string]any) {
			set(t, d, "state", map[string]any{"backend": "kubernetes", "kubernetes": map[string]any{"kubeconfig": "ops/kubeconfig"}})
		}, map[string]string{"ops/kubeconfig": "apiVersion: v1\nkind: Config\n"}, func(t *testing.T, f *Fleet) {
			k := f.State.Kubernetes
			if k.Namespace != DefaultStateNamespace || k.LeaseDuration.Duration != DefaultLeaseDuration {
				t.Errorf("state.kubernetes = %+v, want namespace %s and lease %s", k, DefaultStateNamespace, DefaultLeaseDuration)
			}
			if !strings.HasSuffix(k.Kubeconfig, "/ops/kubeconfig") || !strings.HasPrefix(k.Kubeconfig, "/") {
				t.Errorf("kubeconfig = %q, want it absolute", k.Kubeconfig)
			}
		}},
		{"mesh off needs no networks", func(t *testing.T, d map[string]any) {
			set(t, d, "mesh.enabled", false)
			del(t, d, "members[0].network")
			del(t, d, "members[1].network")
		}, nil, func(t *testing.T, f *Fleet) {
			if f.MeshOn() {
				t.Error("MeshOn() = true with enabled: false")
			}
		}},
		{"mesh chart path needs no version", func(t *testing.T, d map[string]any) {
			del(t, d, "mesh.version")
			set(t, d, "mesh.chart", map[string]any{"path": "charts"})
		}, map[string]string{"charts/base/Chart.yaml": "name: base\n"}, func(t *testing.T, f *Fleet) {
			if !strings.HasSuffix(f.Mesh.Chart.Path, "/charts") || !strings.HasPrefix(f.Mesh.Chart.Path, "/") {
				t.Errorf("mesh chart path = %q, want it absolute", f.Mesh.Chart.Path)
			}
			if f.Mesh.Chart.Repo != "" {
				t.Errorf("mesh chart repo defaulted to %q alongside a path", f.Mesh.Chart.Repo)
			}
		}},
		{"mesh chart oci", func(t *testing.T, d map[string]any) {
			set(t, d, "mesh.chart", map[string]any{"oci": "oci://example.com/istio"})
		}, nil, func(t *testing.T, f *Fleet) {
			if f.Mesh.Chart.Version != "1.30.3" || f.Mesh.Chart.Repo != "" {
				t.Errorf("mesh chart = %+v, want oci at the mesh version", f.Mesh.Chart)
			}
		}},
		{"existing clusters need no provider", func(t *testing.T, d map[string]any) {
			for _, p := range []string{"manager", "members[0]", "members[1]"} {
				del(t, d, p+".region")
				del(t, d, p+".k8sVersion")
				del(t, d, p+".pools")
				set(t, d, p+".kubeconfig", map[string]any{"path": "kubeconfig"})
			}
		}, nil, func(t *testing.T, f *Fleet) {
			if f.Provider.Linode != nil {
				t.Errorf("Provider.Linode = %+v, want nil without LKE clusters", f.Provider.Linode)
			}
			if !strings.HasSuffix(f.Members[0].Kubeconfig.Path, "/kubeconfig") || !strings.HasPrefix(f.Members[0].Kubeconfig.Path, "/") {
				t.Errorf("kubeconfig path = %q, want it absolute", f.Members[0].Kubeconfig.Path)
			}
		}},
		{"kubeconfigDir any string", func(t *testing.T, d map[string]any) { set(t, d, "kubeconfigDir", "out dir/ä") }, nil,
			func(t *testing.T, f *Fleet) {
				if !strings.HasSuffix(f.KubeconfigDir, "/out dir/ä") || !strings.HasPrefix(f.KubeconfigDir, "/") {
					t.Errorf("kubeconfigDir = %q, want it absolute", f.KubeconfigDir)
				}
			}},
		{"maxDeleteShare 1", func(t *testing.T, d map[string]any) { set(t, d, "safety.maxDeleteShare", 1) }, nil,
			func(t *testing.T, f *Fleet) {
				if *f.Safety.MaxDeleteShare != 1 {
					t.Errorf("maxDeleteShare = %v, want 1", *f.Safety.MaxDeleteShare)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := baseFleet()
			tc.modify(t, doc)
			f := mustLoad(t, writeFleet(t, doc, tc.files))
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}
