package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func loadExample(t *testing.T, name string) *spec.Fleet {
	t.Helper()
	f, err := spec.Load(filepath.Join("..", "..", "examples", name, "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newTestReconciler(t *testing.T, fw *fakeWorld, out io.Writer) *Reconciler {
	t.Helper()
	store, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Reconciler{
		Observers: []state.Observer{fw},
		Drivers:   fw.drivers(),
		Store:     store,
		Exec:      executor.Options{Parallelism: 4, Retry: executor.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}},
		Out:       out,
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:       func() time.Time { return testNow },
	}
}

// The tutorial fleet from nothing: --dry-run shows a plan, --once executes that same plan,
// and the next pass plans nothing and writes nothing.
func TestEngineConvergesRegionsFleet(t *testing.T) {
	t.Parallel()
	fleet := loadExample(t, "regions")
	fw := newFakeWorld(testNow)

	var dry bytes.Buffer
	r := newTestReconciler(t, fw, &dry)
	res, err := r.Reconcile(context.Background(), fleet, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(fw.Writes()) != 0 {
		t.Fatalf("--dry-run wrote: %v", fw.Writes())
	}
	if res.Plan.Empty() {
		t.Fatal("a cold start planned nothing")
	}
	if got := exitCode(res, nil, true); got != 2 {
		t.Fatalf("--detailed-exitcode with pending changes = %d, want 2", got)
	}

	var once bytes.Buffer
	r.Out = &once
	res, err = r.Reconcile(context.Background(), fleet, false)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, once.String())
	}
	if !strings.HasPrefix(once.String(), dry.String()) {
		t.Fatalf("--once did not print the plan --dry-run showed.\n--dry-run:\n%s\n--once:\n%s", dry.String(), once.String())
	}
	if len(res.Result.Failed) != 0 || len(res.Result.Skipped) != 0 {
		t.Fatalf("failed %v, skipped %v", res.Result.Failed, res.Result.Skipped)
	}
	if len(res.Result.Succeeded) != len(res.Plan.Steps) {
		t.Fatalf("%d of %d steps succeeded", len(res.Result.Succeeded), len(res.Plan.Steps))
	}
	for _, want := range []string{"cluster/eu: done after", "Apply complete:"} {
		if !strings.Contains(once.String(), want) {
			t.Errorf("progress output lacks %q", want)
		}
	}
	// Every ordered pair of members got a remote secret: 3 × 2.
	n := 0
	for _, w := range fw.Writes() {
		if strings.HasPrefix(w, "remote-secret/") {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d remote secrets written, want 6", n)
	}

	writes := len(fw.Writes())
	var again bytes.Buffer
	r.Out = &again
	res, err = r.Reconcile(context.Background(), fleet, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Steps) != 0 {
		t.Fatalf("second pass planned %d steps:\n%s", len(res.Plan.Steps), again.String())
	}
	if len(fw.Writes()) != writes {
		t.Fatalf("second pass wrote %v", fw.Writes()[writes:])
	}
	if !strings.Contains(again.String(), "No changes") {
		t.Errorf("empty plan text: %q", again.String())
	}
	if got := exitCode(res, nil, true); got != 0 {
		t.Fatalf("--detailed-exitcode with nothing to do = %d, want 0", got)
	}
}

// After convergence, a weight change is one step, and the plan shows the split.
func TestEngineWeightChangeIsOneStep(t *testing.T) {
	t.Parallel()
	fleet := loadExample(t, "regions")
	fw := newFakeWorld(testNow)
	r := newTestReconciler(t, fw, io.Discard)
	if _, err := r.Reconcile(context.Background(), fleet, false); err != nil {
		t.Fatal(err)
	}
	fleet.Workloads[0].Weights = map[string]int64{"us": 1, "ap": 1, "eu": 1}
	var out bytes.Buffer
	r.Out = &out
	res, err := r.Reconcile(context.Background(), fleet, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Steps) != 1 || res.Plan.Steps[0].Address != "workload/hello/policy" || res.Plan.Steps[0].Action != plan.Update {
		t.Fatalf("plan:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "split:") || !strings.Contains(out.String(), "Plan: 0 to add, 1 to change, 0 to destroy.") {
		t.Fatalf("plan text lacks the split or the summary:\n%s", out.String())
	}
}

// A failed step skips exactly its dependents; the rest of the graph still converges, and
// the next pass picks up where the failure left off.
func TestEngineFailureSkipsDependentsAndResumes(t *testing.T) {
	t.Parallel()
	fleet := loadExample(t, "regions")
	fw := newFakeWorld(testNow)
	boom := errors.New("join refused")
	fw.fail = map[string]error{"join/us": boom}
	r := newTestReconciler(t, fw, io.Discard)
	res, err := r.Reconcile(context.Background(), fleet, false)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "member/us/join") {
		t.Fatalf("error %v does not name the failed step and wrap the cause", err)
	}
	if len(res.Result.Failed) != 1 || res.Result.Failed[0] != "member/us/join" {
		t.Fatalf("failed = %v", res.Result.Failed)
	}
	skipped := strings.Join(res.Result.Skipped, " ")
	for _, want := range []string{"member/us/ready", "workload/hello/policy"} {
		if !strings.Contains(skipped, want) {
			t.Errorf("%s should have been skipped; skipped: %v", want, res.Result.Skipped)
		}
	}
	for _, s := range res.Result.Skipped {
		if strings.HasPrefix(s, "member/eu/") || strings.HasPrefix(s, "cluster/") {
			t.Errorf("%s does not depend on member/us/join but was skipped", s)
		}
	}

	fw.mu.Lock()
	fw.fail = nil
	fw.mu.Unlock()
	res, err = r.Reconcile(context.Background(), fleet, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Plan.Steps {
		if strings.HasPrefix(s.Address, "cluster/") || strings.HasPrefix(s.Address, "member/eu/") {
			t.Errorf("resumed pass re-plans %s, which already succeeded", s.Address)
		}
	}
	if res, _ = r.Reconcile(context.Background(), fleet, true); len(res.Plan.Steps) != 0 {
		t.Fatalf("not converged after the resumed pass: %d steps", len(res.Plan.Steps))
	}
}

// Removing a member unjoins it and withdraws its mesh secrets; the cluster stays (no prune).
func TestEngineMemberRemoved(t *testing.T) {
	t.Parallel()
	fleet := loadExample(t, "regions")
	fw := newFakeWorld(testNow)
	r := newTestReconciler(t, fw, io.Discard)
	if _, err := r.Reconcile(context.Background(), fleet, false); err != nil {
		t.Fatal(err)
	}
	fleet.Members = fleet.Members[:2] // drop us
	fleet.Workloads[0].Weights = map[string]int64{"eu": 2, "ap": 1}
	before := len(fw.Writes())
	if _, err := r.Reconcile(context.Background(), fleet, false); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(fw.Writes()[before:], " ")
	for _, want := range []string{"unjoin/us", "delete-remote-secret/eu/us", "delete-remote-secret/ap/us", "policy/hello"} {
		if !strings.Contains(got, want) {
			t.Errorf("removing us did not %s; writes: %s", want, got)
		}
	}
	if strings.Contains(got, "delete-cluster/us") {
		t.Error("the us cluster was deleted without prune")
	}
	if res, _ := r.Reconcile(context.Background(), fleet, true); len(res.Plan.Steps) != 0 {
		t.Fatalf("not converged after removal: %+v", res.Plan.Steps)
	}
}

// Existing clusters given by kubeconfig: no Linode step at all.
func TestEngineExistingClusters(t *testing.T) {
	t.Parallel()
	fleet := loadExample(t, "existing")
	fw := newFakeWorld(testNow)
	for _, n := range fleet.ClusterNames() {
		fw.addExisting(n)
	}
	r := newTestReconciler(t, fw, io.Discard)
	res, err := r.Reconcile(context.Background(), fleet, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Plan.Steps {
		if s.Kind == plan.KindCluster || s.Kind == plan.KindKubeconfig {
			t.Errorf("existing cluster planned %s", s.Address)
		}
	}
	if res, _ = r.Reconcile(context.Background(), fleet, true); len(res.Plan.Steps) != 0 {
		t.Fatalf("not converged: %d steps", len(res.Plan.Steps))
	}
}

func TestTargetKeepsDependencies(t *testing.T) {
	t.Parallel()
	fleet := loadExample(t, "regions")
	fw := newFakeWorld(testNow)
	r := newTestReconciler(t, fw, io.Discard)
	addrs := func(targets ...string) string {
		r.Targets = targets
		res, err := r.Reconcile(context.Background(), fleet, true)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range res.Plan.Steps {
			out = append(out, s.Address)
		}
		return strings.Join(out, " ")
	}
	// A glob matches one path segment; a bare prefix takes everything below it.
	if got, want := addrs("cluster/*"), "cluster/cluster-manager cluster/ap cluster/eu cluster/us"; got != want {
		t.Errorf("--target cluster/* kept %s, want %s", got, want)
	}
	if got := addrs("cluster"); strings.Count(got, "/kubeconfig") != 4 || strings.Count(got, " ")+1 != 8 {
		t.Errorf("--target cluster kept %s, want the 4 clusters and their kubeconfigs", got)
	}
	want := "cluster/eu cluster/eu/kubeconfig member/eu/mesh/base member/eu/mesh/cacerts member/eu/mesh/istiod member/eu/mesh/namespace mesh/root-ca"
	if got := addrs("member/eu/mesh/istiod"); got != want {
		t.Errorf("--target member/eu/mesh/istiod kept %s, want %s", got, want)
	}
	if len(fw.Writes()) != 0 {
		t.Fatalf("dry runs wrote %v", fw.Writes())
	}
}

// childArgsEnv, when set in the environment, makes the test binary run reconcile itself with
// these arguments (separated by \x1f) instead of the tests: lab tests start real reconcile
// processes (daemons to kill -9) without building another binary.
const childArgsEnv = "RECONCILE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childArgsEnv); ok {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := run(ctx, strings.Split(args, "\x1f"), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// Keep HOME-relative defaults (the state dir) out of the developer's home.
	dir, err := os.MkdirTemp("", "reconcile-cmd-test")
	if err == nil {
		os.Setenv("XDG_STATE_HOME", dir)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// A saved plan is executed only against the fleet and world it was made from.
func TestSavedPlanRefusedWhenStale(t *testing.T) {
	t.Parallel()
	fleet := loadExample(t, "regions")
	fw := newFakeWorld(testNow)
	r := newTestReconciler(t, fw, io.Discard)
	planPath := filepath.Join(t.TempDir(), "plan.json")
	r.SaveTo = planPath
	if _, err := r.Reconcile(context.Background(), fleet, true); err != nil {
		t.Fatal(err)
	}
	r.SaveTo = ""
	saved, err := loadPlan(planPath)
	if err != nil {
		t.Fatal(err)
	}

	// The world moves (someone creates a cluster by hand): refused, nothing written.
	byHand := plan.Step{Address: "cluster/eu", Kind: plan.KindCluster, Action: plan.Create, Cluster: "eu",
		Payload: plan.Payload{Cluster: &plan.ClusterChange{Label: "eu", Region: "eu-west", CreatePools: []plan.Pool{{Type: "g6-standard-2", Count: 1}}}}}
	if _, err := fw.Apply(context.Background(), byHand); err != nil {
		t.Fatal(err)
	}
	writes := len(fw.Writes())
	r.Saved = saved
	if _, err := r.Reconcile(context.Background(), fleet, false); !errors.Is(err, ErrStalePlan) || !strings.Contains(err.Error(), "world changed") {
		t.Fatalf("stale world: err = %v", err)
	}
	if len(fw.Writes()) != writes {
		t.Fatal("a stale plan wrote to the world")
	}

	// A fresh plan of the same world applies.
	r.Saved, r.SaveTo = nil, planPath
	if _, err := r.Reconcile(context.Background(), fleet, true); err != nil {
		t.Fatal(err)
	}
	r.SaveTo = ""
	if r.Saved, err = loadPlan(planPath); err != nil {
		t.Fatal(err)
	}
	edited := *fleet
	edited.Workloads = append([]spec.Workload(nil), fleet.Workloads...)
	edited.Workloads[0].Weights = map[string]int64{"eu": 1, "ap": 1, "us": 1}
	if _, err := r.Reconcile(context.Background(), &edited, false); !errors.Is(err, ErrStalePlan) || !strings.Contains(err.Error(), "fleet.yaml") {
		t.Fatalf("edited fleet: err = %v", err)
	}
	res, err := r.Reconcile(context.Background(), fleet, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Result.Succeeded) != len(r.Saved.Steps) {
		t.Fatalf("saved plan: %d of %d steps succeeded", len(res.Result.Succeeded), len(r.Saved.Steps))
	}

	// A step added to a saved plan by hand (here: delete the LKE cluster of a member that is in
	// fleet.yaml) or a payload edited by hand is never applied: re-planning must yield exactly
	// the saved steps.
	r.Saved, r.SaveTo = nil, planPath
	if _, err := r.Reconcile(context.Background(), fleet, true); err != nil {
		t.Fatal(err)
	}
	r.SaveTo = ""
	if r.Saved, err = loadPlan(planPath); err != nil {
		t.Fatal(err)
	}
	// The file itself, edited by hand: refused on load, by its digest.
	data, err := os.ReadFile(planPath)
	must(t, err)
	forgedStep := `{"address":"cluster/us","kind":"cluster","action":"delete","cluster":"us"}`
	forged := strings.Replace(string(data), `"steps": []`, `"steps": [`+forgedStep+`]`, 1)
	if forged == string(data) {
		forged = strings.Replace(string(data), `"steps": [`, `"steps": [`+forgedStep+`,`, 1)
	}
	if forged == string(data) {
		t.Fatal("the saved plan file does not hold its steps where this test expects them")
	}
	must(t, os.WriteFile(planPath+".forged", []byte(forged), 0o600))
	if _, err := loadPlan(planPath + ".forged"); !errors.Is(err, ErrStalePlan) || !strings.Contains(err.Error(), "edited after it was saved") {
		t.Fatalf("a saved plan file edited by hand loaded: %v", err)
	}
	var extra plan.Step
	must(t, json.Unmarshal([]byte(`{"address":"cluster/us","kind":"cluster","action":"delete","cluster":"us"}`), &extra))
	r.Saved.Steps = append(r.Saved.Steps, extra)
	writes = len(fw.Writes())
	if _, err := r.Reconcile(context.Background(), fleet, false); !errors.Is(err, ErrStalePlan) ||
		!strings.Contains(err.Error(), "cluster/us is not in the plan made now") {
		t.Fatalf("a step added by hand: err = %v", err)
	}
	if len(fw.Writes()) != writes {
		t.Fatalf("an edited plan wrote to the world: %v", fw.Writes()[writes:])
	}
}
