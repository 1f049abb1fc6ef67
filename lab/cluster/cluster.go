package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	apiServerStartTimeout  = 120 * time.Second
	controllerStartTimeout = 90 * time.Second
	// DefaultHeartbeatInterval keeps nodes well inside the node lifecycle controller's grace
	// period (50s by default in Kubernetes 1.36).
	DefaultHeartbeatInterval = 20 * time.Second
	// ServiceAccountIssuer is the issuer of every lab cluster's service account tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc"
	serviceCIDR          = "10.0.0.0/24"
	firstServiceIP       = "10.0.0.1"
)

// NodeSpec is a Node object a lab cluster creates and keeps Ready; no kubelet runs behind it.
type NodeSpec struct {
	Name       string
	ExternalIP string
	// InternalIP defaults to ExternalIP.
	InternalIP string
	// Labels are added to the Node (for example topology.kubernetes.io/region).
	Labels map[string]string
}

// ClusterOptions describe one lab cluster.
type ClusterOptions struct {
	// Name is the cluster's name: its etcd prefix and kubeconfig context. Lowercase DNS label.
	Name string
	// Dir holds the cluster's certificates, keys, kubeconfigs and logs (created 0700).
	Dir string
	// Address is the loopback address the API server binds to, for example 127.0.0.5.
	// Empty means 127.0.0.1.
	Address string
	// Port is the API server's secure port; 0 picks a free one.
	Port  int
	Etcd  *Etcd
	Bins  Binaries
	Nodes []NodeSpec
	// HeartbeatInterval is how often node Ready conditions are refreshed; 0 means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// ExtraAPIServerArgs and ExtraControllerManagerArgs are appended to the lab's flags; a flag
	// given again overrides the lab's value.
	ExtraAPIServerArgs, ExtraControllerManagerArgs []string
	// PodNetworkProxy, when set, is the Unix socket of an HTTP CONNECT proxy that is the
	// cluster's pod network: the API server reaches Pods and Services through it
	// (egress selection "cluster": admission webhooks, aggregated APIs, the proxy
	// subresources), as it reaches them through Konnectivity in a cluster whose control plane
	// has no route to the pod network (LKE's included), and it resolves a Service to its
	// endpoints (--enable-aggregator-routing) since no kube-proxy routes ClusterIPs.
	PodNetworkProxy string
}

// Cluster is a running kube-apiserver and kube-controller-manager on loopback.
type Cluster struct {
	name       string
	dir        string
	endpoint   string
	caPEM      []byte
	kubeconfig []byte
	restConfig *rest.Config

	apiServer, controllerManager *Process

	stopHeartbeat context.CancelFunc
	heartbeatDone chan struct{}
	stopOnce      sync.Once
	stopErr       error
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// StartCluster generates the cluster's PKI, starts kube-apiserver and kube-controller-manager,
// waits until the API server is ready and the controller-manager has created the default
// ServiceAccount, creates the given Nodes as Ready and starts their heartbeat. On error everything
// started is stopped again.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	c, err := startCluster(ctx, opts)
	if err != nil {
		if c != nil {
			_ = c.Stop()
		}
		return nil, fmt.Errorf("start cluster %q: %w", opts.Name, err)
	}
	return c, nil
}

func startCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if !nameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("name must be a lowercase DNS label")
	}
	if opts.Dir == "" {
		return nil, errors.New("no Dir given")
	}
	if opts.Etcd == nil {
		return nil, errors.New("no Etcd given")
	}
	if opts.Bins.KubeAPIServer == "" || opts.Bins.KubeControllerManager == "" {
		return nil, errors.New("Bins lacks kube-apiserver or kube-controller-manager")
	}
	if opts.Address == "" {
		opts.Address = "127.0.0.1"
	}
	addr := net.ParseIP(opts.Address)
	if addr == nil || !addr.IsLoopback() {
		return nil, fmt.Errorf("address %q is not a loopback IP: lab clusters stay on loopback", opts.Address)
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if err := checkInotify(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		var err error
		if port, err = FreePort(opts.Address); err != nil {
			return nil, err
		}
	}
	kcmPort, err := FreePort(opts.Address)
	if err != nil {
		return nil, err
	}
	endpoint := "https://" + net.JoinHostPort(opts.Address, strconv.Itoa(port))

	files, err := writePKI(opts.Dir, opts.Name, addr, endpoint)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	c := &Cluster{
		name:       opts.Name,
		dir:        opts.Dir,
		endpoint:   endpoint,
		caPEM:      files.caPEM,
		kubeconfig: files.adminKubeconfig,
	}
	if c.restConfig, err = clientcmd.RESTConfigFromKubeConfig(files.adminKubeconfig); err != nil {
		return nil, err
	}

	apiArgs := []string{
		"--etcd-servers", opts.Etcd.Endpoint(),
		"--etcd-prefix", "/" + opts.Name,
		"--bind-address", opts.Address,
		"--advertise-address", opts.Address,
		"--secure-port", strconv.Itoa(port),
		"--tls-cert-file", files.servingCert, "--tls-private-key-file", files.servingKey,
		"--client-ca-file", files.caCert,
		"--service-account-key-file", files.saPub,
		"--service-account-signing-key-file", files.saKey,
		"--service-account-issuer", ServiceAccountIssuer,
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", serviceCIDR,
		// Endpoints may not hold loopback IPs; nothing in the lab reaches the API server through
		// the kubernetes Service.
		"--endpoint-reconciler-type", "none",
		"--allow-privileged",
		"--profiling=false",
		// The aggregation layer, as in any real cluster, so APIServices can be served.
		"--requestheader-client-ca-file", files.frontProxyCACert,
		"--requestheader-allowed-names", "front-proxy-client",
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", files.proxyClientCert,
		"--proxy-client-key-file", files.proxyClientKey,
	}
	if opts.PodNetworkProxy != "" {
		path := filepath.Join(opts.Dir, "egress-selector.yaml")
		if err := os.WriteFile(path, egressSelectorConfig(opts.PodNetworkProxy), 0o600); err != nil {
			return c, err
		}
		apiArgs = append(apiArgs, "--egress-selector-config-file", path, "--enable-aggregator-routing=true")
	}
	c.apiServer, err = StartProcess("kube-apiserver "+opts.Name, filepath.Join(opts.Dir, "kube-apiserver.log"),
		opts.Bins.KubeAPIServer, append(apiArgs, opts.ExtraAPIServerArgs...)...)
	if err != nil {
		return c, err
	}
	client, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return c, err
	}
	err = PollUntil(ctx, apiServerStartTimeout, "kube-apiserver /readyz", []*Process{c.apiServer}, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return false, fmt.Errorf("%w: %s", err, body)
		}
		return true, nil
	})
	if err != nil {
		return c, err
	}

	kcmArgs := []string{
		"--kubeconfig", files.controllerManagerKubeconfig,
		"--authentication-kubeconfig", files.controllerManagerKubeconfig,
		"--authorization-kubeconfig", files.controllerManagerKubeconfig,
		"--bind-address", opts.Address,
		"--secure-port", strconv.Itoa(kcmPort),
		"--tls-cert-file", files.controllerManagerCert, "--tls-private-key-file", files.controllerManagerKey,
		"--client-ca-file", files.caCert,
		"--service-account-private-key-file", files.saKey,
		"--root-ca-file", files.caCert,
		"--use-service-account-credentials",
		"--leader-elect=false",
		"--cluster-name", opts.Name,
		"--controllers", "*",
		"--profiling=false",
	}
	c.controllerManager, err = StartProcess("kube-controller-manager "+opts.Name, filepath.Join(opts.Dir, "kube-controller-manager.log"),
		opts.Bins.KubeControllerManager, append(kcmArgs, opts.ExtraControllerManagerArgs...)...)
	if err != nil {
		return c, err
	}
	kcmHealth := "https://" + net.JoinHostPort(opts.Address, strconv.Itoa(kcmPort)) + "/healthz"
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(files.caPEM)
	kcmClient := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer kcmClient.CloseIdleConnections()
	procs := []*Process{c.apiServer, c.controllerManager}
	err = PollUntil(ctx, controllerStartTimeout, "kube-controller-manager /healthz", procs, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, kcmHealth, nil)
		if err != nil {
			return false, err
		}
		resp, err := kcmClient.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("status %d", resp.StatusCode)
		}
		return true, nil
	})
	if err != nil {
		return c, err
	}
	// The default ServiceAccount appearing shows the controllers run, with their credentials.
	err = PollUntil(ctx, controllerStartTimeout, "the default ServiceAccount", procs, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return c, err
	}

	if err := createNodes(ctx, client, opts.Nodes); err != nil {
		return c, err
	}
	hbCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.stopHeartbeat = cancel
	c.heartbeatDone = make(chan struct{})
	go func() {
		defer close(c.heartbeatDone)
		heartbeat(hbCtx, client, opts.Nodes, opts.HeartbeatInterval)
	}()
	return c, nil
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.name }

// Endpoint is the API server's URL, https://<address>:<port>.
func (c *Cluster) Endpoint() string { return c.endpoint }

// CACert is the PEM certificate of the cluster's CA, which signed the API server's certificate.
func (c *Cluster) CACert() []byte { return append([]byte(nil), c.caPEM...) }

// Kubeconfig is an admin (system:masters) kubeconfig that verifies the server against the
// cluster's CA. It holds a private key: keep it out of logs.
func (c *Cluster) Kubeconfig() []byte { return append([]byte(nil), c.kubeconfig...) }

// RESTConfig is the admin kubeconfig as a client-go config; each call returns a new copy.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// Dir is the directory with the cluster's PKI, kubeconfigs and logs.
func (c *Cluster) Dir() string { return c.dir }

// Stop ends the heartbeat, kube-controller-manager and kube-apiserver (by process group) and
// waits for them to exit. Data stays in etcd under the cluster's prefix. Safe to call twice.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.stopHeartbeat != nil {
			c.stopHeartbeat()
			<-c.heartbeatDone
		}
		var errs []error
		for _, p := range []*Process{c.controllerManager, c.apiServer} {
			if p != nil {
				errs = append(errs, p.Stop())
			}
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// pkiFiles are the paths and contents StartCluster hands to the processes.
type pkiFiles struct {
	caPEM                           []byte
	caCert, frontProxyCACert        string
	servingCert, servingKey         string
	proxyClientCert, proxyClientKey string
	controllerManagerCert           string
	controllerManagerKey            string
	saKey, saPub                    string
	adminKubeconfig                 []byte
	controllerManagerKubeconfig     string
}

// writePKI creates the cluster's CAs, certificates and keys, and its kubeconfigs, under dir/pki
// (0700, files 0600).
func writePKI(dir, name string, addr net.IP, endpoint string) (pkiFiles, error) {
	var f pkiFiles
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return f, err
	}
	ca, err := NewCA(name + "-ca")
	if err != nil {
		return f, err
	}
	frontProxyCA, err := NewCA(name + "-front-proxy-ca")
	if err != nil {
		return f, err
	}
	loopback := []net.IP{addr, net.ParseIP("127.0.0.1")}
	serving, err := ca.Issue(CertRequest{
		CommonName: "kube-apiserver",
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPs:    append(loopback, net.ParseIP(firstServiceIP)),
		Server: true,
	})
	if err != nil {
		return f, err
	}
	admin, err := ca.Issue(CertRequest{CommonName: "lab-admin", Organizations: []string{"system:masters"}, Client: true})
	if err != nil {
		return f, err
	}
	kcmClient, err := ca.Issue(CertRequest{CommonName: "system:kube-controller-manager", Client: true})
	if err != nil {
		return f, err
	}
	kcmServing, err := ca.Issue(CertRequest{CommonName: "kube-controller-manager", DNSNames: []string{"localhost"}, IPs: loopback, Server: true})
	if err != nil {
		return f, err
	}
	proxyClient, err := frontProxyCA.Issue(CertRequest{CommonName: "front-proxy-client", Client: true})
	if err != nil {
		return f, err
	}
	saKey, saPub, err := ServiceAccountKey()
	if err != nil {
		return f, err
	}

	f.caPEM = ca.CertPEM
	writes := []struct {
		path *string
		name string
		data []byte
	}{
		{&f.caCert, "ca.crt", ca.CertPEM},
		{&f.frontProxyCACert, "front-proxy-ca.crt", frontProxyCA.CertPEM},
		{&f.servingCert, "apiserver.crt", serving.CertPEM},
		{&f.servingKey, "apiserver.key", serving.KeyPEM},
		{&f.proxyClientCert, "front-proxy-client.crt", proxyClient.CertPEM},
		{&f.proxyClientKey, "front-proxy-client.key", proxyClient.KeyPEM},
		{&f.controllerManagerCert, "controller-manager.crt", kcmServing.CertPEM},
		{&f.controllerManagerKey, "controller-manager.key", kcmServing.KeyPEM},
		{&f.saKey, "sa.key", saKey},
		{&f.saPub, "sa.pub", saPub},
	}
	for _, w := range writes {
		if *w.path, err = writeSecret(pki, w.name, w.data); err != nil {
			return f, err
		}
	}
	if f.adminKubeconfig, err = kubeconfig(name, endpoint, ca.CertPEM, "lab-admin", admin); err != nil {
		return f, err
	}
	if _, err := writeSecret(dir, "admin.kubeconfig", f.adminKubeconfig); err != nil {
		return f, err
	}
	kcm, err := kubeconfig(name, endpoint, ca.CertPEM, "kube-controller-manager", kcmClient)
	if err != nil {
		return f, err
	}
	f.controllerManagerKubeconfig, err = writeSecret(dir, "controller-manager.kubeconfig", kcm)
	return f, err
}

// kubeconfig serializes a one-context kubeconfig authenticating with a client certificate.
func kubeconfig(cluster, endpoint string, caPEM []byte, user string, kp KeyPair) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{Server: endpoint, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts[cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: user}
	cfg.CurrentContext = cluster
	return clientcmd.Write(*cfg)
}

// egressSelectorConfig is the API server's EgressSelectorConfiguration sending the "cluster"
// egress (Pods and Services) through the HTTP CONNECT proxy on the Unix socket socket; the
// control plane's own connections ("controlplane", etcd) stay direct. (A Unix socket, as
// Konnectivity's is: kube-apiserver 1.36 takes an http:// TCP proxy URL in validation but
// then requires a client certificate for it.)
func egressSelectorConfig(socket string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %q
`, socket))
}
