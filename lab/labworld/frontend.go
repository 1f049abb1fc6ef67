package labworld

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PortKind is how a NodeBalancer frontend answers on one port of its Service.
type PortKind int

const (
	// PortTCP accepts a connection and closes it: enough for a TCP health check.
	PortTCP PortKind = iota
	// PortHTTP answers every request: 200 "ok" while something is ready behind it, else 503.
	PortHTTP
	// PortHTTPS is PortHTTP over TLS, with a self-signed certificate.
	PortHTTPS
)

func (k PortKind) String() string {
	return [...]string{"tcp", "http", "https"}[k]
}

// kindOf: ports named https* or numbered 443 speak TLS; status-port, http* and 80 speak HTTP
// (the Istio gateway's status port 15021 answers /healthz/ready); any other port is TCP only.
func kindOf(p corev1.ServicePort) PortKind {
	name := strings.ToLower(p.Name)
	switch {
	case strings.HasPrefix(name, "https") || p.Port == 443:
		return PortHTTPS
	case name == "status-port" || strings.HasPrefix(name, "http") || p.Port == 80 || p.Port == 15021:
		return PortHTTP
	}
	return PortTCP
}

// FrontendPort is one port a frontend listens on.
type FrontendPort struct {
	Port int32
	Kind PortKind
}

// FrontendSpec is what one NodeBalancer's frontend should be now.
type FrontendSpec struct {
	Address string
	Ports   []FrontendPort
	// Ready: something behind the Service is available.
	Ready bool
	// Down: the lab's ingress fault holds; nothing listens.
	Down bool
}

// frontendSpecOf is the frontend of a LoadBalancer Service whose NodeBalancer has address:
// its TCP ports (UDP and SCTP are not served).
func frontendSpecOf(svc *corev1.Service, address string, ready, down bool) FrontendSpec {
	s := FrontendSpec{Address: address, Ready: ready, Down: down}
	for _, p := range svc.Spec.Ports {
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			s.Ports = append(s.Ports, FrontendPort{Port: p.Port, Kind: kindOf(p)})
		}
	}
	return s
}

// Frontends play the front of the lab's NodeBalancers: for each LoadBalancer Service they
// listen on its NodeBalancer's address (a loopback address of the lab's) on every TCP port of
// the Service. HTTP and HTTPS ports answer any request with 200 "ok" while something behind
// the Service is ready and 503 while nothing is; a TCP port listens only while something is
// ready (accepting and closing each connection), so a TCP check fails as it would against a
// NodeBalancer with no backend up. While Down, nothing listens: connections are refused, as in
// a region outage. No traffic is forwarded anywhere: there is no Envoy and no Pod behind.
type Frontends struct {
	Log *slog.Logger

	mu      sync.Mutex
	fronts  map[string]*frontend
	cert    *tls.Certificate
	closed  bool
	serving sync.WaitGroup
}

type frontend struct {
	spec      FrontendSpec
	ready     atomic.Bool
	listeners map[FrontendPort]closer
}

// closer is an open listener: an HTTP(S) server or a TCP accept loop.
type closer interface{ Close() error }

func (f *Frontends) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

// Set makes the frontend for key (namespace/name of the Service) match spec: it opens the
// listeners missing (again, after a failed bind) and closes those no longer wanted. A port
// that cannot be bound is skipped; the error says which, unless the only cause is a
// privileged port this process may not bind (retrying would not help).
func (f *Frontends) Set(key string, spec FrontendSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	if f.fronts == nil {
		f.fronts = map[string]*frontend{}
	}
	fr := f.fronts[key]
	if fr != nil && fr.spec.Address != spec.Address {
		f.stopLocked(key)
		fr = nil
	}
	if fr == nil {
		fr = &frontend{listeners: map[FrontendPort]closer{}}
		f.fronts[key] = fr
	}
	fr.spec = spec
	fr.ready.Store(spec.Ready)
	want := map[FrontendPort]bool{}
	if !spec.Down {
		for _, p := range spec.Ports {
			if p.Kind != PortTCP || spec.Ready {
				want[p] = true
			}
		}
	}
	for p, l := range fr.listeners {
		if !want[p] {
			_ = l.Close()
			delete(fr.listeners, p)
			f.log().Info("load balancer frontend closed", "service", key, "address", spec.Address, "port", p.Port, "kind", p.Kind)
		}
	}
	var errs []error
	for _, p := range spec.Ports {
		if _, open := fr.listeners[p]; open || !want[p] {
			continue
		}
		l, err := f.listenLocked(fr, spec.Address, p)
		if err != nil {
			level := slog.LevelWarn
			if errors.Is(err, syscall.EACCES) {
				level = slog.LevelInfo // a privileged port while not root: skipped, not a lab failure
			} else {
				errs = append(errs, err)
			}
			f.log().Log(context.Background(), level, "load balancer frontend: port skipped", "service", key, "address", spec.Address,
				"port", p.Port, "err", err)
			continue
		}
		fr.listeners[p] = l
		f.log().Info("load balancer frontend listening", "service", key, "address", spec.Address, "port", p.Port, "kind", p.Kind)
	}
	return errors.Join(errs...)
}

// Remove closes the frontend of key, if any.
func (f *Frontends) Remove(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopLocked(key)
}

func (f *Frontends) stopLocked(key string) {
	fr := f.fronts[key]
	if fr == nil {
		return
	}
	for _, l := range fr.listeners {
		_ = l.Close()
	}
	delete(f.fronts, key)
	f.log().Info("load balancer frontend stopped", "service", key, "address", fr.spec.Address)
}

// Close stops every frontend and waits until none serves; Set does nothing after.
func (f *Frontends) Close() {
	f.mu.Lock()
	f.closed = true
	for key := range f.fronts {
		f.stopLocked(key)
	}
	f.mu.Unlock()
	f.serving.Wait()
}

func (f *Frontends) listenLocked(fr *frontend, address string, p FrontendPort) (closer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(int(p.Port))))
	if err != nil {
		return nil, err
	}
	if p.Kind == PortTCP {
		f.serving.Add(1)
		go func() {
			defer f.serving.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return // closed
				}
				_ = c.Close()
			}
		}()
		return ln, nil
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if !fr.ready.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "no backend ready")
				return
			}
			fmt.Fprintln(w, "ok")
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError), // TLS handshakes of TCP checks
	}
	if p.Kind == PortHTTPS {
		cert, err := f.certLocked()
		if err != nil {
			ln.Close()
			return nil, err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
	}
	f.serving.Add(1)
	go func() {
		defer f.serving.Done()
		if p.Kind == PortHTTPS {
			_ = srv.ServeTLS(ln, "", "")
		} else {
			_ = srv.Serve(ln)
		}
	}()
	// The server's Close ends its open connections; the listener is closed here too, so it is
	// closed at once even when Serve has not begun to track it yet.
	return closerFunc(func() error { return errors.Join(srv.Close(), ignoreClosed(ln.Close())) }), nil
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// certLocked is the frontends' self-signed certificate, made on first use (a NodeBalancer
// terminating TLS with a certificate nobody checks: health checks run without verification).
func (f *Frontends) certLocked() (*tls.Certificate, error) {
	if f.cert != nil {
		return f.cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "reconcile-lab nodebalancer"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"nodebalancer.lab.invalid"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	f.cert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return f.cert, nil
}

// listening reports the ports the frontend of key listens on now, sorted (for tests).
func (f *Frontends) listening(key string) []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int32
	if fr := f.fronts[key]; fr != nil {
		for p := range fr.listeners {
			out = append(out, p.Port)
		}
	}
	slices.Sort(out)
	return out
}
