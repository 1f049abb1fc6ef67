// Package mesh builds the Istio multi-primary, multi-network mesh across a fleet's members:
// the mesh PKI (root in the state store, one intermediate per member), the istio-system
// namespace, the Istio charts, the cross-network Gateway, the istio-reader token and the
// remote secrets; and it observes all of that for the planner.
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

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Names of the objects the driver writes in every member's istio-system.
const (
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
)

// Release is one mesh chart to install or upgrade, in the terms of state/helm.
type Release struct {
	Name      string
	Namespace string
	// Chart is fleet.yaml's mesh chart source narrowed to the component's chart (base, istiod
	// or gateway; see componentChart) with Version defaulted to the mesh version; ChartName is
	// that chart's name.
	Chart     spec.ChartSource
	ChartName string
	// CacheDir is where downloaded charts are kept.
	CacheDir        string
	Values          map[string]any
	Timeout         time.Duration
	Wait            bool
	CreateNamespace bool
}

// HelmClient is the part of state/helm the mesh uses, for one cluster; HelmSDK adapts
// state/helm to it.
type HelmClient interface {
	Ensure(ctx context.Context, r Release) error
	Uninstall(ctx context.Context, name, namespace string) error
}

// Config configures the mesh driver.
type Config struct {
	Access kube.Access
	Store  kube.Files
	Log    *slog.Logger
	// ChartCache is the directory charts are downloaded to.
	ChartCache string
	// Helm returns the Helm client for a cluster.
	Helm func(*rest.Config) (HelmClient, error)
	// Timeout bounds each wait (istiod available, token filled, namespace gone); default
	// fleet.yaml's mesh.timeout, else 5m.
	Timeout time.Duration
	// Now is the clock certificates are issued and checked with (default time.Now).
	Now func() time.Time
	// WrapTransport, when set, wraps every client's transport (tests count requests with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Driver implements executor.MeshDriver.
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
	return &Driver{cfg: cfg}
}

// clients reaches one cluster.
type clients struct {
	rest *rest.Config
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

func connect(access kube.Access, wrap func(http.RoundTripper) http.RoundTripper, f *spec.Fleet, name string) (*clients, error) {
	cfg, err := access.For(f).RESTConfig(name)
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		cfg.Wrap(wrap)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	return &clients{rest: cfg, kube: cs, dyn: dyn}, nil
}

func (d *Driver) connect(f *spec.Fleet, name string) (*clients, error) {
	return connect(d.cfg.Access, d.cfg.WrapTransport, f, name)
}

func (d *Driver) timeout(f *spec.Fleet) time.Duration {
	if d.cfg.Timeout > 0 {
		return d.cfg.Timeout
	}
	if f.Mesh != nil && f.Mesh.Timeout.Duration > 0 {
		return f.Mesh.Timeout.Duration
	}
	return 5 * time.Minute
}

func applyOpts() metav1.ApplyOptions {
	return metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
}

func meshSpec(f *spec.Fleet) (*spec.Mesh, error) {
	if !f.Mesh.On() {
		return nil, errors.New("the fleet has no mesh")
	}
	return f.Mesh, nil
}

// EnsureRootCA generates the fleet's root CA once and keeps it in the store. A root that was
// recorded but whose files are gone is an error: a new one would break trust in the mesh.
func (d *Driver) EnsureRootCA(_ context.Context, f *spec.Fleet) error {
	m, err := meshSpec(f)
	if err != nil {
		return err
	}
	root, err := LoadRoot(d.cfg.Store)
	if err != nil || root != nil {
		return err
	}
	validity := m.CA.RootValidity.Duration
	if validity <= 0 {
		validity = 10 * 365 * 24 * time.Hour
	}
	root, err = NewRoot(m.CA.KeyType, validity, d.cfg.Now())
	if err != nil {
		return err
	}
	if err := saveRoot(d.cfg.Store, root, m.CA.KeyType); err != nil {
		return err
	}
	d.cfg.Log.Info("mesh root CA generated", "fingerprint", root.Fingerprint()[:12], "notAfter", root.Cert.NotAfter.UTC())
	return nil
}

// EnsureNamespace creates istio-system labelled with the member's network.
func (d *Driver) EnsureNamespace(ctx context.Context, f *spec.Fleet, member string) error {
	mem, ok := f.Member(member)
	if !ok {
		return fmt.Errorf("%s is not a member of the fleet", member)
	}
	c, err := d.connect(f, member)
	if err != nil {
		return err
	}
	ns, err := c.kube.CoreV1().Namespaces().Get(ctx, planner.MeshNamespace, metav1.GetOptions{})
	switch {
	case err == nil && ns.DeletionTimestamp != nil:
		return state.Transient(fmt.Errorf("cluster %s: namespace %s is being deleted", member, planner.MeshNamespace), 5*time.Second)
	case err == nil && ns.Labels[NetworkLabel] == mem.Network:
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	apply := corev1ac.Namespace(planner.MeshNamespace).
		WithLabels(map[string]string{NetworkLabel: mem.Network, ManagedByLabel: ManagedBy})
	if _, err := c.kube.CoreV1().Namespaces().Apply(ctx, apply, applyOpts()); err != nil {
		return fmt.Errorf("cluster %s: namespace %s: %w", member, planner.MeshNamespace, err)
	}
	return nil
}

// EnsureCACerts writes the member's intermediate into the cacerts Secret. An existing valid
// one, issued by the current root and not within renewBefore of its expiry, is left alone;
// otherwise a new intermediate is issued from the same root and istiod, if running, restarted.
func (d *Driver) EnsureCACerts(ctx context.Context, f *spec.Fleet, member string) error {
	m, err := meshSpec(f)
	if err != nil {
		return err
	}
	root, err := LoadRoot(d.cfg.Store)
	if err != nil {
		return err
	}
	if root == nil {
		return errors.New("no mesh root CA in the state store yet")
	}
	c, err := d.connect(f, member)
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	renew := m.CA.RenewBefore.Duration
	if renew <= 0 {
		renew = planner.DefaultRenewBefore
	}
	existing, err := c.kube.CoreV1().Secrets(planner.MeshNamespace).Get(ctx, CACertsSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return fmt.Errorf("cluster %s: %w", member, err)
	}
	if existing != nil {
		inter, r, perr := ParseCACerts(existing.Data)
		if perr == nil && CertFingerprint(r) == root.Fingerprint() &&
			now.Before(inter.NotAfter.Add(-renew)) &&
			existing.Annotations[RootFingerprintAnnt] == root.Fingerprint() {
			return nil
		}
	}
	validity := m.CA.IntermediateValidity.Duration
	if validity <= 0 {
		validity = 10 * 365 * 24 * time.Hour
	}
	certs, err := root.IssueIntermediate(member, m.CA.KeyType, validity, now)
	if err != nil {
		return err
	}
	apply := corev1ac.Secret(CACertsSecret, planner.MeshNamespace).
		WithType(corev1.SecretTypeOpaque).
		WithLabels(map[string]string{ManagedByLabel: ManagedBy}).
		WithAnnotations(map[string]string{RootFingerprintAnnt: root.Fingerprint()}).
		WithData(certs.Data())
	if _, err := c.kube.CoreV1().Secrets(planner.MeshNamespace).Apply(ctx, apply, applyOpts()); err != nil {
		return fmt.Errorf("cluster %s: secret %s: %w", member, CACertsSecret, err)
	}
	inter, _ := parseCert(certs.CACert)
	d.cfg.Log.Info("mesh intermediate issued", "cluster", member, "notAfter", inter.NotAfter.UTC(), "replaced", existing != nil)
	if existing != nil {
		return d.restartIstiod(ctx, c, member, CertFingerprint(inter))
	}
	return nil
}

// restartIstiod rolls istiod so it loads a replaced cacerts; no istiod yet is fine.
func (d *Driver) restartIstiod(ctx context.Context, c *clients, member, fingerprint string) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, RestartAnnotation, fingerprint)
	_, err := c.kube.AppsV1().Deployments(planner.MeshNamespace).Patch(ctx, IstiodDeployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: restart istiod for the new cacerts: %w", member, err)
	}
	return nil
}

// EnsureRelease installs or upgrades one mesh chart; after istiod it waits for the istiod
// Deployment to be Available and the injector webhook configuration to exist.
func (d *Driver) EnsureRelease(ctx context.Context, f *spec.Fleet, member, component string) error {
	m, err := meshSpec(f)
	if err != nil {
		return err
	}
	if d.cfg.Helm == nil {
		return errors.New("mesh: no Helm client configured")
	}
	var values map[string]any
	chartName := component
	switch component {
	case planner.ComponentBase:
		values = planner.IstioBaseValues(f, member)
	case planner.ComponentIstiod:
		values = planner.IstiodValues(f, member)
	case planner.ComponentEastWest:
		values, chartName = planner.EastWestValues(f, member), "gateway"
	default:
		return fmt.Errorf("unknown mesh component %q", component)
	}
	src, err := componentChart(m, chartName)
	if err != nil {
		return err
	}
	c, err := d.connect(f, member)
	if err != nil {
		return err
	}
	h, err := d.cfg.Helm(c.rest)
	if err != nil {
		return fmt.Errorf("cluster %s: helm: %w", member, err)
	}
	rel := Release{Name: planner.MeshReleaseName(component), Namespace: planner.MeshNamespace, Chart: src,
		ChartName: chartName, CacheDir: d.cfg.ChartCache, Values: values, Timeout: m.Timeout.Duration}
	if err := h.Ensure(ctx, rel); err != nil {
		return fmt.Errorf("cluster %s: release %s: %w", member, rel.Name, err)
	}
	if component != planner.ComponentIstiod {
		return nil
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, d.timeout(f), true, func(ctx context.Context) (bool, error) {
		return injectorReady(ctx, c.kube)
	})
	if err != nil {
		return state.Transient(fmt.Errorf("cluster %s: istiod is not available with its injector webhook: %w", member, err), 0)
	}
	return nil
}

// injectorReady: the istiod Deployment is Available and the injector webhook configuration exists.
func injectorReady(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	dep, err := cs.AppsV1().Deployments(planner.MeshNamespace).Get(ctx, IstiodDeployment, metav1.GetOptions{})
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
