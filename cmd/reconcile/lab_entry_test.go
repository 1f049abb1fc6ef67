package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linode/linodego"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/entry"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Health checks of the lab's entry: a check a second, withdrawn after 3 failures, back after 2.
const (
	entryInterval       = time.Second
	entryUnhealthyAfter = 3
	entryHealthyAfter   = 2
)

// entryFleetYAML is fleet lab-entry: a manager and three Push members with the mesh (whose
// ingress gateway the entry publishes) and the entry app.lab-entry.example.
func entryFleetYAML(l *labworld.Lab) string {
	return fmt.Sprintf(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: lab-entry
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
  - {name: eu, region: eu-west, k8sVersion: "1.33", pools: [{type: g6-standard-2, count: 1}], network: network1}
  - {name: ap, region: ap-south, k8sVersion: "1.33", pools: [{type: g6-standard-2, count: 1}], network: network2}
  - {name: us, region: us-west, k8sVersion: "1.33", pools: [{type: g6-standard-2, count: 1}], network: network3}
mesh:
  version: 1.31.0-dev.20260827124520.eed52ebb66ad
  meshID: mesh1
  chart: {repo: %[2]s, version: 1.31.0-dev.20260827124520.eed52ebb66ad}
entry:
  domain: lab-entry.example
  hostname: app
  perMemberNames: true
  ttl: 30
  healthCheck: {interval: %[4]s, timeout: 500ms, unhealthyAfter: %[5]d, healthyAfter: %[6]d}
`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion, entryInterval, entryUnhealthyAfter, entryHealthyAfter)
}

// The entry in the lab (issue 14), with istiod running in every member (it injects the
// ingress gateway's Pods): one pass publishes app.lab-entry.example with every
// member's ingress address, resolved by a real DNS client through the lab's DNS server, and a
// name per member; a second pass plans and writes nothing; with the daemon running, a member
// whose ingress stops answering (`reconcile-lab fault ingress us down`) leaves the answer within
// interval x unhealthyAfter plus one pass and comes back after `up`; with every member down all
// stay published; a record someone else wrote in the zone survives it all. Failover and
// recovery times are measured against their bounds.
func TestLabEntry(t *testing.T) {
	labtest.KarmadaBinaries(t)
	// The ingress gateway's Pods are injected by istiod's webhook, so only exist with istiod.
	labtest.Istiod(t)
	// 127.0.18.x: no other test's lab uses it.
	lf := upLab(t, net.IPv4(127, 0, 18, 10), net.IPv4(127, 0, 18, 80), 100*time.Millisecond,
		func(o *labworld.Options) { o.Istiod = true })
	l, dir, fleetDir := lf.lab, lf.dir, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	must(t, os.WriteFile(fleetPath, []byte(entryFleetYAML(l)), 0o644))
	f, err := spec.Load(fleetPath)
	must(t, err)
	stateDir := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 4*e2ePassTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	once := func(args ...string) int {
		stdout.Reset()
		stderr.Reset()
		code := run(ctx, append([]string{"--once", "--state-dir", stateDir, "-f", fleetPath}, args...), &stdout, &stderr)
		t.Logf("reconcile --once %s: exit %d\n%s", strings.Join(args, " "), code, tail(stdout.String(), 12))
		return code
	}
	resolve := func(name string) []string {
		t.Helper()
		ips, err := labworld.Resolve(l.DNS, name+".lab-entry.example")
		if err != nil {
			t.Fatalf("resolve %s: %v", name, err)
		}
		return ips
	}

	if code := once(); code != 0 {
		t.Fatalf("converging pass: exit %d\n%s\n%s", code, tail(stdout.String(), 60), tail(stderr.String(), 40))
	}
	// Each member's ingress address, as its Service has it.
	r, store, _ := lf.reconciler(t)
	access := kube.Access{Store: store}.For(f)
	clients := map[string]kubernetes.Interface{}
	ingress := map[string]string{}
	var all []string
	for _, m := range []string{"eu", "ap", "us"} {
		cfg, err := access.RESTConfig(m)
		must(t, err)
		cs, err := kubernetes.NewForConfig(cfg)
		must(t, err)
		clients[m] = cs
		svc, err := cs.CoreV1().Services("istio-system").Get(ctx, "istio-ingressgateway", metav1.GetOptions{})
		must(t, err)
		ips := entry.Addresses(svc)
		if len(ips) != 1 {
			t.Fatalf("%s's ingress gateway has addresses %v, want one", m, ips)
		}
		ingress[m] = ips[0]
		all = append(all, ips[0])
	}
	slices.Sort(all)
	if got := resolve("app"); !slices.Equal(got, all) {
		t.Fatalf("app answers %v, want every member's ingress %v", got, all)
	}
	for m, ip := range ingress {
		if got := resolve(m + ".app"); !slices.Equal(got, []string{ip}) {
			t.Errorf("%s.app answers %v, want %s", m, got, ip)
		}
	}
	// Someone else's record in the zone.
	lc := linodego.NewClient(nil)
	_, err = lc.UseURL(l.LinodeURL)
	must(t, err)
	lc.SetToken(l.Token)
	doms, err := lc.ListDomains(ctx, nil)
	must(t, err)
	var zoneID int
	for _, d := range doms {
		if d.Domain == "lab-entry.example" {
			zoneID = d.ID
		}
	}
	if zoneID == 0 {
		t.Fatalf("no zone lab-entry.example in %+v", doms)
	}
	_, err = lc.CreateDomainRecord(ctx, zoneID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "www", Target: "192.0.2.80", TTLSec: 300})
	must(t, err)

	// A second pass plans nothing and writes nothing to the Linode API.
	writes := func() int {
		n := 0
		for _, rq := range l.LinodeAPI().Requests() {
			if rq.Method != "GET" {
				n++
			}
		}
		return n
	}
	before := writes()
	if code := once("--detailed-exitcode"); code != 0 {
		t.Fatalf("second pass: exit %d (want 0: nothing to do)\n%s", code, tail(stdout.String(), 40))
	}
	if n := writes() - before; n != 0 {
		t.Errorf("the second pass wrote %d times to the Linode API", n)
	}

	// The daemon checks health and fails over.
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	var passes []string
	d := &Daemon{Path: fleetPath, Reconciler: r, Resync: time.Hour, Log: r.Log,
		Passed: func(_ *spec.Fleet, res *PassResult, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				passes = append(passes, "failed: "+err.Error())
			case res != nil && res.Result != nil:
				passes = append(passes, strings.Join(res.Result.Succeeded, " "))
			default:
				passes = append(passes, "(nothing to do)")
			}
		}}
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx, nil) }()
	defer func() {
		stop()
		if err := <-done; err != nil && dctx.Err() == nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	fault := func(m string, down bool) {
		t.Helper()
		must(t, labworld.SetIngressFault(ctx, clients[m], down))
	}
	// awaitAnswer waits until app answers want and returns how long it took.
	awaitAnswer := func(what string, want []string, bound time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		var got []string
		if !waitCond(ctx, bound+90*time.Second, 200*time.Millisecond, func() bool {
			got = resolve("app")
			return slices.Equal(got, want)
		}) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: app answers %v, want %v; the daemon's passes: %q", what, got, want, passes)
		}
		took := time.Since(start)
		t.Logf("%s: app answered %v after %s (bound: %s plus one pass)", what, want, took.Round(100*time.Millisecond), bound)
		return took
	}
	without := func(ip string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(a string) bool { return a == ip })
	}
	// The daemon is up once its first pass (nothing to do) ran.
	if !waitCond(ctx, e2ePassTimeout, 200*time.Millisecond, func() bool { mu.Lock(); defer mu.Unlock(); return len(passes) > 0 }) {
		t.Fatal("the daemon's first pass did not run")
	}
	failBound := time.Duration(entryUnhealthyAfter) * entryInterval
	recoverBound := time.Duration(entryHealthyAfter) * entryInterval
	fault("us", true)
	failover := awaitAnswer("us down", without(ingress["us"]), failBound)
	if got := resolve("us.app"); !slices.Equal(got, []string{ingress["us"]}) {
		t.Errorf("us.app answers %v while us is unhealthy, want its own address %s still", got, ingress["us"])
	}
	fault("us", false)
	recovery := awaitAnswer("us up", all, recoverBound)

	// All down: withdrawn one by one until none would be left, then all stay (fail open).
	for _, m := range []string{"eu", "ap", "us"} {
		fault(m, true)
	}
	if !waitCond(ctx, failBound+90*time.Second, 200*time.Millisecond, func() bool {
		h, err := entry.LoadHealth(store)
		if err != nil {
			return false
		}
		for _, m := range []string{"eu", "ap", "us"} {
			if h[m] == nil || h[m].Healthy {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the daemon did not find every member unhealthy")
	}
	awaitAnswer("all down (fail open)", all, failBound)
	for _, m := range []string{"eu", "ap", "us"} {
		fault(m, false)
	}
	if !waitCond(ctx, recoverBound+90*time.Second, 200*time.Millisecond, func() bool {
		h, err := entry.LoadHealth(store)
		if err != nil {
			return false
		}
		for _, m := range []string{"eu", "ap", "us"} {
			if h[m] == nil || !h[m].Healthy {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the daemon did not find every member healthy again")
	}
	awaitAnswer("all up", all, recoverBound)
	if got := resolve("www"); !slices.Equal(got, []string{"192.0.2.80"}) {
		t.Errorf("someone else's www answers %v, want 192.0.2.80", got)
	}
	// Back where it started: a pass plans nothing and writes nothing.
	stop()
	if err := <-done; err != nil {
		t.Errorf("daemon: %v", err)
	}
	done <- nil
	before = writes()
	if code := once("--detailed-exitcode"); code != 0 {
		t.Errorf("after the failovers: exit %d (want 0: nothing to do)\n%s", code, tail(stdout.String(), 40))
	}
	if n := writes() - before; n != 0 {
		t.Errorf("a pass after the failovers wrote %d times to the Linode API", n)
	}
	t.Logf("failover %s (bound %s x %d = %s plus one pass); recovery %s (bound %s x %d = %s plus one pass)",
		failover.Round(100*time.Millisecond), entryInterval, entryUnhealthyAfter, failBound,
		recovery.Round(100*time.Millisecond), entryInterval, entryHealthyAfter, recoverBound)
}
