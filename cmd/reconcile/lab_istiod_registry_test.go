package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/planner"
)

// istiodRegistryTimeout bounds the wait for every istiod's registry to hold every member's
// endpoints and every remote network's gateway.
const istiodRegistryTimeout = 2 * time.Minute

// meshMember is what the registry check knows of a mesh member.
type meshMember struct {
	name, network, dir string
	client             kubernetes.Interface
}

// shardEndpoint is an endpoint of istiod's /debug/endpointShardz (model.IstioEndpoint).
type shardEndpoint struct {
	Addresses []string
	Network   string
	Locality  struct{ ClusterID string }
}

// networkGateway is an entry of istiod's /debug/networkz (model.NetworkGateway).
type networkGateway struct {
	Network string
	Cluster string
	Addr    string
	Port    uint32
}

// checkIstiodRegistry checks each istiod's own registry: for each service (host, namespace)
// given, /debug/endpointShardz holds a shard per member (Kubernetes/<member>) whose endpoints
// are that member's ready Pods' IPs, on that member's network and cluster; and /debug/networkz
// lists, for every other member, its network's gateway at its east-west gateway's
// LoadBalancer address on 15443, the address istiod hands out for that network's endpoints.
func checkIstiodRegistry(t *testing.T, ctx context.Context, ms []meshMember, services map[string]string) {
	t.Helper()
	httpc := &http.Client{Timeout: 5 * time.Second}
	get := func(m meshMember, path string, v any) error {
		info, err := labworld.ReadIstiod(m.dir)
		if err != nil {
			return err
		}
		resp, err := httpc.Get("http://" + info.Monitoring + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s %s", path, resp.Status, body)
		}
		return json.Unmarshal(body, v)
	}
	// What each member holds: its Pods' IPs behind each service, its east-west address.
	gw := planner.MeshReleaseName(planner.ComponentEastWest)
	gwAddr := map[string]string{}
	for _, m := range ms {
		waitCond(ctx, istiodRegistryTimeout, 250*time.Millisecond, func() bool {
			svc, err := m.client.CoreV1().Services(planner.MeshNamespace).Get(ctx, gw, metav1.GetOptions{})
			if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
				return false
			}
			gwAddr[m.name] = svc.Status.LoadBalancer.Ingress[0].IP
			return true
		})
		for host, ns := range services {
			if !waitCond(ctx, istiodRegistryTimeout, 250*time.Millisecond, func() bool {
				return len(readyIPs(ctx, m, host, ns)) > 0
			}) {
				t.Fatalf("%s: service %s has no ready endpoint", m.name, host)
			}
		}
		if gwAddr[m.name] == "" {
			t.Fatalf("%s: %s has no LoadBalancer address", m.name, gw)
		}
	}

	for _, m := range ms {
		var problems []string
		waitCond(ctx, istiodRegistryTimeout, 500*time.Millisecond, func() bool {
			problems = problems[:0]
			var shardz map[string]map[string]struct {
				Shards map[string][]shardEndpoint
			}
			if err := get(m, "/debug/endpointShardz", &shardz); err != nil {
				problems = append(problems, err.Error())
				return false
			}
			// What each member holds now (a Pod may turn ready meanwhile).
			wantIPs := map[string]map[string][]string{}
			for _, r := range ms {
				wantIPs[r.name] = map[string][]string{}
				for host, ns := range services {
					wantIPs[r.name][host] = readyIPs(ctx, r, host, ns)
				}
			}
			for host, ns := range services {
				shards := shardz[host][ns].Shards
				for _, r := range ms {
					// One IstioEndpoint per address and service port: the addresses, once each.
					seen := map[string]bool{}
					var got []string
					for _, e := range shards["Kubernetes/"+r.name] {
						if e.Network != r.network || e.Locality.ClusterID != r.name {
							problems = append(problems, fmt.Sprintf("%s in %s: endpoint %v on network %q cluster %q", host, r.name, e.Addresses, e.Network, e.Locality.ClusterID))
						}
						for _, a := range e.Addresses {
							if !seen[a] {
								seen[a] = true
								got = append(got, a)
							}
						}
					}
					sort.Strings(got)
					if strings.Join(got, ",") != strings.Join(wantIPs[r.name][host], ",") {
						problems = append(problems, fmt.Sprintf("%s in %s: endpoints %v, want %v", host, r.name, got, wantIPs[r.name][host]))
					}
				}
			}
			var gws []networkGateway
			if err := get(m, "/debug/networkz", &gws); err != nil {
				problems = append(problems, err.Error())
				return false
			}
			for _, r := range ms {
				if r.name == m.name {
					continue
				}
				found := false
				for _, g := range gws {
					found = found || g.Network == r.network && g.Cluster == r.name && g.Addr == gwAddr[r.name] && g.Port == 15443
				}
				if !found {
					problems = append(problems, fmt.Sprintf("networkz lacks %s's gateway %s:15443 on %s: %+v", r.name, gwAddr[r.name], r.network, gws))
				}
			}
			return len(problems) == 0
		})
		if len(problems) > 0 {
			t.Errorf("%s istiod's registry: %s", m.name, strings.Join(problems, "; "))
			continue
		}
		t.Logf("%s istiod: every member's endpoints of %d service(s) under its cluster and network; the %d other networks' gateways at their east-west addresses",
			m.name, len(services), len(ms)-1)
	}
}

// readyIPs are the ready endpoints' addresses of Service host (name.namespace.svc...) in
// member m, sorted; nil when they cannot be read.
func readyIPs(ctx context.Context, m meshMember, host, ns string) []string {
	name, _, _ := strings.Cut(host, ".")
	slices, err := m.client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + name})
	if err != nil {
		return nil
	}
	var ips []string
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ips = append(ips, e.Addresses...)
			}
		}
	}
	sort.Strings(ips)
	return ips
}
