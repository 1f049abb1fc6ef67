package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Issue 11: removing an existing (kubeconfig) member from fleet.yaml left its RBAC, tokens,
// cacerts and mesh releases behind, because its kubeconfig left with it. The state keeps a
// copy of it until the teardown is done: the member is unjoined and its mesh torn down, nothing
// with the fleet's mark is left in it, the copy is forgotten, and the next pass plans nothing.
func TestLabExistingMemberLeavesCleanly(t *testing.T) {
	labtest.KarmadaBinaries(t)
	// 127.0.7.x: no other package's lab uses it.
	lf := upLab(t, net.IPv4(127, 0, 7, 10), net.IPv4(127, 0, 7, 40), 100*time.Millisecond)
	l, dir, fleetDir := lf.lab, lf.dir, lf.fleetDir
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	lc := ptr(linodego.NewClient(&http.Client{Timeout: 20 * time.Second}))
	_, err := lc.UseURL(l.LinodeURL)
	must(t, err)
	lc.SetToken(l.Token)
	ex := outsideCluster(t, ctx, lc, "outside", filepath.Join(fleetDir, "ex-kubeconfig"))

	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	const exBlock = "  - name: ex\n    kubeconfig: {path: ./ex-kubeconfig}\n    network: network2\n"
	full := fmt.Sprintf(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: lab-ex
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
members:
  - name: eu
    region: eu-west
    k8sVersion: "1.33"
    pools: [{type: g6-standard-2, count: 1}]
    network: network1
%[4]smesh:
  version: 1.31.0-dev.20260827124520.eed52ebb66ad
  meshID: mesh1
  chart: {repo: %[2]s, version: 1.31.0-dev.20260827124520.eed52ebb66ad}
`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion, exBlock)
	must(t, os.WriteFile(fleetPath, []byte(full), 0o644))

	store, err := state.OpenStore(filepath.Join(dir, "state"))
	must(t, err)
	logFile, err := os.OpenFile(filepath.Join(dir, "reconcile.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { logFile.Close() })
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	out := &labtest.SyncBuffer{}
	r := &Reconciler{
		Wire: func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
			return wire(f, store, log, wireOptions{})
		},
		Store: store, Exec: executor.Options{Parallelism: 10}, Out: out, Log: log,
	}
	pass := func(what string) *PassResult {
		t.Helper()
		f, err := spec.Load(fleetPath)
		must(t, err)
		pctx, cancel := context.WithTimeout(ctx, e2ePassTimeout)
		defer cancel()
		mark := out.Len()
		res, err := r.Reconcile(pctx, f, false)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out.From(mark))
		}
		return res
	}
	pass("converging with ex")
	if !store.Exists(kube.ExistingKubeconfig("ex")) {
		t.Fatal("the state keeps no copy of the existing member's kubeconfig")
	}
	if n := len(pass("second pass").Plan.Steps); n != 0 {
		t.Fatalf("the second pass planned %d steps:\n%s", n, out.String())
	}
	marked := func() []string {
		t.Helper()
		sel := metav1.ListOptions{LabelSelector: world.FleetLabel + "=lab-ex"}
		var found []string
		nss, err := ex.CoreV1().Namespaces().List(ctx, sel)
		must(t, err)
		for _, n := range nss.Items {
			if n.DeletionTimestamp == nil {
				found = append(found, "namespace/"+n.Name)
			}
		}
		crs, err := ex.RbacV1().ClusterRoles().List(ctx, sel)
		must(t, err)
		for _, c := range crs.Items {
			found = append(found, "clusterrole/"+c.Name)
		}
		crbs, err := ex.RbacV1().ClusterRoleBindings().List(ctx, sel)
		must(t, err)
		for _, c := range crbs.Items {
			found = append(found, "clusterrolebinding/"+c.Name)
		}
		secrets, err := ex.CoreV1().Secrets("").List(ctx, sel)
		must(t, err)
		for _, s := range secrets.Items {
			found = append(found, "secret/"+s.Namespace+"/"+s.Name)
		}
		return found
	}
	if got := marked(); len(got) == 0 {
		t.Fatal("nothing in ex carries the fleet's mark after joining and meshing it: the check below would prove nothing")
	}

	must(t, os.WriteFile(fleetPath, []byte(strings.Replace(full, exBlock, "", 1)), 0o644))
	r.Plan.AllowDestroy = true // one of two members is more than safety.maxDeleteShare
	res := pass("removing ex")
	for _, a := range []string{"member/ex/unjoin", "member/ex/mesh/teardown"} {
		if stepOfPlan(res, a) == nil {
			t.Errorf("removing ex did not plan %s:\n%s", a, out.String())
		}
	}
	if got := marked(); len(got) != 0 {
		t.Errorf("left in ex with the fleet's mark: %v", got)
	}
	if _, err := ex.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{}); err == nil {
		t.Error("istio-system is still in ex")
	}
	if store.Exists(kube.ExistingKubeconfig("ex")) {
		t.Error("the copy of ex's kubeconfig is still in the state after its teardown")
	}
	if n := len(pass("after removing ex").Plan.Steps); n != 0 {
		t.Errorf("the pass after removing ex planned %d steps:\n%s", n, out.String())
	}
}
