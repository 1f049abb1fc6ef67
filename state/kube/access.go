// Package kube reaches the fleet's clusters and the Karmada API: where their kubeconfigs
// come from, and the observer that says which clusters answer.
package kube

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
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
		// Observers and drivers ask for the same file many times a pass: it is read again
		// only when it, or a certificate or token file it names, changed.
		key := "file\x00" + c.Kubeconfig.Path + "\x00" + c.Kubeconfig.Context
		if v, ok := parsed.get(key); ok && v.(flattened).fresh() {
			return v.(flattened).data, nil
		}
		f, err := flatten(name, *c.Kubeconfig)
		if err != nil {
			return nil, err
		}
		parsed.put(key, f)
		return f.data, nil
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

// flatten reads an existing cluster's kubeconfig file, keeps only its context and inlines
// the certificate files, so the result carries no other cluster's credentials.
func flatten(name string, k spec.Kubeconfig) (flattened, error) {
	f := flattened{files: map[string]fileStamp{k.Path: stamp(k.Path)}}
	cfg, err := clientcmd.LoadFromFile(k.Path)
	if err != nil {
		return f, fmt.Errorf("cluster %s: kubeconfig %s: %w", name, k.Path, err)
	}
	if k.Context != "" {
		if _, ok := cfg.Contexts[k.Context]; !ok {
			return f, fmt.Errorf("cluster %s: kubeconfig %s has no context %q", name, k.Path, k.Context)
		}
		cfg.CurrentContext = k.Context
	}
	// Keep only that context, with certificate files inlined, so the result carries no
	// other cluster's credentials and stands on its own.
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return f, fmt.Errorf("cluster %s: kubeconfig %s: %w", name, k.Path, err)
	}
	for _, c := range cfg.Clusters {
		f.stamp(c.CertificateAuthority)
	}
	for _, a := range cfg.AuthInfos {
		f.stamp(a.ClientCertificate)
		f.stamp(a.ClientKey)
		f.stamp(a.TokenFile)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return f, fmt.Errorf("cluster %s: kubeconfig %s: %w", name, k.Path, err)
	}
	f.data, err = clientcmd.Write(*cfg)
	return f, err
}

// flattened is a kubeconfig file flattened to its context, with the files it was read from.
type flattened struct {
	data  []byte
	files map[string]fileStamp
}

// fileStamp is what tells a file changed: its size and modification time (zero if absent).
type fileStamp struct {
	size  int64
	mtime int64
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

func (f *flattened) stamp(path string) {
	if path != "" {
		f.files[path] = stamp(path)
	}
}

// fresh reports whether none of the files it was read from changed since.
func (f flattened) fresh() bool {
	for p, st := range f.files {
		if stamp(p) != st || st == (fileStamp{}) {
			return false
		}
	}
	return true
}

// parsed memoizes the client configs kubeconfigs parse to, by their content: a pass at 30
// members otherwise spends much of its CPU parsing the same YAML again. Entries never go stale (a changed kubeconfig is another
// key); the memo is emptied when it grows past memoSize.
var parsed memo

const memoSize = 512

type memo struct {
	mu sync.Mutex
	m  map[string]any
}

func (m *memo) get(key string) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return v, ok
}

func (m *memo) put(key string, v any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= memoSize {
		m.m = map[string]any{}
	}
	m.m[key] = v
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
	sum := sha256.Sum256(data)
	key := "config\x00" + string(sum[:])
	var cfg *rest.Config
	if v, ok := parsed.get(key); ok {
		cfg = rest.CopyConfig(v.(*rest.Config))
	} else {
		c, err := clientcmd.RESTConfigFromKubeConfig(data)
		if err != nil {
			return nil, fmt.Errorf("%s: kubeconfig: %w", what, err)
		}
		parsed.put(key, rest.CopyConfig(c))
		cfg = c
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
// Clusters are probed in parallel (state.EachCluster); one that does not answer is recorded
// with the reason (world.Cluster.Unreachable), never taken for empty.
type Observer struct {
	Access Access
	// Probe bounds the reachability check of one cluster (default 5s).
	Probe time.Duration
	// Handshake bounds the first read of a cluster, which decides whether it answers at all
	// (default 3s): an API server that accepts connections and never answers (stopped,
	// overloaded) is declared unreachable after this, not after client-go's 10s handshake
	// timeout per request.
	Handshake time.Duration
	// Retry retries a probe that failed with a retryable error (a 5xx, a timeout on an
	// established connection); a cluster that does not even complete a handshake is not
	// retried: it is unreachable this pass.
	Retry state.Retry
}

// Default bounds of Observer.
const (
	DefaultProbe     = 5 * time.Second
	DefaultHandshake = 3 * time.Second
)

// probed is what one probe found.
type probed struct {
	host    string // the API URL probed
	uid     string
	nodeIPs []string
}

// errNoConfig: the cluster has no usable kubeconfig, so it was not probed.
type errNoConfig struct{ error }

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
	access := o.Access.For(f)
	existingSpec := map[string]bool{}
	var probe []string
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
		existingSpec[name] = ok && !c.IsLKE()
		probe = append(probe, name)
	}
	state.EachCluster(ctx, probe, 0, func(ctx context.Context, name string) (probed, error) {
		cfg, err := access.RESTConfig(name)
		if err != nil {
			return probed{}, errNoConfig{err}
		}
		p, err := o.probe(ctx, cfg, existingSpec[name])
		p.host = cfg.Host
		return p, err
	}, func(name string, p probed, err error) {
		oc := w.Clusters[name]
		var noConfig errNoConfig
		if errors.As(err, &noConfig) {
			return // no kubeconfig: the cluster stays unreachable in the world
		}
		if oc.APIEndpoint == "" {
			oc.APIEndpoint = p.host
		}
		if err != nil {
			oc.Unreachable = err.Error()
			return
		}
		oc.Reachable, oc.KubeSystemUID = true, p.uid
		if existingSpec[name] {
			oc.NodeIPs = p.nodeIPs
		}
	})
	return nil
}

// probe reads a cluster's kube-system UID (and, for an existing cluster, its nodes). Its first
// read is bounded by o.Handshake: an API server that accepts connections and never answers
// (stopped, overloaded) is declared unreachable after that bound, not after client-go's 10s
// handshake timeout, and it is not retried. The read goes through the shared client, so a
// no-op pass reuses the connection of the last one instead of a new TLS handshake per member.
func (o Observer) probe(ctx context.Context, cfg *rest.Config, existing bool) (probed, error) {
	var p probed
	d := o.Probe
	if d == 0 {
		d = DefaultProbe
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cs, err := Clientset(cfg)
	if err != nil {
		return p, err
	}
	first := true
	err = o.Retry.Do(ctx, func(ctx context.Context) error {
		bound := o.Handshake
		if bound == 0 {
			bound = DefaultHandshake
		}
		if !first {
			bound = d // the server answered once: a retry is bounded by the probe alone
		}
		first = false
		rctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		ns, err := cs.CoreV1().Namespaces().Get(rctx, "kube-system", metav1.GetOptions{})
		if err != nil {
			if rctx.Err() != nil && ctx.Err() == nil {
				return &unanswered{host: hostOf(cfg.Host), bound: bound}
			}
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				return &unanswered{host: hostOf(cfg.Host), err: err} // nothing listens there
			}
			return Classify(err)
		}
		p.uid = string(ns.UID)
		return nil
	})
	if err != nil {
		return p, err
	}
	if !existing {
		return p, nil // LKE node addresses come from the Linode API
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err == nil {
		p.nodeIPs = nodeIPs(nodes.Items)
	}
	return p, nil
}

// unanswered: an API server did not answer the probe's first read within its bound. It is
// not retried: the cluster is unreachable this pass.
type unanswered struct {
	host  string
	bound time.Duration
	err   error // the dial's error, when it was refused
}

func (e *unanswered) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s: %v", e.host, e.err)
	}
	return fmt.Sprintf("%s did not answer within %s", e.host, e.bound)
}

func (e *unanswered) Unwrap() error   { return e.err }
func (e *unanswered) Retryable() bool { return false }

// hostOf is the host:port of an API URL, for messages.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), map[bool]string{true: "443", false: "80"}[u.Scheme != "http"])
	}
	return u.Host
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
