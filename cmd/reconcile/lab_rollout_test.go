package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/weights"
	"github.com/reconcile-dev/reconcile/state/world"
)

// rolloutSettle bounds the wait for Karmada to divide as a policy says (and the members to
// report it) outside a gate.
const rolloutSettle = 90 * time.Second

// rolloutFleetYAML is fleet lab-rollout: a manager and three Push members (no mesh), and
// hello (10 replicas) with the given weights and a rollout of one replica a stage.
func rolloutFleetYAML(l *labworld.Lab, weights string) string {
	return fmt.Sprintf(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: lab-rollout
provider:
  linode:
    apiURL: %[1]s
    tokenFile: ./token
    pollInterval: 1s
    waitTimeout: 3m
manager:
  name: cluster-manager
  region: eu-west
  k8sVersion: "1.33"
  pools: [{type: g6-standard-2, count: 1}]
  karmada:
    chart: {repo: %[2]s, name: karmada, version: %[3]s}
joinMode: Push
members:
  - {name: eu, region: eu-west, k8sVersion: "1.33", pools: [{type: g6-standard-2, count: 1}]}
  - {name: ap, region: ap-south, k8sVersion: "1.33", pools: [{type: g6-standard-2, count: 1}]}
  - {name: us, region: us-west, k8sVersion: "1.33", pools: [{type: g6-standard-2, count: 1}]}
workloads:
  - name: hello
    resources: [{apiVersion: apps/v1, kind: Deployment, name: hello}]
    weights: %[4]s
    manifests: [./hello.yaml]
    rollout: {maxShift: 1, interval: 1s, gate: available, timeout: 20s}
`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion, weights)
}

// Gated rollouts in the lab (issue 16): a weight change 1:1:1 -> 2:1:2 of 10 replicas goes
// through the stages the planner predicts, one per `--once`, each stage's split the one
// Karmada's scheduler made, and ends 4/2/4; with the member gaining replicas held unavailable
// (`reconcile-lab fault replicas`), the next rollout's gate does not hold within its timeout,
// the following pass goes back to the last good stage and halts, and nothing is tried again;
// a rollout interrupted after its first stage is continued by a daemon started afresh.
func TestLabRollout(t *testing.T) {
	labtest.KarmadaBinaries(t)
	// 127.0.15.x: no other test's lab uses it.
	lf := upLab(t, net.IPv4(127, 0, 15, 10), net.IPv4(127, 0, 15, 60), 100*time.Millisecond)
	l, dir, fleetDir := lf.lab, lf.dir, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	lf.writeHello(t, 10)
	writeFleet := func(weights string) *spec.Fleet {
		t.Helper()
		must(t, os.WriteFile(fleetPath, []byte(rolloutFleetYAML(l, weights)), 0o644))
		f, err := spec.Load(fleetPath)
		must(t, err)
		return f
	}
	stateDir := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 3*e2ePassTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	once := func(args ...string) int {
		stdout.Reset()
		stderr.Reset()
		code := run(ctx, append([]string{"--once", "--state-dir", stateDir, "-f", fleetPath}, args...), &stdout, &stderr)
		t.Logf("reconcile --once %s: exit %d\n%s", strings.Join(args, " "), code, tail(stdout.String(), 12))
		return code
	}
	r, store, _ := lf.reconciler(t)
	const key = "default/Deployment/hello"
	observe := func(f *spec.Fleet) *world.World {
		t.Helper()
		obs, _, err := r.Wire(f)
		must(t, err)
		w, err := r.Observe(ctx, f, obs)
		must(t, err)
		return w
	}
	// settled waits (bounded) until Karmada divides hello as want and every member reports
	// its share available, and returns what was observed.
	settled := func(f *spec.Fleet, want map[string]int32, available bool) *world.Workload {
		t.Helper()
		var got *world.Workload
		ok := waitCond(ctx, rolloutSettle, time.Second, func() bool {
			w := observe(f)
			if w.Karmada == nil || w.Karmada.Workloads[key] == nil {
				return false
			}
			got = w.Karmada.Workloads[key]
			return maps.Equal(got.Scheduled, want) && (!available || maps.Equal(got.Available, want))
		})
		if !ok {
			t.Fatalf("Karmada's split of hello: %+v, want %v (available %v) within %s", got, want, available, rolloutSettle)
		}
		return got
	}

	// Converge at 1:1:1: the policy is created at once (nothing to roll out from).
	one := map[string]int64{"ap": 1, "eu": 1, "us": 1}
	f := writeFleet("{us: 1, ap: 1, eu: 1}")
	if code := once(); code != 0 {
		t.Fatalf("converging pass: exit %d\n%s\n%s", code, tail(stdout.String(), 40), tail(stderr.String(), 40))
	}
	// The Deployment's UID breaks the 1:1:1 tie of 10 replicas: read it first.
	var obs *world.Workload
	if !waitCond(ctx, rolloutSettle, time.Second, func() bool {
		w := observe(f)
		if w.Karmada != nil && w.Karmada.Workloads[key] != nil && w.Karmada.Workloads[key].UID != "" {
			obs = w.Karmada.Workloads[key]
		}
		return obs != nil
	}) {
		t.Fatalf("hello is not in Karmada within %s", rolloutSettle)
	}
	start := planner.Divide(one, 10, obs.UID)
	settled(f, start, true)

	// 1:1:1 -> 2:1:2, one replica a stage: the stages the planner predicts, one per --once.
	target := map[string]int64{"ap": 1, "eu": 2, "us": 2}
	f = writeFleet("{us: 2, ap: 1, eu: 2}")
	stages := planner.RolloutStages(one, target, 10, obs.UID, 1)
	t.Logf("predicted stages from %v: %v", start, stages)
	for k := 1; k <= len(stages); k++ {
		// A pass within the interval plans nothing but says when; wait for the next stage.
		var out string
		ok := waitCond(ctx, 30*time.Second, 500*time.Millisecond, func() bool {
			if code := once(); code != 0 {
				t.Fatalf("stage %d: exit %d\n%s\n%s", k, code, tail(stdout.String(), 40), tail(stderr.String(), 40))
			}
			out = stdout.String()
			return strings.Contains(out, fmt.Sprintf("rollout hello: stage %d/%d applied, its gate held", k, len(stages)))
		})
		if !ok {
			t.Fatalf("stage %d/%d was not applied:\n%s", k, len(stages), out)
		}
		if k == len(stages) && !strings.Contains(out, "the rollout is complete") {
			t.Errorf("the last stage does not say the rollout is complete:\n%s", out)
		}
		// The gate held: Karmada divided as the stage said, and the members report it.
		if got := observe(f).Karmada.Workloads[key]; !maps.Equal(got.Scheduled, stages[k-1]) {
			t.Errorf("stage %d: Karmada divides %v, the plan predicted %v", k, got.Scheduled, stages[k-1])
		}
	}
	if got := settled(f, map[string]int32{"ap": 2, "eu": 4, "us": 4}, true); got == nil {
		t.Fatal("not 4/2/4")
	}
	if store.Exists(weights.RolloutRecord("hello")) {
		t.Error("the rollout is still recorded after it completed")
	}
	if code := once("--dry-run", "--detailed-exitcode"); code != 0 {
		t.Errorf("after the rollout: exit %d, want 0 (nothing to do)\n%s", code, stdout.String())
	}

	// Halt: back to 1:1:1 with the member that gains replicas held unavailable.
	final := map[string]int32{"ap": 2, "eu": 4, "us": 4}
	f = writeFleet("{us: 1, ap: 1, eu: 1}")
	back := planner.RolloutStages(target, one, 10, obs.UID, 1)
	gainer := ""
	for m, n := range back[0] {
		if n > final[m] {
			gainer = m
		}
	}
	cfg, err := kube.Access{Store: store, Timeout: 10 * time.Second}.For(f).RESTConfig(gainer)
	must(t, err)
	client, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	must(t, labworld.SetReplicasFault(ctx, client, true))
	began := time.Now()
	if code := once(); code != 1 || !strings.Contains(stdout.String(), "its gate did not hold") {
		t.Fatalf("with %s unavailable: exit %d, want 1 and the gate not holding\n%s\n%s", gainer, code, stdout.String(), tail(stderr.String(), 20))
	}
	if took := time.Since(began); took > 20*time.Second+rolloutSettle {
		t.Errorf("the gate took %s to give up, its timeout is 20s", took)
	}
	if code := once(); code != 0 || !strings.Contains(stdout.String(), "halted, back at stage 0/") {
		t.Fatalf("after the timeout: exit %d, want the revert\n%s\n%s", code, stdout.String(), tail(stderr.String(), 20))
	}
	settled(f, final, false) // the split is the last good stage's again
	seen := &world.World{}
	must(t, weights.ObserveRollouts(store, f, seen))
	rec := seen.Rollouts["hello"]
	if rec == nil || rec.Halted == "" || !strings.Contains(rec.Halted, gainer+" reports") {
		t.Errorf("recorded rollout = %+v, want it halted naming %s", rec, gainer)
	}
	if code := once("--dry-run", "--detailed-exitcode"); code != 0 || !strings.Contains(stdout.String(), "not tried again") {
		t.Errorf("halted: exit %d, want 0 and the note\n%s", code, stdout.String())
	}

	// Restart: lift the fault, ask for 2:1:1 (three stages from 2/4/4), apply one stage with --once,
	// then a daemon started afresh continues from stage 2 and completes it.
	must(t, labworld.SetReplicasFault(ctx, client, false))
	settled(f, final, true)
	third := map[string]int64{"ap": 2, "eu": 1, "us": 1}
	f = writeFleet("{us: 1, ap: 2, eu: 1}")
	more := planner.RolloutStages(target, third, 10, obs.UID, 1)
	if len(more) < 2 {
		t.Fatalf("want at least two stages from %v to %v, got %v", target, third, more)
	}
	if code := once(); code != 0 || !strings.Contains(stdout.String(), fmt.Sprintf("stage 1/%d applied, its gate held", len(more))) {
		t.Fatalf("first stage: exit %d\n%s\n%s", code, stdout.String(), tail(stderr.String(), 20))
	}
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	var passes []string
	dr, _, _ := lf.reconciler(t)
	d := &Daemon{Path: fleetPath, Reconciler: dr, Resync: time.Hour, Log: dr.Log,
		Passed: func(_ *spec.Fleet, res *PassResult, err error) {
			if res != nil && res.Result != nil {
				passes = append(passes, strings.Join(res.Result.Succeeded, " "))
			}
		}}
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx, nil) }()
	ok := waitCond(ctx, 2*time.Minute, time.Second, func() bool { return !store.Exists(weights.RolloutRecord("hello")) })
	stop()
	if err := <-done; err != nil && dctx.Err() == nil {
		t.Errorf("daemon: %v", err)
	}
	if !ok {
		t.Fatalf("the daemon did not complete the rollout; its passes: %q", passes)
	}
	settled(f, more[len(more)-1], true)
	if n := strings.Count(strings.Join(passes, "\n"), "workload/hello/policy"); n != len(more)-1 {
		t.Errorf("the daemon applied %d stages, want the %d left after the restart; passes %q", n, len(more)-1, passes)
	}
}
