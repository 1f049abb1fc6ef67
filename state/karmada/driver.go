// Package karmada installs the Karmada control plane on the manager, joins members to it
// (Push as `karmadactl join` does, Pull through the chart's agent mode), waits on its gates,
// unjoins members that left the fleet, and observes all of it for the planner.
//
// The driver applies plan steps exactly as the planner computed them (see Apply); it never
// reads the fleet. The observer does.
package karmada

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	karmadaclient "github.com/karmada-io/karmada/pkg/generated/clientset/versioned"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/helm"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/progress"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Names shared with karmadactl and karmada-agent, so a member joined by either looks the same.
const (
	// ClusterNamespace holds the member credentials, in the member and in Karmada.
	ClusterNamespace = "karmada-cluster"
	// ImpersonatorSA is the member's service account Karmada impersonates users through.
	ImpersonatorSA = "karmada-impersonator"
	// FieldManager owns every field reconcile applies.
	FieldManager = "reconcile"
	// ManagedByLabel marks the objects reconcile wrote.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "reconcile"
	// systemLabel marks Karmada's system namespaces.
	systemLabel = "karmada.io/system"
	// apiServiceName is the aggregated API that serves Clusters.
	apiServiceName = "v1alpha1.cluster.karmada.io"
	// AgentRelease and AgentNamespace are the Helm release of karmada-agent in a Pull member
	// (the planner's names for it): a Push join whose payload says RemoveAgent and an unjoin
	// uninstall it; an unjoin looks for its Deployment of the same name.
	AgentRelease   = "karmada-agent"
	AgentNamespace = "karmada-system"
)

// MemberSA is the member's service account whose token Karmada uses ("karmada-<member>").
func MemberSA(member string) string { return "karmada-" + member }

// MemberRBAC names the ClusterRole and ClusterRoleBinding that give MemberSA its rights.
func MemberRBAC(member string) string { return "karmada-controller-manager:karmada-" + member }

// ImpersonatorSecret is the Karmada secret holding the member's impersonator token.
func ImpersonatorSecret(member string) string { return member + "-impersonator" }

// ExecutionNamespace is where Karmada keeps the Works of a member.
func ExecutionNamespace(member string) string { return "karmada-es-" + member }

// Config configures the driver and observer for one fleet.
type Config struct {
	// Fleet is the fleet's name: every object the driver writes carries it
	// (reconcile.dev/fleet), and the driver changes or deletes only objects that do.
	Fleet string
	// Access reaches the fleet's clusters (already Access.For the fleet) and, through the
	// stored kubeconfig, Karmada.
	Access kube.Access
	// Store receives "karmada/kubeconfig".
	Store kube.Files
	Log   *slog.Logger
	// ChartCache is where downloaded charts are kept.
	ChartCache string
	// Helm makes a Helm client for a cluster; nil uses state/helm.
	Helm func(*rest.Config) (HelmClient, error)
	// JoinTimeout bounds waits of a join or unjoin (token secrets filled, Cluster gone); default 2m.
	JoinTimeout time.Duration
	// ReadyTimeout bounds the waits for the control plane and for a member to be Ready; default 5m.
	ReadyTimeout time.Duration
	// LoadChart fetches the chart a fleet names; nil uses helm.LoadChart.
	LoadChart func(ctx context.Context, src spec.ChartSource, defaultName, cacheDir string) (*chart.Chart, error)
}

// Driver implements executor.Driver (for the Karmada step kinds) and state.Observer.
type Driver struct {
	cfg Config
	log *slog.Logger

	// wrap, when set (tests), wraps the transport of every client the driver makes.
	wrap func(http.RoundTripper) http.RoundTripper
}

// New returns a driver; zero timeouts get their defaults.
func New(cfg Config) *Driver {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 2 * time.Minute
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 5 * time.Minute
	}
	if cfg.Store == nil {
		cfg.Store = cfg.Access.Store
	}
	if cfg.Helm == nil {
		cfg.Helm = defaultHelm(cfg.Log)
	}
	if cfg.LoadChart == nil {
		cfg.LoadChart = helm.LoadChart
	}
	return &Driver{cfg: cfg, log: cfg.Log}
}

// clients is what a call needs to talk to one cluster.
type clients struct {
	rest *rest.Config
	kube kubernetes.Interface
}

// member reaches a cluster of the fleet the driver was made for.
func (d *Driver) member(name string) (clients, error) { return d.connect(d.cfg.Access, name) }

func (d *Driver) connect(a kube.Access, name string) (clients, error) {
	cfg, err := a.RESTConfig(name)
	if err != nil {
		return clients{}, err
	}
	cfg.WrapTransport = d.wrap
	return newClients(cfg)
}

func newClients(cfg *rest.Config) (clients, error) {
	kc, err := kube.Clientset(cfg)
	if err != nil {
		return clients{}, err
	}
	return clients{rest: cfg, kube: kc}, nil
}

// karmadaClients reach the Karmada API through the stored kubeconfig.
type karmadaClients struct {
	clients
	karmada karmadaclient.Interface
}

func (d *Driver) karmada() (karmadaClients, error) {
	cfg, err := d.cfg.Access.KarmadaRESTConfig()
	if err != nil {
		return karmadaClients{}, err
	}
	cfg.WrapTransport = d.wrap
	return newKarmadaClients(cfg)
}

func newKarmadaClients(cfg *rest.Config) (karmadaClients, error) {
	c, err := newClients(cfg)
	if err != nil {
		return karmadaClients{}, err
	}
	kc, err := kube.Shared(cfg, "karmada", func(c *rest.Config) (karmadaclient.Interface, error) { return karmadaclient.NewForConfig(c) })
	if err != nil {
		return karmadaClients{}, err
	}
	return karmadaClients{clients: c, karmada: kc}, nil
}

// CredentialHash fingerprints a member credential: its token and CA. The observer computes it
// from the member's token secret (token, ca.crt) and from Karmada's secret (token, caBundle),
// so the two agree exactly when Karmada holds the member's current credentials.
func CredentialHash(token, ca []byte) string {
	h := sha256.New()
	h.Write([]byte("karmada-member-credential\x00"))
	h.Write(token)
	h.Write([]byte{0})
	h.Write(ca)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// poll calls cond every interval until it reports done, ctx ends or timeout passes; on
// timeout the error names what was awaited and the last thing cond said. While it waits it
// logs progress (what, elapsed, timeout, cond's last error) every progress interval.
func poll(ctx context.Context, log *slog.Logger, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	w := progress.Start(ctx, log, what, timeout)
	defer w.End()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := 200 * time.Millisecond
	var last error
	for {
		done, err := cond(ctx)
		if done && err == nil {
			return nil
		}
		var stop *stopPolling
		if errors.As(err, &stop) {
			return err
		}
		if err != nil {
			last = err
			w.Set(err.Error())
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, last)
		case <-t.C:
		}
		if interval < 2*time.Second {
			interval = interval * 3 / 2
		}
	}
}

// labels are the marks every object reconcile writes carries (managed-by and the fleet's
// name), plus extra.
func (d *Driver) labels(extra map[string]string) map[string]string {
	out := map[string]string{ManagedByLabel: ManagedByValue}
	if d.cfg.Fleet != "" {
		out[world.FleetLabel] = d.cfg.Fleet
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// hasAll reports whether have holds every key of want with the same value.
func hasAll(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// kubeSystemUID is the member's cluster ID, as karmadactl and karmada-agent take it.
func kubeSystemUID(ctx context.Context, kc kubernetes.Interface) (string, error) {
	ns, err := kc.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read kube-system: %w", err)
	}
	return string(ns.UID), nil
}
