// Package weights writes workloads and their (Cluster)PropagationPolicies into the Karmada API
// and observes them: the policies reconcile owns, the replicas of what they select and the
// split Karmada's scheduler made.
package weights

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Names reconcile writes on the objects it owns in Karmada.
const (
	// FieldManager is the server-side apply field manager of every write.
	FieldManager = "reconcile"
	// DigestAnnotation carries the workload's manifest digest on each applied object.
	DigestAnnotation = "reconcile.dev/manifest-digest"
	// ManagedByLabel marks our policies; the observer finds them by it.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "reconcile"
	// WorkloadLabel names the fleet workload a policy belongs to.
	WorkloadLabel = "reconcile.dev/workload"
)

// Karmada resources this package reads and writes.
var (
	policyGVR         = schema.GroupVersionResource{Group: "policy.karmada.io", Version: "v1alpha1", Resource: "propagationpolicies"}
	clusterPolicyGVR  = schema.GroupVersionResource{Group: "policy.karmada.io", Version: "v1alpha1", Resource: "clusterpropagationpolicies"}
	bindingGVR        = schema.GroupVersionResource{Group: "work.karmada.io", Version: "v1alpha2", Resource: "resourcebindings"}
	clusterBindingGVR = schema.GroupVersionResource{Group: "work.karmada.io", Version: "v1alpha2", Resource: "clusterresourcebindings"}
	crdGVR            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// Config configures the driver.
type Config struct {
	// Fleet is the fleet's name: the policies the driver writes carry it (reconcile.dev/fleet),
	// and it reads, changes and deletes only policies that do.
	Fleet string
	// Access reaches the Karmada API through the stored Karmada kubeconfig.
	Access kube.Access
	Log    *slog.Logger
	// WrapTransport, when set, wraps the HTTP transport of every Karmada client (tracing, tests).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// DeleteTimeout bounds the wait for a deleted policy to be gone (default 2m: Karmada's
	// finalizer has to let it go).
	DeleteTimeout time.Duration
	// EstablishTimeout bounds the wait for applied CRDs to be served (default 1m).
	EstablishTimeout time.Duration
	// Store keeps the progress of gated rollouts (state.Backend); without it a rollout's
	// stage and gate steps fail.
	Store RolloutStore
	// Now is the clock of rollout records (default time.Now).
	Now func() time.Time
}

// Driver implements executor.Driver (manifests and policy steps) and state.Observer for the
// Karmada API.
type Driver struct {
	fleet            string
	access           kube.Access
	log              *slog.Logger
	wrap             func(http.RoundTripper) http.RoundTripper
	deleteTimeout    time.Duration
	establishTimeout time.Duration
	store            RolloutStore
	now              func() time.Time
}

// New returns a driver; it connects on each call, so a Karmada kubeconfig stored later is used.
func New(cfg Config) *Driver {
	d := &Driver{fleet: cfg.Fleet, access: cfg.Access, log: cfg.Log, wrap: cfg.WrapTransport,
		deleteTimeout: cfg.DeleteTimeout, establishTimeout: cfg.EstablishTimeout, store: cfg.Store, now: cfg.Now}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.deleteTimeout <= 0 {
		d.deleteTimeout = 2 * time.Minute
	}
	if d.establishTimeout <= 0 {
		d.establishTimeout = time.Minute
	}
	return d
}

// mark puts the fleet's label on an object the driver writes.
func (d *Driver) mark(obj *unstructured.Unstructured) {
	if d.fleet == "" {
		return
	}
	l := obj.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[world.FleetLabel] = d.fleet
	obj.SetLabels(l)
}

// clients talks to one Karmada API for the length of one call.
type clients struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func (d *Driver) connect() (*clients, error) {
	cfg, err := d.access.KarmadaRESTConfig()
	if err != nil {
		return nil, err
	}
	if d.wrap != nil {
		cfg.Wrap(d.wrap)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("karmada: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("karmada: %w", err)
	}
	return &clients{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}, nil
}

// resource is the dynamic client of the kind gvk in namespace ns (ignored for cluster-scoped
// kinds); namespaced reports the kind's scope.
func (c *clients) resource(gvk schema.GroupVersionKind, ns string) (dynamic.ResourceInterface, bool, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, false, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource).Namespace(ns), true, nil
	}
	return c.dyn.Resource(m.Resource), false, nil
}

// classify marks errors worth retrying as transient and Kubernetes API answers that are not
// as terminal (kube.Classify); a kind not served yet (a CRD not established) is transient too.
func classify(err error) error {
	if meta.IsNoMatchError(err) {
		return state.Transient(err, 0)
	}
	return kube.Classify(err)
}
