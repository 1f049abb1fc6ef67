package karmada

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/helm"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// KubeconfigFile is the name of the Karmada kubeconfig written into fleet.KubeconfigDir.
const KubeconfigFile = "karmada-config"

// InstallControlPlane installs or upgrades the Karmada chart in host mode on the manager,
// waiting for its hooks and jobs within the fleet's Karmada timeout.
func (d *Driver) InstallControlPlane(ctx context.Context, f *spec.Fleet) error {
	mgr, err := d.member(f, f.Manager.Name)
	if err != nil {
		return fmt.Errorf("karmada release: %w", err)
	}
	nodeIP, err := d.managerNodeIP(ctx, f)
	if err != nil {
		return fmt.Errorf("karmada release: %w", err)
	}
	hc, err := d.cfg.Helm(mgr.rest)
	if err != nil {
		return fmt.Errorf("karmada release: %w", err)
	}
	ch, err := d.cfg.LoadChart(ctx, f.Manager.Karmada.Chart, "karmada", d.cfg.ChartCache)
	if err != nil {
		return fmt.Errorf("karmada release: %w", err)
	}
	name, ns := planner.KarmadaRelease(f)
	_, err = hc.Ensure(ctx, helm.Release{Name: name, Namespace: ns, Chart: ch, Values: planner.KarmadaValues(f, nodeIP),
		Timeout: f.Manager.Karmada.Timeout.Duration, Wait: true, WaitForJobs: true, CreateNamespace: true})
	if err != nil {
		return fmt.Errorf("karmada release %s: %w", planner.ReleaseKey(ns, name), err)
	}
	return nil
}

// managerNodeIP is the manager node the Karmada API is reached on: the first node IP the last
// observation put into the World (the very value the planner compared the release against),
// else the first Ready node's ExternalIP (InternalIP when it has none) read through the
// manager's kubeconfig.
func (d *Driver) managerNodeIP(ctx context.Context, f *spec.Fleet) (string, error) {
	d.mu.Lock()
	ip := d.seenNodeIP[f.Manager.Name]
	d.mu.Unlock()
	if ip != "" {
		return ip, nil
	}
	mgr, err := d.member(f, f.Manager.Name)
	if err != nil {
		return "", err
	}
	nodes, err := mgr.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("manager %s: list nodes: %w", f.Manager.Name, err)
	}
	ips := nodeIPs(nodes.Items)
	if len(ips) == 0 {
		return "", fmt.Errorf("manager %s has no Ready node with an address", f.Manager.Name)
	}
	return ips[0], nil
}

func nodeIPs(nodes []corev1.Node) []string {
	var ips []string
	for _, n := range nodes {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
			}
		}
		if !ready {
			continue
		}
		var ext, internal string
		for _, a := range n.Status.Addresses {
			switch {
			case a.Type == corev1.NodeExternalIP && ext == "":
				ext = a.Address
			case a.Type == corev1.NodeInternalIP && internal == "":
				internal = a.Address
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

// StoreKarmadaKubeconfig reads <release>-kubeconfig on the manager, points it at the manager's
// node port, checks that the API answers with TLS verified against the chart's CA, and stores
// it (and copies it into fleet.KubeconfigDir when set).
func (d *Driver) StoreKarmadaKubeconfig(ctx context.Context, f *spec.Fleet) error {
	data, err := d.externalKubeconfig(ctx, f)
	if err != nil {
		return fmt.Errorf("karmada kubeconfig: %w", err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return fmt.Errorf("karmada kubeconfig: %w", err)
	}
	if err := answers(ctx, cfg); err != nil {
		return fmt.Errorf("karmada kubeconfig: the Karmada API at %s: %w", cfg.Host, err)
	}
	if err := d.cfg.Store.WriteFile(kube.KarmadaKubeconfig, data); err != nil {
		return fmt.Errorf("karmada kubeconfig: %w", err)
	}
	if f.KubeconfigDir != "" {
		if err := state.WritePrivateFile(filepath.Join(f.KubeconfigDir, KubeconfigFile), data); err != nil {
			return fmt.Errorf("karmada kubeconfig: %w", err)
		}
	}
	d.log.Info("karmada kubeconfig stored", "server", cfg.Host)
	return nil
}

func (d *Driver) externalKubeconfig(ctx context.Context, f *spec.Fleet) ([]byte, error) {
	mgr, err := d.member(f, f.Manager.Name)
	if err != nil {
		return nil, err
	}
	name, ns := planner.KarmadaRelease(f)
	s, err := mgr.kube.CoreV1().Secrets(ns).Get(ctx, name+"-kubeconfig", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read secret %s/%s-kubeconfig on %s: %w", ns, name, f.Manager.Name, err)
	}
	raw := s.Data["kubeconfig"]
	if len(raw) == 0 {
		return nil, fmt.Errorf("secret %s/%s-kubeconfig has no key kubeconfig", ns, name)
	}
	kc, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s-kubeconfig: %w", ns, name, err)
	}
	nodeIP, err := d.managerNodeIP(ctx, f)
	if err != nil {
		return nil, err
	}
	server := planner.KarmadaServer(f, nodeIP)
	if len(kc.Clusters) == 0 {
		return nil, fmt.Errorf("secret %s/%s-kubeconfig names no cluster", ns, name)
	}
	for cname, c := range kc.Clusters {
		if len(c.CertificateAuthorityData) == 0 {
			return nil, fmt.Errorf("secret %s/%s-kubeconfig: cluster %s carries no CA: refusing to trust the Karmada API blindly", ns, name, cname)
		}
		c.Server = server
		c.InsecureSkipTLSVerify = false
	}
	return clientcmd.Write(*kc)
}

// answers checks that the API behind cfg answers /version, explaining TLS failures.
func answers(ctx context.Context, cfg *rest.Config) error {
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = kc.Discovery().RESTClient().Get().AbsPath("/version").DoRaw(ctx)
	if err == nil {
		return nil
	}
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var verifyErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &hostErr):
		return fmt.Errorf("TLS: its certificate is not valid for %s (add the address to the chart's certs.auto.hosts; "+
			"reconcile adds the manager's node IP): %w", kube.Host(cfg.Host), err)
	case errors.As(err, &authErr), errors.As(err, &verifyErr):
		return fmt.Errorf("TLS: its certificate does not verify against the CA in the release's kubeconfig: %w", err)
	}
	return err
}

// WaitControlPlaneReady waits (bounded by ReadyTimeout) for /readyz of the Karmada API and for
// APIService v1alpha1.cluster.karmada.io to be Available.
func (d *Driver) WaitControlPlaneReady(ctx context.Context, _ *spec.Fleet) error {
	kc, err := d.karmada()
	if err != nil {
		return fmt.Errorf("karmada ready: %w", err)
	}
	err = poll(ctx, d.cfg.ReadyTimeout, "the Karmada API /readyz and APIService "+apiServiceName+" Available",
		func(ctx context.Context) (bool, error) { return controlPlaneReady(ctx, kc.kube) })
	if err != nil {
		return fmt.Errorf("karmada ready: %w", err)
	}
	return nil
}

// controlPlaneReady reports /readyz and the APIService; when not ready the error says why.
func controlPlaneReady(ctx context.Context, kc kubernetes.Interface) (bool, error) {
	if body, err := kc.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return false, fmt.Errorf("/readyz: %w: %s", err, body)
	}
	ok, why, err := apiServiceAvailable(ctx, kc)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, errors.New(why)
	}
	return true, nil
}

// apiServiceAvailable reads APIService v1alpha1.cluster.karmada.io's Available condition.
func apiServiceAvailable(ctx context.Context, kc kubernetes.Interface) (bool, string, error) {
	body, err := kc.Discovery().RESTClient().Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/" + apiServiceName).DoRaw(ctx)
	if err != nil {
		return false, "", fmt.Errorf("APIService %s: %w", apiServiceName, err)
	}
	var svc struct {
		Status struct {
			Conditions []metav1.Condition `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &svc); err != nil {
		return false, "", fmt.Errorf("APIService %s: %w", apiServiceName, err)
	}
	for _, c := range svc.Status.Conditions {
		if c.Type == "Available" {
			if c.Status == metav1.ConditionTrue {
				return true, "", nil
			}
			return false, fmt.Sprintf("APIService %s Available=%s (%s): %s", apiServiceName, c.Status, c.Reason, c.Message), nil
		}
	}
	return false, "APIService " + apiServiceName + " has no Available condition yet", nil
}
