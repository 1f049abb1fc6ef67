package labworld

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testdata/xds-probe-ap.json is what xds-probe printed for ap in a lab of three mesh members
// (eu network1, ap network2, us network3; hello with 2 replicas in each, its Pods labelled
// security.istio.io/tlsMode=istio): ap's two Pods, and eu's and us's east-west gateways.
func TestParseXDSReport(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "xds-probe-ap.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseXDSReport(data)
	if err != nil {
		t.Fatal(err)
	}
	const cluster = "outbound|5000||hello.default.svc.cluster.local"
	if !r.Complete || r.FirstEDSMillis == nil || r.Target != "xds:///hello.default.svc.cluster.local:5000" {
		t.Errorf("complete %v, first EDS %v, target %q", r.Complete, r.FirstEDSMillis, r.Target)
	}
	if len(r.Listeners) != 1 || r.Listeners[0].RouteConfig != cluster || len(r.Routes) != 1 ||
		!reflect.DeepEqual(r.Routes[0].Clusters, []string{cluster}) {
		t.Errorf("listeners %+v routes %+v", r.Listeners, r.Routes)
	}
	if len(r.Clusters) != 1 || r.Clusters[0].Type != "EDS" || r.Clusters[0].Status != "ACKED" {
		t.Errorf("clusters %+v", r.Clusters)
	}
	a := r.Assignment(cluster)
	if a == nil || a.Status != "ACKED" || len(a.Localities) != 3 {
		t.Fatalf("assignment of %s: %+v", cluster, a)
	}
	if r.Assignment("outbound|80||nothing") != nil {
		t.Error("an assignment for a cluster the report does not hold")
	}
	type ep struct {
		region, addr, cluster, workload, tls string
		port                                 int
		weight                               uint32
	}
	var got []ep
	for _, l := range a.Localities {
		for _, e := range l.Endpoints {
			got = append(got, ep{l.Region, e.Host(), e.Cluster(), e.Workload(), e.TLSMode(), e.Port(), e.Weight})
		}
	}
	want := []ep{
		{"ap-south", "10.102.1.2", "ap", "hello", "istio", 5000, 1},
		{"ap-south", "10.102.1.3", "ap", "hello", "istio", 5000, 1},
		{"eu-west", "127.0.22.139", "eu", "", "istio", 15443, 2},
		{"us-east", "127.0.22.138", "us", "", "istio", 15443, 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints\n got %+v\nwant %+v", got, want)
	}
	if n := len(r.AllEndpoints()); n != 4 {
		t.Errorf("AllEndpoints: %d, want 4", n)
	}
	if !r.DialedAll || len(r.Dialed) != 4 || r.Dialed[2] != "127.0.22.138:15443" {
		t.Errorf("dialed %v (all: %v)", r.Dialed, r.DialedAll)
	}

	for _, bad := range []string{"", "{}", "[]", `{"target": 1}`} {
		if _, err := ParseXDSReport([]byte(bad)); err == nil {
			t.Errorf("ParseXDSReport(%q) took it", bad)
		}
	}
}

func TestXDSEndpointAccessors(t *testing.T) {
	e := XDSEndpoint{Address: "[fd00::1]:15443"}
	if e.Host() != "fd00::1" || e.Port() != 15443 || e.Cluster() != "" || e.Workload() != "" || e.TLSMode() != "" {
		t.Errorf("%+v: host %q port %d cluster %q", e, e.Host(), e.Port(), e.Cluster())
	}
	if e := (XDSEndpoint{Address: "pipe"}); e.Host() != "pipe" || e.Port() != 0 {
		t.Errorf("no port: host %q port %d", e.Host(), e.Port())
	}
}

func TestXDSProbeArgs(t *testing.T) {
	o := XDSProbeOptions{XDS: "127.0.0.2:15010", Target: "xds:///a.b.svc.cluster.local:80", ClusterID: "ap", Network: "n2",
		Namespace: "default", IP: "10.2.255.254", MeshID: "mesh1", Labels: map[string]string{"b": "2", "a": "1"}, MinEndpoints: 3}
	want := "-xds 127.0.0.2:15010 -target xds:///a.b.svc.cluster.local:80 -cluster-id ap -ip 10.2.255.254 -timeout 1m0s " +
		"-network n2 -namespace default -mesh-id mesh1 -label a=1 -label b=2 -min-endpoints 3"
	if got := strings.Join(o.Args(), " "); got != want {
		t.Errorf("Args:\n got %s\nwant %s", got, want)
	}
}

func TestProbeIP(t *testing.T) {
	for addr, want := range map[string]string{"127.0.22.100": "10.100.255.254", "127.0.0.2": "10.2.255.254", "": "10.2.255.254"} {
		if got := ProbeIP(addr); got != want {
			t.Errorf("ProbeIP(%q) = %s, want %s", addr, got, want)
		}
		if !PodRangeOf(addr).Contains(net.ParseIP(ProbeIP(addr))) {
			t.Errorf("ProbeIP(%q) outside the pod range %s", addr, PodRangeOf(addr))
		}
	}
}

// ProbeXDS with stand-ins for xds-probe (shell scripts): a report, a timeout with a partial
// report, no report.
func TestProbeXDSRuns(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	report, err := filepath.Abs(filepath.Join("testdata", "xds-probe-ap.json"))
	if err != nil {
		t.Fatal(err)
	}
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := filepath.Join(dir, "args")
	ok := script("ok", `echo "$@" > `+args+`; env > `+args+`.env; cat `+report)
	partial := script("partial", `echo '{"target":"xds:///x:1","complete":false,"missing":"Listener x:1 REQUESTED"}'; echo "xds-probe: ap: no complete answer" >&2; exit 1`)
	silent := script("silent", `exit 2`)
	slow := script("slow", `exec sleep 30`)

	ctx := context.Background()
	o := XDSProbeOptions{Bin: ok, XDS: "127.0.0.2:1", Target: "xds:///hello.default.svc.cluster.local:5000", ClusterID: "ap", IP: "10.2.255.254"}
	r, err := ProbeXDS(ctx, o)
	if err != nil || !r.Complete || len(r.AllEndpoints()) != 4 {
		t.Fatalf("ok: %v %+v", err, r)
	}
	if data, _ := os.ReadFile(args); strings.TrimSpace(string(data)) != strings.Join(o.Args(), " ") {
		t.Errorf("the probe got %q", data)
	}
	if data, _ := os.ReadFile(args + ".env"); strings.Contains(string(data), "GRPC_XDS_BOOTSTRAP") {
		t.Errorf("the probe's environment has a bootstrap: %s", data)
	}

	o.Bin = partial
	r, err = ProbeXDS(ctx, o)
	var pe *XDSProbeError
	if !errors.As(err, &pe) || r == nil || r.Complete || r.Missing == "" || pe.Report != r || !strings.Contains(err.Error(), "no complete answer") {
		t.Errorf("partial: %v %+v", err, r)
	}

	o.Bin = silent
	if r, err := ProbeXDS(ctx, o); !errors.As(err, &pe) || r != nil || !strings.Contains(err.Error(), "no output on stderr") {
		t.Errorf("silent: %v %+v", err, r)
	}

	o.Bin = slow
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := ProbeXDS(cctx, o); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("slow: %v after %s", err, time.Since(start))
	}

	if _, err := ProbeXDS(ctx, XDSProbeOptions{}); err == nil {
		t.Error("no binary: no error")
	}
	if _, err := ProbeClusterXDS(ctx, LabCluster{Name: "x", Dir: dir}, o); err == nil {
		t.Error("no istiod.json: no error")
	}
}

// `reconcile-lab xds` refuses what it cannot do before running a probe.
func TestXDSCommandRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: f}
manager: {name: m, kubeconfig: {path: ./kc}, karmada: {chart: {path: ./kc}}}
members: [{name: us, kubeconfig: {path: ./kc}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kc"), []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"xds", "us", "-f", fleet}, "want: xds <member> <host>:<port>"},
		{[]string{"xds", "us", "a:1", "b:2", "-f", fleet}, "want: xds <member>"},
		{[]string{"xds", "eu", "hello.default.svc.cluster.local:5000", "-f", fleet, "--state-dir", dir}, `"eu" is not a member of fleet f`},
		{[]string{"xds", "us", "hello.default.svc.cluster.local:5000", "-f", fleet, "--state-dir", dir}, "fleet f has no mesh"},
	} {
		var out, errOut bytes.Buffer
		if code := (cli{}).run(t.Context(), tc.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want 1 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

func TestFindLabCluster(t *testing.T) {
	dir := t.TempDir()
	for name, server := range map[string]string{"lke1": "https://127.0.22.100:33119", "lke2": "https://127.0.22.101:40000"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster: {server: " + server + "}\n"
		if err := os.WriteFile(filepath.Join(dir, name, "admin.kubeconfig"), []byte(kc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "lke3"), 0o700); err != nil { // no kubeconfig yet
		t.Fatal(err)
	}
	c, err := FindLabCluster(dir, "https://127.0.22.101:40000")
	if err != nil || c.Name != "lke2" || c.Address != "127.0.22.101" || c.Dir != filepath.Join(dir, "lke2") {
		t.Errorf("FindLabCluster: %+v, %v", c, err)
	}
	if _, err := FindLabCluster(dir, "https://127.0.22.101:1"); err == nil || !strings.Contains(err.Error(), "127.0.22.100:33119, 127.0.22.101:40000") {
		t.Errorf("another port: %v", err)
	}
	if _, err := FindLabCluster(filepath.Join(dir, "none"), "https://127.0.22.101:40000"); err == nil {
		t.Error("no clusters directory: no error")
	}
	if _, err := FindLabCluster(dir, "127.0.22.101"); err == nil {
		t.Error("not a URL: no error")
	}
}

func TestWriteXDSReport(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "xds-probe-ap.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseXDSReport(data)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeXDSReport(&out, "ap", "network2", r)
	for _, want := range []string{
		"ap (network network2) asked istiod 127.0.22.102:45577 for xds:///hello.default.svc.cluster.local:5000 as sidecar~10.102.255.254~",
		"first Listener after 54ms, first EDS after 54ms; complete: true",
		"listener  hello.default.svc.cluster.local:5000  ACKED",
		"  ap-south  weight 2, priority 0, 2 endpoints",
		"    10.102.1.2:5000        HEALTHY   weight 1  (cluster ap, workload hello, tlsMode istio)",
		"    127.0.22.139:15443     UNKNOWN   weight 2  (cluster eu, its network's gateway, tlsMode istio)",
		"gRPC dialed 4 endpoints (all: true)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
