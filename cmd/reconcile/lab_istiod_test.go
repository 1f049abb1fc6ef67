package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
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
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// istiodSyncedTimeout bounds the wait, after the converging pass, for every member's istiod to
// list the other members as remote clusters, synced.
const istiodSyncedTimeout = 3 * time.Minute

// clusterzEntry is one cluster of istiod's /debug/clusterz.
type clusterzEntry struct {
	ID         string `json:"id"`
	SecretName string `json:"secretName"`
	SyncStatus string `json:"syncStatus"`
}

// The mesh through istiod's own eyes: a fleet of three mesh members converges in a lab that
// runs the real istiod (pilot-discovery, from Istio's own module) for each member's istiod
// Deployment; every istiod then lists the two other members as remote clusters, synced (the
// remote secrets reconcile writes are accepted by istiod), and the istio-ca-root-cert
// ConfigMap istiod writes holds the mesh root of reconcile's state (the plugged-in CA).
func TestLabIstiod(t *testing.T) {
	labtest.KarmadaBinaries(t)
	labtest.Istiod(t)
	// 127.0.20.x: no other test's lab uses it.
	lf := upLab(t, net.IPv4(127, 0, 22, 10), net.IPv4(127, 0, 22, 40), 100*time.Millisecond,
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
	type member struct {
		name   string
		dir    string
		client kubernetes.Interface
	}
	var ms []member
	for _, m := range members {
		cfg, err := kube.Access{Store: store}.RESTConfig(m)
		must(t, err)
		var lc *labworld.LabCluster
		for _, c := range l.Clusters() {
			if c.RESTConfig.Host == cfg.Host {
				lc = &c
			}
		}
		if lc == nil {
			t.Fatalf("member %s (%s) is no lab cluster", m, cfg.Host)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		must(t, err)
		ms = append(ms, member{name: m, dir: lc.Dir, client: cs})
	}

	// Every istiod lists the two other members, synced: 6 of 6.
	httpc := &http.Client{Timeout: 5 * time.Second}
	status := map[string]string{}
	synced := func() int {
		n := 0
		for _, m := range ms {
			info, err := labworld.ReadIstiod(m.dir)
			if err != nil {
				status[m.name] = "no istiod: " + err.Error()
				continue
			}
			resp, err := httpc.Get("http://" + info.Monitoring + "/debug/clusterz")
			if err != nil {
				status[m.name] = err.Error()
				continue
			}
			var entries []clusterzEntry
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if err := json.Unmarshal(body.Bytes(), &entries); err != nil {
				status[m.name] = fmt.Sprintf("%d %s", resp.StatusCode, tail(body.String(), 3))
				continue
			}
			status[m.name] = body.String()
			for _, e := range entries {
				if e.ID != m.name && e.SecretName != "" && e.SyncStatus == "synced" {
					n++
				}
			}
		}
		return n
	}
	want := len(ms) * (len(ms) - 1)
	got := 0
	waitCond(ctx, istiodSyncedTimeout, 250*time.Millisecond, func() bool { got = synced(); return got == want })
	took := time.Since(passEnd)
	if got != want {
		for _, m := range ms {
			t.Logf("%s istiod log (tail):\n%s", m.name, tail(readFile(filepath.Join(m.dir, labworld.IstiodDirName, "istiod.log")), 30))
		}
		t.Fatalf("%d of %d remote clusters synced within %s of the pass; /debug/clusterz: %v", got, want, istiodSyncedTimeout, status)
	}
	t.Logf("istiod: %d of %d remote clusters synced %s after the converging pass ended", got, want, took.Round(time.Millisecond))
	for _, m := range ms {
		t.Logf("%s /debug/clusterz: %s", m.name, strings.TrimSpace(status[m.name]))
	}
	checkIstiodXDS(t, ctx, l, stateDir, fleetPath)

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
