package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
)

// fakeWorld is an in-memory world for engine tests: an observer plus every driver, each
// call changing the world the way the real driver would, in the terms the planner reads.
// It exists to test the engine (observe, plan, walk, converge) before and beside the real
// drivers, which are tested against real protocols in their own packages.
type fakeWorld struct {
	mu     sync.Mutex
	w      world.World
	now    time.Time
	writes []string
	// fail makes the named step kinds (by "kind/cluster") fail with this error.
	fail map[string]error
	// karmadaServer is the server the Karmada kubeconfig step pointed at.
	karmadaServer string
	poolSeq       int
}

func newFakeWorld(now time.Time) *fakeWorld {
	return &fakeWorld{now: now, w: world.World{Clusters: map[string]*world.Cluster{}, Mesh: map[string]*world.MeshMember{}}}
}

// addExisting makes an existing (kubeconfig) cluster reachable, as the cluster observer would.
func (fw *fakeWorld) addExisting(name string) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	fw.w.Clusters[name] = &world.Cluster{Name: name, Reachable: true, APIEndpoint: "https://" + name + ".example:6443",
		KubeSystemUID: "uid-" + name, NodeIPs: []string{"192.0.2.10"}}
}

func (fw *fakeWorld) Observe(_ context.Context, _ *spec.Fleet, w *world.World) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	b, err := json.Marshal(fw.w)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, w); err != nil {
		return err
	}
	w.Now = fw.now
	return nil
}

func (fw *fakeWorld) Writes() []string {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return append([]string(nil), fw.writes...)
}

func (fw *fakeWorld) do(what string, f func() error) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if err := fw.fail[what]; err != nil {
		return err
	}
	fw.writes = append(fw.writes, what)
	return f()
}

func (fw *fakeWorld) drivers() executor.Drivers {
	return executor.Drivers{Clusters: fw, Karmada: fw, Mesh: fw, Weights: fw, Entry: fw}
}

// Apply applies a step the way the real drivers do: from its payload alone, never the fleet.
func (fw *fakeWorld) Apply(_ context.Context, s plan.Step) (plan.Outputs, error) {
	p := s.Payload
	switch s.Kind {
	case plan.KindCluster:
		if s.Action == plan.Delete {
			return nil, fw.do("delete-cluster/"+s.Cluster, func() error { delete(fw.w.Clusters, s.Cluster); return nil })
		}
		return nil, fw.do("cluster/"+s.Cluster, func() error { return fw.applyCluster(s.Cluster, p.Cluster) })
	case plan.KindKubeconfig:
		var out plan.Outputs
		err := fw.do("kubeconfig/"+s.Cluster, func() error {
			c := fw.w.Clusters[s.Cluster]
			if c == nil {
				return fmt.Errorf("no cluster %s", s.Cluster)
			}
			c.KubeconfigStored, c.Reachable = true, true
			c.APIEndpoint = fmt.Sprintf("https://%d.lke.example:443", c.LinodeID)
			c.KubeSystemUID = "uid-" + s.Cluster
			out = plan.Outputs{plan.OutputAPIEndpoint: c.APIEndpoint}
			return nil
		})
		return out, err
	case plan.KindNodeAddress:
		fw.mu.Lock()
		defer fw.mu.Unlock()
		ip := firstIP(fw.w.Clusters[s.Cluster])
		if ip == "" {
			return nil, fmt.Errorf("no Ready node in %s", s.Cluster)
		}
		return plan.Outputs{plan.OutputNodeIP: ip}, nil
	case plan.KindKarmadaRelease:
		return nil, fw.do("karmada-release", func() error {
			r := p.Release
			fw.release(s.Cluster, r.Namespace, r.Name, r.ChartName, r.Chart.Version, r.Values)
			return nil
		})
	case plan.KindKarmadaKubeconfig:
		return nil, fw.do("karmada-kubeconfig", func() error {
			if fw.w.Karmada == nil {
				fw.w.Karmada = &world.Karmada{}
			}
			fw.w.Karmada.Reachable = true
			fw.karmadaServer = p.KarmadaKubeconfig.Server.Value
			return nil
		})
	case plan.KindKarmadaReady:
		fw.mu.Lock()
		defer fw.mu.Unlock()
		if fw.w.Karmada == nil || !fw.w.Karmada.Reachable {
			return nil, fmt.Errorf("karmada is not reachable")
		}
		fw.w.Karmada.APIServiceAvailable = true // the fake's API becomes available once asked
		return nil, nil
	case plan.KindJoin:
		return nil, fw.do("join/"+s.Cluster, func() error { return fw.join(s.Cluster, p.Join) })
	case plan.KindMemberReady:
		fw.mu.Lock()
		defer fw.mu.Unlock()
		if km := fw.w.Karmada.Members[s.Cluster]; km == nil || km.Ready != "True" {
			return nil, fmt.Errorf("member %s is not Ready", s.Cluster)
		}
		return nil, nil
	case plan.KindUnjoin:
		return nil, fw.do("unjoin/"+s.Cluster, func() error {
			delete(fw.w.Karmada.Members, s.Cluster)
			if c := fw.w.Clusters[s.Cluster]; c != nil {
				c.PushJoin = nil
			}
			return nil
		})
	case plan.KindRootCA:
		return nil, fw.do("root-ca", func() error {
			fw.w.RootCA = &world.CertInfo{Subject: "O=Istio, CN=Root CA", NotAfter: fw.now.Add(p.RootCA.Validity.Duration), RootFingerprint: "sha256:root"}
			return nil
		})
	case plan.KindMeshNamespace:
		return nil, fw.do("mesh-namespace/"+s.Cluster, func() error {
			mm := fw.mesh(s.Cluster)
			mm.Namespace, mm.NetworkLabel = true, p.Namespace.Labels["topology.istio.io/network"]
			return nil
		})
	case plan.KindCACerts:
		return nil, fw.do("cacerts/"+s.Cluster, func() error {
			fw.mesh(s.Cluster).CACerts = &world.CertInfo{Subject: "O=Istio, CN=Intermediate CA, L=" + s.Cluster,
				NotAfter: fw.now.Add(p.CACerts.Validity.Duration), RootFingerprint: fw.w.RootCA.RootFingerprint}
			return nil
		})
	case plan.KindMeshRelease:
		return nil, fw.do("mesh-release/"+s.Cluster+"/"+s.Component, func() error {
			r := p.Release
			if s.Component == planner.ComponentIstiod {
				fw.mesh(s.Cluster).InjectorReady = true
			}
			fw.release(s.Cluster, r.Namespace, r.Name, r.ChartName, r.Chart.Version, r.Values)
			return nil
		})
	case plan.KindExpose:
		return nil, fw.do("expose/"+s.Cluster, func() error { fw.mesh(s.Cluster).Gateway = true; return nil })
	case plan.KindReaderToken:
		return nil, fw.do("reader-token/"+s.Cluster, func() error { fw.mesh(s.Cluster).ReaderToken = "sha256:token-" + s.Cluster; return nil })
	case plan.KindRemoteSecret:
		if s.Action == plan.Delete {
			return nil, fw.do("delete-remote-secret/"+s.Cluster+"/"+s.Peer, func() error { delete(fw.mesh(s.Cluster).RemoteSecrets, s.Peer); return nil })
		}
		return nil, fw.do("remote-secret/"+s.Cluster+"/"+s.Peer, func() error {
			mm := fw.mesh(s.Cluster)
			if mm.RemoteSecrets == nil {
				mm.RemoteSecrets = map[string]string{}
			}
			mm.RemoteSecrets[s.Peer] = world.RemoteSecretFingerprint(p.RemoteSecret.Endpoint.Value, fw.mesh(s.Peer).ReaderToken)
			return nil
		})
	case plan.KindMeshTeardown:
		return nil, fw.do("mesh-teardown/"+s.Cluster, func() error { delete(fw.w.Mesh, s.Cluster); return nil })
	case plan.KindManifests:
		return nil, fw.do("manifests/"+s.Workload, func() error { return fw.manifests(s.Workload, p.Manifests) })
	case plan.KindPolicy:
		if s.Action == plan.Delete {
			return nil, fw.do("delete-policy/"+s.Workload, func() error {
				delete(fw.w.Karmada.Policies, p.Policy.Namespace+"/"+p.Policy.Name)
				return nil
			})
		}
		return nil, fw.do("policy/"+s.Workload, func() error { return fw.policy(p.Policy) })
	case plan.KindDNSZone:
		return nil, fw.do("dns-zone", func() error {
			fw.entry().Zone = &world.DNSZone{ID: 1, Domain: p.DNSZone.Domain, Tags: p.DNSZone.Tags}
			return nil
		})
	case plan.KindIngressAddress:
		// The member's LoadBalancer gets an address of its own, as a cloud's would.
		fw.mu.Lock()
		defer fw.mu.Unlock()
		e := fw.entry()
		if e.Ingress == nil {
			e.Ingress = map[string][]string{}
		}
		ip := fmt.Sprintf("203.0.113.%d", 10+len(e.Ingress))
		if have := e.Ingress[s.Cluster]; len(have) > 0 {
			ip = have[0]
		}
		e.Ingress[s.Cluster] = []string{ip}
		return plan.Outputs{plan.OutputIngressIPs: ip}, nil
	case plan.KindDNSRecord:
		return nil, fw.do("dns-record/"+p.DNSRecord.Name, func() error {
			e := fw.entry()
			if e.Names == nil {
				e.Names = map[string]*world.DNSName{}
			}
			if s.Action == plan.Delete {
				delete(e.Names, p.DNSRecord.Name)
				return nil
			}
			nm := &world.DNSName{TXT: []world.DNSRecord{{ID: 1, Target: p.DNSRecord.Owner, TTL: p.DNSRecord.TTL}}}
			for i, v := range p.DNSRecord.Addresses {
				nm.A = append(nm.A, world.DNSRecord{ID: 10 + i, Target: v.Value, TTL: p.DNSRecord.TTL})
			}
			sort.Slice(nm.A, func(i, j int) bool { return nm.A[i].Target < nm.A[j].Target })
			e.Names[p.DNSRecord.Name] = nm
			return nil
		})
	}
	return nil, fmt.Errorf("fake world: unknown kind %s", s.Kind)
}

func (fw *fakeWorld) applyCluster(name string, cc *plan.ClusterChange) error {
	c := fw.w.Clusters[name]
	if c == nil {
		c = &world.Cluster{Name: name, LinodeID: len(fw.w.Clusters) + 100, Label: name, Status: "ready",
			Region: cc.Region, K8sVersion: cc.K8sVersion}
		fw.w.Clusters[name] = c
	}
	if cc.K8sVersion != "" {
		c.K8sVersion = cc.K8sVersion
	}
	if cc.HighAvailability {
		c.HighAvailability = true
	}
	if cc.Tags != nil {
		c.Tags = *cc.Tags
	}
	for _, u := range cc.UpdatePools {
		for i := range c.Pools {
			if c.Pools[i].ID != u.ID {
				continue
			}
			if u.Count != 0 {
				c.Pools[i].Count = u.Count
			}
			if a := u.Autoscaler; a != nil {
				c.Pools[i].Autoscaler = nil
				if a.Enabled {
					c.Pools[i].Autoscaler = &world.Scaler{Min: a.Min, Max: a.Max}
				}
			}
			if u.Tags != nil {
				c.Pools[i].Tags = *u.Tags
			}
		}
	}
	for _, p := range cc.CreatePools {
		pool := world.Pool{ID: c.LinodeID*10 + len(c.Pools) + fw.poolSeq, Type: p.Type, Count: p.Count, Tags: p.Tags}
		fw.poolSeq++
		if p.Autoscaler != nil {
			pool.Autoscaler = &world.Scaler{Min: p.Autoscaler.Min, Max: p.Autoscaler.Max}
		}
		c.Pools = append(c.Pools, pool)
	}
	for _, d := range cc.DeletePools {
		c.Pools = slices.DeleteFunc(c.Pools, func(p world.Pool) bool { return p.ID == d.ID })
	}
	c.NodeIPs = nil
	for i := range c.Pools {
		pool := &c.Pools[i]
		pool.Nodes = nil
		for n := 0; n < pool.Count; n++ {
			ip := fmt.Sprintf("198.51.%d.%d", c.LinodeID%250, i*10+n+1)
			pool.Nodes = append(pool.Nodes, world.Node{ID: fmt.Sprintf("%d-%d", pool.ID, n), InstanceID: pool.ID*10 + n, Status: "ready", PublicIPv4: ip})
			c.NodeIPs = append(c.NodeIPs, ip)
		}
	}
	sort.Strings(c.NodeIPs)
	return nil
}

func (fw *fakeWorld) release(cluster, ns, name, chart, version string, values map[string]any) {
	c := fw.w.Clusters[cluster]
	if c.Releases == nil {
		c.Releases = map[string]*world.Release{}
	}
	c.Releases[planner.ReleaseKey(ns, name)] = &world.Release{Name: name, Namespace: ns, Chart: chart,
		ChartVersion: version, Status: "deployed", Values: plan.DeepCopyValues(values)}
}

func firstIP(c *world.Cluster) string {
	if c == nil || len(c.NodeIPs) == 0 {
		return ""
	}
	return c.NodeIPs[0]
}

func (fw *fakeWorld) join(member string, j *plan.Join) error {
	k := fw.w.Karmada
	if k.Members == nil {
		k.Members = map[string]*world.KarmadaMember{}
	}
	km := &world.KarmadaMember{Name: member, SyncMode: string(j.Mode), APIEndpoint: j.APIEndpoint.Value,
		ID: fw.w.Clusters[member].KubeSystemUID, Ready: "True", Reason: "ClusterReady", ManagedBy: true}
	if j.Mode == spec.Push {
		km.SecretHash = "sha256:cred-" + member
		fw.w.Clusters[member].PushJoin = &world.PushJoin{Namespace: true, RBAC: true, TokensReady: true, CredentialHash: km.SecretHash}
		if j.RemoveAgent {
			delete(fw.w.Clusters[member].Releases, planner.ReleaseKey(planner.AgentNamespace, planner.AgentRelease))
		}
	} else {
		r := j.Agent
		fw.release(member, r.Namespace, r.Name, r.ChartName, r.Chart.Version, r.Values)
	}
	k.Members[member] = km
	return nil
}

func (fw *fakeWorld) mesh(member string) *world.MeshMember {
	m := fw.w.Mesh[member]
	if m == nil {
		m = &world.MeshMember{}
		fw.w.Mesh[member] = m
	}
	return m
}

func (fw *fakeWorld) manifests(workload string, m *plan.Manifests) error {
	k := fw.w.Karmada
	if k.ManifestHashes == nil {
		k.ManifestHashes = map[string]string{}
	}
	if k.Workloads == nil {
		k.Workloads = map[string]*world.Workload{}
	}
	k.ManifestHashes[workload] = m.Digest
	for _, raw := range m.Objects {
		var o struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Spec struct {
				Replicas *int32 `json:"replicas"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return err
		}
		if o.Spec.Replicas != nil {
			k.Workloads[o.Metadata.Namespace+"/"+o.Kind+"/"+o.Metadata.Name] = &world.Workload{UID: "uid-" + o.Metadata.Name, Replicas: *o.Spec.Replicas}
		}
	}
	return nil
}

func (fw *fakeWorld) policy(p *plan.Policy) error {
	k := fw.w.Karmada
	if k.Policies == nil {
		k.Policies = map[string]*world.Policy{}
	}
	wp := &world.Policy{Namespace: p.Namespace, Name: p.Name, ClusterScoped: p.ClusterScoped, Clusters: p.Clusters,
		Weights: p.Weights, Divided: p.Divided}
	for _, r := range p.Resources {
		wp.Resources = append(wp.Resources, world.ResourceRef{APIVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, LabelSelector: r.LabelSelector})
	}
	k.Policies[p.Namespace+"/"+p.Name] = wp
	for key, wl := range k.Workloads { // Karmada's scheduler divides what the policy selects
		for _, r := range p.Resources {
			if key == p.Namespace+"/"+r.Kind+"/"+r.Name {
				wl.Scheduled = planner.Divide(p.Weights, wl.Replicas, wl.UID)
			}
		}
	}
	return nil
}

// entry is the world's entry, made on first use (callers hold fw.mu).
func (fw *fakeWorld) entry() *world.Entry {
	if fw.w.Entry == nil {
		fw.w.Entry = &world.Entry{}
	}
	return fw.w.Entry
}
