package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Systemd tells the service manager of a Type=notify unit what the daemon does, through
// $NOTIFY_SOCKET; without that variable nothing is sent. READY=1 once the first pass observed
// the world (or ended without: systemd would otherwise kill a daemon whose Linode API is down
// at start, and STATUS says why), STATUS= at every pass start and end, WATCHDOG=1 while the
// loop is alive when the unit sets WatchdogSec=, STOPPING=1 when the daemon is told to stop.
type Systemd struct {
	Log *slog.Logger

	ready sync.Once
}

// notify sends one message; a failure is logged, never fatal (systemd will say what it missed).
func (s *Systemd) notify(state string) {
	if s == nil {
		return
	}
	if _, err := daemon.SdNotify(false, state); err != nil && s.Log != nil {
		s.Log.Warn("cannot notify systemd", "err", err)
	}
}

// readyNow sends READY=1, once, with a status.
func (s *Systemd) readyNow(status string) {
	if s == nil {
		return
	}
	s.ready.Do(func() { s.notify(daemon.SdNotifyReady + "\n" + statusLine(status)) })
}

func (s *Systemd) status(status string) { s.notify(statusLine(status)) }

func (s *Systemd) stopping() { s.notify(daemon.SdNotifyStopping + "\n" + statusLine("stopping")) }

// watchdog sends WATCHDOG=1 twice per WATCHDOG_USEC while alive says the loop is alive, until
// ctx is done; it returns at once when the unit has no watchdog. A stuck loop stops the
// pings, and systemd restarts the service.
func (s *Systemd) watchdog(ctx context.Context, alive func() (bool, string)) {
	if s == nil {
		return
	}
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil && s.Log != nil {
		s.Log.Warn("ignoring systemd's watchdog settings", "err", err)
	}
	if every <= 0 {
		return
	}
	tick := time.NewTicker(every / 2)
	defer tick.Stop()
	for {
		if ok, why := alive(); ok {
			s.notify(daemon.SdNotifyWatchdog)
		} else if s.Log != nil {
			s.Log.Error("not feeding systemd's watchdog", "why", why)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// statusLine is a STATUS= assignment: one line (a newline would end it), not too long.
func statusLine(status string) string {
	status = strings.Join(strings.Fields(status), " ")
	if len(status) > 400 {
		status = status[:400] + "..."
	}
	return "STATUS=" + status
}

// passStatus is the one-line summary of a pass for STATUS=.
func passStatus(res *PassResult, err error, skipped bool, took time.Duration, end time.Time) string {
	at := end.UTC().Format(time.RFC3339)
	switch {
	case skipped:
		return fmt.Sprintf("pass at %s skipped: %v", at, err)
	case err != nil && (res == nil || res.Result == nil):
		return fmt.Sprintf("last pass at %s failed after %s: %v", at, took.Round(time.Second), err)
	case res == nil || res.Plan == nil || res.Result == nil:
		return fmt.Sprintf("last pass at %s: no changes (%s)", at, took.Round(time.Millisecond))
	}
	r := res.Result
	verdict := "applied"
	if err != nil {
		verdict = "failed"
	}
	return fmt.Sprintf("last pass at %s %s: %d steps, %d succeeded, %d failed, %d skipped in %s",
		at, verdict, len(res.Plan.Steps), len(r.Succeeded), len(r.Failed), len(r.Skipped), took.Round(time.Second))
}
