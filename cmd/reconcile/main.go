// Command reconcile converges a fleet of Kubernetes clusters (LKE or existing), a Karmada
// control plane, an Istio multi-primary mesh and weighted workload placement to one fleet.yaml.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `reconcile converges a fleet (LKE clusters, Karmada, Istio, weights) to fleet.yaml.

Usage:
  reconcile -f fleet.yaml                  run as a daemon: reconcile on every change, SIGHUP and resync
  reconcile --once -f fleet.yaml           plan, then apply once (for CI); alias: reconcile apply
  reconcile --once --dry-run -f fleet.yaml show the plan and change nothing; alias: reconcile plan
  reconcile validate -f fleet.yaml         check the file; every problem as FILE:LINE:COL: field: message
  reconcile status -f fleet.yaml [-o json] every layer as observed now; writes nothing, takes no lock;
                                           exit 0 healthy, 3 degraded (with the reasons), 1 error
  reconcile state migrate --to kubernetes -f fleet.yaml
                                           copy the fleet's state from --state-dir to the kubernetes
                                           backend of fleet.yaml's state block (--to local: back)
  reconcile schema                         print the JSON Schema of fleet.yaml (for editors)
  reconcile version                        print the version

The fleet file may also be given as the one argument, without -f, before or after the flags:
  reconcile validate fleet.yaml, reconcile plan fleet.yaml, reconcile --once fleet.yaml ...

Flags:
`

type options struct {
	file         string
	once         bool
	dryRun       bool
	detailed     bool
	output       string
	parallelism  int
	stateDir     string
	logFormat    string
	logLevel     string
	resync       time.Duration
	allowDestroy bool
	targets      stringList
	forceUnjoin  bool
	replaceRoot  bool
	rotateCreds  bool
	watchDrift   bool
	savePlan     string
	planFile     string
	lockTimeout  time.Duration
	leaderElect  bool
	healthAddr   string
	metricsAddr  string
	stuckAfter   time.Duration
	to           string
	verbose      bool
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func newFlags(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.file, "f", "fleet.yaml", "fleet file (same as --file)")
	fs.StringVar(&o.file, "file", "fleet.yaml", "fleet file")
	fs.BoolVar(&o.once, "once", false, "plan and apply once, then exit")
	fs.BoolVar(&o.dryRun, "dry-run", false, "with --once: show the plan, change nothing")
	fs.BoolVar(&o.detailed, "detailed-exitcode", false, "exit 0 when nothing to do, 2 when the plan has changes, 1 on error")
	fs.StringVar(&o.output, "o", "text", "plan and status output: text or json")
	fs.IntVar(&o.parallelism, "parallelism", 10, "steps run at once")
	fs.StringVar(&o.stateDir, "state-dir", "", "state directory (default $XDG_STATE_HOME/reconcile/<fleet>, /var/lib/reconcile/<fleet> under systemd)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json (logs go to stderr)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&o.resync, "resync-interval", 5*time.Minute, "daemon: re-observe and correct drift this often")
	fs.BoolVar(&o.watchDrift, "watch-drift", true, "daemon: watch what the fleet owns (Karmada Clusters and policies, the mesh's secrets and Gateway, Helm release records) and correct a change within seconds")
	fs.BoolVar(&o.allowDestroy, "allow-destroy", false, "allow a plan that deletes the manager or more members than safety.maxDeleteShare")
	fs.BoolVar(&o.forceUnjoin, "force-unjoin", false, "unjoin an unreachable member by stripping finalizers when deleting it does not finish (as karmadactl unjoin --force)")
	fs.BoolVar(&o.replaceRoot, "replace-mesh-root", false, "with --once: replace the mesh root on purpose and re-issue every member's cacerts from the new one")
	fs.BoolVar(&o.rotateCreds, "rotate-credentials", false, "with --once: rotate every Karmada token, istio-reader token and Pull agent certificate now, whatever its age")
	fs.StringVar(&o.savePlan, "save-plan", "", "with --once --dry-run: also write the plan as JSON to this file")
	fs.StringVar(&o.planFile, "plan", "", "with --once: execute this saved plan, refused if the fleet or the world changed since")
	fs.DurationVar(&o.lockTimeout, "lock-timeout", 0, "wait this long for the fleet's lock when another runner holds it (default 0: fail at once)")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "daemon: run as one of several candidates; only the holder of the fleet's lock plans and applies")
	fs.StringVar(&o.healthAddr, "health-addr", "", "daemon: serve /healthz and /readyz on this address (e.g. :8081)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "daemon: serve Prometheus metrics on /metrics, and /healthz and /readyz, on this address (e.g. 127.0.0.1:9464)")
	fs.DurationVar(&o.stuckAfter, "stuck-after", DefaultStuckAfter, "daemon: /healthz fails, and systemd's watchdog is no longer fed, once one pass runs longer than this")
	fs.StringVar(&o.to, "to", "", "state migrate: the backend to copy the state to: kubernetes or local")
	fs.BoolVar(&o.verbose, "verbose", false, "text plan: draw every step, also when many are alike (they are grouped otherwise)")
	fs.Var(&o.targets, "target", "limit the plan to steps matching this address or pattern (and what they need); repeatable")
	return fs
}

// errUsage is returned by parseArgs once it has told stderr what is wrong.
var errUsage = errors.New("usage error")

// parseArgs splits the command line into the command ("" for the daemon and --once) and its
// options. The fleet file is -f/--file or the one positional argument, as kubectl users expect:
// `reconcile validate fleet.yaml`. Flags may follow it (the flag package stops at the first
// non-flag argument, so the rest is parsed again). Every error is printed on stderr; the
// error returned is flag.ErrHelp for -h, else errUsage.
func parseArgs(args []string, stderr io.Writer) (string, options, error) {
	var o options
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "version", "schema", "validate", "plan", "apply", "status":
			cmd, args = args[0], args[1:]
		case "state":
			if len(args) < 2 || args[1] != "migrate" {
				fmt.Fprintf(stderr, "reconcile: state: want a subcommand: migrate\n\n")
				newFlags(&o, stderr).Usage()
				return "", o, errUsage
			}
			cmd, args = "state migrate", args[2:]
		default:
			if !looksLikeFile(args[0]) {
				fmt.Fprintf(stderr, "reconcile: unknown command %q\n\n", args[0])
				newFlags(&o, stderr).Usage()
				return "", o, errUsage
			}
			// `reconcile fleet.yaml`: the daemon, with the file as its argument.
		}
	}
	if cmd == "version" || cmd == "schema" {
		return cmd, o, nil
	}
	fs := newFlags(&o, stderr)
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return cmd, o, err
			}
			return cmd, o, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			files = append(files, rest...) // after "--" nothing is a flag
			break
		}
		files, args = append(files, rest[0]), rest[1:]
	}
	flagged := false
	fs.Visit(func(f *flag.Flag) { flagged = flagged || f.Name == "f" || f.Name == "file" })
	switch {
	case len(files) > 1:
		fmt.Fprintf(stderr, "reconcile: one fleet file expected, got %d arguments: %s\n", len(files), quoteAll(files))
		return cmd, o, errUsage
	case len(files) == 1 && flagged && filepath.Clean(files[0]) != filepath.Clean(o.file):
		fmt.Fprintf(stderr, "reconcile: two fleet files: -f %q and the argument %q; give one\n", o.file, files[0])
		return cmd, o, errUsage
	case len(files) == 1:
		o.file = files[0]
	}
	return cmd, o, nil
}

// looksLikeFile tells a fleet file given first (`reconcile fleet.yaml`) from a mistyped
// command: a path, a YAML or JSON name, or an existing regular file.
func looksLikeFile(arg string) bool {
	if strings.ContainsRune(arg, filepath.Separator) || strings.ContainsRune(arg, '/') {
		return true
	}
	switch strings.ToLower(filepath.Ext(arg)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	fi, err := os.Stat(arg)
	return err == nil && fi.Mode().IsRegular()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, " ")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 1
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "reconcile %s\n", version)
		return 0
	case "schema":
		stdout.Write(spec.Schema())
		return 0
	}
	if o.output != "text" && o.output != "json" {
		fmt.Fprintf(stderr, "reconcile: -o must be text or json, not %q\n", o.output)
		return 1
	}
	table := liveTable(cmd, o, stdout)
	if table != nil {
		defer table.Close()
		stderr = logsAbove(table, stderr)
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "reconcile: %v\n", err)
		return 1
	}

	// linodego reports its retries through the standard logger; keep them in our logs.
	stdlog.SetFlags(0)
	stdlog.SetOutput(slog.NewLogLogger(log.Handler(), slog.LevelDebug).Writer())

	fleet, err := spec.Load(o.file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cmd == "validate" {
		fmt.Fprintf(stdout, "%s: fleet %q is valid: manager %s, %d members, %d workloads\n",
			o.file, fleet.Metadata.Name, fleet.Manager.Name, len(fleet.Members), len(fleet.Workloads))
		return 0
	}
	if cmd == "status" {
		return runStatus(ctx, fleet, o, stdout, stderr, log)
	}
	// "plan" and "apply" are spelled-out aliases of --once --dry-run and --once.
	switch cmd {
	case "plan":
		o.once, o.dryRun = true, true
	case "apply":
		o.once = true
	}
	if o.dryRun && !o.once {
		fmt.Fprintln(stderr, "reconcile: --dry-run goes with --once")
		return 1
	}
	if (o.replaceRoot || o.rotateCreds) && !o.once {
		fmt.Fprintln(stderr, "reconcile: --replace-mesh-root and --rotate-credentials go with --once: they act once, not on every pass of a daemon")
		return 1
	}
	if o.savePlan != "" && !o.dryRun || o.planFile != "" && (!o.once || o.dryRun) {
		fmt.Fprintln(stderr, "reconcile: --save-plan goes with --once --dry-run, --plan with --once")
		return 1
	}
	var saved *plan.Plan
	if o.planFile != "" {
		if saved, err = loadPlan(o.planFile); err != nil {
			fmt.Fprintf(stderr, "reconcile: %v\n", err)
			return 1
		}
	}

	if cmd == "state migrate" {
		return migrateState(ctx, fleet, o, stdout, stderr, log)
	}
	if o.leaderElect && o.once {
		fmt.Fprintln(stderr, "reconcile: --leader-elect is for the daemon, not --once")
		return 1
	}
	store, err := openBackend(ctx, fleet, o.stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "reconcile: %v\n", err)
		return 1
	}
	// A dry run writes nothing: what its observers fetch and cache stays in memory.
	var files state.Backend = store
	if o.dryRun {
		files = state.NewOverlay(store)
	}
	lockFleet := func(ctx context.Context, wait time.Duration) (state.Lock, error) {
		return store.Lock(ctx, state.LockOptions{Wait: wait})
	}
	if o.once && !o.dryRun {
		lock, err := lockFleet(ctx, o.lockTimeout)
		if err != nil {
			fmt.Fprintf(stderr, "reconcile: %v\n", err)
			return 1
		}
		defer lock.Release()
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-lock.Lost():
				log.Error("lost the fleet's lock: no further step starts")
				cancel()
			case <-ctx.Done():
			}
		}()
	}

	var metrics *Metrics
	wopts := wireOptions{dryRun: o.dryRun, retry: readRetry(executor.RetryPolicy{}, log)}
	if o.metricsAddr != "" && !o.once {
		metrics = NewMetrics(nil)
		wopts.requests = metrics.linodeRequest
	}
	r := &Reconciler{
		Wire: func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
			return wire(f, files, log, wopts)
		},
		Store: store,
		Plan: planner.Options{AllowDestroy: o.allowDestroy, ForceUnjoin: o.forceUnjoin, ReplaceMeshRoot: o.replaceRoot && o.once,
			RotateCredentials: o.rotateCreds && o.once},
		Exec:    executor.Options{Parallelism: o.parallelism},
		Targets: o.targets,
		Saved:   saved,
		SaveTo:  o.savePlan,
		Out:     stdout,
		Format:  o.output,
		Verbose: o.verbose,
		Table:   table,
		Log:     log,
	}
	if o.once {
		res, err := r.Reconcile(ctx, fleet, o.dryRun)
		if err != nil {
			fmt.Fprintf(stderr, "reconcile: %v\n", err)
		}
		return exitCode(res, err, o.detailed)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d := &Daemon{Path: o.file, Reconciler: r, Resync: o.resync, Log: log,
		Lock: lockFleet, LockTimeout: o.lockTimeout, LeaderElect: o.leaderElect,
		Health: &Health{StuckAfter: o.stuckAfter}, Metrics: metrics, Systemd: &Systemd{Log: log}}
	if o.watchDrift {
		d.Drift = NewDriftWatch(files, log)
		d.Drift.Linode = linodeFingerprint(files, log)
	}
	if err := serveProbes(ctx, o.healthAddr, o.metricsAddr, d.Health, metrics, log); err != nil {
		fmt.Fprintf(stderr, "reconcile: %v\n", err)
		return 1
	}
	if err := d.Run(ctx, hup); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}
