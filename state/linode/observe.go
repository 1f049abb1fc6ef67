package linode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/linode/linodego"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/spec"
)

// Observe fills w.Clusters with every LKE cluster the fleet owns, those that left
// fleet.yaml included. An unchanged world costs two paginated lists (clusters by the
// fleet's tag, instances) and no write: node pools come from the store's cache, which is
// trusted only while nothing it depends on moved, and prices from theirs (a day).
func (d *Driver) Observe(ctx context.Context, fleet *spec.Fleet, w *world.World) error {
	// Prices first: a fleet planned from nothing costs something too.
	d.observePrices(ctx, w)
	// Every read is retried on its own (Config.ReadRetry): one 5xx does not fail the pass.
	var owned []linodego.LKECluster
	err := d.cfg.ReadRetry.Do(ctx, func(ctx context.Context) error {
		var err error
		owned, err = d.listOwned(ctx, fleet.Metadata.Name)
		return err
	})
	if err != nil {
		return err
	}
	if len(owned) == 0 {
		return nil
	}
	var instances []linodego.Instance
	err = d.cfg.ReadRetry.Do(ctx, func(ctx context.Context) error {
		var err error
		instances, err = d.api.ListInstances(ctx, &linodego.ListOptions{PageSize: listPageSize})
		return classify(ctx, "list instances", err)
	})
	if err != nil {
		return err
	}
	byCluster := make(map[int]map[int]*linodego.Instance)
	for i := range instances {
		in := &instances[i]
		if in.LKEClusterID == 0 {
			continue
		}
		if byCluster[in.LKEClusterID] == nil {
			byCluster[in.LKEClusterID] = make(map[int]*linodego.Instance)
		}
		byCluster[in.LKEClusterID][in.ID] = in
	}
	if w.Clusters == nil {
		w.Clusters = make(map[string]*world.Cluster)
	}
	seen := make(map[string]int)
	for i := range owned {
		c := &owned[i]
		name := clusterName(c)
		if first, dup := seen[name]; dup {
			// Never happens through this driver; say so rather than pick silently.
			d.log.Warn("two LKE clusters carry the same cluster tag; observing the older one",
				"cluster", name, "linodeID", c.ID, "kept", first)
			continue
		}
		seen[name] = c.ID
		var pools []world.Pool
		err := d.cfg.ReadRetry.Do(ctx, func(ctx context.Context) error {
			var err error
			pools, err = d.observePools(ctx, fleet, name, c, byCluster[c.ID])
			return err
		})
		if err != nil {
			return err
		}
		oc := w.Clusters[name]
		if oc == nil {
			oc = &world.Cluster{Name: name}
			w.Clusters[name] = oc
		}
		oc.LinodeID = c.ID
		oc.Label = c.Label
		oc.Region = c.Region
		oc.K8sVersion = c.K8sVersion
		oc.HighAvailability = c.ControlPlane.HighAvailability
		oc.Tags = userTags(c.Tags)
		oc.Status = string(c.Status)
		oc.Pools = pools
		oc.NodeIPs = readyNodeIPs(pools)
		oc.KubeconfigStored = d.kubeconfigFor(name, c.ID)
		if !oc.KubeconfigStored && hasReadyNode(pools) {
			// Unobserved is not absent: read what exists now rather than plan it as empty.
			copyTo := kubeconfigCopy(fleet, name)
			if d.cfg.ReadOnly {
				copyTo = ""
			}
			err := d.cfg.ReadRetry.Do(ctx, func(ctx context.Context) error { return d.fetchKubeconfig(ctx, name, c.ID, copyTo) })
			switch {
			case err == nil:
				oc.KubeconfigStored = true
			case errors.Is(err, errNotReady):
				// Not served yet: the kubeconfig step is planned and waits for it.
			default:
				w.MarkUnreadable(name, "kubeconfig: "+err.Error())
			}
		}
		oc.APIEndpoint = ""
		if oc.KubeconfigStored {
			if data, err := d.cfg.Store.ReadFile(kubeconfigName(name)); err == nil {
				oc.APIEndpoint = kubeconfigServer(data)
			}
		}
	}
	return nil
}

// poolCache is what "linode/pools-<name>.json" holds: the pools as last listed and what
// they were listed against.
type poolCache struct {
	ClusterID  int          `json:"clusterID"`
	Updated    string       `json:"updated"`
	SpecDigest string       `json:"specDigest"`
	Instances  []int        `json:"instances"`
	FetchedAt  time.Time    `json:"fetchedAt"`
	Pools      []world.Pool `json:"pools"`
	// Stale is written after a change through this driver: list again next time.
	Stale bool `json:"stale,omitempty"`
}

// kubeconfigCopy is where the kubeconfig step copies name's kubeconfig (planner's rule:
// kubeconfig-<name> in fleet.yaml's kubeconfigDir), "" when the fleet asks for no copy or
// name left the fleet.
func kubeconfigCopy(f *spec.Fleet, name string) string {
	if _, ok := specCluster(f, name); !ok || f.KubeconfigDir == "" {
		return ""
	}
	return filepath.Join(f.KubeconfigDir, "kubeconfig-"+name)
}

func poolCacheName(name string) string  { return "linode/pools-" + name + ".json" }
func kubeconfigName(name string) string { return "kubeconfigs/" + name }

// observePools returns the cluster's pools, listing them only when the cache cannot be
// trusted, and sets each node's readiness and address from this pass's instance list.
func (d *Driver) observePools(ctx context.Context, fleet *spec.Fleet, name string, c *linodego.LKECluster, instances map[int]*linodego.Instance) ([]world.Pool, error) {
	key := poolCache{
		ClusterID:  c.ID,
		Updated:    updatedString(c),
		SpecDigest: specDigest(fleet, name),
		Instances:  instanceIDs(instances),
	}
	pools, ok := d.cachedPools(name, key)
	if !ok {
		listed, err := d.api.ListLKENodePools(ctx, c.ID, &linodego.ListOptions{PageSize: listPageSize})
		if err != nil {
			return nil, classify(ctx, "list pools of cluster "+name, err)
		}
		pools = toPools(listed)
		key.FetchedAt = d.cfg.Now()
		key.Pools = pools
		if data, err := json.Marshal(key); err == nil {
			if err := d.cfg.Store.WriteFile(poolCacheName(name), data); err != nil {
				d.log.Warn("could not cache node pools", "cluster", name, "err", err)
			}
		}
	}
	// Readiness and addresses come from the instances of this pass, cached pools or not.
	out := make([]world.Pool, len(pools))
	for i, p := range pools {
		p.Nodes = slices.Clone(p.Nodes)
		for j := range p.Nodes {
			n := &p.Nodes[j]
			in := instances[n.InstanceID]
			if in == nil || in.Status != linodego.InstanceRunning {
				n.Status = string(linodego.LKELinodeNotReady)
				n.PublicIPv4 = ""
				continue
			}
			n.PublicIPv4 = publicIPv4(in)
		}
		out[i] = p
	}
	return out, nil
}

// cachedPools returns the cached pools when they were listed against the same cluster
// version, spec and node set, not too long ago, and had settled (all nodes there and
// ready): while a cluster converges the cache would only hide progress.
func (d *Driver) cachedPools(name string, key poolCache) ([]world.Pool, bool) {
	if !d.cfg.Store.Exists(poolCacheName(name)) {
		return nil, false
	}
	data, err := d.cfg.Store.ReadFile(poolCacheName(name))
	if err != nil {
		return nil, false
	}
	var pc poolCache
	if err := json.Unmarshal(data, &pc); err != nil || pc.Stale {
		return nil, false
	}
	if pc.ClusterID != key.ClusterID || pc.Updated != key.Updated || pc.SpecDigest != key.SpecDigest ||
		!slices.Equal(pc.Instances, key.Instances) {
		return nil, false
	}
	// `updated` has whole seconds: a change in the same second as the listed one would
	// not show. Trust only a listing made after that second was over.
	if pc.Updated != "" {
		u, err := time.Parse(time.RFC3339Nano, pc.Updated)
		if err != nil || pc.FetchedAt.Before(u.Truncate(time.Second).Add(time.Second)) {
			return nil, false
		}
	}
	age := d.cfg.Now().Sub(pc.FetchedAt)
	if age < 0 || age >= d.cfg.PoolCacheTTL {
		return nil, false
	}
	if len(pc.Pools) == 0 {
		return nil, false
	}
	for _, p := range pc.Pools {
		if len(p.Nodes) != p.Count {
			return nil, false
		}
		for _, n := range p.Nodes {
			if n.InstanceID == 0 || n.Status != string(linodego.LKELinodeReady) {
				return nil, false
			}
		}
	}
	return pc.Pools, true
}

// invalidatePools marks the cluster's cached pools stale after we changed them.
func (d *Driver) invalidatePools(name string) {
	data, _ := json.Marshal(poolCache{Stale: true})
	if err := d.cfg.Store.WriteFile(poolCacheName(name), data); err != nil {
		d.log.Warn("could not invalidate cached node pools", "cluster", name, "err", err)
	}
}

func toPools(listed []linodego.LKENodePool) []world.Pool {
	slices.SortFunc(listed, func(a, b linodego.LKENodePool) int { return a.ID - b.ID })
	pools := make([]world.Pool, 0, len(listed))
	for _, lp := range listed {
		p := world.Pool{ID: lp.ID, Type: lp.Type, Count: lp.Count, Tags: sortedSet(lp.Tags)}
		if lp.Autoscaler.Enabled {
			p.Autoscaler = &world.Scaler{Min: lp.Autoscaler.Min, Max: lp.Autoscaler.Max}
		}
		for _, n := range lp.Linodes {
			p.Nodes = append(p.Nodes, world.Node{ID: n.ID, InstanceID: n.InstanceID, Status: string(n.Status)})
		}
		pools = append(pools, p)
	}
	return pools
}

func updatedString(c *linodego.LKECluster) string {
	if c.Updated == nil {
		return ""
	}
	return c.Updated.UTC().Format(time.RFC3339Nano)
}

func instanceIDs(m map[int]*linodego.Instance) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// specDigest fingerprints what the fleet wants of the cluster ("" when it left the fleet).
func specDigest(f *spec.Fleet, name string) string {
	sc, ok := specCluster(f, name)
	if !ok {
		return ""
	}
	data, err := json.Marshal(sc)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// publicIPv4 is the instance's first IPv4 outside the private ranges.
func publicIPv4(in *linodego.Instance) string {
	for _, ip := range in.IPv4 {
		if ip == nil {
			continue
		}
		if v4 := ip.To4(); v4 != nil && !v4.IsPrivate() {
			return v4.String()
		}
	}
	return ""
}

// hasReadyNode is the kubeconfig step's condition for storing a kubeconfig.
func hasReadyNode(pools []world.Pool) bool {
	for _, p := range pools {
		for _, n := range p.Nodes {
			if n.Status == string(linodego.LKELinodeReady) {
				return true
			}
		}
	}
	return false
}

func readyNodeIPs(pools []world.Pool) []string {
	var ips []string
	for _, p := range pools {
		for _, n := range p.Nodes {
			if n.Status == string(linodego.LKELinodeReady) && n.PublicIPv4 != "" {
				ips = append(ips, n.PublicIPv4)
			}
		}
	}
	return sortedSet(ips)
}

// kubeconfigServer is the API URL of the kubeconfig's current context (or its only cluster).
func kubeconfigServer(data []byte) string {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return ""
	}
	if ctx, ok := cfg.Contexts[cfg.CurrentContext]; ok {
		if cl, ok := cfg.Clusters[ctx.Cluster]; ok {
			return cl.Server
		}
	}
	if len(cfg.Clusters) == 1 {
		for _, cl := range cfg.Clusters {
			return cl.Server
		}
	}
	return ""
}
