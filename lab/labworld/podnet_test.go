package labworld

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// connect opens a CONNECT tunnel to addr through the proxy at proxyAddr, as the API server's
// egress dialer does, and returns the tunnel or the proxy's refusal.
func connect(t *testing.T, proxyAddr, addr string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("unix", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "CONNECT "+addr+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, resp
	}
	if br.Buffered() != 0 {
		t.Fatalf("%d bytes after the CONNECT response", br.Buffered())
	}
	return c, resp
}

// TestPodNetworkLongDir: a directory whose socket path would be too long for a Unix socket
// gets the socket in a temporary directory, removed on Close.
func TestPodNetworkLongDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	n, err := StartPodNetwork(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Socket()) > maxSocketPath {
		t.Fatalf("socket %s", n.Socket())
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(n.Socket())); !os.IsNotExist(err) {
		t.Errorf("the socket's directory outlived Close: %v", err)
	}
}

// The pod network carries a CONNECT tunnel to a routed pod address both ways, refuses an
// address nothing is routed to (503), forgets a Pod's routes with Unroute, and Close ends
// the tunnels it carries.
func TestPodNetwork(t *testing.T) {
	// A process "of the Pod": echoes one line back in upper case.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = io.WriteString(c, strings.ToUpper(line))
			}()
		}
	}()
	n, err := StartPodNetwork(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	proxy := n.Socket()
	n.Route("10.7.1.1", 15017, ln.Addr().String())
	n.Route("10.7.1.1", 8080, ln.Addr().String())
	if got := n.Routes(); len(got) != 2 || !strings.HasPrefix(got[0], "10.7.1.1:15017 -> ") {
		t.Fatalf("routes %v", got)
	}

	c, resp := connect(t, proxy, "10.7.1.1:15017")
	if c == nil {
		t.Fatalf("CONNECT to a routed pod address: %s", resp.Status)
	}
	if _, err := io.WriteString(c, "hello pod\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "HELLO POD\n" {
		t.Fatalf("through the tunnel: %q, %v", got, err)
	}
	c.Close()

	// In process, as the kubelet's probes dial.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dc, err := n.Dial(ctx, "10.7.1.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	dc.Close()

	for _, addr := range []string{"10.7.1.2:15017", "10.7.1.1:15010"} {
		if c, resp := connect(t, proxy, addr); c != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("CONNECT %s: want 503, got %v", addr, resp.Status)
		}
	}
	n.Unroute("10.7.1.1")
	if c, resp := connect(t, proxy, "10.7.1.1:15017"); c != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("CONNECT after Unroute: want 503, got %v", resp.Status)
	}
	if _, err := n.Dial(ctx, "10.7.1.1:8080"); err == nil {
		t.Error("Dial after Unroute succeeded")
	}

	// Close ends an open tunnel.
	n.Route("10.7.1.3", 80, ln.Addr().String())
	open, resp := connect(t, proxy, "10.7.1.3:80")
	if open == nil {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	defer open.Close()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Error("a tunnel outlived Close")
	}
}
