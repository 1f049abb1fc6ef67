package labworld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

// ClusterPlayer plays, inside a lab cluster, what the kube-controller-manager and the Kubelet
// stand-in do not: the karmadalab Player runs the Karmada chart's Jobs and processes. Serve
// runs until ctx ends.
type ClusterPlayer interface {
	Serve(ctx context.Context, c LabCluster) error
}

// LabCluster is a running lab cluster as the players see it.
type LabCluster struct {
	// Name is the cluster's name in the lab, lke<ID>.
	Name string
	// Address is its loopback address: the API server's and every node's (and every load
	// balancer's where no CloudController runs; with one, each NodeBalancer has its own).
	Address    string
	RESTConfig *rest.Config
	// APIServerPID is its kube-apiserver's process id (tests stop it with SIGSTOP).
	APIServerPID int
	// Dir is the cluster's directory (PKI, kubeconfigs, logs; its istiod's files: ReadIstiod).
	Dir string
}

// AddressRange is a range of loopback addresses, First to Last included.
type AddressRange struct {
	First, Last net.IP
}

// DefaultAddresses are the loopback addresses of lab clusters started by `reconcile-lab`.
var DefaultAddresses = AddressRange{First: net.IPv4(127, 0, 0, 100), Last: net.IPv4(127, 0, 0, 199)}

// Backend makes the clusters of the lab's Linode API real: each is a lab cluster (its own
// kube-apiserver and kube-controller-manager, sharing one etcd) on its own loopback address,
// with one Ready Node per LKE node, every Node's ExternalIP and InternalIP being that address,
// and PodRangeOf that address as its pod network. It runs the Kubelet stand-in and the Player
// in each.
type Backend struct {
	// Dir holds one directory per cluster (PKI, kubeconfigs, logs).
	Dir       string
	Etcd      *cluster.Etcd
	Bins      cluster.Binaries
	Addresses AddressRange
	// Player is optional.
	Player ClusterPlayer
	// Istiod, when set, is pilot-discovery: an Istiod runs istiod in each cluster whose
	// istio-system/istiod Deployment exists.
	Istiod string
	// NodeBalancers, when set, has a CloudController play LKE's CCM in each cluster (and the
	// Kubelet stand-in leaves LoadBalancer Services to it): each NodeBalancer gets a free
	// address of Addresses, and its frontend answers there (Frontends). An address stays held
	// while its NodeBalancer exists, also after its cluster is deleted.
	NodeBalancers NodeBalancerAPI
	Log           *slog.Logger
	// Started is called after each process the backend starts, so the lab can record PIDs.
	Started func()

	mu       sync.Mutex
	clusters map[int]*labCluster
	used     map[string]bool
}

type labCluster struct {
	c       *cluster.Cluster
	address string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// network is the cluster's pod network (the API server's egress to Pods).
	network *PodNetwork
}

var _ linodeapi.Backend = (*Backend)(nil)

func (b *Backend) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

// Provision starts the cluster's lab cluster on the next free address and returns its admin
// kubeconfig (which verifies the server against the cluster's CA) and that address as the
// nodes' IP. Provisioning an already provisioned id returns the running cluster again.
func (b *Backend) Provision(ctx context.Context, info linodeapi.ClusterInfo) (linodeapi.Provisioned, error) {
	b.mu.Lock()
	if b.clusters == nil {
		b.clusters, b.used = map[int]*labCluster{}, map[string]bool{}
	}
	if lc, ok := b.clusters[info.ID]; ok {
		b.mu.Unlock()
		return provisioned(lc), nil
	}
	addr, err := b.nextAddressLocked()
	if err != nil {
		b.mu.Unlock()
		return linodeapi.Provisioned{}, err
	}
	b.used[addr] = true
	b.mu.Unlock()

	lc, err := b.start(ctx, info, addr)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		delete(b.used, addr)
		return linodeapi.Provisioned{}, err
	}
	b.clusters[info.ID] = lc
	return provisioned(lc), nil
}

func provisioned(lc *labCluster) linodeapi.Provisioned {
	return linodeapi.Provisioned{
		Kubeconfig:   lc.c.Kubeconfig(),
		NodeIPs:      []string{lc.address},
		APIEndpoints: []string{lc.c.Endpoint()},
	}
}

// nextAddressLocked is the lowest free address of the range, for a cluster.
func (b *Backend) nextAddressLocked() (string, error) { return b.freeAddressLocked(false) }

// freeAddressLocked is the lowest (or, fromTop, the highest) address of the range that neither
// a cluster nor a NodeBalancer holds. Load balancers take theirs from the top, so clusters
// get the addresses they had before load balancers had any.
func (b *Backend) freeAddressLocked(fromTop bool) (string, error) {
	r := b.Addresses
	if r.First == nil {
		r = DefaultAddresses
	}
	first, last := r.First.To4(), r.Last.To4()
	if first == nil || last == nil || first[0] != 127 || last[0] != 127 {
		return "", fmt.Errorf("lab addresses %v-%v: not IPv4 loopback", r.First, r.Last)
	}
	held := map[string]bool{}
	if b.NodeBalancers != nil {
		for _, nb := range b.NodeBalancers.NodeBalancers() {
			held[nb.IPv4] = true
		}
	}
	lo, hi := ipUint(first), ipUint(last)
	for i := uint64(0); lo <= hi && i <= uint64(hi-lo); i++ {
		ip := lo + uint32(i)
		if fromTop {
			ip = hi - uint32(i)
		}
		a := uintIP(ip).String()
		if !b.used[a] && !held[a] {
			return a, nil
		}
	}
	return "", fmt.Errorf("no free lab address in %v-%v: %d clusters run, %d load balancers hold one",
		r.First, r.Last, len(b.used), len(held))
}

// loopbackNodeBalancers gives every NodeBalancer its CloudController creates a free address of
// the lab's range (from the top), so its frontend can listen on this machine. With the range
// full, a NodeBalancer gets its region's pool address, which nothing answers on.
type loopbackNodeBalancers struct{ b *Backend }

func (l loopbackNodeBalancers) CreateNodeBalancer(spec linodeapi.NodeBalancerSpec) (linodeapi.NodeBalancer, error) {
	l.b.mu.Lock()
	defer l.b.mu.Unlock() // held until created: another cluster's controller must not take the same address
	addr, err := l.b.freeAddressLocked(true)
	if err != nil {
		l.b.log().Warn("NodeBalancer without a lab address: nothing will answer on it", "err", err)
	} else {
		spec.IPv4 = addr
	}
	return l.b.NodeBalancers.CreateNodeBalancer(spec)
}

func (l loopbackNodeBalancers) DeleteNodeBalancer(id int) bool {
	return l.b.NodeBalancers.DeleteNodeBalancer(id)
}

func (l loopbackNodeBalancers) NodeBalancers() []linodeapi.NodeBalancer {
	return l.b.NodeBalancers.NodeBalancers()
}

func ipUint(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}

func uintIP(v uint32) net.IP { return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }

func clusterName(id int) string { return fmt.Sprintf("lke%d", id) }

func (b *Backend) start(ctx context.Context, info linodeapi.ClusterInfo, addr string) (*labCluster, error) {
	name := clusterName(info.ID)
	nodes := max(info.Nodes, 1)
	specs := make([]cluster.NodeSpec, nodes)
	for i := range specs {
		specs[i] = cluster.NodeSpec{
			Name:       fmt.Sprintf("%s-node-%d", name, i+1),
			ExternalIP: addr,
			Labels: map[string]string{
				"topology.kubernetes.io/region": info.Region,
				"lke.linode.com/cluster-id":     fmt.Sprint(info.ID),
			},
		}
	}
	dir := filepath.Join(b.Dir, name)
	// A cluster id is never reused within one lab; a directory left by an earlier lab goes.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	t0 := time.Now()
	network, err := StartPodNetwork(dir, b.log().With("cluster", name))
	if err != nil {
		return nil, err
	}
	c, err := cluster.StartCluster(ctx, cluster.ClusterOptions{
		Name:                       name,
		Dir:                        dir,
		Address:                    addr,
		Etcd:                       b.Etcd,
		Bins:                       b.Bins,
		Nodes:                      specs,
		ExtraControllerManagerArgs: ControllerManagerArgs(),
		PodNetworkProxy:            network.Socket(),
	})
	if b.Started != nil {
		b.Started()
	}
	if err != nil {
		_ = network.Close()
		return nil, err
	}
	b.log().Info("lab cluster started", "cluster", name, "label", info.Label, "address", addr,
		"endpoint", c.Endpoint(), "nodes", nodes, "duration", time.Since(t0).Round(time.Millisecond))

	client, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		_ = c.Stop()
		_ = network.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	lc := &labCluster{c: c, address: addr, cancel: cancel, network: network}
	lc.wg.Add(1)
	go func() {
		defer lc.wg.Done()
		k := Kubelet{Client: client, Address: addr, PodRange: PodRangeOf(addr), Network: network, Log: b.log().With("cluster", name)}
		if b.Istiod != "" {
			k.Runs = IsIstiodPod
		}
		if b.NodeBalancers != nil {
			k.Address = "" // the CloudController writes LoadBalancer statuses
		}
		if err := k.Run(runCtx); err != nil && runCtx.Err() == nil {
			b.log().Error("kubelet stand-in stopped", "cluster", name, "err", err)
		}
	}()
	if b.NodeBalancers != nil {
		lc.wg.Add(1)
		go func() {
			defer lc.wg.Done()
			cc := CloudController{Client: client, NodeBalancers: loopbackNodeBalancers{b}, ClusterID: info.ID, Region: info.Region,
				Answer: true, Log: b.log().With("cluster", name)}
			if err := cc.Run(runCtx); err != nil && runCtx.Err() == nil {
				b.log().Error("cloud controller stopped", "cluster", name, "err", err)
			}
		}()
	}
	if b.Istiod != "" {
		lc.wg.Add(1)
		go func() {
			defer lc.wg.Done()
			is := Istiod{Client: client, RESTConfig: c.RESTConfig(), Address: addr, Dir: dir, Bin: b.Istiod, Network: network,
				Started: b.Started, Log: b.log().With("cluster", name)}
			if err := is.Run(runCtx); err != nil && runCtx.Err() == nil {
				b.log().Error("istiod player stopped", "cluster", name, "err", err)
			}
		}()
	}
	if b.Player != nil {
		lc.wg.Add(1)
		go func() {
			defer lc.wg.Done()
			err := b.Player.Serve(runCtx, LabCluster{Name: name, Address: addr, RESTConfig: c.RESTConfig(), Dir: dir})
			if err != nil && runCtx.Err() == nil {
				b.log().Error("player stopped", "cluster", name, "err", err)
			}
		}()
	}
	return lc, nil
}

// Deprovision stops the cluster's players and processes and removes its directory.
func (b *Backend) Deprovision(_ context.Context, clusterID int) error {
	b.mu.Lock()
	lc, ok := b.clusters[clusterID]
	delete(b.clusters, clusterID)
	b.mu.Unlock()
	if !ok {
		return nil
	}
	err := lc.stop()
	if rmErr := os.RemoveAll(lc.c.Dir()); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	b.mu.Lock()
	delete(b.used, lc.address)
	b.mu.Unlock()
	b.log().Info("lab cluster stopped", "cluster", lc.c.Name(), "address", lc.address)
	return err
}

func (lc *labCluster) stop() error {
	lc.cancel()
	lc.wg.Wait()
	err := lc.c.Stop()
	return errors.Join(err, lc.network.Close())
}

// Close stops every cluster still running.
func (b *Backend) Close() error {
	b.mu.Lock()
	ids := make([]int, 0, len(b.clusters))
	for id := range b.clusters {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, b.Deprovision(context.Background(), id))
	}
	return errors.Join(errs...)
}

// Clusters lists the running lab clusters.
func (b *Backend) Clusters() []LabCluster {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]LabCluster, 0, len(b.clusters))
	for _, lc := range b.clusters {
		out = append(out, LabCluster{Name: lc.c.Name(), Address: lc.address, RESTConfig: lc.c.RESTConfig(),
			APIServerPID: lc.c.APIServerPID(), Dir: lc.c.Dir()})
	}
	return out
}
