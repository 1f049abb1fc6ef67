// Package mesh builds the Istio multi-primary, multi-network mesh across a fleet's members:
// the mesh PKI (root in the state store, one intermediate per member), the istio-system
// namespace, the Istio charts, the cross-network Gateway, the istio-reader token and the
// remote secrets; and it observes all of that for the planner.
//
// The driver applies plan steps exactly as the planner computed them (see Apply); it never
// reads the fleet. The observer does.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/progress"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Names of the objects the driver writes in every member's istio-system.
const (
	// MeshNamespace holds istiod, cacerts, the gateways and the remote secrets in every member.
	// Steps name their namespace in their payload; this is what the observer reads and what a
	// remote-secret delete without a payload uses.
	MeshNamespace       = "istio-system"
	FieldManager        = "reconcile"
	CACertsSecret       = "cacerts"
	ReaderServiceAcct   = "istio-reader-service-account"
	ReaderTokenSecret   = "istio-reader-service-account-istio-remote-secret-token"
	RemoteSecretPrefix  = "istio-remote-secret-"
	GatewayName         = "cross-network-gateway"
	IstiodDeployment    = "istiod"
	InjectorWebhook     = "istio-sidecar-injector"
	NetworkLabel        = "topology.istio.io/network"
	MultiClusterLabel   = "istio/multiCluster"
	ClusterAnnotation   = "networking.istio.io/cluster"
	ManagedByLabel      = "app.kubernetes.io/managed-by"
	ManagedBy           = "reconcile"
	FingerprintAnnot    = "reconcile.dev/fingerprint"
	RootFingerprintAnnt = "reconcile.dev/root-fingerprint"
	// RestartAnnotation on istiod's pod template restarts it after its cacerts changed: istiod
	// reads cacerts at start (istio/istio#57853).
	RestartAnnotation = "reconcile.dev/cacerts-fingerprint"
	// ComponentIstiod is the Step.Component of the istiod release, after which the driver
	// waits for istiod and its injector webhook.
	ComponentIstiod = "istiod"
)

// DefaultTimeout bounds the driver's waits when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Minute

// defaultValidity is the validity of a certificate whose payload gives none.
const defaultValidity = 10 * 365 * 24 * time.Hour

// Release is one mesh chart to install or upgrade, in the terms of state/helm.
type Release struct {
	Name      string
	Namespace string
	// Chart is the step's mesh chart source narrowed to the component's chart (base, istiod
	// or gateway; see componentChart); ChartName is that chart's name.
	Chart     spec.ChartSource
	ChartName string
	// CacheDir is where downloaded charts are kept.
	CacheDir        string
	Values          map[string]any
	Timeout         time.Duration
	Wait            bool
	WaitForJobs     bool
	CreateNamespace bool
}

// HelmClient is the part of state/helm the mesh uses, for one cluster; HelmSDK adapts
// state/helm to it.
type HelmClient interface {
	Ensure(ctx context.Context, r Release) error
	Uninstall(ctx context.Context, name, namespace string) error
}

// Config configures the mesh driver for one fleet.
type Config struct {
	// Fleet is the fleet's name: what the driver writes carries it (reconcile.dev/fleet), and
	// a member's teardown deletes only what does.
	Fleet string
	// Access reaches the fleet's clusters (already Access.For the fleet).
	Access kube.Access
	Store  kube.Files
	Log    *slog.Logger
	// ChartCache is the directory charts are downloaded to.
	ChartCache string
	// Helm returns the Helm client for a cluster.
	Helm func(*rest.Config) (HelmClient, error)
	// Timeout bounds each wait (istiod available, token filled, secret or namespace gone):
	// fleet.yaml's mesh.timeout; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock new certificates take their validity from (default time.Now).
	Now func() time.Time
	// WrapTransport, when set, wraps every client's transport (tests count requests with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Driver applies the mesh steps: root-ca, mesh-namespace, cacerts, mesh-release, expose,
// reader-token, remote-secret and mesh-teardown.
type Driver struct {
	cfg Config
}

// New returns the mesh driver.
func New(cfg Config) *Driver {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Driver{cfg: cfg}
}

// classify is the one place errors of Apply pass through, to be marked retryable or not.
func classify(err error) error { return kube.Classify(err) }

// Apply applies one mesh step, exactly as its payload says. Called when the world already
// matches, it writes nothing. Mesh steps have no outputs.
func (d *Driver) Apply(ctx context.Context, s plan.Step) (plan.Outputs, error) {
	return nil, classify(d.apply(ctx, s))
}

func (d *Driver) apply(ctx context.Context, s plan.Step) error {
	if s.Kind != plan.KindRootCA && s.Cluster == "" {
		return fmt.Errorf("%s: a %s step names no cluster", s.Address, s.Kind)
	}
	switch s.Kind {
	case plan.KindRootCA:
		if err := ensureAction(s); err != nil {
			return err
		}
		return d.rootCA(s)
	case plan.KindMeshNamespace:
		if err := ensureAction(s); err != nil {
			return err
		}
		return d.namespace(ctx, s)
	case plan.KindCACerts:
		return d.caCerts(ctx, s)
	case plan.KindMeshRelease:
		if err := ensureAction(s); err != nil {
			return err
		}
		return d.release(ctx, s)
	case plan.KindExpose:
		if err := ensureAction(s); err != nil {
			return err
		}
		return d.gateway(ctx, s)
	case plan.KindReaderToken:
		if err := ensureAction(s); err != nil && s.Action != plan.Delete {
			return err
		}
		return d.readerToken(ctx, s)
	case plan.KindRemoteSecret:
		return d.remoteSecret(ctx, s)
	case plan.KindMeshTeardown:
		if s.Action != plan.Delete {
			return unsupported(s)
		}
		return d.teardown(ctx, s)
	}
	return fmt.Errorf("%s: the mesh driver does not apply %s steps", s.Address, s.Kind)
}

// ensureAction accepts the actions that make an object be as the payload says.
func ensureAction(s plan.Step) error {
	switch s.Action {
	case plan.Create, plan.Update, plan.Replace:
		return nil
	}
	return unsupported(s)
}

func unsupported(s plan.Step) error {
	return fmt.Errorf("%s: action %q is not one a %s step takes", s.Address, s.Action, s.Kind)
}

func noPayload(s plan.Step) error {
	return fmt.Errorf("%s: the %s step carries no payload", s.Address, s.Kind)
}

// namespaceOr is ns, or MeshNamespace when the payload left it empty.
func namespaceOr(ns string) string {
	if ns == "" {
		return MeshNamespace
	}
	return ns
}

// clients reaches one cluster.
type clients struct {
	rest *rest.Config
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

func connect(access kube.Access, wrap func(http.RoundTripper) http.RoundTripper, name string) (*clients, error) {
	cfg, err := access.RESTConfig(name)
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	cs, err := kube.Clientset(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	dyn, err := kube.Dynamic(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	return &clients{rest: cfg, kube: cs, dyn: dyn}, nil
}

func (d *Driver) connect(name string) (*clients, error) {
	return connect(d.cfg.Access, d.cfg.WrapTransport, name)
}

func applyOpts() metav1.ApplyOptions {
	return metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
}

// rootCA generates the fleet's root CA once and keeps it in the store. A root that was
// recorded but whose files are gone is an error: a new one would break trust in the mesh.
//
// A Replace (--replace-mesh-root) generates a new root while the store still holds the one
// the plan saw (or none, when it saw none), after copying the old files to backup names
// (mesh/root-cert.pem.replaced-<time>, ...); once the store holds another root, the
// replace was done by an earlier attempt and it writes nothing.
func (d *Driver) rootCA(s plan.Step) error {
	p := s.Payload.RootCA
	if p == nil {
		return noPayload(s)
	}
	if s.Action != plan.Replace && p.Replaces != nil {
		return fmt.Errorf("%s: a root-ca %s names a root it replaces", s.Address, s.Action)
	}
	root, err := LoadRoot(d.cfg.Store)
	if err != nil {
		return err
	}
	replaced := ""
	switch {
	case root == nil:
	case s.Action != plan.Replace, p.Replaces == nil, root.Fingerprint() != p.Replaces.RootFingerprint:
		return nil
	default:
		if replaced, err = backupRoot(d.cfg.Store, d.cfg.Now()); err != nil {
			return fmt.Errorf("%s: keep the replaced root: %w", s.Address, err)
		}
	}
	validity := p.Validity.Duration
	if validity <= 0 {
		validity = defaultValidity
	}
	newRoot, err := NewRoot(p.KeyType, validity, d.cfg.Now())
	if err != nil {
		return err
	}
	if err := saveRoot(d.cfg.Store, newRoot, p.KeyType); err != nil {
		return err
	}
	if root != nil {
		d.cfg.Log.Warn("mesh root CA replaced", "fingerprint", newRoot.Fingerprint()[:12],
			"replaced", root.Fingerprint()[:12], "kept", replaced, "notAfter", newRoot.Cert.NotAfter.UTC())
		return nil
	}
	d.cfg.Log.Info("mesh root CA generated", "fingerprint", newRoot.Fingerprint()[:12], "notAfter", newRoot.Cert.NotAfter.UTC())
	return nil
}

// namespace server-side applies the namespace with the payload's labels and the managed-by
// label; it writes nothing when the payload's labels already hold.
func (d *Driver) namespace(ctx context.Context, s plan.Step) error {
	p := s.Payload.Namespace
	if p == nil {
		return noPayload(s)
	}
	if p.Name == "" {
		return fmt.Errorf("%s: the namespace payload names no namespace", s.Address)
	}
	c, err := d.connect(s.Cluster)
	if err != nil {
		return err
	}
	ns, err := c.kube.CoreV1().Namespaces().Get(ctx, p.Name, metav1.GetOptions{})
	switch {
	case err == nil && ns.DeletionTimestamp != nil:
		return state.Transient(fmt.Errorf("cluster %s: namespace %s is being deleted", s.Cluster, p.Name), 5*time.Second)
	case err == nil && labelsHold(ns.Labels, p.Labels):
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	apply := corev1ac.Namespace(p.Name).WithLabels(d.labels(p.Labels))
	if _, err := c.kube.CoreV1().Namespaces().Apply(ctx, apply, applyOpts()); err != nil {
		return fmt.Errorf("cluster %s: namespace %s: %w", s.Cluster, p.Name, err)
	}
	return nil
}

// labelsHold reports whether have carries every label of want.
func labelsHold(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// caCerts writes the member's intermediate into the cacerts Secret, as the planner decided.
//
// A create (Replaces nil) issues one when there is no secret, does nothing when the secret
// chains to the store's root (an earlier attempt wrote it) and refuses to overwrite any other
// secret: a trust root that is not ours is never replaced without a plan that saw it.
//
// A replace does nothing when the live secret is no longer the one the plan saw and chains to
// the store's root (it was replaced already); otherwise it issues a new intermediate from the
// root and, the secret having existed, restarts istiod so that it loads it.
func (d *Driver) caCerts(ctx context.Context, s plan.Step) error {
	p := s.Payload.CACerts
	if p == nil {
		return noPayload(s)
	}
	switch {
	case s.Action == plan.Create && p.Replaces != nil:
		return fmt.Errorf("%s: a cacerts create names a certificate it replaces", s.Address)
	case s.Action == plan.Replace && p.Replaces == nil:
		return fmt.Errorf("%s: a cacerts replace names no certificate it replaces", s.Address)
	case s.Action != plan.Create && s.Action != plan.Replace:
		return unsupported(s)
	}
	root, err := LoadRoot(d.cfg.Store)
	if err != nil {
		return err
	}
	if root == nil {
		return errors.New("no mesh root CA in the state store yet")
	}
	c, err := d.connect(s.Cluster)
	if err != nil {
		return err
	}
	ns := namespaceOr(p.Namespace)
	secrets := c.kube.CoreV1().Secrets(ns)
	live, err := secrets.Get(ctx, CACertsSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return fmt.Errorf("cluster %s: %w", s.Cluster, err)
	}
	var (
		liveRoot     string
		liveNotAfter time.Time
		parseErr     error
	)
	if live != nil {
		inter, r, err := ParseCACerts(live.Data)
		if parseErr = err; err == nil {
			liveRoot, liveNotAfter = CertFingerprint(r), inter.NotAfter
		}
	}
	ours := live != nil && parseErr == nil && liveRoot == root.Fingerprint()
	if p.Replaces == nil {
		switch {
		case live == nil:
		case ours:
			return nil
		case parseErr == nil:
			return fmt.Errorf("cacerts in %s chains to root %s, not the store's; appeared after the plan; not overwritten", s.Cluster, liveRoot)
		default:
			return fmt.Errorf("cacerts in %s is not an intermediate of the store's root (%v); not overwritten", s.Cluster, parseErr)
		}
	} else if ours && !sameCert(p.Replaces, liveRoot, liveNotAfter) {
		return nil
	}
	validity := p.Validity.Duration
	if validity <= 0 {
		validity = defaultValidity
	}
	certs, err := root.IssueIntermediate(s.Cluster, p.KeyType, validity, d.cfg.Now())
	if err != nil {
		return err
	}
	apply := corev1ac.Secret(CACertsSecret, ns).
		WithType(corev1.SecretTypeOpaque).
		WithLabels(d.labels(nil)).
		WithAnnotations(map[string]string{RootFingerprintAnnt: root.Fingerprint()}).
		WithData(certs.Data())
	if _, err := secrets.Apply(ctx, apply, applyOpts()); err != nil {
		return fmt.Errorf("cluster %s: secret %s: %w", s.Cluster, CACertsSecret, err)
	}
	inter, _ := parseCert(certs.CACert)
	d.cfg.Log.Info("mesh intermediate issued", "cluster", s.Cluster, "notAfter", inter.NotAfter.UTC(), "replaced", live != nil)
	if live != nil {
		return d.restartIstiod(ctx, c, s.Cluster, ns, CertFingerprint(inter))
	}
	return nil
}

// sameCert reports whether the certificate a plan saw is the one with this root fingerprint
// and expiry (the plan gives it in RFC 3339).
func sameCert(want *plan.Cert, rootFP string, notAfter time.Time) bool {
	if want.RootFingerprint != rootFP {
		return false
	}
	if t, err := time.Parse(time.RFC3339, want.NotAfter); err == nil {
		return t.Equal(notAfter)
	}
	return want.NotAfter == notAfter.UTC().Format(time.RFC3339)
}

// restartIstiod rolls istiod so it loads a replaced cacerts; no istiod yet is fine.
func (d *Driver) restartIstiod(ctx context.Context, c *clients, member, ns, fingerprint string) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, RestartAnnotation, fingerprint)
	_, err := c.kube.AppsV1().Deployments(ns).Patch(ctx, IstiodDeployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: restart istiod for the new cacerts: %w", member, err)
	}
	return nil
}

// release installs or upgrades one mesh chart; after istiod it waits for the istiod
// Deployment to be Available and the injector webhook configuration to exist.
func (d *Driver) release(ctx context.Context, s plan.Step) error {
	p := s.Payload.Release
	if p == nil {
		return noPayload(s)
	}
	if d.cfg.Helm == nil {
		return errors.New("mesh: no Helm client configured")
	}
	src, err := componentChart(p.Chart, p.ChartName)
	if err != nil {
		return err
	}
	c, err := d.connect(s.Cluster)
	if err != nil {
		return err
	}
	h, err := d.cfg.Helm(c.rest)
	if err != nil {
		return fmt.Errorf("cluster %s: helm: %w", s.Cluster, err)
	}
	rel := Release{Name: p.Name, Namespace: p.Namespace, Chart: src, ChartName: p.ChartName, CacheDir: d.cfg.ChartCache,
		Values: plan.DeepCopyValues(p.Values), Timeout: p.Timeout.Duration, Wait: p.Wait, WaitForJobs: p.WaitForJobs,
		CreateNamespace: p.CreateNamespace}
	if err := h.Ensure(ctx, rel); err != nil {
		return fmt.Errorf("cluster %s: release %s: %w", s.Cluster, rel.Name, err)
	}
	if s.Component != ComponentIstiod {
		return nil
	}
	ns := namespaceOr(p.Namespace)
	w := progress.Start(ctx, d.cfg.Log, "istiod in "+s.Cluster+" available with its injector webhook", d.cfg.Timeout)
	err = wait.PollUntilContextTimeout(ctx, time.Second, d.cfg.Timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := injectorReady(ctx, c.kube, ns)
		switch {
		case err != nil:
			w.Set(err.Error())
		case !ok:
			w.Set("Deployment " + ns + "/" + IstiodDeployment + " not available or webhook " + InjectorWebhook + " missing")
		}
		return ok, err
	})
	w.End()
	if err != nil {
		return state.Transient(fmt.Errorf("cluster %s: istiod is not available with its injector webhook: %w", s.Cluster, err), 0)
	}
	return nil
}

// injectorReady: the istiod Deployment in ns is Available and the injector webhook
// configuration exists.
func injectorReady(ctx context.Context, cs kubernetes.Interface, ns string) (bool, error) {
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, IstiodDeployment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !deploymentAvailable(dep) {
		return false, nil
	}
	_, err = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, InjectorWebhook, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func deploymentAvailable(dep *appsv1.Deployment) bool {
	if dep.Generation > dep.Status.ObservedGeneration {
		return false
	}
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// labels are the marks of what the driver writes (managed-by and the fleet), plus extra.
func (d *Driver) labels(extra map[string]string) map[string]string {
	out := map[string]string{ManagedByLabel: ManagedBy}
	if d.cfg.Fleet != "" {
		out[world.FleetLabel] = d.cfg.Fleet
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}
