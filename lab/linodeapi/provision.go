package linodeapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"
)

// startProvisionLocked runs the cluster's provisioning in the background: the
// provisioning delay first, then the Backend, retried until it succeeds or the
// cluster is deleted or the server closed.
func (s *Server) startProvisionLocked(c *cluster) {
	if s.closed {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c.cancel, c.done = cancel, make(chan struct{})
	info := ClusterInfo{ID: c.id, Label: c.label, Region: c.region, K8sVersion: c.k8s}
	for _, p := range c.pools {
		info.Nodes += p.count
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(c.done)
		s.provision(ctx, c, info)
	}()
}

func (s *Server) provision(ctx context.Context, c *cluster, info ClusterInfo) {
	if !sleepCtx(ctx, s.opts.ProvisionDelay) {
		return
	}
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	c.provisionStarted = true
	s.mu.Unlock()

	backoff := 100 * time.Millisecond
	for {
		p, err := s.backend.Provision(ctx, info)
		if err == nil {
			s.mu.Lock()
			if ctx.Err() == nil {
				c.provisioned = true
				c.provisionedAt = s.now()
				c.kubeconfig = p.Kubeconfig
				c.nodeIPs = p.NodeIPs
				c.endpoints = p.APIEndpoints
				if len(c.endpoints) == 0 {
					if srv := kubeconfigServer(p.Kubeconfig); srv != "" {
						c.endpoints = []string{srv}
					}
				}
			}
			s.mu.Unlock()
			return
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stopProvisionLocked cancels a deleted cluster's provisioning and, once that has
// returned, deprovisions it through the Backend in the background. Once the server
// is closed, Close deprovisions it instead: a second Deprovision is avoided, and so
// is a wg.Add racing Close's wg.Wait.
func (s *Server) stopProvisionLocked(c *cluster) {
	if c.cancel == nil {
		return
	}
	c.cancel()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-c.done
		if !c.provisionStarted { // written before done was closed
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.backend.Deprovision(ctx, c.id)
	}()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// refreshLocked gives instance ids (and addresses) to the nodes whose time has come:
// the cluster is provisioned and ProvisionDelay has passed since the node was made.
func (s *Server) refreshLocked() {
	now := s.now()
	for _, c := range s.sortedClustersLocked() {
		if !c.provisioned {
			continue
		}
		for _, p := range c.pools {
			for _, n := range p.nodes {
				if n.instanceID != 0 {
					continue
				}
				at := n.created.Add(s.opts.ProvisionDelay)
				if c.provisionedAt.After(at) {
					at = c.provisionedAt
				}
				if now.Before(at) {
					continue
				}
				s.nextInstance++
				n.instanceID, n.assignedAt = s.nextInstance, at
				n.ip = c.nextIP(n.instanceID)
				n.privateIP = fmt.Sprintf("192.168.%d.%d", 128+(n.instanceID/254)%128, n.instanceID%254+1)
			}
		}
	}
}

// nextIP hands out the Backend's node addresses cyclically, or documentation
// addresses when it gave none.
func (c *cluster) nextIP(instanceID int) string {
	if len(c.nodeIPs) == 0 {
		return fmt.Sprintf("192.0.2.%d", instanceID%254+1)
	}
	ip := c.nodeIPs[c.ipNext%len(c.nodeIPs)]
	c.ipNext++
	return ip
}

func gatewayOf(ip string) string {
	p := net.ParseIP(ip).To4()
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d.1", p[0], p[1], p[2])
}

var serverRE = regexp.MustCompile(`(?m)^\s*server:\s*(\S+)\s*$`)

func kubeconfigServer(kc []byte) string {
	m := serverRE.FindSubmatch(kc)
	if m == nil {
		return ""
	}
	return strings.Trim(string(m[1]), `"'`)
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// nowhereBackend is the default: a valid kubeconfig, with a real CA certificate and
// a fresh token, for a server that does not exist (https://127.0.0.1:1).
type nowhereBackend struct{}

const nowhereServer = "https://127.0.0.1:1"

func (nowhereBackend) Provision(_ context.Context, c ClusterInfo) (Provisioned, error) {
	ca, err := nowhereCA()
	if err != nil {
		return Provisioned{}, err
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return Provisioned{}, err
	}
	return Provisioned{
		Kubeconfig:   Kubeconfig(fmt.Sprintf("lke%d", c.ID), nowhereServer, ca, hex.EncodeToString(tok)),
		APIEndpoints: []string{nowhereServer},
	}, nil
}

func (nowhereBackend) Deprovision(context.Context, int) error { return nil }

// Kubeconfig renders a kubeconfig in the form LKE hands out: one cluster, one
// token user "<name>-admin", one context "<name>-ctx".
func Kubeconfig(name, server string, caPEM []byte, token string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
preferences: {}

clusters:
- cluster:
    certificate-authority-data: %s
    server: %s
  name: %s

users:
- name: %s-admin
  user:
    as-user-extra: {}
    token: %s

contexts:
- context:
    cluster: %s
    namespace: default
    user: %s-admin
  name: %s-ctx

current-context: %s-ctx
`, base64.StdEncoding.EncodeToString(caPEM), server, name, name, token, name, name, name, name)
}

var (
	caOnce sync.Once
	caPEM  []byte
	caErr  error
)

// nowhereCA is one self-signed CA certificate per process, so the default kubeconfig
// parses and builds a TLS config like a real one.
func nowhereCA() ([]byte, error) {
	caOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			caErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "kubernetes"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			caErr = err
			return
		}
		caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	})
	return caPEM, caErr
}
