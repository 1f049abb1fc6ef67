package mesh

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

// TestRootCAReplace: a Replace of the root (--replace-mesh-root) generates a new root while
// the store holds the one the plan saw, keeps the old files under backup names, and writes
// nothing when retried after it succeeded; a Create never replaces a root.
func TestRootCAReplace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &memFiles{}
	now := time.Date(2026, 11, 30, 21, 50, 0, 0, time.UTC)
	d := New(Config{Access: kube.Access{Store: store}, Store: store, Now: func() time.Time { return now }})
	if _, err := d.Apply(ctx, rootCAStep(KeyECDSAP256, 0)); err != nil {
		t.Fatal(err)
	}
	old, _ := LoadRoot(store)
	oldCert, _ := store.ReadFile(RootCertFile)
	oldKey, _ := store.ReadFile(RootKeyFile)

	replace := rootCAStep(KeyECDSAP256, 0)
	replace.Action = plan.Replace
	replace.Payload.RootCA.Replaces = &plan.Cert{RootFingerprint: old.Fingerprint(), NotAfter: old.Cert.NotAfter.UTC().Format(time.RFC3339)}
	if _, err := d.Apply(ctx, replace); err != nil {
		t.Fatal(err)
	}
	cur, err := LoadRoot(store)
	if err != nil || cur == nil || cur.Fingerprint() == old.Fingerprint() {
		t.Fatalf("after the replace the store holds %v (%v), want a new root", cur, err)
	}
	stamp := RootBackupSuffix + "20261130T215000Z"
	if b, _ := store.ReadFile(RootCertFile + stamp); !bytes.Equal(b, oldCert) {
		t.Errorf("%s does not hold the old root certificate", RootCertFile+stamp)
	}
	if b, _ := store.ReadFile(RootKeyFile + stamp); !bytes.Equal(b, oldKey) {
		t.Errorf("%s does not hold the old root key", RootKeyFile+stamp)
	}
	if !store.Exists(RootRecordFile + stamp) {
		t.Errorf("%s is missing", RootRecordFile+stamp)
	}

	// A retry of the same step finds the root replaced already and writes nothing.
	now = now.Add(time.Minute)
	if _, err := d.Apply(ctx, replace); err != nil {
		t.Fatal(err)
	}
	if again, _ := LoadRoot(store); again.Fingerprint() != cur.Fingerprint() {
		t.Error("a retried replace replaced the new root again")
	}
	if store.Exists(RootCertFile + RootBackupSuffix + "20261130T215100Z") {
		t.Error("a retried replace made another backup")
	}
	// A create never replaces a root, and a create naming a root it replaces is refused.
	if _, err := d.Apply(ctx, rootCAStep(KeyECDSAP256, 0)); err != nil {
		t.Fatal(err)
	}
	if again, _ := LoadRoot(store); again.Fingerprint() != cur.Fingerprint() {
		t.Error("a create replaced the root")
	}
	bad := rootCAStep(KeyECDSAP256, 0)
	bad.Payload.RootCA.Replaces = replace.Payload.RootCA.Replaces
	if _, err := d.Apply(ctx, bad); err == nil {
		t.Error("a create naming a root it replaces was applied")
	}
}

// A member that answered the cluster observer but that the mesh observer cannot connect to is
// unreadable, never an empty mesh (which the planner would fill with a new cacerts).
func TestObserveUnconnectableIsUnreadable(t *testing.T) {
	t.Parallel()
	f := meshFleet(t) // eu's kubeconfig file does not exist
	store := &memFiles{}
	w := &world.World{Clusters: map[string]*world.Cluster{"eu": {Name: "eu", Reachable: true}}}
	if err := (Observer{Access: kube.Access{Store: store}, Store: store}).Observe(context.Background(), f, w); err != nil {
		t.Fatal(err)
	}
	if w.Clusters["eu"].Unreadable == "" || w.Mesh["eu"] != nil {
		t.Errorf("unreadable %q, mesh %+v: want eu unreadable and no mesh", w.Clusters["eu"].Unreadable, w.Mesh["eu"])
	}
}
