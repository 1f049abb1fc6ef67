package labworld

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestKindOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		port int32
		want PortKind
	}{
		{"status-port", 15021, PortHTTP},
		{"http2", 80, PortHTTP},
		{"https", 443, PortHTTPS},
		{"https-admin", 8443, PortHTTPS},
		{"", 443, PortHTTPS},
		{"web", 80, PortHTTP},
		{"", 15021, PortHTTP},
		{"tls", 15443, PortTCP},
		{"tls-istiod", 15012, PortTCP},
	} {
		if got := kindOf(corev1.ServicePort{Name: tc.name, Port: tc.port}); got != tc.want {
			t.Errorf("port %q %d: %v, want %v", tc.name, tc.port, got, tc.want)
		}
	}
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "status-port", Port: 15021}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "tls", Port: 15443, Protocol: corev1.ProtocolTCP},
	}}}
	got := frontendSpecOf(svc, "127.0.17.9", true, false)
	if want := []FrontendPort{{15021, PortHTTP}, {15443, PortTCP}}; !slices.Equal(got.Ports, want) || got.Address != "127.0.17.9" || !got.Ready || got.Down {
		t.Errorf("frontendSpecOf: %+v, want ports %v (no UDP)", got, want)
	}
}

// probe is what a health checker sees on addr: an HTTP status ("200", "503"), "open" for a TCP
// port that accepts, or "refused".
func probe(t *testing.T, kind PortKind, addr string) string {
	t.Helper()
	if kind == PortTCP {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "refused"
		}
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		c.Close()
		return "open"
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as a health check with verification off
	}}
	scheme := "http"
	if kind == PortHTTPS {
		scheme = "https"
	}
	resp, err := client.Get(scheme + "://" + addr + "/healthz/ready")
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "refused"
	}
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("GET %s: 200 with body %q, want ok", addr, body)
	}
	return fmt.Sprint(resp.StatusCode)
}

// The frontend alone, no lab processes: the answer of each kind of port while ready, not
// ready, down and removed; a port that cannot be bound is skipped and taken once free.
func TestFrontends(t *testing.T) {
	t.Parallel()
	const addr = "127.0.17.250" // 127.0.17.x belongs to this package's frontend tests
	f := &Frontends{}
	closed := false
	t.Cleanup(func() {
		if !closed {
			f.Close()
		}
	})
	at := func(port int) string { return net.JoinHostPort(addr, fmt.Sprint(port)) }
	// A port taken by someone else: skipped, the others listen.
	busy, err := net.Listen("tcp", at(15443))
	if err != nil {
		t.Fatal(err)
	}
	spec := FrontendSpec{Address: addr, Ready: true,
		Ports: []FrontendPort{{15021, PortHTTP}, {443, PortHTTPS}, {15443, PortTCP}, {15012, PortTCP}}}
	if err := f.Set("istio-system/istio-ingressgateway", spec); err == nil || !strings.Contains(err.Error(), "15443") {
		t.Errorf("Set with port 15443 taken: %v, want an error naming it", err)
	}
	if got := f.listening("istio-system/istio-ingressgateway"); !slices.Equal(got, []int32{443, 15012, 15021}) {
		t.Errorf("listening on %v, want 443 15012 15021 (15443 busy)", got)
	}
	busy.Close()

	check := func(when string, want map[FrontendPort]string) {
		t.Helper()
		for p, w := range want {
			if got := probe(t, p.Kind, at(int(p.Port))); got != w {
				t.Errorf("%s: %s port %d answers %s, want %s", when, p.Kind, p.Port, got, w)
			}
		}
	}
	if err := f.Set("istio-system/istio-ingressgateway", spec); err != nil { // the busy port is free now: taken
		t.Error(err)
	}
	check("ready", map[FrontendPort]string{{15021, PortHTTP}: "200", {443, PortHTTPS}: "200", {15443, PortTCP}: "open", {15012, PortTCP}: "open"})
	spec.Ready = false
	f.Set("istio-system/istio-ingressgateway", spec)
	check("not ready", map[FrontendPort]string{{15021, PortHTTP}: "503", {443, PortHTTPS}: "503", {15443, PortTCP}: "refused"})
	spec.Ready, spec.Down = true, true
	f.Set("istio-system/istio-ingressgateway", spec)
	check("down", map[FrontendPort]string{{15021, PortHTTP}: "refused", {443, PortHTTPS}: "refused", {15443, PortTCP}: "refused"})
	spec.Down = false
	f.Set("istio-system/istio-ingressgateway", spec)
	check("up again", map[FrontendPort]string{{15021, PortHTTP}: "200", {443, PortHTTPS}: "200", {15443, PortTCP}: "open"})
	f.Remove("istio-system/istio-ingressgateway")
	check("removed", map[FrontendPort]string{{15021, PortHTTP}: "refused", {443, PortHTTPS}: "refused", {15012, PortTCP}: "refused"})

	f.Set("ns/other", FrontendSpec{Address: addr, Ready: true, Ports: []FrontendPort{{15021, PortHTTP}}})
	done := make(chan struct{})
	go func() { f.Close(); close(done) }()
	select {
	case <-done:
		closed = true
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: a frontend still serves")
	}
	f.Set("ns/other", FrontendSpec{Address: addr, Ready: true, Ports: []FrontendPort{{15021, PortHTTP}}})
	check("closed", map[FrontendPort]string{{15021, PortHTTP}: "refused"})
}
