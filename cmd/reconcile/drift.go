package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
	"github.com/reconcile-dev/reconcile/state/world"
)

// DriftWatch watches what the fleet owns, in Karmada (its Clusters and policies) and in every
// cluster it can reach (the mesh's secrets, among them cacerts and the remote secrets, the
// cross-network Gateway, and the Helm release records of the fleet's releases), and says when
// any of it changed: the daemon then runs a pass within seconds instead of at the next resync.
// Status-only changes (a Cluster's heartbeat) are not changes.
type DriftWatch struct {
	Files kube.Files
	Log   *slog.Logger
	// Linode, when set, fingerprints the fleet's LKE clusters with one list request; it is
	// polled every LinodeEvery (default 30s), and a change (a cluster deleted or changed by
	// hand) is drift too.
	Linode      func(ctx context.Context, f *spec.Fleet) (string, error)
	LinodeEvery time.Duration

	linodeMu    sync.Mutex
	linodeFleet *spec.Fleet
	linodeBase  string
	linodeStop  context.CancelFunc

	events chan string
	mu     sync.Mutex
	// watches by target ("karmada" or a cluster name): the kubeconfig they were started with
	// and how to stop them.
	watches map[string]*driftTarget
}

type driftTarget struct {
	kubeconfig string // sha256 of the kubeconfig the informers use
	stop       context.CancelFunc
	synced     []cache.InformerSynced
}

// NewDriftWatch returns a watch that is idle until Sync.
func NewDriftWatch(files kube.Files, log *slog.Logger) *DriftWatch {
	return &DriftWatch{Files: files, Log: log, events: make(chan string, 1), watches: map[string]*driftTarget{}}
}

// Events delivers a description of a change (at most one pending: the daemon debounces).
func (w *DriftWatch) Events() <-chan string { return w.events }

// Drain drops a pending event (the daemon's own writes during a pass).
func (w *DriftWatch) Drain() {
	select {
	case <-w.events:
	default:
	}
}

// Synced reports whether every watch has listed what it watches (tests wait on it).
func (w *DriftWatch) Synced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.watches) == 0 {
		return false
	}
	for _, t := range w.watches {
		for _, s := range t.synced {
			if !s() {
				return false
			}
		}
	}
	return true
}

// Stop ends every watch.
func (w *DriftWatch) Stop() {
	w.linodeMu.Lock()
	if w.linodeStop != nil {
		w.linodeStop()
		w.linodeStop = nil
	}
	w.linodeMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, t := range w.watches {
		t.stop()
		delete(w.watches, name)
	}
}

// Sync watches Karmada and every cluster of f whose kubeconfig is known, restarts a watch whose
// kubeconfig changed (a region rebuilt) and ends the watches of clusters that left f. Targets
// that cannot be reached yet are tried again at the next Sync.
func (w *DriftWatch) Sync(ctx context.Context, f *spec.Fleet) {
	w.syncLinode(ctx, f)
	access := kube.Access{Store: w.Files}.For(f)
	want := map[string]func() ([]byte, *rest.Config, error){}
	for _, name := range f.ClusterNames() {
		want[name] = func() ([]byte, *rest.Config, error) {
			data, err := access.Kubeconfig(name)
			if err != nil {
				return nil, nil, err
			}
			cfg, err := access.RESTConfig(name)
			return data, cfg, err
		}
	}
	if w.Files.Exists(kube.KarmadaKubeconfig) {
		want["karmada"] = func() ([]byte, *rest.Config, error) {
			data, err := w.Files.ReadFile(kube.KarmadaKubeconfig)
			if err != nil {
				return nil, nil, err
			}
			cfg, err := access.KarmadaRESTConfig()
			return data, cfg, err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, t := range w.watches {
		if _, ok := want[name]; !ok {
			t.stop()
			delete(w.watches, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		data, cfg, err := want[name]()
		if err != nil {
			continue // no kubeconfig yet
		}
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		if t := w.watches[name]; t != nil {
			if t.kubeconfig == hash {
				continue
			}
			t.stop()
			delete(w.watches, name)
		}
		cfg = rest.CopyConfig(cfg)
		cfg.Timeout = 0 // a watch is a long request
		wctx, stop := context.WithCancel(ctx)
		synced, err := w.start(wctx, f, name, cfg)
		if err != nil {
			stop()
			w.Log.Debug("drift watch not started; the resync stays the safety net", "cluster", name, "err", err)
			continue
		}
		w.watches[name] = &driftTarget{kubeconfig: hash, stop: stop, synced: synced}
	}
}

// syncLinode takes what the fleet's LKE clusters are now as the baseline (the pass just made
// them so) and starts the poller once.
func (w *DriftWatch) syncLinode(ctx context.Context, f *spec.Fleet) {
	if w.Linode == nil {
		return
	}
	base, err := w.Linode(ctx, f)
	w.linodeMu.Lock()
	defer w.linodeMu.Unlock()
	w.linodeFleet, w.linodeBase = f, ""
	if err == nil {
		w.linodeBase = base
	}
	if w.linodeStop != nil {
		return
	}
	every := w.LinodeEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	pctx, stop := context.WithCancel(ctx)
	w.linodeStop = stop
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			w.linodeMu.Lock()
			f := w.linodeFleet
			w.linodeMu.Unlock()
			fp, err := w.Linode(pctx, f)
			if err != nil {
				continue // the next pass or poll sees it; a read error is not drift
			}
			w.linodeMu.Lock()
			changed := w.linodeBase != "" && fp != w.linodeBase && w.linodeFleet == f
			if w.linodeFleet == f {
				w.linodeBase = fp
			}
			w.linodeMu.Unlock()
			if changed {
				select {
				case w.events <- "the fleet's LKE clusters changed":
				default:
				}
			}
		}
	}()
}

var (
	secretsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	clustersGVR = schema.GroupVersionResource{Group: "cluster.karmada.io", Version: "v1alpha1", Resource: "clusters"}
	ppGVR       = schema.GroupVersionResource{Group: "policy.karmada.io", Version: "v1alpha1", Resource: "propagationpolicies"}
	cppGVR      = schema.GroupVersionResource{Group: "policy.karmada.io", Version: "v1alpha1", Resource: "clusterpropagationpolicies"}
)

// driftSource is one informer: a resource in a namespace ("" for all) with a label selector.
type driftSource struct {
	gvr       schema.GroupVersionResource
	namespace string
	selector  string
}

// start runs the informers of one target until ctx ends.
func (w *DriftWatch) start(ctx context.Context, f *spec.Fleet, name string, cfg *rest.Config) ([]cache.InformerSynced, error) {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	fleetSel := world.FleetLabel + "=" + f.Metadata.Name
	var sources []driftSource
	if name == "karmada" {
		sources = []driftSource{{clustersGVR, "", fleetSel}, {ppGVR, "", fleetSel}, {cppGVR, "", fleetSel}}
	} else {
		// The records of the fleet's Helm releases in this cluster (Helm labels them owner=helm).
		for _, ns := range planner.ReleaseNamespaces(f) {
			sources = append(sources, driftSource{secretsGVR, ns, "owner=helm"})
		}
		if f.Mesh.On() && name != f.Manager.Name {
			sources = append(sources, driftSource{secretsGVR, planner.MeshNamespace, fleetSel},
				driftSource{mesh.GatewayResource, planner.MeshNamespace, fleetSel})
		}
	}
	var informers []cache.SharedIndexInformer
	for _, src := range sources {
		if src.gvr.Group != "" {
			// A kind the cluster does not serve (yet: Istio's CRDs come with its chart) is not
			// watched; the next Sync after a pass tries again.
			if _, err := disco.ServerResourcesForGroupVersion(src.gvr.GroupVersion().String()); err != nil {
				continue
			}
		}
		sel := src.selector
		inf := dynamicinformer.NewFilteredDynamicInformer(dc, src.gvr, src.namespace, 0, cache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = sel }).Informer()
		what := src.gvr.Resource
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
			AddFunc: func(obj any, initial bool) {
				if !initial {
					w.changed(name, "added", what, obj)
				}
			},
			UpdateFunc: func(old, cur any) {
				if driftChanged(old, cur) {
					w.changed(name, "changed", what, cur)
				}
			},
			DeleteFunc: func(obj any) { w.changed(name, "deleted", what, obj) },
		})
		if err != nil {
			return nil, err
		}
		informers = append(informers, inf)
	}
	if len(informers) == 0 {
		return nil, fmt.Errorf("nothing to watch yet")
	}
	var synced []cache.InformerSynced
	for _, inf := range informers {
		go inf.RunWithContext(ctx)
		synced = append(synced, inf.HasSynced)
	}
	w.Log.Debug("drift watch started", "cluster", name, "informers", len(informers))
	return synced, nil
}

// changed reports one change (the daemon takes one at a time and debounces).
func (w *DriftWatch) changed(cluster, how, resource string, obj any) {
	desc := how + " " + resource
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		n := u.GetName()
		if u.GetNamespace() != "" {
			n = u.GetNamespace() + "/" + n
		}
		desc = how + " " + resource + " " + n
	}
	desc += " in " + cluster
	select {
	case w.events <- desc:
	default:
	}
}

// driftChanged says whether an update is one the fleet cares about: for objects with a
// generation (spec changes bump it; status-only updates do not) the generation, labels and
// annotations; for others (secrets) the data, type, labels and annotations.
func driftChanged(old, cur any) bool {
	o, ok1 := old.(*unstructured.Unstructured)
	c, ok2 := cur.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return true
	}
	if o.GetResourceVersion() == c.GetResourceVersion() {
		return false // a relist
	}
	if !maps.Equal(o.GetLabels(), c.GetLabels()) || !maps.Equal(o.GetAnnotations(), c.GetAnnotations()) {
		return true
	}
	if c.GetGeneration() != 0 {
		return o.GetGeneration() != c.GetGeneration()
	}
	return !reflect.DeepEqual(o.Object["data"], c.Object["data"]) || !reflect.DeepEqual(o.Object["type"], c.Object["type"]) ||
		!reflect.DeepEqual(o.Object["spec"], c.Object["spec"])
}

// driftQuiet is how long after a pass the daemon ignores changes: its own writes' events.
const driftQuiet = 2 * time.Second
