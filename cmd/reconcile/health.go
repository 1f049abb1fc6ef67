package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Health answers a supervisor's probes (Kubernetes, a load balancer) for the daemon:
// /healthz is 200 while the process serves; /readyz is 200 once the daemon either finished a
// pass (whatever its outcome: a failed step is not a broken daemon) or stands by as a leader
// candidate, and 503 before that. Both bodies say what the daemon is doing.
type Health struct {
	mu       sync.Mutex
	role     role
	passes   int
	lastErr  string
	lastPass time.Time
}

type role int

const (
	starting role = iota
	standingBy
	leading
	single // a daemon without leader election
)

func (r role) String() string {
	return [...]string{"starting", "standing by", "leading", "running"}[r]
}

func (h *Health) set(r role) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.role = r
	if r == leading {
		h.passes = 0 // ready again once this term's first pass ends
	}
}

func (h *Health) passed(err error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.role == starting {
		h.role = single
	}
	h.passes++
	h.lastPass = time.Now()
	h.lastErr = ""
	if err != nil {
		h.lastErr = err.Error()
	}
}

func (h *Health) ready() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := h.role.String()
	if h.passes > 0 {
		msg += fmt.Sprintf("; last pass %s", h.lastPass.UTC().Format(time.RFC3339))
		if h.lastErr != "" {
			msg += " failed"
		}
	}
	return h.role == standingBy || h.passes > 0, msg
}

// Handler serves /healthz and /readyz.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, msg := h.ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, msg)
	})
	return mux
}

// Serve listens on addr and serves the probes until ctx is done. The listener is bound
// before Serve returns, so a bad address fails the start.
func (h *Health) Serve(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--health-addr: %w", err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server stopped", "err", err)
		}
	}()
	log.Info("serving health probes", "addr", ln.Addr().String())
	return nil
}
