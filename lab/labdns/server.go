// Package labdns is the lab's authoritative DNS server: it answers for the zones of the lab's
// Linode API (DNS Manager) as Linode's name servers answer for a customer's domains, on a
// loopback UDP and TCP port. It reads the zones anew for every query, so a record written
// through the API is in the next answer.
package labdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

// ZoneSource is what the server answers from; *linodeapi.Server is one.
type ZoneSource interface {
	Zones() []linodeapi.Zone
}

// Server is a running DNS server.
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	wg   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Start serves zones on listen (host:port; port 0 picks one free for both UDP and TCP) until
// Close. Only loopback addresses are accepted: the lab never listens elsewhere.
func Start(listen string, zones ZoneSource, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("lab DNS: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("lab DNS: %s is not a loopback address", host)
	}
	tcpLn, udpConn, err := listenBoth(host, port)
	if err != nil {
		return nil, fmt.Errorf("lab DNS: %w", err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := Answer(zones.Zones(), r)
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncate(udpSize(r))
		}
		if err := w.WriteMsg(m); err != nil {
			log.Debug("lab DNS: write", "err", err)
		}
	})
	s := &Server{
		addr: tcpLn.Addr().String(),
		udp:  &dns.Server{PacketConn: udpConn, Handler: h},
		tcp:  &dns.Server{Listener: tcpLn, Handler: h, ReadTimeout: 10 * time.Second},
	}
	started := make(chan struct{}, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				log.Error("lab DNS stopped", "err", err)
			}
		}()
	}
	// Shutdown of a dns.Server that has not started yet fails: wait until both serve.
	for range 2 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			_ = s.Close()
			return nil, errors.New("lab DNS: the servers did not start within 10s")
		}
	}
	log.Info("lab DNS up", "addr", s.addr)
	return s, nil
}

// listenBoth listens on TCP and UDP on the same port; with port 0 it retries until a port
// free for both is found.
func listenBoth(host, port string) (net.Listener, net.PacketConn, error) {
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, err
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		if port != "0" {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("no port on %s free for both UDP and TCP", host)
}

// Addr is host:port, the same for UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// Close stops both servers and waits for them. Safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.closeErr = errors.Join(s.udp.ShutdownContext(ctx), s.tcp.ShutdownContext(ctx))
		s.wg.Wait()
	})
	return s.closeErr
}

// udpSize is the largest UDP answer the client takes: its EDNS0 buffer size, else 512.
func udpSize(r *dns.Msg) int {
	if o := r.IsEdns0(); o != nil && o.UDPSize() > dns.MinMsgSize {
		return int(o.UDPSize())
	}
	return dns.MinMsgSize
}
