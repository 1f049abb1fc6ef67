package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// istiodSyncedTimeout bounds the wait, after the converging pass, for every member's istiod to
// list the other members as remote clusters, synced.
const istiodSyncedTimeout = 3 * time.Minute

// The mesh through istiod's own eyes: a fleet of three mesh members converges in a lab that
// runs the real istiod (pilot-discovery, from Istio's own module) for each member's istiod
// Deployment; every istiod then lists the two other members as remote clusters, synced (the
// remote secrets reconcile writes are accepted by istiod), and the istio-ca-root-cert
// ConfigMap istiod writes holds the mesh root of reconcile's state (the plugged-in CA).
func TestLabIstiod(t *testing.T) {
	labtest.KarmadaBinaries(t)
	labtest.Istiod(t)
	// 127.0.20.x: no other test's lab uses it.
	lf := upLab(t, net.IPv4(127, 0, 20, 10), net.IPv4(127, 0, 20, 40), 100*time.Millisecond,
		func(o *labworld.Options) { o.Istiod = true })
	l, dir, fleetDir := lf.lab, lf.dir, lf.fleetDir
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	members := []string{"eu", "ap", "us"}
	var fleet strings.Builder
	fmt.Fprintf(&fleet, `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: lab-istiod
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
mesh:
  version: %[4]s
  meshID: mesh1
  chart: {repo: %[2]s, version: %[4]s}
  ca: {intermediateValidity: 1000h}
members:
`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion, labworld.IstioVersion)
	for k, m := range members {
		fmt.Fprintf(&fleet, "  - {name: %s, region: %s, k8sVersion: \"1.33\", pools: [{type: g6-standard-2, count: 1}], network: network%d}\n",
			m, []string{"eu-west", "ap-south", "us-east"}[k], k+1)
	}
	fleet.WriteString(xdsWorkload)
	writeXDSHello(t, fleetDir, false)
	must(t, os.WriteFile(fleetPath, []byte(fleet.String()), 0o644))
	stateDir := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2ePassTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if code := run(ctx, []string{"--once", "--state-dir", stateDir, "-f", fleetPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("converging pass: exit %d\nstdout:\n%s\nstderr:\n%s", code, tail(stdout.String(), 60), tail(stderr.String(), 60))
	}
	passEnd := time.Now()
	t.Logf("converging pass: %s", passEnd.Sub(start).Round(time.Millisecond))

	// Each member's lab cluster: its directory (istiod's files) and a client.
	store, err := state.OpenStore(stateDir)
	must(t, err)
	ms := istiodMembers(t, l, store, members)

	// Every istiod lists the two other members, synced: 6 of 6.
	var last meshSample
	waitCond(ctx, istiodSyncedTimeout, 250*time.Millisecond, func() bool { last = sampleMesh(ctx, ms); return last.synced == last.want })
	took := time.Since(passEnd)
	got, want := last.synced, last.want
	if got != want {
		for _, m := range ms {
			t.Logf("%s istiod log (tail):\n%s", m.name, tail(readFile(filepath.Join(m.dir, labworld.IstiodDirName, "istiod.log")), 30))
		}
		t.Fatalf("%d of %d remote clusters synced within %s of the pass; /debug/clusterz: %v", got, want, istiodSyncedTimeout, last.raw)
	}
	t.Logf("istiod: %d of %d remote clusters synced %s after the converging pass ended", got, want, took.Round(time.Millisecond))
	for _, m := range ms {
		t.Logf("%s /debug/clusterz: %s", m.name, last.raw[m.name])
	}
	// What needs the API server to reach istiod's Pod: injection, validation, pods/proxy.
	clients := map[string]kubernetes.Interface{}
	for _, m := range ms {
		clients[m.name] = m.client
	}
	checkIstiodThroughAPIServer(t, ctx, clients)

	// Through istiod's registry: every member's endpoints (istiod's own, hello's) under its
	// cluster and network, every remote network's gateway at its east-west address.
	var mm []meshMember
	for k, m := range ms {
		mm = append(mm, meshMember{name: m.name, network: fmt.Sprintf("network%d", k+1), dir: m.dir, client: m.client})
	}
	checkIstiodRegistry(t, ctx, mm, map[string]string{
		"istiod.istio-system.svc.cluster.local": "istio-system",
		"hello.default.svc.cluster.local":       "default",
	})

	// What istiod serves a proxyless gRPC client of each member.
	checkIstiodXDS(t, ctx, l, stateDir, fleetPath)

	// Changes under istiod's watch: credential rotation, a member joining and leaving.
	phases := &istiodPhases{lf: lf, fleet: "lab-istiod", fleetPath: fleetPath, stateDir: stateDir, store: store, members: ms}
	t.Run("rotation", phases.rotationUnderWatch)
	t.Run("membership", phases.membershipChanges)

	// istio-ca-root-cert in default, written by each istiod, holds the mesh root.
	root, err := mesh.LoadRoot(store)
	must(t, err)
	if root == nil {
		t.Fatal("no mesh root in the state store")
	}
	for _, m := range ms {
		var certs []*x509.Certificate
		waitCond(ctx, 30*time.Second, 250*time.Millisecond, func() bool {
			cm, err := m.client.CoreV1().ConfigMaps("default").Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
			if err != nil {
				return false
			}
			certs = pemCerts([]byte(cm.Data["root-cert.pem"]))
			return len(certs) > 0
		})
		found := false
		for _, c := range certs {
			found = found || c.Equal(root.Cert)
		}
		if !found {
			t.Errorf("%s: istio-ca-root-cert in default holds %d certificates, not the mesh root %s", m.name, len(certs), root.Fingerprint())
		}
	}

	// What the three istiods cost.
	var total int64
	for _, m := range ms {
		info, err := labworld.ReadIstiod(m.dir)
		must(t, err)
		rss := processRSS(t, info.PID)
		total += rss
		t.Logf("%s istiod (pid %d, pod %s): RSS %d MiB", m.name, info.PID, info.Pod, rss>>20)
	}
	t.Logf("three istiods: RSS %d MiB in all", total>>20)

	// Last, for it leaves a member on another root: intermediate renewal, a foreign root.
	t.Run("ca", phases.caRenewal)
}

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

func pemCerts(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}
