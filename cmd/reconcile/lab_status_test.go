package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// statusHealthyTimeout bounds the wait, after a converging pass, for status to see every
// layer healthy (Karmada's Ready conditions and the bindings' aggregated status come from
// Karmada's controllers, a little after the pass).
const statusHealthyTimeout = 2 * time.Minute

// statusStoppedBound is how long status may take with a member whose API server is stopped
// (SIGSTOP: connections are accepted and TLS handshakes hang): its reads are bounded, it does
// not wait for the member.
const statusStoppedBound = 60 * time.Second

// `reconcile status` in the lab: a fleet of a manager and two Push members with the mesh and a
// workload converges; status exits 0 and shows every layer, writing nothing to the state; then ap's
// kube-apiserver is stopped (SIGSTOP) and status exits 3 within a bound, naming ap.
func TestLabStatus(t *testing.T) {
	labtest.KarmadaBinaries(t)
	// 127.0.10.x: no other test's lab uses it.
	lf := upLab(t, net.IPv4(127, 0, 10, 10), net.IPv4(127, 0, 10, 40), 100*time.Millisecond)
	l, dir, fleetDir := lf.lab, lf.dir, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	lf.writeHello(t, 6)
	must(t, os.WriteFile(fleetPath, []byte(fmt.Sprintf(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: lab-status
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
  - name: eu
    region: eu-west
    k8sVersion: "1.33"
    pools: [{type: g6-standard-2, count: 1}]
    network: network1
  - name: ap
    region: ap-south
    k8sVersion: "1.33"
    pools: [{type: g6-standard-2, count: 1}]
    network: network2
mesh:
  version: 1.31.0-dev.20260827124520.eed52ebb66ad
  meshID: mesh1
  chart: {repo: %[2]s, version: 1.31.0-dev.20260827124520.eed52ebb66ad}
workloads:
  - name: hello
    resources: [{apiVersion: apps/v1, kind: Deployment, name: hello}]
    weights: {eu: 1, ap: 2}
    manifests: [./hello.yaml]
`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion)), 0o644))
	stateDir := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2ePassTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	runIt := func(args ...string) int {
		stdout.Reset()
		stderr.Reset()
		return run(ctx, append(args, "--state-dir", stateDir, "-f", fleetPath), &stdout, &stderr)
	}
	if code := runIt("--once"); code != 0 {
		t.Fatalf("converging pass: exit %d\nstdout:\n%s\nstderr:\n%s", code, tail(stdout.String(), 60), tail(stderr.String(), 60))
	}

	// Healthy: wait (bounded) for Karmada's controllers to report the members Ready and the
	// workload applied, then the text shows every layer.
	before := stateFiles(t, stateDir)
	code := -1
	waitCond(ctx, statusHealthyTimeout, 2*time.Second, func() bool {
		code = runIt("status")
		return code == 0
	})
	if code != 0 {
		t.Fatalf("status of the converged fleet: exit %d, want 0 within %s\nstdout:\n%s\nstderr:\n%s", code, statusHealthyTimeout,
			stdout.String(), tail(stderr.String(), 40))
	}
	t.Logf("status of the converged fleet:\n%s", stdout.String())
	for _, want := range []string{"Fleet lab-status: HEALTHY", "cluster-manager  manager", "KARMADA  reachable, cluster API available", "MESH  root ",
		"hello     Deployment/hello  6", "PLAN NOW  0 to add, 0 to change, 0 to destroy", "0 failed"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("status lacks %q", want)
		}
	}
	if code := runIt("status", "-o", "json"); code != 0 {
		t.Fatalf("status -o json: exit %d\n%s", code, stderr.String())
	}
	var st Status
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		t.Fatalf("status -o json is not one JSON document: %v\n%s", err, stdout.String())
	}
	if st.Health != Healthy || len(st.Clusters) != 3 || len(st.Karmada.Members) != 2 || len(st.Workloads) != 1 || len(st.Passes) != 1 ||
		st.Mesh == nil || st.Mesh.Root == nil || len(st.Mesh.Members) != 2 {
		t.Fatalf("status -o json: %+v", st)
	}
	for _, m := range st.Mesh.Members {
		if m.Intermediate == nil || m.Intermediate.RootFingerprint != st.Mesh.Root.RootFingerprint || len(m.RemoteSecrets) != 1 ||
			m.RemoteSecrets[0].State != SecretCurrent || m.Istiod != IstiodNotAsked {
			t.Errorf("mesh of %s: %+v", m.Name, m)
		}
	}
	if len(st.Credentials) != 4 { // two members' Karmada tokens and istio-reader tokens
		t.Errorf("credentials: %+v", st.Credentials)
	}
	for _, wl := range st.Workloads {
		for _, r := range wl.Resources {
			for _, sp := range r.Members {
				if sp.Reported == nil || !sp.Reported.Applied || sp.Predicted != sp.Scheduled {
					t.Errorf("%s %s in %s: predicted %d, scheduled %d, reported %+v", r.Kind, r.Name, sp.Member, sp.Predicted, sp.Scheduled, sp.Reported)
				}
			}
		}
	}
	if after := stateFiles(t, stateDir); after != before {
		t.Errorf("status changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// ap's API server stops answering: its kube-apiserver is stopped, not killed, so
	// connections hang rather than fail.
	store, err := state.OpenStore(stateDir)
	must(t, err)
	cfg, err := kube.Access{Store: store}.RESTConfig("ap")
	must(t, err)
	pid := apiServerPID(t, cfg.Host)
	must(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // before the lab stops it
	start := time.Now()
	code = runIt("status")
	took := time.Since(start)
	t.Logf("status with ap stopped (%s):\n%s", took.Round(time.Millisecond), stdout.String())
	if code != 3 {
		t.Fatalf("status with ap's API server stopped: exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), tail(stderr.String(), 40))
	}
	if took > statusStoppedBound {
		t.Errorf("status took %s with ap stopped; want it bounded by %s", took, statusStoppedBound)
	}
	if !strings.Contains(stdout.String(), "  - member ap: API server unreachable\n") {
		t.Errorf("status does not name ap as unreachable")
	}
	if strings.Contains(stdout.String(), "member eu:") || strings.Contains(stdout.String(), "manager cluster-manager:") {
		t.Errorf("status names a cluster that answers")
	}
	if after := stateFiles(t, stateDir); after != before {
		t.Errorf("status changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// stateFiles lists a local state directory: every file with its size and modification time.
func stateFiles(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == state.ChartCacheDir {
			return filepath.SkipDir // a cache, not state
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "%s %d %s\n", rel, fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	must(t, err)
	return b.String()
}

// apiServerPID finds the lab's kube-apiserver serving host (https://address:port): a child of
// this process (the lab runs in the test) bound to that address and port.
func apiServerPID(t *testing.T, host string) int {
	t.Helper()
	u, err := url.Parse(host)
	must(t, err)
	bind := "\x00--bind-address\x00" + u.Hostname() + "\x00"
	port := "\x00--secure-port\x00" + u.Port() + "\x00"
	entries, err := os.ReadDir("/proc")
	must(t, err)
	me := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != me {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		c := "\x00" + string(cmdline)
		if strings.Contains(c, "kube-apiserver") && strings.Contains(c, bind) && strings.Contains(c, port) {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	t.Fatalf("no kube-apiserver of this test serves %s", host)
	return 0
}
