package labworld

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"
)

// IstiodChain is the certificate chain istiod presents on its TLS xDS port (IstiodInfo's
// SecureGRPC, the chart's 15012): its own serving certificate, issued at start from the CA
// it signs with (with a plugged-in CA, the cacerts intermediate), then that CA's chain. It is
// what a proxy connecting to istiod verifies against the mesh root, so it shows which CA
// istiod really uses, not just what its Secret holds.
func IstiodChain(ctx context.Context, addr string) ([]*x509.Certificate, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		// The chain is read, not trusted: the caller compares it with the mesh root.
		Config: &tls.Config{InsecureSkipVerify: true, ServerName: "istiod.istio-system.svc", NextProtos: []string{"h2", "http/1.1"}}} //nolint:gosec
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	chain := c.(*tls.Conn).ConnectionState().PeerCertificates
	if len(chain) == 0 {
		return nil, errors.New("istiod presented no certificate")
	}
	return chain, nil
}

// ChainRoot says whether chain (leaf first) leads to root: one of its certificates is root,
// or its last one is signed by root; and describes the chain's top for a person: the
// fingerprint of a self-signed last certificate, else its issuer's name.
func ChainRoot(chain []*x509.Certificate, root *x509.Certificate) (ours bool, top string) {
	if len(chain) == 0 {
		return false, "no certificate"
	}
	last := chain[len(chain)-1]
	top = "issuer " + last.Issuer.String()
	if last.CheckSignatureFrom(last) == nil {
		top = "root " + shortFingerprint(last)
	}
	if root == nil {
		return false, top
	}
	for _, c := range chain {
		if c.Equal(root) {
			return true, top
		}
	}
	return last.CheckSignatureFrom(root) == nil, top
}

// ChainIntermediate is the CA certificate that issued chain's leaf (chain[1]), or nil.
func ChainIntermediate(chain []*x509.Certificate) *x509.Certificate {
	if len(chain) < 2 {
		return nil
	}
	return chain[1]
}

func shortFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])[:16]
}

// chainText is what show prints of the chain an istiod serves, against the mesh root (nil
// when the state store holds none).
func chainText(ctx context.Context, addr string, root *x509.Certificate) string {
	chain, err := IstiodChain(ctx, addr)
	if err != nil {
		return "its TLS chain unreadable: " + firstLine(err.Error())
	}
	ours, top := ChainRoot(chain, root)
	switch {
	case root == nil:
		return fmt.Sprintf("serves a chain to %s (no mesh root in the state to compare)", top)
	case ours:
		return fmt.Sprintf("serves a chain to the mesh root %s", shortFingerprint(root))
	default:
		return fmt.Sprintf("serves a chain to ANOTHER root (%s), not the mesh root %s", top, shortFingerprint(root))
	}
}
