package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

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
	return executor.Drivers{Clusters: fw, Karmada: fw, Mesh: fw, Weights: fw}
}

func specCluster(f *spec.Fleet, name string) spec.Cluster {
	if f.Manager.Name == name {
		return f.Manager.Cluster
	}
	m, _ := f.Member(name)
	return m.Cluster
}

func (fw *fakeWorld) ApplyCluster(_ context.Context, f *spec.Fleet, name string) error {
	return fw.do("cluster/"+name, func() error {
		sc := specCluster(f, name)
		c := fw.w.Clusters[name]
		if c == nil {
			c = &world.Cluster{Name: name, LinodeID: len(fw.w.Clusters) + 100, Label: name, Status: "ready"}
			fw.w.Clusters[name] = c
		}
		c.Region, c.K8sVersion, c.Tags, c.HighAvailability = sc.Region, sc.K8sVersion, sc.Tags, sc.HighAvailability
		c.Pools, c.NodeIPs = nil, nil
		for i, p := range sc.Pools {
			pool := world.Pool{ID: c.LinodeID*10 + i, Type: p.Type, Count: p.Count, Tags: p.Tags}
			if p.Autoscaler != nil {
				pool.Autoscaler = &world.Scaler{Min: p.Autoscaler.Min, Max: p.Autoscaler.Max}
			}
			for n := 0; n < p.Count; n++ {
				ip := fmt.Sprintf("198.51.%d.%d", c.LinodeID%250, i*10+n+1)
				pool.Nodes = append(pool.Nodes, world.Node{ID: fmt.Sprintf("%d-%d", pool.ID, n), InstanceID: pool.ID*10 + n, Status: "ready", PublicIPv4: ip})
				c.NodeIPs = append(c.NodeIPs, ip)
			}
			c.Pools = append(c.Pools, pool)
		}
		sort.Strings(c.NodeIPs)
		return nil
	})
}

func (fw *fakeWorld) DeleteCluster(_ context.Context, _ *spec.Fleet, name string) error {
	return fw.do("delete-cluster/"+name, func() error { delete(fw.w.Clusters, name); return nil })
}

func (fw *fakeWorld) StoreKubeconfig(_ context.Context, _ *spec.Fleet, name string) error {
	return fw.do("kubeconfig/"+name, func() error {
		c := fw.w.Clusters[name]
		if c == nil {
			return fmt.Errorf("no cluster %s", name)
		}
		c.KubeconfigStored, c.Reachable = true, true
		c.APIEndpoint = fmt.Sprintf("https://%d.lke.example:443", c.LinodeID)
		c.KubeSystemUID = "uid-" + name
		return nil
	})
}

func (fw *fakeWorld) release(cluster, ns, name, chart, version string, values map[string]any) {
	c := fw.w.Clusters[cluster]
	if c.Releases == nil {
		c.Releases = map[string]*world.Release{}
	}
	c.Releases[planner.ReleaseKey(ns, name)] = &world.Release{Name: name, Namespace: ns, Chart: chart,
		ChartVersion: version, Status: "deployed", Values: values}
}

func firstIP(c *world.Cluster) string {
	if c == nil || len(c.NodeIPs) == 0 {
		return ""
	}
	return c.NodeIPs[0]
}

func (fw *fakeWorld) InstallControlPlane(_ context.Context, f *spec.Fleet) error {
	return fw.do("karmada-release", func() error {
		name, ns := planner.KarmadaRelease(f)
		fw.release(f.Manager.Name, ns, name, "karmada", f.Manager.Karmada.Chart.Version,
			planner.KarmadaValues(f, firstIP(fw.w.Clusters[f.Manager.Name])))
		return nil
	})
}

func (fw *fakeWorld) StoreKarmadaKubeconfig(_ context.Context, _ *spec.Fleet) error {
	return fw.do("karmada-kubeconfig", func() error {
		if fw.w.Karmada == nil {
			fw.w.Karmada = &world.Karmada{}
		}
		fw.w.Karmada.Reachable = true
		return nil
	})
}

func (fw *fakeWorld) WaitControlPlaneReady(_ context.Context, _ *spec.Fleet) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.w.Karmada == nil || !fw.w.Karmada.Reachable {
		return fmt.Errorf("karmada is not reachable")
	}
	fw.w.Karmada.APIServiceAvailable = true // the fake's API becomes available once asked
	return nil
}

func (fw *fakeWorld) endpoint(f *spec.Fleet, member string) string {
	if m, ok := f.Member(member); ok && m.APIEndpoint != "" {
		return m.APIEndpoint
	}
	return fw.w.Clusters[member].APIEndpoint
}

func (fw *fakeWorld) Join(_ context.Context, f *spec.Fleet, member string) error {
	return fw.do("join/"+member, func() error {
		m, _ := f.Member(member)
		mode := f.MemberJoinMode(*m)
		k := fw.w.Karmada
		if k.Members == nil {
			k.Members = map[string]*world.KarmadaMember{}
		}
		km := &world.KarmadaMember{Name: member, SyncMode: string(mode), APIEndpoint: fw.endpoint(f, member),
			ID: fw.w.Clusters[member].KubeSystemUID, Ready: "True", Reason: "ClusterReady"}
		if mode == spec.Push {
			km.SecretHash = "sha256:cred-" + member
			fw.w.Clusters[member].PushJoin = &world.PushJoin{Namespace: true, RBAC: true, TokensReady: true, CredentialHash: km.SecretHash}
		} else {
			fw.release(member, planner.AgentNamespace, planner.AgentRelease, "karmada", f.Manager.Karmada.Chart.Version,
				planner.AgentValues(f, member, fw.endpoint(f, member), firstIP(fw.w.Clusters[f.Manager.Name])))
		}
		k.Members[member] = km
		return nil
	})
}

func (fw *fakeWorld) WaitMemberReady(_ context.Context, _ *spec.Fleet, member string) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if km := fw.w.Karmada.Members[member]; km == nil || km.Ready != "True" {
		return fmt.Errorf("member %s is not Ready", member)
	}
	return nil
}

func (fw *fakeWorld) Unjoin(_ context.Context, _ *spec.Fleet, member string) error {
	return fw.do("unjoin/"+member, func() error {
		delete(fw.w.Karmada.Members, member)
		if c := fw.w.Clusters[member]; c != nil {
			c.PushJoin = nil
		}
		return nil
	})
}

func (fw *fakeWorld) mesh(member string) *world.MeshMember {
	m := fw.w.Mesh[member]
	if m == nil {
		m = &world.MeshMember{}
		fw.w.Mesh[member] = m
	}
	return m
}

func (fw *fakeWorld) EnsureRootCA(_ context.Context, _ *spec.Fleet) error {
	return fw.do("root-ca", func() error {
		fw.w.RootCA = &world.CertInfo{Subject: "O=Istio, CN=Root CA", NotAfter: fw.now.AddDate(10, 0, 0), RootFingerprint: "sha256:root"}
		return nil
	})
}

func (fw *fakeWorld) EnsureNamespace(_ context.Context, f *spec.Fleet, member string) error {
	return fw.do("mesh-namespace/"+member, func() error {
		m, _ := f.Member(member)
		mm := fw.mesh(member)
		mm.Namespace, mm.NetworkLabel = true, m.Network
		return nil
	})
}

func (fw *fakeWorld) EnsureCACerts(_ context.Context, f *spec.Fleet, member string) error {
	return fw.do("cacerts/"+member, func() error {
		fw.mesh(member).CACerts = &world.CertInfo{Subject: "O=Istio, CN=Intermediate CA, L=" + member,
			NotAfter: fw.now.Add(f.Mesh.CA.IntermediateValidity.Duration), RootFingerprint: fw.w.RootCA.RootFingerprint}
		return nil
	})
}

func (fw *fakeWorld) EnsureRelease(_ context.Context, f *spec.Fleet, member, component string) error {
	return fw.do("mesh-release/"+member+"/"+component, func() error {
		var values map[string]any
		chart := component
		switch component {
		case planner.ComponentBase:
			values = planner.IstioBaseValues(f, member)
		case planner.ComponentIstiod:
			values = planner.IstiodValues(f, member)
			fw.mesh(member).InjectorReady = true
		case planner.ComponentEastWest:
			values, chart = planner.EastWestValues(f, member), "gateway"
		}
		version := f.Mesh.Version
		if f.Mesh.Chart.Version != "" {
			version = f.Mesh.Chart.Version
		}
		fw.release(member, planner.MeshNamespace, planner.MeshReleaseName(component), chart, version, values)
		return nil
	})
}

func (fw *fakeWorld) EnsureGateway(_ context.Context, _ *spec.Fleet, member string) error {
	return fw.do("expose/"+member, func() error { fw.mesh(member).Gateway = true; return nil })
}

func (fw *fakeWorld) EnsureReaderToken(_ context.Context, _ *spec.Fleet, member string) error {
	return fw.do("reader-token/"+member, func() error { fw.mesh(member).ReaderToken = "sha256:token-" + member; return nil })
}

func (fw *fakeWorld) EnsureRemoteSecret(_ context.Context, f *spec.Fleet, in, from string) error {
	return fw.do("remote-secret/"+in+"/"+from, func() error {
		mm := fw.mesh(in)
		if mm.RemoteSecrets == nil {
			mm.RemoteSecrets = map[string]string{}
		}
		mm.RemoteSecrets[from] = world.RemoteSecretFingerprint(fw.endpoint(f, from), fw.mesh(from).ReaderToken)
		return nil
	})
}

func (fw *fakeWorld) DeleteRemoteSecret(_ context.Context, _ *spec.Fleet, in, from string) error {
	return fw.do("delete-remote-secret/"+in+"/"+from, func() error { delete(fw.mesh(in).RemoteSecrets, from); return nil })
}

func (fw *fakeWorld) Teardown(_ context.Context, _ *spec.Fleet, member string) error {
	return fw.do("mesh-teardown/"+member, func() error { delete(fw.w.Mesh, member); return nil })
}

func (fw *fakeWorld) ApplyManifests(_ context.Context, f *spec.Fleet, workload string) error {
	return fw.do("manifests/"+workload, func() error {
		k := fw.w.Karmada
		if k.ManifestHashes == nil {
			k.ManifestHashes = map[string]string{}
		}
		if k.Workloads == nil {
			k.Workloads = map[string]*world.Workload{}
		}
		for _, w := range f.Workloads {
			if w.Name != workload {
				continue
			}
			k.ManifestHashes[workload] = w.ManifestDigest
			for _, o := range w.Objects {
				if o.Replicas != nil {
					k.Workloads[o.Namespace+"/"+o.Kind+"/"+o.Name] = &world.Workload{UID: "uid-" + o.Name, Replicas: *o.Replicas}
				}
			}
		}
		return nil
	})
}

func (fw *fakeWorld) ApplyPolicy(_ context.Context, f *spec.Fleet, workload string) error {
	return fw.do("policy/"+workload, func() error {
		k := fw.w.Karmada
		if k.Policies == nil {
			k.Policies = map[string]*world.Policy{}
		}
		for i := range f.Workloads {
			w := &f.Workloads[i]
			if w.Name != workload {
				continue
			}
			p := planner.DesiredPolicy(f, w)
			k.Policies[p.Namespace+"/"+p.Name] = p
			for key, wl := range k.Workloads { // Karmada's scheduler divides what the policy selects
				for _, r := range w.Resources {
					if key == w.Namespace+"/"+r.Kind+"/"+r.Name {
						wl.Scheduled = planner.Divide(w.Weights, wl.Replicas, wl.UID)
					}
				}
			}
		}
		return nil
	})
}

func (fw *fakeWorld) DeletePolicy(_ context.Context, _ *spec.Fleet, s planner.Step) error {
	return fw.do("delete-policy/"+s.Workload, func() error {
		delete(fw.w.Karmada.Policies, s.Namespace+"/"+s.Workload)
		return nil
	})
}
