package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// driftWithin bounds how long the daemon may take to correct a hand edit it watches (the
// issue's target is 10 s; the bound leaves room for a loaded CI machine, and the test logs
// what it took).
const driftWithin = 30 * time.Second

// ---- phase: watch-driven drift (issue 13) ----

// driftWatch runs the daemon with a resync of an hour and its drift watch on, then edits what
// the fleet owns by hand: a remote secret deleted in eu, and the weight of the hello policy
// changed in Karmada. Each is corrected by a pass the watch triggers, long before any resync.
func (e *e2e) driftWatch(t *testing.T) {
	full := withWeights(t, e.baseFleet, map[string]int64{"us": 2, "ap": 1, "eu": 2})
	saveByRename(t, e.fleetPath, full)
	f := e.load(t)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var whys []string
	passes := make(chan string, 64)
	d := &Daemon{
		Path: e.fleetPath, Reconciler: e.r, Resync: time.Hour, Debounce: 100 * time.Millisecond, Log: e.r.Log,
		Drift: NewDriftWatch(e.store, e.r.Log), DriftDebounce: 500 * time.Millisecond,
		Passed: func(_ *spec.Fleet, res *PassResult, err error) {
			why := "pass"
			if err != nil {
				why = "failed: " + err.Error()
			}
			mu.Lock()
			whys = append(whys, why)
			mu.Unlock()
			select {
			case passes <- why:
			default:
			}
		},
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(e2ePassTimeout):
			t.Error("the daemon did not stop within a pass timeout of its cancellation")
		}
	})
	select {
	case why := <-passes:
		if strings.HasPrefix(why, "failed") {
			t.Fatalf("the daemon's first pass %s", why)
		}
	case <-time.After(e2ePassTimeout):
		t.Fatal("no first pass")
	}

	// A remote secret deleted by hand comes back.
	eu := e.kubeClient(t, f, "eu")
	secrets := eu.CoreV1().Secrets(planner.MeshNamespace)
	name := mesh.RemoteSecretName("ap")
	wctx, wcancel := context.WithTimeout(context.Background(), 2*driftWithin)
	defer wcancel()
	// The watch starts after the first pass: wait until its informers have listed.
	if !waitCond(wctx, driftWithin, 100*time.Millisecond, d.Drift.Synced) {
		t.Fatal("the drift watch did not sync")
	}
	start := time.Now()
	if err := secrets.Delete(wctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ok := waitCond(wctx, driftWithin, 200*time.Millisecond, func() bool {
		_, err := secrets.Get(wctx, name, metav1.GetOptions{})
		return err == nil
	})
	if !ok {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s deleted by hand in eu was not written back within %s (passes: %v)", name, driftWithin, whys)
	}
	t.Logf("remote secret deleted by hand: back after %s", time.Since(start).Round(10*time.Millisecond))

	// A policy weight changed by hand in Karmada is set back.
	dc := e.karmadaDynamic(t)
	ri := dc.Resource(ppGVR).Namespace("default")
	pp, err := ri.Get(wctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := []string{"spec", "placement", "replicaScheduling", "weightPreference", "staticWeightList"}
	list, _, _ := unstructured.NestedSlice(pp.Object, path...)
	if len(list) == 0 {
		t.Fatal("the hello policy has no static weights")
	}
	want := fmt.Sprint(list)
	entry := list[0].(map[string]any)
	entry["weight"] = int64(7)
	must(t, unstructured.SetNestedSlice(pp.Object, list, path...))
	start = time.Now()
	if _, err := ri.Update(wctx, pp, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ok = waitCond(wctx, driftWithin, 200*time.Millisecond, func() bool {
		cur, err := ri.Get(wctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false
		}
		got, _, _ := unstructured.NestedSlice(cur.Object, path...)
		return fmt.Sprint(got) == want
	})
	if !ok {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the hello policy's weights changed by hand were not set back within %s (passes: %v)", driftWithin, whys)
	}
	t.Logf("policy weight changed by hand: set back after %s", time.Since(start).Round(10*time.Millisecond))
	// Karmada rescheduled for the hand-made weight meanwhile: the next phases start once the
	// members hold the fleet's split again.
	sctx, scancel := context.WithTimeout(context.Background(), 2*e2eWaitTimeout)
	defer scancel()
	e.waitSplit(t, sctx, f, map[string]int32{"eu": 4, "ap": 2, "us": 4})
}
