package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// labFleet is a lab started for one test, with Karmada, on the loopback range first..last
// (each test file its own, so packages' tests may run side by side), and a fleet directory
// holding the lab's Linode token in ./token. The lab stops when the test ends.
type labFleet struct {
	lab      *labworld.Lab
	dir      string // the test's temporary directory
	fleetDir string
}

func upLab(t *testing.T, first, last net.IP, provision time.Duration, mods ...func(*labworld.Options)) *labFleet {
	t.Helper()
	dir := t.TempDir()
	labLog, err := os.OpenFile(filepath.Join(dir, "lab.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { labLog.Close() })
	o := labworld.Options{
		Dir: filepath.Join(dir, "lab"), LinodeListen: "127.0.0.1:0", ChartsListen: "127.0.0.1:0",
		ProvisionDelay: provision, Karmada: true,
		Addresses: labworld.AddressRange{First: first, Last: last},
		Log:       slog.New(slog.NewTextHandler(labLog, nil)),
	}
	for _, m := range mods {
		m(&o)
	}
	l, err := labworld.Up(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	lf := &labFleet{lab: l, dir: dir, fleetDir: filepath.Join(dir, "fleet")}
	must(t, os.MkdirAll(lf.fleetDir, 0o700))
	must(t, os.WriteFile(filepath.Join(lf.fleetDir, "token"), []byte(l.Token+"\n"), 0o600))
	return lf
}

// writeMeshFleet writes meshFleet(name) to path.
func (lf *labFleet) writeMeshFleet(t *testing.T, path, name string) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(lf.meshFleet(name)), 0o644))
}

// writeHello writes hello.yaml beside the fleet: the Deployment hello with replicas replicas.
func (lf *labFleet) writeHello(t *testing.T, replicas int) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(lf.fleetDir, "hello.yaml"), []byte(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, labels: {app: hello}}
spec:
  replicas: %d
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers: [{name: hello, image: docker.io/istio/examples-helloworld-v1:1.0}]
`, replicas)), 0o644))
}

// meshFleet is fleet name: a manager and two Push members, eu and ap, one node each, with the
// mesh on, all pointed at this lab.
func (lf *labFleet) meshFleet(name string) string {
	l := lf.lab
	return fmt.Sprintf(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: %[4]s
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
  pools:
    - type: g6-standard-2
      count: 1
  karmada:
    chart:
      repo: %[2]s
      name: karmada
      version: %[3]s
joinMode: Push
members:
  - name: eu
    region: eu-west
    k8sVersion: "1.33"
    pools:
      - type: g6-standard-2
        count: 1
    network: network1
  - name: ap
    region: ap-south
    k8sVersion: "1.33"
    pools:
      - type: g6-standard-2
        count: 1
    network: network2
mesh:
  version: 1.31.0-dev.20260827124520.eed52ebb66ad
  meshID: mesh1
  chart:
    repo: %[2]s
    version: 1.31.0-dev.20260827124520.eed52ebb66ad
`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion, name)
}

// reconciler is a Reconciler for this lab's fleet as the daemon wires one (reads retried), its
// local state store under the lab's directory, and what it prints; a debug log goes to
// reconcile.log, and both are shown when the test fails.
func (lf *labFleet) reconciler(t *testing.T) (*Reconciler, *state.Store, *labtest.SyncBuffer) {
	t.Helper()
	logPath := filepath.Join(lf.dir, "reconcile.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { logFile.Close() })
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	out := &labtest.SyncBuffer{}
	store, err := state.OpenStore(filepath.Join(lf.dir, "state"))
	must(t, err)
	r := &Reconciler{
		Wire: func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
			return wire(f, store, log, wireOptions{retry: readRetry(executor.RetryPolicy{}, log)})
		},
		Store: store, Exec: executor.Options{Parallelism: 10}, Out: out, Log: log,
	}
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("plan output:\n%s\nreconcile log (tail):\n%s", out.String(), tail(string(data), 60))
		}
	})
	return r, store, out
}
