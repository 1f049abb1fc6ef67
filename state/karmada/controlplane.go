package karmada

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/helm"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// installControlPlane installs or upgrades the Karmada chart on cluster (the manager) exactly
// as the release payload says.
func (d *Driver) installControlPlane(ctx context.Context, cluster string, rel plan.Release) error {
	key := releaseKey(rel.Namespace, rel.Name)
	if err := checkRelease("karmada release "+key, &rel); err != nil {
		return err
	}
	mgr, err := d.member(cluster)
	if err != nil {
		return fmt.Errorf("karmada release %s: %w", key, err)
	}
	if err := d.ensureRelease(ctx, mgr, rel, rel.Values); err != nil {
		return fmt.Errorf("karmada release %s on %s: %w", key, cluster, err)
	}
	return nil
}

// ensureRelease loads the release's chart and installs or upgrades it on the cluster with
// values (a copy is handed on: the step's payload is never changed), as the payload says.
func (d *Driver) ensureRelease(ctx context.Context, c clients, rel plan.Release, values map[string]any) error {
	hc, err := d.cfg.Helm(c.rest)
	if err != nil {
		return err
	}
	ch, err := d.cfg.LoadChart(ctx, rel.Chart, rel.ChartName, d.cfg.ChartCache)
	if err != nil {
		return err
	}
	_, err = hc.Ensure(ctx, helm.Release{Name: rel.Name, Namespace: rel.Namespace, Chart: ch,
		Values: plan.DeepCopyValues(values), Timeout: rel.Timeout.Duration, Wait: rel.Wait,
		WaitForJobs: rel.WaitForJobs, CreateNamespace: rel.CreateNamespace})
	return err
}

// nodeAddress waits (bounded by ReadyTimeout) until cluster has a Ready node with an address
// and returns the first of the sorted Ready nodes' addresses (see nodeIPs). A timeout is
// retryable: nodes come up on their own.
func (d *Driver) nodeAddress(ctx context.Context, cluster string) (string, error) {
	c, err := d.member(cluster)
	if err != nil {
		return "", fmt.Errorf("node address of %s: %w", cluster, err)
	}
	ip, err := waitNodeIP(ctx, d.cfg.Log, c.kube, cluster, d.cfg.ReadyTimeout)
	if err != nil {
		return "", fmt.Errorf("node address of %s: %w", cluster, err)
	}
	return ip, nil
}

func waitNodeIP(ctx context.Context, log *slog.Logger, kc kubernetes.Interface, cluster string, timeout time.Duration) (string, error) {
	var ip string
	err := poll(ctx, log, timeout, "a Ready node of "+cluster+" with an address", func(ctx context.Context) (bool, error) {
		nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("list nodes: %w", err)
		}
		ips := nodeIPs(nodes.Items)
		if len(ips) == 0 {
			return false, fmt.Errorf("none of its %d nodes is Ready with an IP address", len(nodes.Items))
		}
		ip = ips[0]
		return true, nil
	})
	if err != nil && ctx.Err() == nil {
		return "", state.Transient(err, 0)
	}
	return ip, err
}

// nodeIPs are the ExternalIP addresses of Ready nodes (InternalIP when a node has none), sorted.
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

// storeKarmadaKubeconfig reads <Release>-kubeconfig in Namespace on cluster (the manager),
// points it at Server, checks that the API answers with TLS verified against the chart's CA,
// and stores it (and copies it to CopyTo when set).
func (d *Driver) storeKarmadaKubeconfig(ctx context.Context, cluster string, p plan.KarmadaKubeconfig) error {
	server, err := known("karmada kubeconfig: server", p.Server)
	if err != nil {
		return err
	}
	if p.Release == "" || p.Namespace == "" {
		return terminalf("karmada kubeconfig: the payload names no release or namespace")
	}
	data, err := d.externalKubeconfig(ctx, cluster, p.Namespace, p.Release, server)
	if err != nil {
		return fmt.Errorf("karmada kubeconfig: %w", err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return fmt.Errorf("karmada kubeconfig: %w", err)
	}
	cfg.WrapTransport = d.wrap
	if err := answers(ctx, cfg); err != nil {
		return fmt.Errorf("karmada kubeconfig: the Karmada API at %s: %w", cfg.Host, err)
	}
	if err := d.cfg.Store.WriteFile(kube.KarmadaKubeconfig, data); err != nil {
		return fmt.Errorf("karmada kubeconfig: %w", err)
	}
	if p.CopyTo != "" {
		if err := state.WritePrivateFile(p.CopyTo, data); err != nil {
			return fmt.Errorf("karmada kubeconfig: %w", err)
		}
	}
	d.log.Info("karmada kubeconfig stored", "server", cfg.Host)
	return nil
}

func (d *Driver) externalKubeconfig(ctx context.Context, cluster, ns, release, server string) ([]byte, error) {
	mgr, err := d.member(cluster)
	if err != nil {
		return nil, err
	}
	name := release + "-kubeconfig"
	s, err := mgr.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read secret %s/%s on %s: %w", ns, name, cluster, err)
	}
	raw := s.Data["kubeconfig"]
	if len(raw) == 0 {
		return nil, fmt.Errorf("secret %s/%s has no key kubeconfig", ns, name)
	}
	kc, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	if len(kc.Clusters) == 0 {
		return nil, fmt.Errorf("secret %s/%s names no cluster", ns, name)
	}
	for cname, c := range kc.Clusters {
		if len(c.CertificateAuthorityData) == 0 {
			return nil, fmt.Errorf("secret %s/%s: cluster %s carries no CA: refusing to trust the Karmada API blindly", ns, name, cname)
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

// waitControlPlaneReady waits (bounded by ReadyTimeout) for /readyz of the Karmada API and for
// APIService v1alpha1.cluster.karmada.io to be Available.
func (d *Driver) waitControlPlaneReady(ctx context.Context) error {
	kc, err := d.karmada()
	if err != nil {
		return fmt.Errorf("karmada ready: %w", err)
	}
	err = poll(ctx, d.cfg.Log, d.cfg.ReadyTimeout, "the Karmada API /readyz and APIService "+apiServiceName+" Available",
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
