package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// What istiod serves, checked at its output rather than its debug pages: a proxyless gRPC
// client (xds-probe: gRPC's own xDS resolver, google.golang.org/grpc/xds) plays a workload Pod
// of a mesh member, with the node metadata Istio's agent gives one (GENERATOR=grpc, CLUSTER_ID,
// NETWORK, NAMESPACE, node id sidecar~<pod IP>~<pod>.<ns>~<ns>.svc.cluster.local), and resolves
// xds:///hello.default.svc.cluster.local:5000 through that member's istiod.

const (
	// xdsTimeout bounds each wait of checkIstiodXDS (Pods and EndpointSlices in every member,
	// then istiod's answer to the probe).
	xdsTimeout = 2 * time.Minute
	// xdsHelloReplicas are hello's replicas in the fleet; weights 1:1:1 make 2 per member.
	xdsHelloReplicas = 6
	xdsHelloPort     = 5000
	// sidecarTLSModeLabel is the label Istio's sidecar injector puts on every Pod it injects
	// (security.istio.io/tlsMode: istio); istiod reads it as "this endpoint has a sidecar and
	// takes Istio mTLS", and only such endpoints of another network are reachable through that
	// network's east-west gateway (pilot/pkg/xds/endpoints/ep_filters.go).
	sidecarTLSModeLabel = "security.istio.io/tlsMode"
	// eastWestPort is where an east-west gateway takes mTLS (AUTO_PASSTHROUGH) from other
	// networks: istiod's default network gateway port.
	eastWestPort = 15443
)

// xdsWorkload is the workloads section TestLabIstiod's fleet adds: hello (Deployment and
// Service, hello.yaml beside the fleet, see writeXDSHello) in all three members.
const xdsWorkload = `workloads:
  - name: hello
    namespace: default
    resources:
      - {apiVersion: apps/v1, kind: Deployment, name: hello}
      - {apiVersion: v1, kind: Service, name: hello}
    weights: {eu: 1, ap: 1, us: 1}
    manifests: [./hello.yaml]
`

// writeXDSHello writes hello.yaml in dir: the Deployment hello and its Service (port 5000).
// With sidecar, the Pod template asks for a sidecar (sidecar.istio.io/inject: "true", as a
// user's manifest does; the product itself asks for no injection): istiod's injection
// webhook, called by the API server through the lab's pod network, then injects the Pods and
// labels them sidecarTLSModeLabel.
func writeXDSHello(t *testing.T, dir string, sidecar bool) {
	t.Helper()
	labels := "app: hello"
	if sidecar {
		labels += `, sidecar.istio.io/inject: "true"`
	}
	must(t, os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, labels: {app: hello}}
spec:
  replicas: %d
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {%s}}
    spec:
      containers:
        - name: hello
          image: docker.io/istio/examples-helloworld-v1:1.0
          ports: [{containerPort: %d}]
---
apiVersion: v1
kind: Service
metadata: {name: hello, labels: {app: hello}}
spec:
  selector: {app: hello}
  ports: [{name: http, port: %d, targetPort: %d}]
`, xdsHelloReplicas, labels, xdsHelloPort, xdsHelloPort, xdsHelloPort)), 0o644))
}

// xdsMember is a mesh member as checkIstiodXDS sees it.
type xdsMember struct {
	name, network string
	cluster       labworld.LabCluster
	client        kubernetes.Interface
	// hello are the IPs of its hello Pods, all ready endpoints of the Service; gateway is its
	// east-west gateway Service's load balancer address.
	hello   []string
	gateway string
}

// checkIstiodXDS checks what each member's istiod serves a proxyless gRPC workload of that
// member for hello: the EDS endpoints must be the member's own hello Pods (their IPs, port
// 5000) and, for each other member, that member's east-west gateway address on port 15443
// weighted by its number of hello endpoints, as multi-network Istio does. First with hello
// as the fleet deploys it (no sidecar): istiod then serves only the member's own Pods, for
// endpoints of another network without a sidecar cannot be reached through its gateway. Then
// with hello's Pods asking for a sidecar (writeXDSHello), after a converging pass: istiod's
// own injection webhook injects them (an istio-proxy container, the tlsMode label).
func checkIstiodXDS(t *testing.T, ctx context.Context, l *labworld.Lab, stateDir, fleetPath string) {
	probe, err := cluster.FindXDSProbe()
	if err != nil {
		if os.Getenv(labtest.RequiredEnv) != "" {
			t.Fatal(err)
		}
		t.Logf("istiod's xDS not checked: %v", err)
		return
	}
	f, err := spec.Load(fleetPath)
	must(t, err)
	store, err := state.OpenStore(stateDir)
	must(t, err)
	var ms []*xdsMember
	for _, m := range f.Members {
		cfg, err := kube.Access{Store: store}.RESTConfig(m.Name)
		must(t, err)
		x := &xdsMember{name: m.Name, network: m.Network}
		for _, c := range l.Clusters() {
			if c.RESTConfig.Host == cfg.Host {
				x.cluster = c
			}
		}
		if x.cluster.Dir == "" {
			t.Fatalf("member %s (%s) is no lab cluster", m.Name, cfg.Host)
		}
		x.client, err = kubernetes.NewForConfig(cfg)
		must(t, err)
		ms = append(ms, x)
	}
	meshID := ""
	if f.Mesh != nil {
		meshID = f.Mesh.MeshID
	}

	for _, sidecar := range []bool{false, true} {
		phase := "hello as deployed (no sidecar)"
		if sidecar {
			phase = "hello's Pods injected by istiod (" + sidecarTLSModeLabel + "=istio)"
			writeXDSHello(t, filepath.Dir(fleetPath), true)
			var stdout, stderr bytes.Buffer
			if code := run(ctx, []string{"--once", "--state-dir", stateDir, "-f", fleetPath}, &stdout, &stderr); code != 0 {
				t.Fatalf("pass with hello's Pods labelled: exit %d\nstdout:\n%s\nstderr:\n%s", code, tail(stdout.String(), 40), tail(stderr.String(), 40))
			}
		}
		start := time.Now()
		waitXDSWorld(t, ctx, ms, sidecar)
		t.Logf("%s: every member's hello Pods are its Service's ready endpoints %s after the pass", phase, time.Since(start).Round(time.Millisecond))
		for _, m := range ms {
			want := wantXDSEndpoints(m, ms, sidecar)
			o := labworld.XDSProbeOptions{Bin: probe, Target: fmt.Sprintf("xds:///hello.default.svc.cluster.local:%d", xdsHelloPort),
				ClusterID: m.name, Network: m.network, Namespace: "default", Pod: "xds-probe-" + m.name, MeshID: meshID,
				IstioVersion: labworld.IstioVersion, Labels: map[string]string{"app": "xds-probe"}, Timeout: 30 * time.Second,
				MinEndpoints: len(want)}
			var rep *labworld.XDSReport
			var got []string
			var perr error
			probeStart := time.Now()
			runs := 0
			ok := waitCond(ctx, xdsTimeout, 500*time.Millisecond, func() bool {
				runs++
				rep, perr = labworld.ProbeClusterXDS(ctx, m.cluster, o)
				got = xdsEndpoints(rep)
				return perr == nil && slices.Equal(got, want) && rep.DialedAll
			})
			if !ok {
				t.Logf("%s istiod log (tail):\n%s", m.name, tail(readFile(filepath.Join(m.cluster.Dir, labworld.IstiodDirName, "istiod.log")), 30))
				dialed := []string{}
				if rep != nil {
					dialed = rep.Dialed
				}
				t.Fatalf("%s: %s: istiod served %s the EDS endpoints\n  %s\nwant\n  %s\ngRPC dialed %v\n(probe: %v)", phase, m.name, o.Target,
					strings.Join(got, "\n  "), strings.Join(want, "\n  "), dialed, perr)
			}
			first := "?"
			if rep.FirstEDSMillis != nil {
				first = (time.Duration(*rep.FirstEDSMillis) * time.Millisecond).String()
			}
			t.Logf("%s: %s (network %s, probe as %s): %d endpoints, as wanted, all dialed by gRPC's balancer, after %s (%d probe runs); first EDS %s after the probe's dial:\n  %s",
				phase, m.name, m.network, rep.Node, len(got), time.Since(probeStart).Round(time.Millisecond), runs, first,
				strings.Join(got, "\n  "))
		}
	}

	// The same through `reconcile-lab xds`, which finds the member's lab cluster from the fleet.
	for _, m := range ms {
		if m.name != "ap" {
			continue
		}
		var stdout, stderr bytes.Buffer
		args := []string{"xds", m.name, fmt.Sprintf("hello.default.svc.cluster.local:%d", xdsHelloPort), "-f", fleetPath,
			"--state-dir", stateDir, "--dir", l.Dir(), "--min-endpoints", strconv.Itoa(len(ms) - 1 + len(m.hello))}
		if code := labworld.Main(ctx, args, &stdout, &stderr); code != 0 {
			t.Fatalf("reconcile-lab %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
		for _, o := range ms {
			want := fmt.Sprintf("%-22s %-9s weight %d  (cluster %s, its network's gateway, tlsMode istio)",
				net.JoinHostPort(o.gateway, strconv.Itoa(eastWestPort)), "UNKNOWN", len(o.hello), o.name)
			if o == m {
				want = fmt.Sprintf("%-22s %-9s weight 1  (cluster %s, workload hello, tlsMode istio)",
					net.JoinHostPort(m.hello[0], strconv.Itoa(xdsHelloPort)), "HEALTHY", m.name)
			}
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("reconcile-lab xds %s: no line %q in\n%s", m.name, want, stdout.String())
			}
		}
		t.Logf("reconcile-lab %s:\n%s", strings.Join(args[:3], " "), stdout.String())
	}
}

// waitXDSWorld waits until every member has exactly xdsHelloReplicas/len(ms) hello Pods, all
// with (sidecar) or all without the sidecar label, that are its Service's ready endpoints, and
// an east-west gateway Service with a load balancer address; it fills hello and gateway.
func waitXDSWorld(t *testing.T, ctx context.Context, ms []*xdsMember, sidecar bool) {
	t.Helper()
	why := map[string]string{}
	ok := waitCond(ctx, xdsTimeout, 250*time.Millisecond, func() bool {
		all := true
		for _, m := range ms {
			if err := m.observe(ctx, xdsHelloReplicas/len(ms), sidecar); err != nil {
				why[m.name] = err.Error()
				all = false
			} else {
				delete(why, m.name)
			}
		}
		return all
	})
	if !ok {
		t.Fatalf("within %s: %v", xdsTimeout, why)
	}
}

// observe reads m's hello Pods, EndpointSlices and east-west gateway; an error says what is
// not yet as wanted.
func (m *xdsMember) observe(ctx context.Context, replicas int, sidecar bool) error {
	pods, err := m.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
	if err != nil {
		return err
	}
	var ips []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || (p.Labels[sidecarTLSModeLabel] == "istio") != sidecar {
			continue
		}
		if sidecar && !hasContainer(p, "istio-proxy") {
			return fmt.Errorf("pod %s has the tlsMode label but no istio-proxy container: %v", p.Name, images(p))
		}
		ips = append(ips, p.Status.PodIP)
	}
	if len(ips) != replicas || len(pods.Items) != replicas {
		// Why the ReplicaSet controller could not make a Pod (a webhook refusing it, ...).
		var failures []string
		if rss, err := m.client.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"}); err == nil {
			for _, rs := range rss.Items {
				for _, c := range rs.Status.Conditions {
					failures = append(failures, rs.Name+": "+c.Message)
				}
			}
		}
		return fmt.Errorf("%d hello Pods, %d of them as wanted, want %d; ReplicaSet conditions %v", len(pods.Items), len(ips), replicas, failures)
	}
	epSlices, err := m.client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=hello"})
	if err != nil {
		return err
	}
	var ready []string
	for _, s := range epSlices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ready = append(ready, e.Addresses...)
			}
		}
	}
	sort.Strings(ips)
	sort.Strings(ready)
	if !slices.Equal(ips, ready) {
		return fmt.Errorf("hello's ready endpoints %v, its Pods %v", ready, ips)
	}
	podRange := labworld.PodRangeOf(m.cluster.Address)
	for _, ip := range ips {
		if !podRange.Contains(net.ParseIP(ip)) {
			return fmt.Errorf("hello Pod IP %s outside the pod range %s", ip, podRange)
		}
	}
	m.hello = ips

	svcs, err := m.client.CoreV1().Services("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "topology.istio.io/network=" + m.network})
	if err != nil {
		return err
	}
	m.gateway = ""
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				if m.gateway != "" {
					return fmt.Errorf("more than one network gateway Service in istio-system: %s", s.Name)
				}
				m.gateway = in.IP
			}
		}
	}
	if m.gateway == "" {
		return fmt.Errorf("no LoadBalancer Service labelled topology.istio.io/network=%s with an address in istio-system (%d labelled)", m.network, len(svcs.Items))
	}
	return nil
}

// wantXDSEndpoints are the endpoints a workload of m must be served for hello, as xdsEndpoints
// writes them: m's own Pods, and with sidecar each other member's gateway.
func wantXDSEndpoints(m *xdsMember, ms []*xdsMember, sidecar bool) []string {
	var want []string
	tlsMode := "-"
	if sidecar {
		tlsMode = "istio"
	}
	for _, ip := range m.hello {
		want = append(want, fmt.Sprintf("%s %s weight 1 HEALTHY tlsMode %s", m.name, net.JoinHostPort(ip, strconv.Itoa(xdsHelloPort)), tlsMode))
	}
	if sidecar {
		for _, o := range ms {
			if o != m {
				// One gateway per network: istiod's scale factor is 1, so the weight is the
				// number of endpoints behind it.
				want = append(want, fmt.Sprintf("%s %s weight %d UNKNOWN tlsMode istio", o.name, net.JoinHostPort(o.gateway, strconv.Itoa(eastWestPort)), len(o.hello)))
			}
		}
	}
	sort.Strings(want)
	return want
}

// xdsEndpoints are the EDS endpoints of a report, one line each: "<cluster> <address> weight
// <w> <health> tlsMode <mode or ->", sorted.
func xdsEndpoints(rep *labworld.XDSReport) []string {
	if rep == nil {
		return nil
	}
	var out []string
	for _, e := range rep.AllEndpoints() {
		mode := e.TLSMode()
		if mode == "" {
			mode = "-"
		}
		out = append(out, fmt.Sprintf("%s %s weight %d %s tlsMode %s", e.Cluster(), e.Address, e.Weight, e.Health, mode))
	}
	sort.Strings(out)
	return out
}

func hasContainer(p corev1.Pod, name string) bool {
	for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
		if c.Name == name {
			return true
		}
	}
	return false
}
