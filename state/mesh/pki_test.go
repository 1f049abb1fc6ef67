package mesh

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path"
	"sync"
	"testing"
	"time"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestIntermediateChainsToRoot(t *testing.T) {
	t.Parallel()
	cases := []struct {
		keyType string
		check   func(t *testing.T, c *x509.Certificate)
	}{
		{KeyRSA2048, func(t *testing.T, c *x509.Certificate) {
			if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
				t.Errorf("key %T, want RSA 2048", c.PublicKey)
			}
		}},
		{KeyRSA4096, func(t *testing.T, c *x509.Certificate) {
			if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 4096 {
				t.Errorf("key %T, want RSA 4096", c.PublicKey)
			}
		}},
		{KeyECDSAP256, func(t *testing.T, c *x509.Certificate) {
			if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve.Params().Name != "P-256" {
				t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.keyType, func(t *testing.T) {
			t.Parallel()
			root, err := NewRoot(tc.keyType, 240*time.Hour, epoch)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, root.Cert)
			if !root.Cert.IsCA || root.Cert.Subject.String() != "CN=Root CA,O=Istio" {
				t.Errorf("root: CA %v subject %q", root.Cert.IsCA, root.Cert.Subject)
			}
			if want := x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; root.Cert.KeyUsage&want != want {
				t.Errorf("root key usage %b lacks %b", root.Cert.KeyUsage, want)
			}
			if got := root.Cert.NotAfter; !got.Equal(epoch.Add(240 * time.Hour).Truncate(time.Second)) {
				t.Errorf("root notAfter %v", got)
			}
			certs, err := root.IssueIntermediate("eu", tc.keyType, 48*time.Hour, epoch)
			if err != nil {
				t.Fatal(err)
			}
			inter, gotRoot, err := ParseCACerts(certs.Data())
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, inter)
			if CertFingerprint(gotRoot) != root.Fingerprint() {
				t.Error("cacerts root differs from the root")
			}
			if err := VerifyIntermediate(inter, root.Cert, epoch.Add(time.Hour)); err != nil {
				t.Error(err)
			}
			if err := VerifyIntermediate(inter, root.Cert, epoch.Add(49*time.Hour)); err == nil {
				t.Error("an expired intermediate verifies")
			}
			if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
				t.Errorf("intermediate CA %v pathlen %d zero %v, want CA with pathlen 0", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
			}
			if len(inter.DNSNames) != 1 || inter.DNSNames[0] != "istiod.istio-system.svc" {
				t.Errorf("SANs %v", inter.DNSNames)
			}
			if len(inter.Subject.Locality) != 1 || inter.Subject.Locality[0] != "eu" ||
				inter.Subject.CommonName != "Intermediate CA" || inter.Subject.Organization[0] != "Istio" {
				t.Errorf("subject %q", inter.Subject)
			}
			// cert-chain.pem is the intermediate then the root.
			rest := certs.CertChain
			var chain []*x509.Certificate
			for len(rest) > 0 {
				c, err := parseCert(rest)
				if err != nil {
					break
				}
				chain = append(chain, c)
				rest = rest[len(encodeCert(c.Raw)):]
			}
			if len(chain) != 2 || !chain[0].Equal(inter) || !chain[1].Equal(root.Cert) {
				t.Errorf("cert-chain.pem holds %d certificates, want intermediate then root", len(chain))
			}
			// A leaf below the pathlen-0 intermediate may not itself be a CA.
			pool := x509.NewCertPool()
			pool.AddCert(root.Cert)
			if _, err := inter.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: epoch}); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestIntermediateNeverOutlivesRoot(t *testing.T) {
	t.Parallel()
	root, err := NewRoot(KeyECDSAP256, time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := root.IssueIntermediate("ap", KeyECDSAP256, 24*time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	inter, _, err := ParseCACerts(certs.Data())
	if err != nil {
		t.Fatal(err)
	}
	if inter.NotAfter.After(root.Cert.NotAfter) {
		t.Errorf("intermediate until %v outlives the root until %v", inter.NotAfter, root.Cert.NotAfter)
	}
}

func TestParseCACertsRejects(t *testing.T) {
	t.Parallel()
	root, err := NewRoot(KeyECDSAP256, time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewRoot(KeyECDSAP256, time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	good, err := root.IssueIntermediate("eu", KeyECDSAP256, time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.IssueIntermediate("eu", KeyECDSAP256, time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(d map[string][]byte){
		"missing key":        func(d map[string][]byte) { delete(d, CAKeyKey) },
		"key of another":     func(d map[string][]byte) { d[CAKeyKey] = foreign.CAKey },
		"root of another":    func(d map[string][]byte) { d[RootCertKey] = other.CertPEM },
		"not PEM":            func(d map[string][]byte) { d[CACertKey] = []byte("garbage") },
		"empty cert chain":   func(d map[string][]byte) { d[CertChainKey] = nil },
		"foreign cert + key": func(d map[string][]byte) { d[CACertKey], d[CAKeyKey] = foreign.CACert, foreign.CAKey },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := good.Data()
			mutate(d)
			if _, _, err := ParseCACerts(d); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// memFiles is an in-memory kube.Files.
type memFiles struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (m *memFiles) WriteFile(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string][]byte{}
	}
	m.files[name] = append([]byte(nil), data...)
	return nil
}

func (m *memFiles) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), d...), nil
}

func (m *memFiles) Exists(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.files[name]
	return ok
}

func TestRootInStore(t *testing.T) {
	t.Parallel()
	store := &memFiles{}
	if r, err := LoadRoot(store); r != nil || err != nil {
		t.Fatalf("empty store: %v, %v", r, err)
	}
	root, err := NewRoot(KeyECDSAP256, time.Hour, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if err := saveRoot(store, root, KeyECDSAP256); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRoot(store)
	if err != nil || got.Fingerprint() != root.Fingerprint() {
		t.Fatalf("load: %v", err)
	}
	for _, lost := range []string{RootCertFile, RootKeyFile} {
		s := &memFiles{files: map[string][]byte{}}
		for k, v := range store.files {
			if k != lost {
				s.files[k] = v
			}
		}
		if _, err := LoadRoot(s); !errors.Is(err, ErrRootLost) {
			t.Errorf("%s gone: %v, want ErrRootLost", path.Base(lost), err)
		}
	}
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}
