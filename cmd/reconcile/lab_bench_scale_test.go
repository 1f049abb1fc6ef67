package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// TestLabBenchScale is `make bench-scale` (issue 13): it converges a fleet of benchScaleMembers
// lab members (Push, mesh on, one workload) cold and prints the cold pass next to its critical
// path (the slowest chain of step durations through the plan's dependencies), the no-op pass
// at 3 and at benchScaleMembers members, and the RSS of the daemon idle. It runs only when
// RECONCILE_BENCH_SCALE=1: it is a measurement, not a test that can fail on a slow machine.
func TestLabBenchScale(t *testing.T) {
	if os.Getenv("RECONCILE_BENCH_SCALE") == "" {
		t.Skip("a measurement: run with RECONCILE_BENCH_SCALE=1 (make bench-scale)")
	}
	labtest.KarmadaBinaries(t)
	n := benchScaleMembers
	if v, err := strconv.Atoi(os.Getenv("RECONCILE_BENCH_SCALE_MEMBERS")); err == nil && v >= 3 {
		n = v
	}
	// 127.0.13.x: no other package's lab uses it.
	// A measurement of reconcile, not of the Linode API's documented rate limits (the lab's
	// default): they are off here, as they are for benchmarks.
	lf := upLab(t, net.IPv4(127, 0, 13, 10), net.IPv4(127, 0, 13, 250), 100*time.Millisecond,
		func(o *labworld.Options) { o.NoLinodeRateLimits = true })
	fleetPath := filepath.Join(lf.fleetDir, "fleet.yaml")
	writeScaleFleet(t, lf, fleetPath, n)
	store, err := state.OpenStore(filepath.Join(lf.dir, "state"))
	must(t, err)
	logFile, err := os.OpenFile(filepath.Join(lf.dir, "reconcile.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { logFile.Close() })
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var mu sync.Mutex
	durations := map[string]time.Duration{}
	r := &Reconciler{
		Wire: func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
			return wire(f, store, log, wireOptions{})
		},
		Store: store, Out: &bytes.Buffer{}, Log: log,
		Exec: executor.Options{Parallelism: 10, OnEvent: func(e executor.Event) {
			if e.Type == executor.EventDone {
				mu.Lock()
				durations[e.Step] = e.Duration
				mu.Unlock()
			}
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	pass := func(what string) (*PassResult, time.Duration) {
		t.Helper()
		f, err := spec.Load(fleetPath)
		must(t, err)
		start := time.Now()
		res, err := r.Reconcile(ctx, f, false)
		if err != nil {
			t.Fatalf("%s: %v (log: %s)", what, err, filepath.Join(lf.dir, "reconcile.log"))
		}
		return res, time.Since(start)
	}
	noop := func(what string) time.Duration {
		t.Helper()
		var times []time.Duration
		for range 3 {
			res, took := pass(what)
			if len(res.Plan.Steps) != 0 {
				t.Fatalf("%s planned %d steps", what, len(res.Plan.Steps))
			}
			times = append(times, took)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		return times[1]
	}

	cold, coldTook := pass("the cold pass")
	critical, chain := criticalPath(cold.Plan, durations)
	noopN := noop(fmt.Sprintf("the no-op pass at %d members", n))

	// The daemon idle, as a process of its own, on the converged fleet.
	port, err := cluster.FreePort("127.0.0.1")
	must(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	d := startReconcile(t, lf.dir, "daemon", "-f", fleetPath, "--state-dir", filepath.Join(lf.dir, "state"), "--health-addr", addr)
	ready := waitCond(ctx, 5*time.Minute, 250*time.Millisecond, func() bool {
		select {
		case <-d.done:
			t.Fatalf("the daemon exited with %d:\n%s", d.code, d.stderrTail())
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatal("the daemon was not ready within 5m")
	}
	rss := processRSS(t, d.cmd.Process.Pid)
	d.stop(t)

	writeScaleFleet(t, lf, fleetPath, 3)
	r.Plan.AllowDestroy = true // 7 of 10 members leave: more than safety.maxDeleteShare
	pass("the pass leaving 3 members")
	r.Plan.AllowDestroy = false
	noop3 := noop("the no-op pass at 3 members")

	report := fmt.Sprintf(`bench-scale (%d members, Push, mesh on, one workload; this machine, %s)
  cold pass                 %s (%d steps)
  its critical path         %s (%d steps: %s)
  cold pass / critical path %.2fx
  no-op pass at 3 members   %s
  no-op pass at %d members  %s
  no-op %d / no-op 3        %.2fx
  daemon idle RSS           %d MiB
`, n, time.Now().UTC().Format(time.DateOnly), coldTook.Round(time.Millisecond), len(cold.Plan.Steps),
		critical.Round(time.Millisecond), len(chain), strings.Join(shortChain(chain), " > "),
		float64(coldTook)/float64(critical), noop3.Round(time.Millisecond), n, noopN.Round(time.Millisecond),
		n, float64(noopN)/float64(noop3), rss>>20)
	t.Log("\n" + report)
	fmt.Print(report)
}

// benchScaleMembers is the size of make bench-scale's fleet (RECONCILE_BENCH_SCALE_MEMBERS
// changes it).
const benchScaleMembers = 10

func writeScaleFleet(t *testing.T, lf *labFleet, path string, n int) {
	t.Helper()
	l := lf.lab
	var members, weights strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&members, "  - name: m%02d\n    region: eu-west\n    k8sVersion: \"1.33\"\n    pools: [{type: g6-standard-2, count: 1}]\n    network: network%d\n", i, i)
		fmt.Fprintf(&weights, "      m%02d: 1\n", i)
	}
	must(t, os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: lab-scale
provider:
  linode:
    apiURL: %[1]s
    tokenFile: ./token
    pollInterval: 1s
    waitTimeout: 5m
manager:
  name: cluster-manager
  region: eu-west
  k8sVersion: "1.33"
  pools: [{type: g6-standard-2, count: 1}]
  karmada:
    chart: {repo: %[2]s, name: karmada, version: %[3]s}
members:
%[4]smesh:
  version: 1.31.0-dev.20260827124520.eed52ebb66ad
  meshID: mesh1
  chart: {repo: %[2]s, version: 1.31.0-dev.20260827124520.eed52ebb66ad}
workloads:
  - name: hello
    namespace: default
    resources:
      - {apiVersion: apps/v1, kind: Deployment, name: hello}
    weights:
%[5]s`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion, members.String(), weights.String())), 0o644))
}

// criticalPath is the slowest chain of executed steps through p's dependencies, by the
// durations the executor reported, and that chain in order.
func criticalPath(p *plan.Plan, took map[string]time.Duration) (time.Duration, []string) {
	deps := map[string][]string{}
	for _, s := range p.Steps {
		deps[s.Address] = s.DependsOn
	}
	memo := map[string]time.Duration{}
	next := map[string]string{}
	var longest func(a string) time.Duration
	longest = func(a string) time.Duration {
		if v, ok := memo[a]; ok {
			return v
		}
		var best time.Duration
		for _, d := range deps[a] {
			if v := longest(d); next[a] == "" || v > best {
				best, next[a] = v, d
			}
		}
		memo[a] = best + took[a]
		return memo[a]
	}
	var end string
	var total time.Duration
	for _, s := range p.Steps {
		if v := longest(s.Address); v > total {
			total, end = v, s.Address
		}
	}
	var chain []string
	for a := end; a != ""; a = next[a] {
		chain = append([]string{a}, chain...)
	}
	return total, chain
}

// shortChain keeps the first and last two steps of a long chain.
func shortChain(c []string) []string {
	if len(c) <= 5 {
		return c
	}
	return append(append(append([]string{}, c[:2]...), "..."), c[len(c)-2:]...)
}

// processRSS is a process's resident set in bytes, from /proc.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			must(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
