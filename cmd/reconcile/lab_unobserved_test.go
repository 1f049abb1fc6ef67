package main

import (
	"context"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// Issue 13: a member whose kube-apiserver hangs (SIGSTOP: connections are accepted, nothing
// answers) was planned as if empty (+ member/eu/mesh/cacerts, + istiod, ...) and the pass
// blocked about a minute on TLS handshake timeouts. In the lab: a converged fleet of two
// members; eu's kube-apiserver is stopped and ap's cross-network Gateway deleted; the next
// pass finishes within seconds, holds eu's steps ("? member/eu/... (not observed: ...)"),
// plans nothing for eu, and puts ap's Gateway back.
func TestLabUnobservedMember(t *testing.T) {
	labtest.KarmadaBinaries(t)
	lf := upLab(t, net.IPv4(127, 0, 12, 10), net.IPv4(127, 0, 12, 60), 100*time.Millisecond)
	l, fleetDir := lf.lab, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	lf.writeMeshFleet(t, fleetPath, "lab-unobserved")
	f, err := spec.Load(fleetPath)
	must(t, err)

	r, store, out := lf.reconciler(t)

	ctx, cancel := context.WithTimeout(context.Background(), e2ePassTimeout)
	defer cancel()
	if _, err := r.Reconcile(ctx, f, false); err != nil {
		t.Fatalf("converging pass: %v", err)
	}

	// eu's kube-apiserver: the lab cluster on the address of eu's stored kubeconfig.
	access := kube.Access{Store: store, Timeout: 20 * time.Second}
	euCfg, err := access.RESTConfig("eu")
	must(t, err)
	u, err := url.Parse(euCfg.Host)
	must(t, err)
	pid := 0
	for _, c := range l.Clusters() {
		if c.Address == u.Hostname() {
			pid = c.APIServerPID
		}
	}
	if pid == 0 {
		t.Fatalf("no lab cluster on %s (eu's API server)", u.Hostname())
	}

	// ap's Gateway goes, so the pass has something to do elsewhere.
	apCfg, err := access.RESTConfig("ap")
	must(t, err)
	dyn, err := dynamic.NewForConfig(apCfg)
	must(t, err)
	must(t, dyn.Resource(mesh.GatewayResource).Namespace(mesh.MeshNamespace).Delete(ctx, mesh.GatewayName, metav1.DeleteOptions{}))

	// Stop eu's API server; it is always continued, whatever happens below.
	cont := func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(cont)
	must(t, syscall.Kill(pid, syscall.SIGSTOP))
	mark := out.Len()
	passCtx, passCancel := context.WithTimeout(ctx, 90*time.Second)
	defer passCancel()
	start := time.Now()
	res, err := r.Reconcile(passCtx, f, false)
	took := time.Since(start)
	cont()
	if err != nil {
		t.Fatalf("the pass with eu stopped failed after %s: %v", took, err)
	}
	t.Logf("the pass with eu stopped took %s; plan:\n%s", took, out.From(mark))
	if took > 30*time.Second {
		t.Errorf("the pass with eu stopped took %s, want well under the 30s bound (a 3s handshake bound decides eu)", took)
	}
	for _, s := range res.Plan.Steps {
		if s.Cluster == "eu" || s.Peer == "eu" {
			t.Errorf("a step acts in or from eu, which did not answer: %s %s (%s)", s.Action.Symbol(), s.Address, s.Reason)
		}
	}
	text := out.From(mark)
	for _, want := range []string{"+ member/ap/mesh/expose", "? member/eu/mesh/cacerts  (not observed: eu did not answer: ",
		"? member/ap/mesh/remote-secret/eu"} {
		if !strings.Contains(text, want) {
			t.Errorf("the plan lacks %q", want)
		}
	}
	if res.Result == nil || len(res.Result.Failed) > 0 {
		t.Errorf("the pass's steps: %+v", res.Result)
	}
	if _, err := dyn.Resource(mesh.GatewayResource).Namespace(mesh.MeshNamespace).Get(ctx, mesh.GatewayName, metav1.GetOptions{}); err != nil {
		t.Errorf("ap's Gateway was not put back: %v", err)
	}

	// Once eu answers again, a pass reads it and has nothing held.
	mark = out.Len()
	p, err := r.Reconcile(ctx, f, true)
	if err != nil {
		t.Fatalf("dry run after eu continued: %v", err)
	}
	if len(p.Plan.Held) != 0 {
		t.Errorf("steps still held after eu continued:\n%s", out.From(mark))
	}
}
