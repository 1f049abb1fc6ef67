// Package karmadalab runs a real Karmada control plane on loopback for the lab, and a Player that
// plays the kubelet for the Karmada Helm chart: where the chart would run pods, the Player runs
// the Karmada binaries as processes and completes the chart's Jobs after doing their effect.
package karmadalab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/lab/cluster"
)

const (
	// FieldManager is the server-side apply field manager of everything the lab applies.
	FieldManager = "karmadalab"
	// SystemNamespace and ClusterNamespace are the namespaces the chart's static resources create
	// in the Karmada API.
	SystemNamespace  = "karmada-system"
	ClusterNamespace = "karmada-cluster"

	// internalServerName is the TLS server name the control plane's own components use to reach
	// karmada-apiserver: it serves a lab-issued certificate for it (SNI), so the components work
	// whatever certs.auto.hosts says, while clients dialing the IP get the chart's certificate.
	internalServerName = "karmada-apiserver.karmadalab.internal"

	apiServerTimeout  = 120 * time.Second
	componentTimeout  = 90 * time.Second
	apiServiceTimeout = 90 * time.Second
)

// ControlPlaneOptions describe one Karmada control plane.
type ControlPlaneOptions struct {
	// Name distinguishes the control plane's etcd prefixes (/karmada-<Name>...). DNS label.
	Name string
	// Dir holds certificates, kubeconfigs and logs (0700, files 0600).
	Dir string
	// Address is the loopback address karmada-apiserver serves on, e.g. the manager node's IP.
	// Empty means 127.0.0.1.
	Address string
	// Port is karmada-apiserver's port, e.g. the chart's NodePort 32443; 0 picks a free one.
	Port    int
	Etcd    *cluster.Etcd
	Bins    cluster.Binaries
	Karmada cluster.KarmadaBinaries
	// Certs are the chart's certificates; nil generates them with DefaultHosts(Address). CAKey is
	// required: the lab issues its components' serving certificates from that CA.
	Certs *Certs
	// CRDDir holds the CRDs to apply; empty means the chart's _crds/bases in the module cache.
	CRDDir string
	Log    *slog.Logger
}

// ControlPlane is a running karmada-apiserver, karmada-aggregated-apiserver, karmada-webhook,
// karmada-controller-manager, karmada-scheduler and a kube-controller-manager for the Karmada API.
type ControlPlane struct {
	name, address string
	port          int
	certs         Certs
	kubeconfig    []byte
	restConfig    *rest.Config
	internal      *rest.Config

	mu       sync.Mutex
	procs    []*cluster.Process
	stopOnce sync.Once
	stopErr  error
}

// DefaultHosts are the chart's default certs.auto.hosts for namespace karmada-system, plus
// address when it is not empty.
func DefaultHosts(address string) []string {
	h := []string{"kubernetes.default.svc", "*.etcd.karmada-system.svc.cluster.local",
		"*.karmada-system.svc.cluster.local", "*.karmada-system.svc", "localhost", "127.0.0.1"}
	if address != "" && address != "127.0.0.1" {
		h = append(h, address)
	}
	return h
}

// ChartDir is the Karmada chart inside the karmada module in the module cache, at the version
// the lab builds (cluster.KarmadaVersion).
func ChartDir() (string, error) {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		out, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			return "", fmt.Errorf("karmada chart: go env GOMODCACHE: %w", err)
		}
		cache = strings.TrimSpace(string(out))
	}
	dir := filepath.Join(cache, "github.com", "karmada-io", "karmada@"+cluster.KarmadaVersion, "charts", "karmada")
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
		return "", fmt.Errorf("karmada chart not in the module cache (go mod download github.com/karmada-io/karmada@%s): %w", cluster.KarmadaVersion, err)
	}
	return dir, nil
}

// StartControlPlane starts every component, applies the CRDs, the namespaces, the APIService of
// the aggregated API server and the webhook configurations, and returns once /readyz answers,
// the APIService is Available and the controllers report healthy. On error everything started
// is stopped again.
func StartControlPlane(ctx context.Context, o ControlPlaneOptions) (*ControlPlane, error) {
	cp, err := startControlPlane(ctx, o)
	if err != nil {
		if cp != nil {
			_ = cp.Stop()
		}
		return nil, fmt.Errorf("start karmada control plane %q: %w", o.Name, err)
	}
	return cp, nil
}

// files are the paths the components are given.
type files struct {
	ca, frontProxyCA                string
	serverCert, serverKey           string
	internalCert, internalKey       string
	proxyClientCert, proxyClientKey string
	saKey, saPub                    string
	webhookCertDir                  string
	internalKubeconfig              string
}

func startControlPlane(ctx context.Context, o ControlPlaneOptions) (*ControlPlane, error) {
	if o.Name == "" || o.Dir == "" || o.Etcd == nil {
		return nil, errors.New("Name, Dir and Etcd are required")
	}
	if o.Bins.KubeAPIServer == "" || o.Bins.KubeControllerManager == "" || o.Karmada.ControllerManager == "" {
		return nil, errors.New("binaries missing from Bins or Karmada")
	}
	if o.Address == "" {
		o.Address = "127.0.0.1"
	}
	if ip := net.ParseIP(o.Address); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("address %q is not a loopback IP: the lab stays on loopback", o.Address)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Certs == nil {
		c, err := GenerateCerts(DefaultHosts(o.Address))
		if err != nil {
			return nil, err
		}
		o.Certs = c
	}
	if o.CRDDir == "" {
		chart, err := ChartDir()
		if err != nil {
			return nil, err
		}
		o.CRDDir = filepath.Join(chart, "_crds", "bases")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, err
	}
	port := o.Port
	if port == 0 {
		var err error
		if port, err = cluster.FreePort(o.Address); err != nil {
			return nil, err
		}
	}
	cp := &ControlPlane{name: o.Name, address: o.Address, port: port, certs: *o.Certs}
	f, err := cp.writeFiles(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}

	// karmada-apiserver
	apiArgs := []string{
		"--etcd-servers", o.Etcd.Endpoint(),
		"--etcd-prefix", "/karmada-" + o.Name,
		"--bind-address", o.Address,
		"--advertise-address", o.Address,
		"--secure-port", strconv.Itoa(port),
		"--tls-cert-file", f.serverCert, "--tls-private-key-file", f.serverKey,
		"--tls-sni-cert-key", f.internalCert + "," + f.internalKey + ":" + internalServerName,
		"--client-ca-file", f.ca,
		"--service-account-key-file", f.saPub,
		"--service-account-signing-key-file", f.saKey,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--authorization-mode", "Node,RBAC",
		// As the chart's karmada-apiserver: Pull agents' CSRs are made with bootstrap tokens.
		"--enable-bootstrap-token-auth",
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--disable-admission-plugins", "ServiceAccount,StorageObjectInUseProtection",
		"--endpoint-reconciler-type", "none",
		"--allow-privileged",
		"--profiling=false",
		"--requestheader-client-ca-file", f.frontProxyCA,
		"--requestheader-allowed-names", "front-proxy-client",
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", f.proxyClientCert,
		"--proxy-client-key-file", f.proxyClientKey,
	}
	apiServer, err := cp.start(o.Dir, "karmada-apiserver", o.Bins.KubeAPIServer, apiArgs...)
	if err != nil {
		return cp, err
	}
	client, err := kubernetes.NewForConfig(cp.internal)
	if err != nil {
		return cp, err
	}
	err = cluster.PollUntil(ctx, apiServerTimeout, "karmada-apiserver /readyz", []*cluster.Process{apiServer}, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return false, fmt.Errorf("%w: %s", err, body)
		}
		return true, nil
	})
	if err != nil {
		return cp, err
	}
	log.Debug("karmada-apiserver ready", "cluster", o.Name, "endpoint", cp.Endpoint())

	if err := applyCRDs(ctx, cp.internal, o.CRDDir); err != nil {
		return cp, err
	}
	for _, ns := range []string{SystemNamespace, ClusterNamespace} {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return cp, fmt.Errorf("namespace %s: %w", ns, err)
		}
	}

	// kube-controller-manager: garbage collection, namespace deletion and service account tokens
	// in the Karmada API, as the chart's karmada-kube-controller-manager.
	kcmPort, err := cluster.FreePort("127.0.0.1")
	if err != nil {
		return cp, err
	}
	if _, err := cp.start(o.Dir, "kube-controller-manager", o.Bins.KubeControllerManager,
		"--kubeconfig", f.internalKubeconfig,
		"--authentication-kubeconfig", f.internalKubeconfig,
		"--authorization-kubeconfig", f.internalKubeconfig,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(kcmPort),
		"--cert-dir", filepath.Join(o.Dir, "kcm-serving"),
		"--service-account-private-key-file", f.saKey,
		"--root-ca-file", f.ca,
		"--cluster-signing-cert-file", f.ca,
		"--cluster-signing-key-file", filepath.Join(o.Dir, "pki", "ca.key"),
		"--leader-elect=false",
		"--cluster-name", "karmada-"+o.Name,
		"--controllers", "namespace,garbagecollector,serviceaccount-token,clusterrole-aggregation,bootstrapsigner,tokencleaner,csrsigning,csrapproving,csrcleaner",
		"--profiling=false",
	); err != nil {
		return cp, err
	}

	// karmada-aggregated-apiserver, reached by karmada-apiserver through an ExternalName Service
	// (localhost) and the APIService's port.
	aggPort, err := cluster.FreePort("127.0.0.1")
	if err != nil {
		return cp, err
	}
	aggregated, err := cp.start(o.Dir, "karmada-aggregated-apiserver", o.Karmada.AggregatedAPIServer,
		"--kubeconfig", f.internalKubeconfig,
		"--authentication-kubeconfig", f.internalKubeconfig,
		"--authorization-kubeconfig", f.internalKubeconfig,
		"--etcd-servers", o.Etcd.Endpoint(),
		"--etcd-prefix", "/karmada-"+o.Name+"-aggregated",
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(aggPort),
		"--tls-cert-file", f.internalCert, "--tls-private-key-file", f.internalKey,
		"--audit-log-path", "-", "--audit-log-maxage", "0", "--audit-log-maxbackup", "0",
		"--profiling=false",
	)
	if err != nil {
		return cp, err
	}
	if err := registerAggregatedAPI(ctx, cp.internal, int32(aggPort), cp.certs.CACert); err != nil {
		return cp, err
	}

	// karmada-webhook, registered by url on loopback.
	whPort, err := cluster.FreePort("127.0.0.1")
	if err != nil {
		return cp, err
	}
	// Its health probe has no checks, but unset it would listen on :8000 of every interface.
	whHealth, err := cluster.FreePort("127.0.0.1")
	if err != nil {
		return cp, err
	}
	webhookProc, err := cp.start(o.Dir, "karmada-webhook", o.Karmada.Webhook,
		"--kubeconfig", f.internalKubeconfig,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(whPort),
		"--cert-dir", f.webhookCertDir,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(whHealth),
	)
	if err != nil {
		return cp, err
	}
	// karmada-webhook registers no health checks: wait until it serves TLS with its certificate.
	if err := waitTLS(ctx, "karmada-webhook", webhookProc, "127.0.0.1:"+strconv.Itoa(whPort), cp.certs.CACert); err != nil {
		return cp, err
	}
	if err := registerWebhooks(ctx, client, "https://127.0.0.1:"+strconv.Itoa(whPort), cp.certs.CACert); err != nil {
		return cp, err
	}

	// karmada-controller-manager and karmada-scheduler.
	type component struct{ name, bin string }
	for _, c := range []component{{"karmada-controller-manager", o.Karmada.ControllerManager}, {"karmada-scheduler", o.Karmada.Scheduler}} {
		health, err := cluster.FreePort("127.0.0.1")
		if err != nil {
			return cp, err
		}
		args := []string{
			"--kubeconfig", f.internalKubeconfig,
			"--leader-elect=false",
			"--metrics-bind-address", "0",
			"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(health),
		}
		if c.name == "karmada-controller-manager" {
			args = append(args, "--cluster-status-update-frequency", "10s")
		}
		p, err := cp.start(o.Dir, c.name, c.bin, args...)
		if err != nil {
			return cp, err
		}
		if err := waitHealthy(ctx, c.name, p, health, "/healthz"); err != nil {
			return cp, err
		}
	}
	if err := waitAPIService(ctx, cp.internal, aggregated); err != nil {
		return cp, err
	}
	log.Info("karmada control plane ready", "cluster", o.Name, "endpoint", cp.Endpoint())
	return cp, nil
}

// writeFiles writes the PKI and kubeconfigs under dir and sets the control plane's client configs.
func (cp *ControlPlane) writeFiles(dir string) (files, error) {
	var f files
	c := cp.certs
	if len(c.CACert) == 0 || len(c.CAKey) == 0 || len(c.ServerCert) == 0 || len(c.ServerKey) == 0 ||
		len(c.FrontProxyCA) == 0 || len(c.FrontProxyClientCert) == 0 || len(c.FrontProxyClientKey) == 0 {
		return f, errors.New("certs incomplete: CACert, CAKey, ServerCert, ServerKey and the front-proxy CA and client are all required")
	}
	ca, err := cluster.LoadCA(c.CACert, c.CAKey)
	if err != nil {
		return f, err
	}
	internal, err := ca.Issue(cluster.CertRequest{
		CommonName: "karmadalab-internal",
		DNSNames: []string{internalServerName, "localhost",
			"karmada-aggregated-apiserver.karmada-system.svc", "karmada-webhook.karmada-system.svc"},
		IPs:    []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(cp.address)},
		Server: true,
	})
	if err != nil {
		return f, err
	}
	saKey, saPub, err := cluster.ServiceAccountKey()
	if err != nil {
		return f, err
	}
	pki := filepath.Join(dir, "pki")
	f.webhookCertDir = filepath.Join(dir, "webhook-serving")
	for _, d := range []string{pki, f.webhookCertDir, filepath.Join(dir, "kcm-serving")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return f, err
		}
	}
	writes := []struct {
		path *string
		dir  string
		name string
		data []byte
	}{
		{&f.ca, pki, "ca.crt", c.CACert},
		{nil, pki, "ca.key", c.CAKey},
		{&f.serverCert, pki, "karmada.crt", c.ServerCert},
		{&f.serverKey, pki, "karmada.key", c.ServerKey},
		{&f.internalCert, pki, "internal.crt", internal.CertPEM},
		{&f.internalKey, pki, "internal.key", internal.KeyPEM},
		{&f.frontProxyCA, pki, "front-proxy-ca.crt", c.FrontProxyCA},
		{&f.proxyClientCert, pki, "front-proxy-client.crt", c.FrontProxyClientCert},
		{&f.proxyClientKey, pki, "front-proxy-client.key", c.FrontProxyClientKey},
		{&f.saKey, pki, "sa.key", saKey},
		{&f.saPub, pki, "sa.pub", saPub},
		{nil, f.webhookCertDir, "tls.crt", internal.CertPEM},
		{nil, f.webhookCertDir, "tls.key", internal.KeyPEM},
	}
	for _, w := range writes {
		p, err := writeSecret(w.dir, w.name, w.data)
		if err != nil {
			return f, err
		}
		if w.path != nil {
			*w.path = p
		}
	}
	if cp.kubeconfig, err = adminKubeconfig(cp.Endpoint(), "", c); err != nil {
		return f, err
	}
	if cp.restConfig, err = clientcmd.RESTConfigFromKubeConfig(cp.kubeconfig); err != nil {
		return f, err
	}
	internalKC, err := adminKubeconfig(cp.Endpoint(), internalServerName, c)
	if err != nil {
		return f, err
	}
	if cp.internal, err = clientcmd.RESTConfigFromKubeConfig(internalKC); err != nil {
		return f, err
	}
	f.internalKubeconfig, err = writeSecret(dir, "karmada-internal.kubeconfig", internalKC)
	if err != nil {
		return f, err
	}
	_, err = writeSecret(dir, "karmada.kubeconfig", cp.kubeconfig)
	return f, err
}

// adminKubeconfig is a kubeconfig for server logging in with the karmada (system:admin)
// certificate, verifying the server against the CA (as tlsServerName when not empty).
func adminKubeconfig(server, tlsServerName string, c Certs) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["karmada-apiserver"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.CACert, TLSServerName: tlsServerName}
	cfg.AuthInfos["karmada-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.ServerCert, ClientKeyData: c.ServerKey}
	cfg.Contexts["karmada-apiserver"] = &clientcmdapi.Context{Cluster: "karmada-apiserver", AuthInfo: "karmada-admin"}
	cfg.CurrentContext = "karmada-apiserver"
	return clientcmd.Write(*cfg)
}

func writeSecret(dir, name string, data []byte) (string, error) {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return "", err
	}
	return p, os.Chmod(p, 0o600)
}

// start runs one component with its log in dir/<name>.log and records it for Stop.
func (cp *ControlPlane) start(dir, name, bin string, args ...string) (*cluster.Process, error) {
	if bin == "" {
		return nil, fmt.Errorf("no binary for %s", name)
	}
	p, err := cluster.StartProcess(name+" "+cp.name, filepath.Join(dir, name+".log"), bin, args...)
	if err != nil {
		return nil, err
	}
	cp.mu.Lock()
	cp.procs = append(cp.procs, p)
	cp.mu.Unlock()
	return p, nil
}

// waitHealthy polls http://127.0.0.1:<port><path> until it answers 200.
func waitHealthy(ctx context.Context, name string, p *cluster.Process, port int, path string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + path
	return cluster.PollUntil(ctx, componentTimeout, name+" "+path, []*cluster.Process{p}, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return true, nil
	})
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// applyCRDs server-side applies every CRD under dir and waits until all are Established.
func applyCRDs(ctx context.Context, cfg *rest.Config, dir string) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var names []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj unstructured.Unstructured
			if err := dec.Decode(&obj.Object); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return fmt.Errorf("%s: %w", path, err)
			}
			if obj.GetKind() != "CustomResourceDefinition" {
				continue
			}
			body, err := obj.MarshalJSON()
			if err != nil {
				return err
			}
			force := true
			if _, err := dyn.Resource(crdGVR).Patch(ctx, obj.GetName(), types.ApplyPatchType, body,
				metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
				return fmt.Errorf("apply CRD %s: %w", obj.GetName(), err)
			}
			names = append(names, obj.GetName())
		}
	})
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("no CRDs found under %s", dir)
	}
	return cluster.PollUntil(ctx, componentTimeout, "CRDs established", nil, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			crd, err := dyn.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			if !conditionTrue(conds, "Established") {
				return false, fmt.Errorf("CRD %s not established", n)
			}
		}
		return true, nil
	})
}

func conditionTrue(conds []any, typ string) bool {
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

const aggregatedService = "karmada-aggregated-apiserver"

// registerAggregatedAPI applies the ExternalName Service (localhost) and the APIService
// v1alpha1.cluster.karmada.io pointing at it on port.
func registerAggregatedAPI(ctx context.Context, cfg *rest.Config, port int32, caBundle []byte) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: aggregatedService, Namespace: SystemNamespace, Labels: map[string]string{"app": aggregatedService}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := client.CoreV1().Services(SystemNamespace).Create(ctx, svc, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("service %s: %w", aggregatedService, err)
		}
		cur, err := client.CoreV1().Services(SystemNamespace).Get(ctx, aggregatedService, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec = svc.Spec
		if _, err := client.CoreV1().Services(SystemNamespace).Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("service %s: %w", aggregatedService, err)
		}
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": "v1alpha1.cluster.karmada.io", "labels": map[string]any{"app": aggregatedService, "apiserver": "true"}},
		"spec": map[string]any{
			"caBundle":             caBundle,
			"group":                "cluster.karmada.io",
			"groupPriorityMinimum": int64(2000),
			"version":              "v1alpha1",
			"versionPriority":      int64(10),
			"service":              map[string]any{"name": aggregatedService, "namespace": SystemNamespace, "port": int64(port)},
		},
	}}
	body, err := apiService.MarshalJSON()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	force := true
	if _, err := dyn.Resource(apiServiceGVR).Patch(ctx, apiService.GetName(), types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
		return fmt.Errorf("APIService: %w", err)
	}
	return nil
}

// waitAPIService waits until v1alpha1.cluster.karmada.io is Available and Clusters can be listed.
func waitAPIService(ctx context.Context, cfg *rest.Config, aggregated *cluster.Process) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	clusters := schema.GroupVersionResource{Group: "cluster.karmada.io", Version: "v1alpha1", Resource: "clusters"}
	return cluster.PollUntil(ctx, apiServiceTimeout, "APIService v1alpha1.cluster.karmada.io Available", []*cluster.Process{aggregated}, func(ctx context.Context) (bool, error) {
		as, err := dyn.Resource(apiServiceGVR).Get(ctx, "v1alpha1.cluster.karmada.io", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(as.Object, "status", "conditions")
		if !conditionTrue(conds, "Available") {
			return false, fmt.Errorf("not Available: %v", conds)
		}
		if _, err := dyn.Resource(clusters).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return false, err
		}
		return true, nil
	})
}

// registerWebhooks creates or replaces the mutating and validating webhook configurations.
func registerWebhooks(ctx context.Context, client kubernetes.Interface, baseURL string, caBundle []byte) error {
	m, v := webhookConfigurations(baseURL, caBundle)
	mc := client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := mc.Create(ctx, m, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("mutating webhooks: %w", err)
		}
		cur, err := mc.Get(ctx, m.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		m.ResourceVersion = cur.ResourceVersion
		if _, err := mc.Update(ctx, m, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("mutating webhooks: %w", err)
		}
	}
	vc := client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := vc.Create(ctx, v, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("validating webhooks: %w", err)
		}
		cur, err := vc.Get(ctx, v.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		v.ResourceVersion = cur.ResourceVersion
		if _, err := vc.Update(ctx, v, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("validating webhooks: %w", err)
		}
	}
	return nil
}

// Endpoint is karmada-apiserver's URL, https://<Address>:<Port>.
func (cp *ControlPlane) Endpoint() string {
	return "https://" + net.JoinHostPort(cp.address, strconv.Itoa(cp.port))
}

// Port is karmada-apiserver's port.
func (cp *ControlPlane) Port() int { return cp.port }

// Certs returns a copy of the control plane's certificates (with private keys).
func (cp *ControlPlane) Certs() Certs { return cp.certs }

// Kubeconfig is the chart's admin kubeconfig: server Endpoint(), the CA, and the karmada
// (system:admin) client certificate. It verifies the server by its address, so it fails TLS
// when Address is not among the certificate's hosts. It holds a private key.
func (cp *ControlPlane) Kubeconfig() []byte { return append([]byte(nil), cp.kubeconfig...) }

// RESTConfig is Kubeconfig as a client-go config; each call returns a new copy.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.restConfig) }

// PIDs are the process ids of every component (each also its process group id).
func (cp *ControlPlane) PIDs() []int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	pids := make([]int, 0, len(cp.procs))
	for _, p := range cp.procs {
		pids = append(pids, p.Pid())
	}
	return pids
}

// Stop ends every component, newest first, and waits for them to exit, freeing their ports.
// Data stays in etcd. Safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		cp.mu.Lock()
		procs := append([]*cluster.Process(nil), cp.procs...)
		cp.mu.Unlock()
		errs := make([]error, len(procs))
		var wg sync.WaitGroup
		// Clients first, karmada-apiserver (the first started) last.
		for i := len(procs) - 1; i >= 1; i-- {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = procs[i].Stop() }()
		}
		wg.Wait()
		if len(procs) > 0 {
			errs[0] = procs[0].Stop()
		}
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// waitTLS waits until addr completes a TLS handshake verified against caPEM.
func waitTLS(ctx context.Context, name string, p *cluster.Process, addr string, caPEM []byte) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	dialer := &tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	return cluster.PollUntil(ctx, componentTimeout, name+" serving TLS on "+addr, []*cluster.Process{p}, func(ctx context.Context) (bool, error) {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := dialer.DialContext(dctx, "tcp", addr)
		if err != nil {
			return false, err
		}
		conn.Close()
		return true, nil
	})
}
