package labworld

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

const usage = `Usage:
  reconcile-lab up [--dir D] [--linode-listen 127.0.0.1:18400] [--charts-listen 127.0.0.1:18401]
                   [--token T] [--provision-delay 1s] [--linode-fault-rate 0.2] [--linode-rate-limit 600]
                   [--linode-rate-limits=false]
      start the lab in the background (etcd, the Linode API making real lab clusters, the chart
      repository) and print how to point reconcile at it; the Linode API answers the given
      share of requests with a 5xx, and requests beyond the real API's documented limits (or
      the given limit a minute) with 429 and Retry-After; --linode-rate-limits=false: no limits
  reconcile-lab status [--dir D]
      say whether the lab runs, and check its processes and URLs
  reconcile-lab down [--dir D]
      stop the lab: every cluster, process and port; remove its files (lab.log stays)
  reconcile-lab env [--dir D]
      print export lines for LINODE_URL, LINODE_TOKEN and RECONCILE_LAB_DNS (for eval)
  reconcile-lab show -f fleet.yaml [--dir D] [--state-dir S] [--wait 60s]
      print the fleet's clusters (Linode API), Karmada members and workload replicas per member
  reconcile-lab fault replicas <member> unavailable|available -f fleet.yaml [--state-dir S]
      make the member's kubelet stand-in keep every replica unavailable (none ready, none
      available) or report them available again, to show a rollout's gate failing
  reconcile-lab fault ingress <member> down|up -f fleet.yaml [--state-dir S]
      close the member's load balancer addresses (connections refused, as in a region
      outage, so its ingress fails health checks) or open them again
  reconcile-lab xds <member> <host>:<port> -f fleet.yaml [--dir D] [--state-dir S] [--namespace default]
                   [--timeout 30s] [--min-endpoints N] [--json]
      ask the member's istiod (the real one, run by the lab) for a service as a proxyless gRPC
      workload of the member would (xds-probe, built by lab/tools/build.sh istio), and print
      what it served: listener, route, cluster and EDS endpoints per locality
  reconcile-lab serve [--dir D] [flags of up]
      run the lab in the foreground until SIGTERM or SIGINT (what up starts)
  reconcile-lab linode-api [--listen 127.0.0.1:8080] [--token T] [--provision-delay 5s]
                           [--rate-limit N] [--rate-limits=false] [--fault-rate 0.2]
      run only the lab's Linode API server (clusters point nowhere) until interrupted
  reconcile-lab version
      print the version

D defaults to $XDG_RUNTIME_DIR/reconcile-lab, else /tmp/reconcile-lab-$UID.
`

// Main runs `reconcile-lab <args>` and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "reconcile-lab: %v\n", err)
		return 1
	}
	return cli{exe: exe}.run(ctx, args, stdout, stderr)
}

// cli is Main with the command that re-runs it in the background (tests re-run the test binary).
type cli struct {
	exe    string
	prefix []string // arguments before "serve"
	env    []string // added to the serve process's environment
}

// DefaultDir is the lab directory used when --dir is not given.
func DefaultDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		return filepath.Join(d, "reconcile-lab")
	}
	return filepath.Join(os.TempDir(), "reconcile-lab-"+strconv.Itoa(os.Getuid()))
}

// State is lab.json: what `lab up` prints and `status`, `down` and `show` read. It holds the
// token, so the file is 0600.
type State struct {
	PID       int       `json:"pid"`
	PIDStart  uint64    `json:"pidStart"`
	Dir       string    `json:"dir"`
	LinodeURL string    `json:"linodeURL"`
	Token     string    `json:"token"`
	ChartsURL string    `json:"chartsURL"`
	DNS       string    `json:"dns"`
	Karmada   string    `json:"karmadaVersion"`
	Started   time.Time `json:"started"`
}

func statePath(dir string) string { return filepath.Join(dir, "lab.json") }

// ReadState reads dir/lab.json.
func ReadState(dir string) (*State, error) {
	data, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	return &s, nil
}

func writeState(dir string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(dir) + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(dir))
}

func (s *State) process() procID { return procID{PID: s.PID, Start: s.PIDStart} }

type serveFlags struct {
	dir, linodeListen, chartsListen, token, addresses string
	delay                                             time.Duration
	faultRate                                         float64
	rateLimit                                         int
	rateLimits                                        bool
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "dir", DefaultDir(), "lab directory")
	fs.StringVar(&f.linodeListen, "linode-listen", DefaultLinodeListen, "address of the Linode API")
	fs.StringVar(&f.chartsListen, "charts-listen", DefaultChartsListen, "address of the chart repository")
	fs.StringVar(&f.token, "token", "", "Linode API token to accept (default: a random one)")
	fs.DurationVar(&f.delay, "provision-delay", time.Second, "time from cluster create until its lab cluster starts")
	fs.StringVar(&f.addresses, "addresses", DefaultAddresses.First.String()+"-"+DefaultAddresses.Last.String(),
		"loopback addresses of lab clusters, first-last")
	fs.Float64Var(&f.faultRate, "linode-fault-rate", 0, "share of Linode API requests answered with a 5xx (0 to 1)")
	fs.IntVar(&f.rateLimit, "linode-rate-limit", 0, "Linode API requests a minute before 429 (0: the real API's documented limits)")
	fs.BoolVar(&f.rateLimits, "linode-rate-limits", true, "enforce the real Linode API's documented rate limits (false: none, for benchmarks)")
}

func (f *serveFlags) args() []string {
	return []string{"--dir", f.dir, "--linode-listen", f.linodeListen, "--charts-listen", f.chartsListen,
		"--token", f.token, "--provision-delay", f.delay.String(), "--addresses", f.addresses,
		"--linode-fault-rate", strconv.FormatFloat(f.faultRate, 'g', -1, 64), "--linode-rate-limit", strconv.Itoa(f.rateLimit),
		"--linode-rate-limits=" + strconv.FormatBool(f.rateLimits)}
}

func parseRange(s string) (AddressRange, error) {
	a, b, ok := strings.Cut(s, "-")
	r := AddressRange{First: net.ParseIP(a), Last: net.ParseIP(b)}
	if !ok || r.First == nil || r.Last == nil || r.First.To4() == nil || !r.First.IsLoopback() || !r.Last.IsLoopback() {
		return r, fmt.Errorf("--addresses %q: want first-last, IPv4 loopback", s)
	}
	return r, nil
}

func (c cli) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	fs := flag.NewFlagSet("reconcile-lab "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fail := func(err error) int {
		if err == nil {
			return 0
		}
		fmt.Fprintf(stderr, "reconcile-lab %s: %v\n", args[0], err)
		return 1
	}
	switch args[0] {
	case "linode-api":
		return linodeAPI(ctx, args[1:], stdout, stderr)
	case "serve", "up":
		var f serveFlags
		f.register(fs)
		if err := fs.Parse(args[1:]); err != nil {
			return 1
		}
		if f.faultRate < 0 || f.faultRate > 1 {
			return fail(fmt.Errorf("--linode-fault-rate %v: want a share from 0 to 1", f.faultRate))
		}
		if args[0] == "serve" {
			return fail(serve(ctx, f, stderr))
		}
		return fail(c.up(ctx, f, stdout))
	case "status":
		dir := fs.String("dir", DefaultDir(), "lab directory")
		if err := fs.Parse(args[1:]); err != nil {
			return 1
		}
		if ok := status(ctx, *dir, stdout); !ok {
			return 1
		}
		return 0
	case "down":
		dir := fs.String("dir", DefaultDir(), "lab directory")
		if err := fs.Parse(args[1:]); err != nil {
			return 1
		}
		return fail(down(*dir, stdout))
	case "env":
		dir := fs.String("dir", DefaultDir(), "lab directory")
		if err := fs.Parse(args[1:]); err != nil {
			return 1
		}
		s, err := ReadState(*dir)
		if err != nil {
			return fail(fmt.Errorf("the lab does not run (%w); start it with `reconcile-lab up`", err))
		}
		fmt.Fprintf(stdout, "export LINODE_URL=%s\nexport LINODE_TOKEN=%s\n", s.LinodeURL, s.Token)
		if s.DNS != "" {
			fmt.Fprintf(stdout, "export %s=%s\n", DNSEnv, s.DNS)
		}
		return 0
	case "show":
		var o showOptions
		fs.StringVar(&o.dir, "dir", DefaultDir(), "lab directory")
		fs.StringVar(&o.fleet, "f", "fleet.yaml", "fleet file")
		fs.StringVar(&o.stateDir, "state-dir", "", "reconcile's state directory (default as reconcile's)")
		fs.DurationVar(&o.wait, "wait", 0, "wait up to this long for Karmada to propagate the workloads to every weighted member")
		if err := fs.Parse(args[1:]); err != nil {
			return 1
		}
		return fail(show(ctx, o, stdout))
	case "fault":
		var o faultOptions
		fs.StringVar(&o.fleet, "f", "fleet.yaml", "fleet file")
		fs.StringVar(&o.stateDir, "state-dir", "", "reconcile's state directory (default as reconcile's)")
		if err := fs.Parse(args[1:]); err != nil {
			return 1
		}
		// Flags may come after the operands too: `fault replicas us unavailable -f fleet.yaml`.
		rest := fs.Args()
		var operands []string
		for len(rest) > 0 {
			operands = append(operands, rest[0])
			if err := fs.Parse(rest[1:]); err != nil {
				return 1
			}
			rest = fs.Args()
		}
		return fail(fault(ctx, o, operands, stdout))
	case "xds":
		o := xdsOptions{}
		fs.StringVar(&o.dir, "dir", DefaultDir(), "lab directory")
		fs.StringVar(&o.fleet, "f", "fleet.yaml", "fleet file")
		fs.StringVar(&o.stateDir, "state-dir", "", "reconcile's state directory (default as reconcile's)")
		fs.StringVar(&o.namespace, "namespace", "default", "the probing workload's namespace")
		fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for istiod's answer")
		fs.IntVar(&o.minEndpoints, "min-endpoints", 0, "also wait until the answer holds this many endpoints")
		fs.BoolVar(&o.json, "json", false, "print xds-probe's report as JSON")
		if err := fs.Parse(args[1:]); err != nil {
			return 1
		}
		rest := fs.Args()
		var operands []string
		for len(rest) > 0 {
			operands = append(operands, rest[0])
			if err := fs.Parse(rest[1:]); err != nil {
				return 1
			}
			rest = fs.Args()
		}
		return fail(xdsCommand(ctx, o, operands, stdout))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "reconcile-lab: unknown command %q\n%s", args[0], usage)
	return 1
}

// linodeAPI is `reconcile-lab linode-api`, unchanged from before the lab had clusters.
func linodeAPI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reconcile-lab linode-api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	token := fs.String("token", "", "bearer token to accept (default: a random one, printed)")
	delay := fs.Duration("provision-delay", 5*time.Second, "time until a new cluster's nodes and kubeconfig are ready")
	rate := fs.Int("rate-limit", 0, "requests per minute before 429 (0: the real API's documented limits)")
	limits := fs.Bool("rate-limits", true, "enforce the real API's documented rate limits (false: none, for benchmarks)")
	fault := fs.Float64("fault-rate", 0, "share of requests answered with a 5xx")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	o := linodeapi.Options{Token: *token, ProvisionDelay: *delay, FaultRate: *fault, NoRateLimits: !*limits}
	if *rate > 0 {
		o.RateLimit, o.RateWindow = *rate, time.Minute
	}
	if err := linodeapi.Run(ctx, *listen, o, stdout); err != nil {
		fmt.Fprintf(stderr, "reconcile-lab linode-api: %v\n", err)
		return 1
	}
	return 0
}

// serve runs the lab until ctx ends or SIGTERM/SIGINT arrives, with lab.json written while it
// runs. Logs go to log (lab.log when started by up).
func serve(ctx context.Context, f serveFlags, logOut io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	r, err := parseRange(f.addresses)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	_, start, err := procStat(os.Getpid())
	if err != nil {
		return err
	}
	// A stale record of an earlier lab would have down kill unrelated processes: start afresh.
	_ = os.Remove(pidFilePath(f.dir))
	// istiod runs in the lab clusters when it is built (build.sh istio); without it the mesh
	// charts still install, and nothing reads the mesh through istiod's eyes.
	_, istiodErr := cluster.FindIstiod()
	if istiodErr != nil {
		log.Warn("istiod not built: no istiod will run in the lab clusters", "err", istiodErr)
	}
	l, err := Up(ctx, Options{Dir: f.dir, LinodeListen: f.linodeListen, ChartsListen: f.chartsListen,
		Token: f.token, ProvisionDelay: f.delay, Addresses: r, Log: log, Karmada: true, Istiod: istiodErr == nil,
		LinodeFaultRate: f.faultRate, LinodeRateLimit: f.rateLimit, NoLinodeRateLimits: !f.rateLimits})
	if err != nil {
		return err
	}
	st := State{PID: os.Getpid(), PIDStart: start, Dir: f.dir, LinodeURL: l.LinodeURL, Token: l.Token,
		ChartsURL: l.ChartsURL, DNS: l.DNS, Karmada: l.KarmadaVersion, Started: time.Now().UTC().Truncate(time.Second)}
	if err := writeState(f.dir, st); err != nil {
		_ = l.Close()
		return err
	}
	<-ctx.Done()
	log.Info("lab stopping")
	err = l.Close()
	_ = os.Remove(statePath(f.dir))
	log.Info("lab stopped", "err", err)
	return err
}

// upTimeout bounds how long up waits for the lab to write lab.json.
const upTimeout = 3 * time.Minute

func (c cli) up(ctx context.Context, f serveFlags, stdout io.Writer) error {
	if s, err := ReadState(f.dir); err == nil && s.process().alive() {
		fmt.Fprintf(stdout, "The lab already runs (pid %d, %s).\n", s.PID, f.dir)
		printEnv(stdout, s)
		return nil
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(f.dir, 0o700); err != nil {
		return err
	}
	_ = os.Remove(statePath(f.dir))
	logPath := filepath.Join(f.dir, "lab.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(c.exe, append(append(append([]string(nil), c.prefix...), "serve"), f.args()...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), c.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if s, err := ReadState(f.dir); err == nil && s.PID == cmd.Process.Pid {
			fmt.Fprintf(stdout, "The lab runs (pid %d, %s; log %s).\n", s.PID, f.dir, logPath)
			printEnv(stdout, s)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the lab exited (%v); last lines of %s:\n%s", err, logPath, lastLines(logPath, 20))
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return fmt.Errorf("the lab did not come up within %s; last lines of %s:\n%s", upTimeout, logPath, lastLines(logPath, 20))
		case <-tick.C:
		}
	}
}

func printEnv(w io.Writer, s *State) {
	fmt.Fprintf(w, `
Point reconcile at it:
  export LINODE_URL=%s LINODE_TOKEN=%s
  reconcile --once -f examples/lab/fleet.yaml
  reconcile-lab show -f examples/lab/fleet.yaml
Charts (Karmada %s, Istio %s): %s
DNS for the Linode API's zones (UDP and TCP): %s=%s
Stop it with: reconcile-lab down --dir %s
`, s.LinodeURL, s.Token, s.Karmada, IstioVersion, s.ChartsURL, DNSEnv, s.DNS, s.Dir)
}

func lastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// status prints the lab's state and reports whether it runs and answers.
func status(ctx context.Context, dir string, out io.Writer) bool {
	s, err := ReadState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(out, "The lab does not run (no %s).\n", statePath(dir))
		return false
	}
	if err != nil {
		fmt.Fprintf(out, "The lab's state is unreadable: %v\n", err)
		return false
	}
	ok := true
	check := func(what string, err error) {
		if err != nil {
			ok = false
			fmt.Fprintf(out, "  %-12s FAIL %v\n", what, err)
			return
		}
		fmt.Fprintf(out, "  %-12s ok\n", what)
	}
	fmt.Fprintf(out, "Lab in %s, started %s:\n", dir, s.Started.Format(time.RFC3339))
	if s.process().alive() {
		check(fmt.Sprintf("pid %d", s.PID), nil)
	} else {
		check(fmt.Sprintf("pid %d", s.PID), errors.New("not running"))
	}
	check("linode API", getOK(ctx, s.LinodeURL+"/lke/versions", s.Token))
	check("charts", getOK(ctx, s.ChartsURL+"/index.yaml", ""))
	check("DNS", dnsAnswers(s.DNS))
	procs, _ := readPIDFile(pidFilePath(dir))
	live := len(stillAlive(procs))
	fmt.Fprintf(out, "  %-12s %d of %d recorded child processes run\n", "processes", live, len(procs))
	fmt.Fprintf(out, "  LINODE_URL=%s %s=%s\n", s.LinodeURL, DNSEnv, s.DNS)
	return ok
}

func getOK(ctx context.Context, url, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// downGrace is how long the serve process gets to stop its clusters after SIGTERM.
const downGrace = 60 * time.Second

// down stops the serve process, then any recorded child still running, and removes the lab's
// files but lab.log.
func down(dir string, out io.Writer) error {
	s, err := ReadState(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if s != nil {
		if killed := terminate([]procID{s.process()}, downGrace); len(killed) > 0 {
			fmt.Fprintf(out, "The lab (pid %d) did not stop within %s of SIGTERM: killed.\n", s.PID, downGrace)
		}
	}
	procs, err := readPIDFile(pidFilePath(dir))
	if err != nil {
		return err
	}
	if left := stillAlive(procs); len(left) > 0 {
		fmt.Fprintf(out, "Stopping %d lab processes left behind.\n", len(left))
		terminate(left, 10*time.Second)
	}
	if left := stillAlive(procs); len(left) > 0 {
		return fmt.Errorf("processes still run: %v", left)
	}
	var errs []error
	for _, name := range []string{"lab.json", "lab.json.tmp", "pids", "etcd", "clusters", "charts", "karmada"} {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, name)))
	}
	if s == nil && len(procs) == 0 {
		fmt.Fprintf(out, "The lab was not running (%s).\n", dir)
	} else {
		fmt.Fprintf(out, "The lab is down (%s; log kept in lab.log).\n", dir)
	}
	return errors.Join(errs...)
}
