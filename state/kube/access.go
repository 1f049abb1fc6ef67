// Package kube reaches the fleet's clusters and the Karmada API: where their kubeconfigs
// come from, and the observer that says which clusters answer.
package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/spec"
)

// Files is the part of the state store this package reads and writes.
type Files interface {
	WriteFile(name string, data []byte) error
	ReadFile(name string) ([]byte, error)
	Exists(name string) bool
}

// Store names of the kubeconfigs reconcile keeps.
const KarmadaKubeconfig = "karmada/kubeconfig"

// ClusterKubeconfig is where the kubeconfig of an LKE cluster is stored.
func ClusterKubeconfig(name string) string { return "kubeconfigs/" + name }

// ExistingKubeconfig is where the state keeps a copy of an existing (kubeconfig) cluster's
// kubeconfig, flattened to its context: after the cluster leaves fleet.yaml, its file there is
// no longer named, and this copy is what reaches it until its teardown is done.
func ExistingKubeconfig(name string) string { return "existing/" + name }

// existingPrefix is the store directory of ExistingKubeconfig.
const existingPrefix = "existing/"

// ErrNoKubeconfig means the cluster has no kubeconfig yet (an LKE cluster being created).
var ErrNoKubeconfig = errors.New("no kubeconfig yet")

// Access finds the kubeconfig of every cluster of a fleet: LKE clusters' in the store,
// existing clusters' in the files Existing names (see For).
type Access struct {
	Store Files
	// Existing are the kubeconfigs of the existing (not LKE) clusters, by fleet name.
	Existing map[string]spec.Kubeconfig
	// Timeout bounds each request made through the configs it returns (default 30s).
	Timeout time.Duration
	// WrapTransport, when set, wraps the transport of every config it returns (tests count
	// requests with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// For is a copy of a that reaches the existing clusters of fleet f (and only those).
func (a Access) For(f *spec.Fleet) Access {
	a.Existing = map[string]spec.Kubeconfig{}
	for _, name := range f.ClusterNames() {
		if c, ok := clusterSpec(f, name); ok && c.Kubeconfig != nil {
			a.Existing[name] = *c.Kubeconfig
		}
	}
	return a
}

// Kubeconfig returns the raw kubeconfig of a cluster: the file given in fleet.yaml (flattened
// to its context) for an existing cluster, else the stored one (LKE clusters, and clusters
// that left the fleet).
func (a Access) Kubeconfig(name string) ([]byte, error) {
	c := spec.Cluster{}
	if k, ok := a.Existing[name]; ok {
		c.Kubeconfig = &k
	}
	if c.Kubeconfig != nil {
		cfg, err := clientcmd.LoadFromFile(c.Kubeconfig.Path)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: kubeconfig %s: %w", name, c.Kubeconfig.Path, err)
		}
		if c.Kubeconfig.Context != "" {
			if _, ok := cfg.Contexts[c.Kubeconfig.Context]; !ok {
				return nil, fmt.Errorf("cluster %s: kubeconfig %s has no context %q", name, c.Kubeconfig.Path, c.Kubeconfig.Context)
			}
			cfg.CurrentContext = c.Kubeconfig.Context
		}
		// Keep only that context, with certificate files inlined, so the result carries no
		// other cluster's credentials and stands on its own.
		if err := clientcmdapi.MinifyConfig(cfg); err != nil {
			return nil, fmt.Errorf("cluster %s: kubeconfig %s: %w", name, c.Kubeconfig.Path, err)
		}
		if err := clientcmdapi.FlattenConfig(cfg); err != nil {
			return nil, fmt.Errorf("cluster %s: kubeconfig %s: %w", name, c.Kubeconfig.Path, err)
		}
		return clientcmd.Write(*cfg)
	}
	data, err := a.Store.ReadFile(ClusterKubeconfig(name))
	if errors.Is(err, fs.ErrNotExist) {
		data, err = a.Store.ReadFile(ExistingKubeconfig(name))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cluster %s: %w", name, ErrNoKubeconfig)
	}
	return data, err
}

// lister is the part of a state backend that names its files.
type lister interface{ List() ([]string, error) }

// remover is the part of a state backend that deletes files.
type remover interface{ Remove(name string) error }

// ForgetExisting removes the copy of an existing cluster's kubeconfig (its teardown is done).
func ForgetExisting(store Files, name string) error {
	r, ok := store.(remover)
	if !ok {
		return nil
	}
	return r.Remove(ExistingKubeconfig(name))
}

// RESTConfig is Kubeconfig as a client config.
func (a Access) RESTConfig(name string) (*rest.Config, error) {
	data, err := a.Kubeconfig(name)
	if err != nil {
		return nil, err
	}
	return a.restConfig(data, "cluster "+name)
}

// KarmadaRESTConfig is the client config of the Karmada API (stored by the manager's steps).
func (a Access) KarmadaRESTConfig() (*rest.Config, error) {
	data, err := a.Store.ReadFile(KarmadaKubeconfig)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("karmada: %w", ErrNoKubeconfig)
	}
	if err != nil {
		return nil, err
	}
	return a.restConfig(data, "karmada")
}

func (a Access) restConfig(data []byte, what string) (*rest.Config, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: kubeconfig: %w", what, err)
	}
	cfg.Timeout = a.Timeout
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.WrapTransport = a.WrapTransport
	cfg.UserAgent = "reconcile"
	return cfg, nil
}

func clusterSpec(f *spec.Fleet, name string) (spec.Cluster, bool) {
	if f.Manager.Name == name {
		return f.Manager.Cluster, true
	}
	if m, ok := f.Member(name); ok {
		return m.Cluster, true
	}
	return spec.Cluster{}, false
}

// Observer fills, for every cluster of the fleet whose kubeconfig is at hand, whether it
// answers, its kube-system UID, its API endpoint and (for existing clusters) node addresses.
type Observer struct {
	Access Access
	// Probe bounds the reachability check of one cluster (default 5s).
	Probe time.Duration
}

// Observe implements state.Observer.
func (o Observer) Observe(ctx context.Context, f *spec.Fleet, w *world.World) error {
	if w.Clusters == nil {
		w.Clusters = map[string]*world.Cluster{}
	}
	names := f.ClusterNames()
	for n := range w.Clusters { // clusters that left the fleet but still exist
		if _, ok := clusterSpec(f, n); !ok {
			names = append(names, n)
		}
	}
	// Existing clusters that left the fleet, reached through the copy the state keeps.
	left := map[string]bool{}
	if l, ok := o.Access.Store.(lister); ok {
		files, err := l.List()
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		for _, file := range files {
			n, ok := strings.CutPrefix(file, existingPrefix)
			if _, inFleet := clusterSpec(f, n); ok && !inFleet && w.Clusters[n] == nil {
				names = append(names, n)
				left[n] = true
			}
		}
	}
	for _, name := range names {
		c, ok := clusterSpec(f, name)
		oc := w.Clusters[name]
		if oc == nil {
			if ok && c.IsLKE() {
				continue // not created yet: nothing to reach
			}
			oc = &world.Cluster{Name: name}
			w.Clusters[name] = oc
		}
		existing := ok && !c.IsLKE() || left[name]
		oc.Existing = existing
		if ok && existing {
			o.keepExisting(name, f)
		}
		cfg, err := o.Access.For(f).RESTConfig(name)
		if err != nil {
			continue // no kubeconfig: the cluster stays unreachable in the world
		}
		if oc.APIEndpoint == "" {
			oc.APIEndpoint = cfg.Host
		}
		o.probe(ctx, cfg, oc, ok && !c.IsLKE())
	}
	return nil
}

func (o Observer) probe(ctx context.Context, cfg *rest.Config, oc *world.Cluster, existing bool) {
	d := o.Probe
	if d == 0 {
		d = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		return
	}
	oc.Reachable = true
	oc.KubeSystemUID = string(ns.UID)
	if !existing {
		return // LKE node addresses come from the Linode API
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	oc.NodeIPs = nodeIPs(nodes.Items)
}

// nodeIPs are the ExternalIP addresses of Ready nodes (InternalIP when a node has none), sorted.
func nodeIPs(nodes []corev1.Node) []string {
	var ips []string
	for _, n := range nodes {
		if !nodeReady(n) {
			continue
		}
		var ext, internal string
		for _, a := range n.Status.Addresses {
			switch a.Type {
			case corev1.NodeExternalIP:
				if ext == "" {
					ext = a.Address
				}
			case corev1.NodeInternalIP:
				if internal == "" {
					internal = a.Address
				}
			}
		}
		if ext == "" {
			ext = internal
		}
		if net.ParseIP(ext) != nil {
			ips = append(ips, ext)
		}
	}
	sort.Strings(ips)
	return ips
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Host returns the host part of an API URL ("https://1.2.3.4:6443" → "1.2.3.4").
func Host(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// keepExisting stores (or refreshes) the copy of an existing member's kubeconfig, so it can be
// torn down after it leaves fleet.yaml. Unchanged content is not written again.
func (o Observer) keepExisting(name string, f *spec.Fleet) {
	data, err := o.Access.For(f).Kubeconfig(name)
	if err != nil {
		return
	}
	if old, err := o.Access.Store.ReadFile(ExistingKubeconfig(name)); err == nil && bytes.Equal(old, data) {
		return
	}
	_ = o.Access.Store.WriteFile(ExistingKubeconfig(name), data)
}
