package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

const daemonFleet = `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: daemon
manager:
  name: manager
  kubeconfig: {path: ./kubeconfig, context: manager}
  karmada:
    chart: {path: ./chart}
members:
  - name: one
    kubeconfig: {path: ./kubeconfig, context: one}
  - name: two
    kubeconfig: {path: ./kubeconfig, context: two}
workloads:
  - name: web
    resources: [{apiVersion: apps/v1, kind: Deployment, name: web}]
    weights: {one: WEIGHT, two: 1}
`

func fleetWithWeight(w string) string { return strings.Replace(daemonFleet, "WEIGHT", w, 1) }

type passLog struct {
	mu       sync.Mutex
	passes   chan *spec.Fleet
	rejected chan error
}

// startDaemon runs a daemon over dir/fleet.yaml with a world that is empty and drivers that
// are absent: every pass plans and fails its steps quickly, which is all the loop needs.
func startDaemon(t *testing.T, dir, fleetPath string) (*Daemon, *passLog, chan os.Signal, *state.Store) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "chart"), 0o755); err != nil { // the fleet's chart path
		t.Fatal(err)
	}
	store, err := state.OpenStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	pl := &passLog{passes: make(chan *spec.Fleet, 16), rejected: make(chan error, 16)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &Daemon{
		Path:       fleetPath,
		Reconciler: &Reconciler{Store: store, Log: log},
		Resync:     time.Hour,
		Debounce:   20 * time.Millisecond,
		Log:        log,
		Passed:     func(f *spec.Fleet, _ *PassResult, _ error) { pl.passes <- f },
		Rejected:   func(err error) { pl.rejected <- err },
	}
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, hup) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop within 10s of cancellation")
		}
	})
	return d, pl, hup, store
}

func waitPass(t *testing.T, pl *passLog, why string) *spec.Fleet {
	t.Helper()
	select {
	case f := <-pl.passes:
		return f
	case <-time.After(10 * time.Second):
		t.Fatalf("no pass within 10s after %s", why)
	}
	return nil
}

func expectNoPass(t *testing.T, pl *passLog, within time.Duration) {
	t.Helper()
	select {
	case <-pl.passes:
		t.Fatal("a pass ran, but none was expected")
	case <-time.After(within):
	}
}

func weightOne(f *spec.Fleet) int64 { return f.Workloads[0].Weights["one"] }

// saveByRename writes content the way vim and git do: a new file renamed over the old one.
func saveByRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); {
		n++
	}
	return n
}

func TestDaemonRenameSaveTriggersPass(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	saveByRename(t, path, fleetWithWeight("1"))
	d, pl, _, _ := startDaemon(t, dir, path)

	if f := waitPass(t, pl, "start"); weightOne(f) != 1 {
		t.Fatalf("first pass used weight %d, want 1", weightOne(f))
	}
	saveByRename(t, path, fleetWithWeight("3"))
	if f := waitPass(t, pl, "a rename-save"); weightOne(f) != 3 {
		t.Fatalf("pass after edit used weight %d, want 3", weightOne(f))
	}
	if weightOne(d.Current()) != 3 {
		t.Fatalf("spec in force has weight %d, want 3", weightOne(d.Current()))
	}
}

func TestDaemonInvalidEditKeepsSpecAndWritesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	saveByRename(t, path, fleetWithWeight("2"))
	d, pl, hup, store := startDaemon(t, dir, path)
	waitPass(t, pl, "start")
	passes := filepath.Join(store.Dir(), "passes.jsonl")
	before := countLines(t, passes)
	if before == 0 {
		t.Fatal("the first pass recorded nothing in passes.jsonl; the check below would prove nothing")
	}

	// A misspelled field and a weight for a member that does not exist.
	bad := strings.Replace(fleetWithWeight("2"), "weights: {one: 2, two: 1}", "wieghts: {one: 2}\n    weights: {one: 2, nine: 1}", 1)
	saveByRename(t, path, bad)
	select {
	case err := <-pl.rejected:
		msg := err.Error()
		for _, want := range []string{"fleet.yaml:", "wieghts", "nine"} {
			if !strings.Contains(msg, want) {
				t.Errorf("rejection %q does not mention %q", msg, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("invalid edit was not rejected within 10s")
	}
	expectNoPass(t, pl, 200*time.Millisecond)
	if got := countLines(t, passes); got != before {
		t.Fatalf("passes.jsonl went from %d to %d lines after an invalid edit", before, got)
	}
	if weightOne(d.Current()) != 2 {
		t.Fatalf("spec in force changed to weight %d after an invalid edit", weightOne(d.Current()))
	}

	// SIGHUP re-reads the (still invalid) file and keeps the good spec: no pass.
	hup <- os.Interrupt
	select {
	case <-pl.rejected:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP with an invalid file was not rejected")
	}
	expectNoPass(t, pl, 100*time.Millisecond)

	// A valid edit is taken again.
	saveByRename(t, path, fleetWithWeight("5"))
	if f := waitPass(t, pl, "a valid edit"); weightOne(f) != 5 {
		t.Fatalf("pass used weight %d, want 5", weightOne(f))
	}
}

func TestDaemonSIGHUPTriggersPass(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	saveByRename(t, path, fleetWithWeight("1"))
	_, pl, hup, _ := startDaemon(t, dir, path)
	waitPass(t, pl, "start")
	hup <- os.Interrupt // the loop only cares that a signal arrived
	waitPass(t, pl, "SIGHUP")
}

// A Kubernetes ConfigMap mount: fleet.yaml -> ..data/fleet.yaml, ..data -> ..<timestamp>,
// and an update swaps ..data atomically.
func TestDaemonConfigMapSymlinkSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeVersion := func(name, content string) {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "fleet.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("..v1", fleetWithWeight("1"))
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "fleet.yaml"), filepath.Join(dir, "fleet.yaml")); err != nil {
		t.Fatal(err)
	}
	// The fleet refers to ./kubeconfig and ./chart relative to the file's directory.
	_, pl, _, _ := startDaemon(t, dir, filepath.Join(dir, "fleet.yaml"))
	waitPass(t, pl, "start")

	writeVersion("..v2", fleetWithWeight("4"))
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if f := waitPass(t, pl, "a ..data swap"); weightOne(f) != 4 {
		t.Fatalf("pass used weight %d, want 4", weightOne(f))
	}
}

func TestDaemonRefusesInvalidFileAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	saveByRename(t, path, "apiVersion: reconcile.dev/v1alpha1\nkind: Fleet\nmetdata: {}\n")
	d := &Daemon{Path: path, Reconciler: &Reconciler{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := d.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "metdata") {
		t.Fatalf("Run = %v, want an error naming the misspelled field", err)
	}
}

// An edit of a manifest alone, in a directory of its own, is a change: the daemon watches
// the manifests' directories and compares their content too.
func TestDaemonManifestEditTriggersPass(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "manifests"), 0o755))
	manifest := func(replicas string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: " + replicas + "\n"
	}
	saveByRename(t, filepath.Join(dir, "manifests", "web.yaml"), manifest("3"))
	path := filepath.Join(dir, "fleet.yaml")
	saveByRename(t, path, strings.Replace(fleetWithWeight("1"), "weights: {one: 1, two: 1}",
		"weights: {one: 1, two: 1}\n    manifests: [./manifests/web.yaml]", 1))
	_, pl, _, _ := startDaemon(t, dir, path)
	replicas := func(f *spec.Fleet) int32 { return *f.Workloads[0].Objects[0].Replicas }

	if f := waitPass(t, pl, "start"); replicas(f) != 3 {
		t.Fatalf("first pass saw %d replicas, want 3", replicas(f))
	}
	saveByRename(t, filepath.Join(dir, "manifests", "web.yaml"), manifest("10"))
	if f := waitPass(t, pl, "a manifest edit"); replicas(f) != 10 {
		t.Fatalf("pass after the manifest edit saw %d replicas, want 10", replicas(f))
	}
	// Touching fleet.yaml without changing it is not a change.
	saveByRename(t, path, strings.Replace(fleetWithWeight("1"), "weights: {one: 1, two: 1}",
		"weights: {one: 1, two: 1}\n    manifests: [./manifests/web.yaml]", 1))
	expectNoPass(t, pl, 300*time.Millisecond)
}

// A git-sync checkout: git/current -> .worktrees/<rev>, fleet.yaml inside it, and every sync
// swaps the "current" link to a new worktree. Each swap is taken, not only the first (the
// swap is an event in git/ alone, and the new worktree must be watched after it).
func TestDaemonGitSyncLinkSwaps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "git")
	worktree := func(rev, weight string) {
		wt := filepath.Join(root, ".worktrees", rev)
		if err := os.MkdirAll(filepath.Join(wt, "chart"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(wt, "fleet.yaml"), []byte(fleetWithWeight(weight)), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(root, "tmp-link")
		if err := os.Symlink(filepath.Join(".worktrees", rev), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(root, "current")); err != nil {
			t.Fatal(err)
		}
	}
	worktree("a1", "1")
	_, pl, _, _ := startDaemon(t, dir, filepath.Join(root, "current", "fleet.yaml"))
	waitPass(t, pl, "start")
	// Old worktrees stay (git-sync removes them later, or not at all): no event comes from them.
	for i, w := range []string{"2", "3", "5"} {
		worktree("b"+w, w)
		if f := waitPass(t, pl, fmt.Sprintf("link swap %d", i+1)); weightOne(f) != int64(mustAtoi(t, w)) {
			t.Fatalf("swap %d: pass used weight %d, want %s", i+1, weightOne(f), w)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
