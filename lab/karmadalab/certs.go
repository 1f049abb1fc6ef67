package karmadalab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// certValidity is long enough for any lab run and short enough never to be mistaken for real.
const certValidity = 7 * 24 * time.Hour

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
	ca, err := newAuthority("ca")
	if err != nil {
		return nil, err
	}
	fp, err := newAuthority("front-proxy-ca")
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
	server, err := ca.issue(certRequest{commonName: "system:admin", organizations: []string{"system:masters"},
		dnsNames: dns, ips: ips, server: true, client: true})
	if err != nil {
		return nil, err
	}
	proxy, err := fp.issue(certRequest{commonName: "front-proxy-client", client: true})
	if err != nil {
		return nil, err
	}
	return &Certs{
		CACert: ca.certPEM, CAKey: ca.keyPEM,
		ServerCert: server.certPEM, ServerKey: server.keyPEM,
		FrontProxyCA: fp.certPEM, FrontProxyCAKey: fp.keyPEM,
		FrontProxyClientCert: proxy.certPEM, FrontProxyClientKey: proxy.keyPEM,
	}, nil
}

// authority is a CA that can issue leaf certificates.
type authority struct {
	cert            *x509.Certificate
	key             crypto.Signer
	certPEM, keyPEM []byte
}

func newAuthority(commonName string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := privateKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der), keyPEM: keyPEM}, nil
}

// loadAuthority parses a PEM CA certificate and its PEM private key.
func loadAuthority(certPEM, keyPEM []byte) (*authority, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil {
		return nil, errors.New("CA certificate: no PEM block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("CA key: no PEM block")
	}
	var key any
	switch kb.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key cannot sign")
	}
	return &authority{cert: cert, key: signer, certPEM: certPEM, keyPEM: keyPEM}, nil
}

type keyPair struct{ certPEM, keyPEM []byte }

type certRequest struct {
	commonName     string
	organizations  []string
	dnsNames       []string
	ips            []net.IP
	server, client bool
}

func (a *authority) issue(r certRequest) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: r.commonName, Organization: r.organizations},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     r.dnsNames,
		IPAddresses:  r.ips,
	}
	if r.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if r.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return keyPair{}, fmt.Errorf("certificate %s: %w", r.commonName, err)
	}
	keyPEM, err := privateKeyPEM(key)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{certPEM: pemBlock("CERTIFICATE", der), keyPEM: keyPEM}, nil
}

// serviceAccountKey returns a PEM private key and its PEM public key for signing tokens.
func serviceAccountKey() (keyPEM, pubPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = privateKeyPEM(key); err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, err
	}
	return keyPEM, pemBlock("PUBLIC KEY", pub), nil
}

func privateKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pemBlock("EC PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
