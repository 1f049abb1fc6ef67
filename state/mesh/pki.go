package mesh

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/state/kube"
)

// Store names of the mesh root CA.
const (
	RootCertFile   = "mesh/root-cert.pem"
	RootKeyFile    = "mesh/root-key.pem"
	RootRecordFile = "mesh/root.json"
)

// Key types of fleet.yaml's mesh.ca.keyType.
const (
	KeyRSA4096   = "rsa-4096"
	KeyRSA2048   = "rsa-2048"
	KeyECDSAP256 = "ecdsa-p256"
)

// Keys of the cacerts Secret, as istiod reads them.
const (
	CACertKey    = "ca-cert.pem"
	CAKeyKey     = "ca-key.pem"
	RootCertKey  = "root-cert.pem"
	CertChainKey = "cert-chain.pem"
)

// IstiodDNSName is the SAN every intermediate carries, as Istio's own Makefile issues them.
const IstiodDNSName = "istiod.istio-system.svc"

// ErrRootLost means the store records a root whose certificate or key is gone. A new root is
// never generated in its place: it would silently break trust across the mesh.
var ErrRootLost = errors.New("the mesh root CA was generated before but its files are gone from the state store")

// clockSkew backdates NotBefore so that a member whose clock is a little behind accepts a
// fresh certificate.
const clockSkew = 5 * time.Minute

// Root is the mesh root CA: one per fleet, kept in the state store.
type Root struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
	KeyPEM  []byte
}

// Fingerprint is the SHA-256 of the root certificate (hex of its DER form).
func (r *Root) Fingerprint() string { return CertFingerprint(r.Cert) }

// Info describes the root for the world.
func (r *Root) Info() *world.CertInfo {
	return &world.CertInfo{Subject: r.Cert.Subject.String(), NotAfter: r.Cert.NotAfter, RootFingerprint: r.Fingerprint()}
}

// CertFingerprint is the hex SHA-256 of a certificate's DER form.
func CertFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// rootRecord is mesh/root.json: proof that a root was generated, kept apart from the PEMs so
// that losing them is noticed instead of answered with a new root.
type rootRecord struct {
	Fingerprint string    `json:"fingerprint"`
	NotAfter    time.Time `json:"notAfter"`
	Subject     string    `json:"subject"`
	KeyType     string    `json:"keyType,omitempty"`
}

// NewRoot generates a self-signed root: O=Istio, CN=Root CA, CA:true, valid from now for validity.
func NewRoot(keyType string, validity time.Duration, now time.Time) (*Root, error) {
	key, err := newKey(keyType)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Istio"}, CommonName: "Root CA"},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              caKeyUsage(key),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("mesh root CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Root{Cert: cert, CertPEM: encodeCert(der), Key: key, KeyPEM: keyPEM}, nil
}

// ParseRoot reads a root from its PEM files and checks that the key belongs to the certificate.
func ParseRoot(certPEM, keyPEM []byte) (*Root, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("mesh root certificate: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("mesh root key: %w", err)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, errors.New("mesh root key does not match the root certificate")
	}
	if !cert.IsCA {
		return nil, errors.New("mesh root certificate is not a CA")
	}
	return &Root{Cert: cert, CertPEM: certPEM, Key: key, KeyPEM: keyPEM}, nil
}

// CACerts are the four files of a member's cacerts Secret.
type CACerts struct {
	CACert    []byte // the member's intermediate
	CAKey     []byte
	RootCert  []byte
	CertChain []byte // intermediate, then root
}

// Data is the Secret data.
func (c *CACerts) Data() map[string][]byte {
	return map[string][]byte{CACertKey: c.CACert, CAKeyKey: c.CAKey, RootCertKey: c.RootCert, CertChainKey: c.CertChain}
}

// IssueIntermediate issues member's intermediate CA: O=Istio, CN=Intermediate CA, L=<member>,
// CA:true with path length 0, SAN DNS istiod.istio-system.svc, valid from now for validity
// (never past the root's own expiry).
func (r *Root) IssueIntermediate(member, keyType string, validity time.Duration, now time.Time) (*CACerts, error) {
	key, err := newKey(keyType)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(r.Cert.NotAfter) {
		notAfter = r.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{Organization: []string{"Istio"}, CommonName: "Intermediate CA",
			Locality: []string{member}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              caKeyUsage(key),
		DNSNames:              []string{IstiodDNSName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.Cert, key.Public(), r.Key)
	if err != nil {
		return nil, fmt.Errorf("intermediate CA for %s: %w", member, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := encodeCert(der)
	chain := append(append([]byte(nil), certPEM...), r.CertPEM...)
	return &CACerts{CACert: certPEM, CAKey: keyPEM, RootCert: append([]byte(nil), r.CertPEM...), CertChain: chain}, nil
}

// ParseCACerts reads the intermediate and root of a cacerts Secret's data. It checks that the
// key matches the intermediate and that the intermediate was issued by the root; whether it
// has expired is left to the caller, who compares NotAfter to its clock.
func ParseCACerts(data map[string][]byte) (inter, root *x509.Certificate, err error) {
	for _, k := range []string{CACertKey, CAKeyKey, RootCertKey, CertChainKey} {
		if len(data[k]) == 0 {
			return nil, nil, fmt.Errorf("cacerts lacks %s", k)
		}
	}
	if inter, err = parseCert(data[CACertKey]); err != nil {
		return nil, nil, fmt.Errorf("cacerts %s: %w", CACertKey, err)
	}
	if root, err = parseCert(data[RootCertKey]); err != nil {
		return nil, nil, fmt.Errorf("cacerts %s: %w", RootCertKey, err)
	}
	key, err := parseKey(data[CAKeyKey])
	if err != nil {
		return nil, nil, fmt.Errorf("cacerts %s: %w", CAKeyKey, err)
	}
	if !samePublicKey(inter.PublicKey, key.Public()) {
		return nil, nil, errors.New("cacerts key does not match its certificate")
	}
	// Check the signatures at a time inside the intermediate's validity, not at now.
	mid := inter.NotBefore.Add(inter.NotAfter.Sub(inter.NotBefore) / 2)
	if err := VerifyIntermediate(inter, root, mid); err != nil {
		return nil, nil, err
	}
	return inter, root, nil
}

// VerifyIntermediate checks that inter is a CA issued by root and valid at now.
func VerifyIntermediate(inter, root *x509.Certificate, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(root)
	_, err := inter.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("intermediate does not verify against the root: %w", err)
	}
	if !inter.IsCA {
		return errors.New("intermediate is not a CA")
	}
	return nil
}

// ---- the root in the state store ----

// LoadRoot reads the root from the store. It returns (nil, nil) when none was ever generated
// and ErrRootLost when root.json says one was but a PEM is missing.
func LoadRoot(store kube.Files) (*Root, error) {
	certPEM, certErr := store.ReadFile(RootCertFile)
	keyPEM, keyErr := store.ReadFile(RootKeyFile)
	recorded := store.Exists(RootRecordFile)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) || errors.Is(keyErr, fs.ErrNotExist):
		if recorded || certErr == nil || keyErr == nil {
			return nil, ErrRootLost
		}
		return nil, nil
	case certErr != nil:
		return nil, certErr
	case keyErr != nil:
		return nil, keyErr
	}
	return ParseRoot(certPEM, keyPEM)
}

// saveRoot writes the key first and the record last, so a crash in between leaves either no
// record (and the next pass generates anew) or a complete root.
func saveRoot(store kube.Files, r *Root, keyType string) error {
	if err := store.WriteFile(RootKeyFile, r.KeyPEM); err != nil {
		return err
	}
	if err := store.WriteFile(RootCertFile, r.CertPEM); err != nil {
		return err
	}
	rec, err := json.MarshalIndent(rootRecord{Fingerprint: r.Fingerprint(), NotAfter: r.Cert.NotAfter,
		Subject: r.Cert.Subject.String(), KeyType: keyType}, "", "  ")
	if err != nil {
		return err
	}
	return store.WriteFile(RootRecordFile, append(rec, '\n'))
}

// RootBackupSuffix ends the names the files of a replaced root are kept under:
// mesh/root-cert.pem.replaced-20261130T215000Z.
const RootBackupSuffix = ".replaced-"

// backupRoot copies the store's root files to backup names stamped with now, so a root
// replaced on purpose can still be restored by hand. It returns the certificate's backup name.
func backupRoot(store kube.Files, now time.Time) (string, error) {
	stamp := RootBackupSuffix + now.UTC().Format("20060102T150405Z")
	for _, name := range []string{RootKeyFile, RootCertFile, RootRecordFile} {
		data, err := store.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) && name == RootRecordFile {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := store.WriteFile(name+stamp, data); err != nil {
			return "", err
		}
	}
	return RootCertFile + stamp, nil
}

// ---- keys and PEM ----

func newKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "", KeyRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown mesh CA key type %q (want %s, %s or %s)", keyType, KeyRSA4096, KeyRSA2048, KeyECDSAP256)
}

// caKeyUsage is the key usage of Istio's own self-signed Makefile, for every key type.
func caKeyUsage(crypto.Signer) x509.KeyUsage {
	return x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
		x509.KeyUsageKeyEncipherment
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// encodeKey writes RSA keys as PKCS#1 and EC keys as SEC 1, the forms istiod reads.
func encodeKey(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	return nil, fmt.Errorf("unsupported key %T", key)
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM key")
	}
	var key any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key %T", key)
	}
	return s, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
