package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// Issue 10, part 2: `reconcile --once` with an empty --state-dir (a fresh CI runner) read
// nothing of the LKE members, planned "+ member/*/mesh/cacerts (no cacerts secret)", generated
// a new root and re-issued every member's cacerts; the bastion then put its root back. In the
// lab: a fleet of two members converges with the mesh on; a pass with an empty state reads
// the members (the Linode observer fetches their kubeconfigs), finds that they hold a root
// the store does not have and refuses: exit 1, the guard's message, no write to Kubernetes or
// to the Linode API, every member's root unchanged. With the original state,
// --replace-mesh-root plans the replacement, then applies it once.
func TestLabRootGuard(t *testing.T) {
	labtest.KarmadaBinaries(t)
	lf := upLab(t, net.IPv4(127, 0, 4, 10), net.IPv4(127, 0, 4, 60), 100*time.Millisecond)
	l, dir, fleetDir := lf.lab, lf.dir, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	members := []string{"ap", "eu"}
	lf.writeMeshFleet(t, fleetPath, "lab-rootguard")
	f, err := spec.Load(fleetPath)
	must(t, err)

	logFile, err := os.OpenFile(filepath.Join(dir, "reconcile.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { logFile.Close() })
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	writes := &labtest.WriteCounter{}
	out := &labtest.SyncBuffer{}
	reconciler := func(store *state.Store) *Reconciler {
		return &Reconciler{
			Wire: func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
				return wire(f, store, log, wireOptions{wrap: writes.Wrap})
			},
			Store: store, Exec: executor.Options{Parallelism: 10}, Out: out, Log: log,
		}
	}
	dumpOnFailure := func() {
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "reconcile.log"))
			t.Logf("plan output:\n%s\nreconcile log (tail):\n%s", out.String(), tail(string(data), 60))
		}
	}
	t.Cleanup(dumpOnFailure)

	// Converge once, with the mesh on.
	stateDir := filepath.Join(dir, "state")
	store, err := state.OpenStore(stateDir)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), e2ePassTimeout)
	defer cancel()
	if _, err := reconciler(store).Reconcile(ctx, f, false); err != nil {
		t.Fatalf("converging pass: %v", err)
	}
	root, err := mesh.LoadRoot(store)
	if err != nil || root == nil {
		t.Fatalf("no mesh root after the converging pass: %v", err)
	}
	access := kube.Access{Store: store, Timeout: 20 * time.Second}
	before := memberRoots(ctx, t, access, members)
	for m, fp := range before {
		if fp != root.Fingerprint() {
			t.Fatalf("%s's cacerts chains to %s, not the store's root %s", m, fp, root.Fingerprint())
		}
	}

	// An empty state, through the reconciler with counted writes: refused at planning.
	writes.Reset()
	l.LinodeAPI().ResetRequests()
	mark := out.Len()
	empty, err := state.OpenStore(filepath.Join(dir, "empty-state"))
	must(t, err)
	_, err = reconciler(empty).Reconcile(ctx, f, false)
	var guard *planner.RootGuardError
	if !errors.As(err, &guard) {
		t.Fatalf("a pass with an empty state: want *planner.RootGuardError, got %v", err)
	}
	var held []string
	for _, m := range guard.Members {
		held = append(held, m.Member)
		if m.Root != root.Fingerprint() {
			t.Errorf("guard: %s holds %s, want %s", m.Member, m.Root, root.Fingerprint())
		}
	}
	if strings.Join(held, ",") != strings.Join(members, ",") || guard.StoreRoot != "" {
		t.Errorf("guard names %v with store root %q, want %v and none", held, guard.StoreRoot, members)
	}
	if w := writes.Writes(); len(w) != 0 {
		t.Errorf("the refused pass wrote to Kubernetes: %v", w)
	}
	if writes.Reads() == 0 {
		t.Error("the refused pass read nothing from Kubernetes: the members were not observed")
	}
	if w := apiWrites(l.LinodeAPI()); len(w) != 0 {
		t.Errorf("the refused pass wrote to the Linode API: %v", w)
	}
	if strings.Contains(out.From(mark), "no cacerts secret") {
		t.Errorf("a plan said there is no cacerts secret:\n%s", out.From(mark))
	}

	// The same through the CLI, as a fresh CI runner runs it.
	l.LinodeAPI().ResetRequests()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--once", "--state-dir", filepath.Join(dir, "ci-state"), "-f", fleetPath}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("--once with an empty state: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), tail(stderr.String(), 60))
	}
	short := "sha256:" + root.Fingerprint()[:16]
	for _, want := range []string{"mesh root guard", "ap, eu: cacerts chains to root " + short, "the state store has no mesh root",
		"--state-dir", "--replace-mesh-root"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, tail(stderr.String(), 60))
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), "no cacerts secret") {
		t.Error("the CLI said there is no cacerts secret")
	}
	if w := apiWrites(l.LinodeAPI()); len(w) != 0 {
		t.Errorf("the CLI's refused pass wrote to the Linode API: %v", w)
	}
	if after := memberRoots(ctx, t, access, members); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("members' roots changed: %v, were %v", after, before)
	}

	// With the original state, --replace-mesh-root shows the replacement and changes nothing.
	stdout.Reset()
	stderr.Reset()
	code = run(ctx, []string{"--once", "--dry-run", "--replace-mesh-root", "--state-dir", stateDir, "-f", fleetPath}, &stdout, &stderr)
	if code != 0 {
		t.Errorf("--dry-run --replace-mesh-root: exit %d\nstderr:\n%s", code, tail(stderr.String(), 60))
	}
	for _, want := range []string{"-/+ mesh/root-ca", "-/+ member/ap/mesh/cacerts", "-/+ member/eu/mesh/cacerts",
		"the members whose trust it changes: ap, eu"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the plan lacks %q:\n%s", want, stdout.String())
		}
	}
	if now, err := mesh.LoadRoot(store); err != nil || now.Fingerprint() != root.Fingerprint() {
		t.Errorf("a dry run changed the store's root: %v", err)
	}
	if after := memberRoots(ctx, t, access, members); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("members' roots changed: %v, were %v", after, before)
	}
	if t.Failed() {
		return
	}

	// Applied: a new root, the old one kept under a backup name, every member re-issued from
	// the new one, and the next pass plans nothing (the replacement is not repeated).
	stdout.Reset()
	stderr.Reset()
	if code := run(ctx, []string{"--once", "--replace-mesh-root", "--state-dir", stateDir, "-f", fleetPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("--once --replace-mesh-root: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), tail(stderr.String(), 60))
	}
	replaced, err := mesh.LoadRoot(store)
	if err != nil || replaced == nil || replaced.Fingerprint() == root.Fingerprint() {
		t.Fatalf("after --replace-mesh-root the store holds %v (%v), want a new root", replaced, err)
	}
	backups, _ := filepath.Glob(filepath.Join(stateDir, mesh.RootCertFile+mesh.RootBackupSuffix+"*"))
	if len(backups) != 1 {
		t.Errorf("backups of the replaced root: %v, want one", backups)
	} else if old, err := os.ReadFile(backups[0]); err != nil || !bytes.Equal(old, root.CertPEM) {
		t.Errorf("%s does not hold the replaced root (%v)", backups[0], err)
	}
	for m, fp := range memberRoots(ctx, t, access, members) {
		if fp != replaced.Fingerprint() {
			t.Errorf("%s's cacerts chains to %s, not the new root %s", m, fp, replaced.Fingerprint())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(ctx, []string{"--once", "--dry-run", "--state-dir", stateDir, "-f", fleetPath}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "No changes. The fleet matches fleet.yaml.") {
		t.Errorf("the pass after the replacement: exit %d, want no changes:\n%s\n%s", code, stdout.String(), tail(stderr.String(), 60))
	}
}

// memberRoots is the fingerprint of the root each member's cacerts chains to.
func memberRoots(ctx context.Context, t *testing.T, access kube.Access, members []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range members {
		cfg, err := access.RESTConfig(m)
		must(t, err)
		cs, err := kubernetes.NewForConfig(cfg)
		must(t, err)
		s, err := cs.CoreV1().Secrets(mesh.MeshNamespace).Get(ctx, mesh.CACertsSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: cacerts: %v", m, err)
		}
		_, root, err := mesh.ParseCACerts(s.Data)
		if err != nil {
			t.Fatalf("%s: cacerts: %v", m, err)
		}
		out[m] = mesh.CertFingerprint(root)
	}
	return out
}
