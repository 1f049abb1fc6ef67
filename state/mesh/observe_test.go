package mesh

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
)

func meshFleet(t *testing.T) *spec.Fleet {
	t.Helper()
	f, err := spec.Parse("fleet.yaml", []byte(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: unit}
manager:
  name: hub
  kubeconfig: {path: /nonexistent/hub}
  karmada:
    chart: {repo: "https://charts.example/karmada", version: "1.18.2"}
members:
  - name: eu
    kubeconfig: {path: /nonexistent/eu}
    network: net-eu
mesh:
  version: 1.30.3
  meshID: unit
  ca: {keyType: ecdsa-p256}
`))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRootCA: the root is generated once, observed from the store, and a lost one is
// reported and never replaced.
func TestRootCA(t *testing.T) {
	t.Parallel()
	f := meshFleet(t)
	ctx := context.Background()
	store := &memFiles{}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d := New(Config{Access: kube.Access{Store: store}, Store: store, Now: func() time.Time { return now }})
	step := rootCAStep(KeyECDSAP256, 0) // no validity: ten years
	obs := Observer{Access: kube.Access{Store: store}, Store: store}

	var w world.World
	if err := obs.Observe(ctx, f, &w); err != nil || w.RootCA != nil || w.RootCALost {
		t.Fatalf("empty store: %+v %v %v", w.RootCA, w.RootCALost, err)
	}
	if _, err := d.Apply(ctx, step); err != nil {
		t.Fatal(err)
	}
	first, _ := store.ReadFile(RootCertFile)
	if _, err := d.Apply(ctx, step); err != nil {
		t.Fatal(err)
	}
	if again, _ := store.ReadFile(RootCertFile); string(again) != string(first) {
		t.Fatal("a second root-ca step replaced the root")
	}
	w = world.World{}
	if err := obs.Observe(ctx, f, &w); err != nil || w.RootCA == nil {
		t.Fatalf("observe: %+v %v", w.RootCA, err)
	}
	root, _ := LoadRoot(store)
	if w.RootCA.RootFingerprint != root.Fingerprint() || !w.RootCA.NotAfter.Equal(root.Cert.NotAfter) ||
		w.RootCA.NotAfter.Sub(now) < 87000*time.Hour {
		t.Errorf("observed %+v", w.RootCA)
	}

	delete(store.files, RootKeyFile)
	w = world.World{}
	if err := obs.Observe(ctx, f, &w); err != nil || !w.RootCALost || w.RootCA != nil {
		t.Fatalf("key gone: lost %v root %+v %v", w.RootCALost, w.RootCA, err)
	}
	if _, err := d.Apply(ctx, step); !errors.Is(err, ErrRootLost) {
		t.Errorf("root-ca step with the key gone: %v, want ErrRootLost", err)
	}
	if store.Exists(RootKeyFile) {
		t.Error("a new root key was written over a lost root")
	}
}

// TestRootCAFromPayload: key type and validity come from the step, not from a fleet.
func TestRootCAFromPayload(t *testing.T) {
	t.Parallel()
	store := &memFiles{}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d := New(Config{Access: kube.Access{Store: store}, Store: store, Now: func() time.Time { return now }})
	if _, err := d.Apply(context.Background(), rootCAStep(KeyECDSAP256, 48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	root, err := LoadRoot(store)
	if err != nil || root == nil {
		t.Fatalf("root: %v", err)
	}
	if !root.Cert.NotAfter.Equal(now.Add(48 * time.Hour)) {
		t.Errorf("notAfter %v, want 48h from now", root.Cert.NotAfter)
	}
	if _, ok := root.Key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("key %T, want ECDSA", root.Key)
	}
}
