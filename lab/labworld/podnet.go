package labworld

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"
)

// PodNetwork is a lab cluster's pod network, as far as anything can reach a Pod in the lab:
// the Pods the lab runs a real process for (istiod) keep their pod IP (10.<a>.x.x, from the
// cluster's pod range, valid in EndpointSlices as a loopback address is not) and their
// container ports, and the PodNetwork routes each pod IP and port to the loopback address and
// port the process listens on. It is reached two ways:
//   - as an HTTP CONNECT proxy on a Unix socket (Socket): the cluster's API server sends its "cluster" egress
//     through it (cluster.ClusterOptions.PodNetworkProxy), as a control plane without a route to
//     the pod network sends it through Konnectivity, so admission webhooks served by a Pod
//     (istiod's injector and validator) and the pods/proxy subresource work;
//   - in process (Dial): the Kubelet stand-in's readiness probes.
//
// A pod IP and port nothing is routed to is refused (503 to a CONNECT), as a Pod whose
// process does not listen refuses the connection.
type PodNetwork struct {
	ln     net.Listener
	log    *slog.Logger
	socket string
	tmpDir string

	mu     sync.Mutex
	routes map[string]string // "podIP:port" -> "host:port" the process listens on
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// maxSocketPath is the longest Unix socket path Linux takes (sun_path is 108 bytes).
const maxSocketPath = 107

// StartPodNetwork starts a cluster's pod network, its CONNECT proxy listening on the Unix
// socket dir/podnet.sock, or in a temporary directory of its own when that path is too long
// for a socket.
func StartPodNetwork(dir string, log *slog.Logger) (*PodNetwork, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &PodNetwork{log: log, routes: map[string]string{}, conns: map[net.Conn]struct{}{}}
	n.socket = filepath.Join(dir, "podnet.sock")
	if len(n.socket) > maxSocketPath {
		tmp, err := os.MkdirTemp("", "podnet")
		if err != nil {
			return nil, err
		}
		n.tmpDir, n.socket = tmp, filepath.Join(tmp, "podnet.sock")
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(n.socket)
	ln, err := net.Listen("unix", n.socket)
	if err != nil {
		if n.tmpDir != "" {
			_ = os.RemoveAll(n.tmpDir)
		}
		return nil, fmt.Errorf("pod network proxy: %w", err)
	}
	n.ln = ln
	n.wg.Add(1)
	go n.serve()
	return n, nil
}

// Socket is the CONNECT proxy's Unix socket, for the API server's egress selector.
func (n *PodNetwork) Socket() string { return n.socket }

// Route makes podIP:port reach target (host:port).
func (n *PodNetwork) Route(podIP string, port int, target string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes[net.JoinHostPort(podIP, strconv.Itoa(port))] = target
}

// Unroute removes every route of podIP.
func (n *PodNetwork) Unroute(podIP string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.routes {
		if h, _, _ := net.SplitHostPort(k); h == podIP {
			delete(n.routes, k)
		}
	}
}

// Routes lists podIP:port -> target, sorted, for logs and tests.
func (n *PodNetwork) Routes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.routes))
	for k, v := range n.routes {
		out = append(out, k+" -> "+v)
	}
	sort.Strings(out)
	return out
}

// errNoRoute is a connection to a pod address no process serves.
var errNoRoute = errors.New("connection refused: no process of the lab serves this pod address")

func (n *PodNetwork) target(addr string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.routes[addr]
	if !ok {
		return "", fmt.Errorf("%s: %w", addr, errNoRoute)
	}
	return t, nil
}

// Dial connects to a pod address (podIP:port).
func (n *PodNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	t, err := n.target(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", t)
}

// Close stops the proxy and ends the connections it carries.
func (n *PodNetwork) Close() error {
	n.mu.Lock()
	n.closed = true
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	err := n.ln.Close()
	n.wg.Wait()
	if n.tmpDir != "" {
		_ = os.RemoveAll(n.tmpDir)
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (n *PodNetwork) track(c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		c.Close()
		return false
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *PodNetwork) untrack(c net.Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
	c.Close()
}

func (n *PodNetwork) serve() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		if !n.track(c) {
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer n.untrack(c)
			n.handle(c)
		}()
	}
}

// pipeTimeout bounds reading the CONNECT request and dialing its target.
const pipeTimeout = 10 * time.Second

func (n *PodNetwork) handle(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(pipeTimeout))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		fmt.Fprintf(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	addr := req.Host
	if req.URL != nil && req.URL.Host != "" {
		addr = req.URL.Host
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipeTimeout)
	up, err := n.Dial(ctx, addr)
	cancel()
	if err != nil {
		n.log.Debug("pod network: refused", "addr", addr, "err", err)
		msg := err.Error()
		fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
		return
	}
	if !n.track(up) {
		return
	}
	defer n.untrack(up)
	_ = c.SetReadDeadline(time.Time{})
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		// Bytes the client sent after the request (none with the API server's dialer) go first.
		if k := br.Buffered(); k > 0 {
			data, _ := br.Peek(k)
			_, _ = up.Write(data)
		}
		_, _ = io.Copy(up, c)
		closeWrite(up)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(c, up)
		closeWrite(c)
		done <- struct{}{}
	}()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
