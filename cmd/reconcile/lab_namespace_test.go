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
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Confirmed bug of issue 15: with manager.karmada.namespace set, the Karmada release was
// installed, then planned "+ manager/karmada/release" on every later pass (the Helm observer
// looked only in karmada-system and istio-system). In the lab: a manager whose Karmada lives
// in karmada-x converges, and the second pass plans nothing and writes nothing.
func TestLabCustomKarmadaNamespace(t *testing.T) {
	labtest.KarmadaBinaries(t)
	lf := upLab(t, net.IPv4(127, 0, 2, 10), net.IPv4(127, 0, 2, 20), 100*time.Millisecond)
	l, dir, fleetDir := lf.lab, lf.dir, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	must(t, os.WriteFile(fleetPath, []byte(fmt.Sprintf(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: lab-ns
provider:
  linode:
    apiURL: %s
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
    namespace: karmada-x
    chart:
      repo: %s
      name: karmada
      version: %s
`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion)), 0o644))
	f, err := spec.Load(fleetPath)
	must(t, err)

	store, err := state.OpenStore(filepath.Join(dir, "state"))
	must(t, err)
	writes := &labtest.WriteCounter{}
	out := &labtest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := &Reconciler{
		Wire: func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
			return wire(f, store, log, wireOptions{wrap: writes.Wrap})
		},
		Store: store, Exec: executor.Options{Parallelism: 10}, Out: out, Log: log,
	}
	pass := func() *PassResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), e2ePassTimeout)
		defer cancel()
		res, err := r.Reconcile(ctx, f, false)
		if err != nil {
			t.Fatalf("pass: %v\n%s", err, out.String())
		}
		return res
	}
	first := pass()
	if s := stepOfPlan(first, "manager/karmada/release"); s == nil || s.Payload.Release.Namespace != "karmada-x" {
		t.Fatalf("the release is installed in karmada-x: %+v", s)
	}
	writes.Take()
	second := pass()
	if n := len(second.Plan.Steps); n != 0 {
		t.Fatalf("second pass planned %d steps, want none:\n%s", n, out.String())
	}
	if got := writes.Take(); len(got) != 0 {
		t.Errorf("second pass wrote %v", got)
	}

	// A fresh runner (an empty state directory) finds everything: the manager's kubeconfig
	// from Linode and Karmada's from the manager, so it plans nothing and writes nothing
	// (before, it planned Karmada's kubeconfig and read Karmada as empty).
	fresh, err := state.OpenStore(filepath.Join(dir, "fresh-state"))
	must(t, err)
	r.Store = fresh
	r.Wire = func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
		return wire(f, fresh, log, wireOptions{wrap: writes.Wrap})
	}
	third := pass()
	if n := len(third.Plan.Steps); n != 0 {
		t.Fatalf("a pass from an empty state directory planned %d steps, want none:\n%s", n, out.String())
	}
	if got := writes.Take(); len(got) != 0 {
		t.Errorf("a pass from an empty state directory wrote %v", got)
	}
	if !fresh.Exists(kube.KarmadaKubeconfig) {
		t.Error("the Karmada kubeconfig was not recovered into the fresh state")
	}
}

func stepOfPlan(res *PassResult, addr string) *plan.Step {
	if res == nil || res.Plan == nil {
		return nil
	}
	for i := range res.Plan.Steps {
		if res.Plan.Steps[i].Address == addr {
			return &res.Plan.Steps[i]
		}
	}
	return nil
}
