package karmadalab

import (
	"net"

	"github.com/reconcile-dev/reconcile/lab/cluster"
)

// Certs are the PEM certificates and keys of a Karmada control plane, as the chart's pre-install
// Job generates them (Secret <release>-cert). They hold private keys: keep them out of logs.
type Certs struct {
	// CACert and CAKey are server-ca.crt/.key: they sign the serving certificate and every client
	// certificate karmada-apiserver accepts.
	CACert, CAKey []byte
	// ServerCert and ServerKey are karmada.crt/.key: CN=system:admin, O=system:masters, client and
	// server auth, SANs = certs.auto.hosts. karmada-apiserver serves with it, admins log in with it.
	ServerCert, ServerKey []byte
	// FrontProxyCA signs FrontProxyClientCert, the certificate karmada-apiserver presents to
	// aggregated API servers.
	FrontProxyCA, FrontProxyClientCert, FrontProxyClientKey []byte
	// FrontProxyCAKey is kept so more proxy clients can be issued; nil when not known.
	FrontProxyCAKey []byte
}

// GenerateCerts creates a CA, a front-proxy CA and the karmada certificate whose SANs are exactly
// hosts (IP literals become IP SANs, everything else DNS SANs, wildcards included).
func GenerateCerts(hosts []string) (*Certs, error) {
	ca, err := cluster.NewCA("ca")
	if err != nil {
		return nil, err
	}
	fp, err := cluster.NewCA("front-proxy-ca")
	if err != nil {
		return nil, err
	}
	var dns []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" {
			dns = append(dns, h)
		}
	}
	server, err := ca.Issue(cluster.CertRequest{CommonName: "system:admin", Organizations: []string{"system:masters"},
		DNSNames: dns, IPs: ips, Server: true, Client: true})
	if err != nil {
		return nil, err
	}
	proxy, err := fp.Issue(cluster.CertRequest{CommonName: "front-proxy-client", Client: true})
	if err != nil {
		return nil, err
	}
	return &Certs{
		CACert: ca.CertPEM, CAKey: ca.KeyPEM,
		ServerCert: server.CertPEM, ServerKey: server.KeyPEM,
		FrontProxyCA: fp.CertPEM, FrontProxyCAKey: fp.KeyPEM,
		FrontProxyClientCert: proxy.CertPEM, FrontProxyClientKey: proxy.KeyPEM,
	}, nil
}
