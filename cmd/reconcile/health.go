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

// Health answers a supervisor's probes (Kubernetes, systemd's watchdog, a load balancer) for
// the daemon. /healthz is 200 while the reconcile loop is alive: it came around lately, or the
// pass it runs has not run past StuckAfter. /readyz is 200 once the daemon observed the world
// and its last pass did not fail, or while it stands by as a leader candidate; 503 before
// that and after a failed pass. Both bodies say what the daemon is doing.
type Health struct {
	// StuckAfter is how long a pass may run before the loop counts as stuck (default 2h).
	StuckAfter time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu        sync.Mutex
	role      role
	observed  bool      // a pass of this term observed the world
	passes    int       // passes ended this term
	lastErr   string    // the last pass's error, "" when it succeeded
	lastPass  time.Time // when the last pass ended
	passSince time.Time // when the pass in flight began; zero when the loop is idle
	beat      time.Time // when the idle loop last came around
}

// DefaultStuckAfter is the default bound of one pass: longer than a cold pass of a large
// fleet with its waits (LKE nodes, Helm installs) and their retries.
const DefaultStuckAfter = 2 * time.Hour

// loopBeat is how often an idle loop comes around to say it is alive; it counts as stuck
// after missing a few beats.
const loopBeat = 5 * time.Second

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

func (h *Health) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Health) set(r role) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.role = r
	h.beat = h.now()
	if r == leading {
		// Ready again once this term observed the world.
		h.passes, h.observed, h.lastErr = 0, false, ""
	}
}

// idle says the loop came around and waits for its next trigger.
func (h *Health) idle() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beat, h.passSince = h.now(), time.Time{}
}

// passStarting says the loop runs a pass from now on.
func (h *Health) passStarting() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.role == starting {
		h.role = single
	}
	h.passSince = h.now()
}

// sawWorld says a pass observed the world.
func (h *Health) sawWorld() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.observed = true
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
	h.lastPass = h.now()
	h.beat, h.passSince = h.lastPass, time.Time{}
	h.lastErr = ""
	if err != nil {
		h.lastErr = err.Error()
	}
}

// alive reports whether the loop is alive and not stuck, and what it does.
func (h *Health) alive() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	bound := h.StuckAfter
	if bound <= 0 {
		bound = DefaultStuckAfter
	}
	switch {
	case h.role == starting || h.role == standingBy:
		return true, h.role.String()
	case !h.passSince.IsZero():
		took := now.Sub(h.passSince).Round(time.Second)
		if took > bound {
			return false, fmt.Sprintf("stuck: a pass has run for %s, longer than %s", took, bound)
		}
		return true, fmt.Sprintf("%s; a pass has run for %s", h.role, took)
	case now.Sub(h.beat) > 4*loopBeat:
		return false, fmt.Sprintf("stuck: the loop last came around %s ago", now.Sub(h.beat).Round(time.Second))
	}
	return true, h.role.String()
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
	if h.role != standingBy && !h.observed && h.passes == 0 {
		msg += "; the world is not observed yet"
	}
	return h.role == standingBy || h.observed && h.lastErr == "", msg
}

// Handler serves /healthz and /readyz.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		ok, msg := h.alive()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, msg)
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

// serveHTTP listens on addr and serves handler until ctx is done. The listener is bound
// before it returns, so a bad address fails the start; flag names the address in errors.
func serveHTTP(ctx context.Context, flag, addr string, handler http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "flag", flag, "err", err)
		}
	}()
	log.Info("serving", "flag", flag, "addr", ln.Addr().String())
	return nil
}
