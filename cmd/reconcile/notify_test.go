package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linode/linodego"
)

// notifySocket is a unixgram socket playing systemd's $NOTIFY_SOCKET: every datagram it
// receives comes out of msgs, and seen keeps what was consumed.
type notifySocket struct {
	path string
	msgs chan string
	seen []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short directory: a unix socket's path has a limit of about 100 bytes.
	dir, err := os.MkdirTemp("", "sdnotify")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "notify.sock"), msgs: make(chan string, 1024)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			s.msgs <- string(buf[:n])
		}
	}()
	return s
}

// await consumes datagrams until one has a line for which match holds and returns that line.
func (s *notifySocket) await(t *testing.T, within time.Duration, what string, match func(line string) bool) string {
	t.Helper()
	for _, m := range s.seen {
		for _, line := range strings.Split(m, "\n") {
			if match(line) {
				return line
			}
		}
	}
	timeout := time.After(within)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("the notify socket closed before %s", what)
			}
			s.seen = append(s.seen, m)
			for _, line := range strings.Split(m, "\n") {
				if match(line) {
					return line
				}
			}
		case <-timeout:
			t.Fatalf("no %s on the notify socket within %s; received %q", what, within, s.seen)
		}
	}
}

// awaitNew is await, ignoring what was consumed before.
func (s *notifySocket) awaitNew(t *testing.T, within time.Duration, what string, match func(line string) bool) string {
	t.Helper()
	s.seen = nil
	return s.await(t, within, what, match)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func scrapeURL(t *testing.T, url string) scraped {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, res.Status)
	}
	return parseMetrics(t, res.Body)
}

// The daemon as systemd runs it (a process of its own, Type=notify, WatchdogSec=), over the
// LKE layer of the regions fleet against the lab's Linode API in-process: READY=1 after the
// first observation, STATUS= with each pass's summary, WATCHDOG=1, /metrics whose counters
// move with the passes (a cluster deleted behind its back is a drift correction), and
// STOPPING=1 on SIGTERM.
func TestDaemonMetricsAndSystemdNotify(t *testing.T) {
	t.Parallel()
	const token = "lab-token-metrics"
	_, dir, body := regionsAgainstLabAPI(t, token, 100*time.Millisecond)
	fleetPath := filepath.Join(dir, "fleet.yaml")
	must(t, os.WriteFile(fleetPath, []byte(body), 0o644))
	sock := listenNotify(t)
	addr := freeAddr(t)

	args := []string{"-f", fleetPath, "--state-dir", filepath.Join(dir, "state"), "--target", "cluster",
		"--metrics-addr", addr, "--resync-interval", "1h", "--log-format", "json", "--log-level", "debug"}
	logPath := filepath.Join(dir, "reconcile.log")
	logFile, err := os.Create(logPath)
	must(t, err)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"),
		"XDG_STATE_HOME="+dir, "XDG_CACHE_HOME="+dir,
		"NOTIFY_SOCKET="+sock.path, "WATCHDOG_USEC=200000")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("---- reconcile (tail) ----\n%s", tail(string(data), 40))
		}
	})

	sock.await(t, time.Minute, "READY=1", func(l string) bool { return l == "READY=1" })
	status := sock.await(t, 2*time.Minute, "the first pass's STATUS", func(l string) bool {
		return strings.HasPrefix(l, "STATUS=last pass at")
	})
	if !strings.Contains(status, " applied: ") || !strings.Contains(status, " 0 failed") {
		t.Fatalf("first pass: %s, want applied without failures", status)
	}
	metrics := "http://" + addr + "/metrics"
	s := scrapeURL(t, metrics)
	s.want(t, 1, "reconcile_passes_total", "outcome", "succeeded")
	s.want(t, 0, "reconcile_passes_total", "outcome", "failed")
	s.want(t, 1, "reconcile_pass_duration_seconds")
	s.want(t, 0, "reconcile_plan_pending_changes")
	s.want(t, 8, "reconcile_steps_total", "action", "create", "outcome", "succeeded") // 4 clusters, 4 kubeconfigs
	if n, _ := s.value("reconcile_linode_api_requests_total", "endpoint", "lke-clusters", "code", "200"); n == 0 {
		t.Error("no Linode API request to lke-clusters answered 200 was counted")
	}
	if n, _ := s.value("reconcile_last_successful_pass_timestamp_seconds"); n < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("last successful pass at %v", n)
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		res, err := http.Get("http://" + addr + probe)
		must(t, err)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s on --metrics-addr: %s", probe, res.Status)
		}
	}

	// Someone deletes a cluster by hand: the next pass (SIGHUP, same fleet.yaml) puts it back,
	// and that is a drift correction.
	lc := linodego.NewClient(&http.Client{Timeout: 20 * time.Second})
	_, err = lc.UseURL(regionsAPIURL(t, body))
	must(t, err)
	lc.SetToken(token)
	clusters, err := lc.ListLKEClusters(context.Background(), nil)
	must(t, err)
	if len(clusters) != 4 {
		t.Fatalf("%d clusters on the API after the first pass, want 4", len(clusters))
	}
	must(t, lc.DeleteLKECluster(context.Background(), clusters[0].ID))
	must(t, cmd.Process.Signal(syscall.SIGHUP))
	status = sock.awaitNew(t, 2*time.Minute, "the second pass's STATUS", func(l string) bool {
		return strings.HasPrefix(l, "STATUS=last pass at")
	})
	if !strings.Contains(status, " applied: ") || !strings.Contains(status, " 0 failed") {
		t.Fatalf("second pass: %s, want applied without failures", status)
	}
	s = scrapeURL(t, metrics)
	s.want(t, 2, "reconcile_passes_total", "outcome", "succeeded")
	s.want(t, 2, "reconcile_pass_duration_seconds")
	if n, _ := s.value("reconcile_drift_corrections_total", "kind", "cluster"); n != 1 {
		t.Errorf("reconcile_drift_corrections_total{kind=cluster} = %v, want 1 (the deleted cluster)", n)
	}

	sock.awaitNew(t, 10*time.Second, "WATCHDOG=1", func(l string) bool { return l == "WATCHDOG=1" })
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	sock.await(t, 30*time.Second, "STOPPING=1", func(l string) bool { return l == "STOPPING=1" })
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("reconcile after SIGTERM: %v", err)
		}
		exited <- err // for the cleanup
	case <-time.After(time.Minute):
		t.Fatal("reconcile did not exit within a minute of SIGTERM")
	}
}

// regionsAPIURL is the apiURL regionsAgainstLabAPI wrote into the fleet.
func regionsAPIURL(t *testing.T, body string) string {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "apiURL: "); ok {
			return v
		}
	}
	t.Fatal("no apiURL in the fleet")
	return ""
}

// examples/systemd/reconcile.service runs the daemon as Type=notify with a watchdog and the
// hardening the README promises, and its command line is one reconcile accepts.
func TestSystemdUnitExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../examples/systemd/reconcile.service")
	must(t, err)
	unit := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = v
		}
	}
	for k, want := range map[string]string{
		"Type": "notify", "NotifyAccess": "main", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"StateDirectory": "reconcile", "DynamicUser": "yes", "ProtectHome": "yes", "PrivateTmp": "yes",
		"CapabilityBoundingSet": "", "ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		if got, ok := unit[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if unit["WatchdogSec"] == "" {
		t.Error("no WatchdogSec=")
	}
	exec := strings.Fields(unit["ExecStart"])
	if len(exec) < 2 || filepath.Base(exec[0]) != "reconcile" {
		t.Fatalf("ExecStart=%q", unit["ExecStart"])
	}
	cmd, o, err := parseArgs(exec[1:], io.Discard)
	if err != nil || cmd != "" || o.once || o.metricsAddr == "" {
		t.Errorf("ExecStart's arguments: command %q, options %+v, err %v; want the daemon with --metrics-addr", cmd, o, err)
	}
}
