package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linode/linodego"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
)

// TestLabLeaderElection is issue 10's check of the kubernetes state backend and the HA
// daemon, with real processes: the fleet's state lives in Secrets of a lab cluster of its
// own ("ops", outside the fleet). Two daemons run with --leader-elect and a --once run joins
// them: at every moment at most one of them acts; the leader is killed with SIGKILL mid-pass
// and the other leads within 20 s and converges the fleet; no LKE cluster is made twice and no
// Helm release is left pending; a run from an empty directory (another machine) then plans
// nothing and writes nothing.
func TestLabLeaderElection(t *testing.T) {
	labtest.KarmadaBinaries(t)
	// 127.0.6.x: no other package's lab uses it.
	lf := upLab(t, net.IPv4(127, 0, 6, 10), net.IPv4(127, 0, 6, 30), 200*time.Millisecond)
	l, dir, fleetDir := lf.lab, lf.dir, lf.fleetDir
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	lc := ptr(linodego.NewClient(&http.Client{Timeout: 20 * time.Second}))
	_, err := lc.UseURL(l.LinodeURL)
	must(t, err)
	lc.SetToken(l.Token)

	opsKubeconfig := filepath.Join(fleetDir, "ops-kubeconfig")
	ops := opsCluster(t, ctx, lc, opsKubeconfig)
	fleetPath := filepath.Join(fleetDir, "fleet.yaml")
	must(t, os.WriteFile(fleetPath, []byte(fmt.Sprintf(`apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: lab-ha
provider:
  linode:
    apiURL: %s
    tokenFile: ./token
    pollInterval: 1s
    waitTimeout: 3m
state:
  backend: kubernetes
  kubernetes:
    kubeconfig: ./ops-kubeconfig
    namespace: reconcile-system
manager:
  name: cluster-manager
  region: eu-west
  k8sVersion: "1.33"
  pools: [{type: g6-standard-2, count: 1}]
  karmada:
    chart: {repo: %s, name: karmada, version: %s}
members:
  - name: eu
    region: eu-west
    k8sVersion: "1.33"
    pools: [{type: g6-standard-2, count: 1}]
  - name: us
    region: us-west
    k8sVersion: "1.33"
    pools: [{type: g6-standard-2, count: 1}]
`, l.LinodeURL, l.ChartsURL, l.KarmadaVersion)), 0o644))

	// Two candidates. The first leads (the second is started once it does, so which one is
	// killed is known).
	a := startReconcile(t, dir, "a", "--leader-elect", fleetPath)
	aLeads := a.waitLog(t, 2*time.Minute, func(e logEntry) bool { return strings.HasPrefix(e.Msg, "leading") })
	b := startReconcile(t, dir, "b", "--leader-elect", fleetPath)
	b.waitLog(t, 2*time.Minute, func(e logEntry) bool { return e.Msg == "standing by for the fleet's lock" })

	// A --once run while a daemon leads: it waits its --lock-timeout and says who holds it.
	c := startReconcile(t, dir, "c", "--once", "--lock-timeout", "3s", fleetPath)
	if code := c.wait(t, time.Minute); code != 1 {
		t.Fatalf("--once while a daemon leads: exit %d, want 1\n%s", code, c.stderrTail())
	}
	if want := fmt.Sprintf("is locked by another reconcile: pid %d on ", a.cmd.Process.Pid); !strings.Contains(c.stderrTail(), want) {
		t.Errorf("--once while a daemon leads said %q, want it to name the holder (%q)", c.stderrTail(), want)
	}

	// Kill the leader mid-pass: once a step is done and more are to come.
	a.waitLog(t, 4*time.Minute, func(e logEntry) bool { return e.Msg == "step done" })
	must(t, a.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	_ = a.wait(t, 30*time.Second)
	bLeads := b.waitLog(t, time.Minute, func(e logEntry) bool { return strings.HasPrefix(e.Msg, "leading") })
	if took := bLeads.Time.Sub(killed); took > 20*time.Second {
		t.Errorf("the second daemon led %s after the leader was killed, want within 20s", took.Round(time.Millisecond))
	} else {
		t.Logf("the second daemon led %s after the leader was killed", took.Round(time.Millisecond))
	}

	// At most one acts at every moment: every step the first daemon logged is before the
	// second led, and the second took no step before it led; the --once run took none.
	for _, e := range a.entries() {
		if strings.HasPrefix(e.Msg, "step ") && !e.Time.Before(bLeads.Time) {
			t.Errorf("the killed leader logged %q for %s at %s, after the other led (%s)", e.Msg, e.Step, e.Time, bLeads.Time)
		}
		if e.Time.Before(aLeads.Time) && strings.HasPrefix(e.Msg, "step ") {
			t.Errorf("the first daemon acted before it led: %+v", e)
		}
	}
	for _, e := range b.entries() {
		if strings.HasPrefix(e.Msg, "step ") && e.Time.Before(bLeads.Time) {
			t.Errorf("the second daemon logged %q for %s at %s, before it led", e.Msg, e.Step, e.Time)
		}
	}
	for _, e := range c.entries() {
		if strings.HasPrefix(e.Msg, "step ") {
			t.Errorf("the --once run acted without the lock: %+v", e)
		}
	}

	// The second daemon converges the fleet: a dry run from an empty state directory (dry
	// runs never take the lock) comes to plan nothing.
	var last string
	if !waitCond(ctx, 6*time.Minute, time.Second, func() bool {
		code, out := runIn(t, t.TempDir(), "plan", "--detailed-exitcode", fleetPath)
		last = out
		return code == 0
	}) {
		t.Fatalf("the fleet did not converge under the second daemon:\n%s\n---- b ----\n%s", last, b.stderrTail())
	}
	b.stop(t)

	// Nothing made twice, nothing pending.
	clusters, err := lc.ListLKEClusters(ctx, nil)
	must(t, err)
	var labels []string
	for _, c := range clusters {
		labels = append(labels, c.Label)
	}
	slices.Sort(labels)
	if want := []string{"cluster-manager", "eu", "ops", "us"}; !slices.Equal(labels, want) {
		t.Errorf("LKE clusters = %v, want %v (one each)", labels, want)
	}
	f, err := spec.Load(fleetPath)
	must(t, err)
	store, err := openBackend(ctx, f, "")
	must(t, err)
	if rf, ok := store.(refresher); ok {
		must(t, rf.Refresh(ctx))
	}
	noPendingRelease(t, ctx, store, f)

	// Another machine: a run from an empty directory plans nothing, writes nothing to
	// Linode, the clusters or the state.
	before := stateVersions(t, ctx, ops)
	writes := &labtest.WriteCounter{}
	out := &labtest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := &Reconciler{
		Wire: func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
			return wire(f, store, log, wireOptions{wrap: writes.Wrap})
		},
		Store: store, Exec: executor.Options{Parallelism: 10}, Out: out, Log: log,
	}
	l.LinodeAPI().ResetRequests()
	res, err := r.Reconcile(ctx, f, false)
	if err != nil {
		t.Fatalf("pass from another machine: %v\n%s", err, out.String())
	}
	if n := len(res.Plan.Steps); n != 0 {
		t.Errorf("a run from an empty directory planned %d steps, want none:\n%s", n, out.String())
	}
	if w := writes.Take(); len(w) != 0 {
		t.Errorf("a run from an empty directory wrote to the clusters: %v", w)
	}
	for _, rq := range l.LinodeAPI().Requests() {
		if rq.Method != http.MethodGet {
			t.Errorf("a run from an empty directory wrote to Linode: %s %s", rq.Method, rq.Path)
		}
	}
	// The pool caches are refreshed by the first runner that observes after a change through
	// the driver (the daemon's last pass changed the fleet; its dry-run checks write nothing):
	// a cache, not the fleet's state. Everything else stays as it was.
	after := stateVersions(t, ctx, ops)
	for _, m := range []map[string]string{before, after} {
		maps.DeleteFunc(m, func(k, _ string) bool {
			return strings.Contains(k, "-linode-pools-") || strings.Contains(k, "-linode-prices") // caches
		})
	}
	if !maps.Equal(before, after) {
		t.Errorf("a run from an empty directory wrote the state: %v -> %v", before, after)
	}
}

// opsCluster creates the LKE cluster that holds the fleet's state (not part of the fleet: no
// fleet tag), writes its kubeconfig to path, and creates the state namespace in it.
func opsCluster(t *testing.T, ctx context.Context, lc *linodego.Client, path string) *kubernetes.Clientset {
	t.Helper()
	cs := outsideCluster(t, ctx, lc, "ops", path)
	var err error
	if !waitCond(ctx, 2*time.Minute, 250*time.Millisecond, func() bool {
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "reconcile-system"}}, metav1.CreateOptions{})
		return err == nil
	}) {
		t.Fatalf("the state namespace: %v", err)
	}
	return cs
}

// outsideCluster creates an LKE cluster outside any fleet (no fleet tag) and writes its
// kubeconfig to path: a cluster that "already exists" for the fleet.
func outsideCluster(t *testing.T, ctx context.Context, lc *linodego.Client, label, path string) *kubernetes.Clientset {
	t.Helper()
	c, err := lc.CreateLKECluster(ctx, linodego.LKEClusterCreateOptions{Label: label, Region: "eu-west", K8sVersion: "1.33",
		NodePools: []linodego.LKENodePoolCreateOptions{{Type: "g6-standard-2", Count: 1}}})
	must(t, err)
	var kc *linodego.LKEClusterKubeconfig
	if !waitCond(ctx, 2*time.Minute, 250*time.Millisecond, func() bool {
		kc, err = lc.GetLKEClusterKubeconfig(ctx, c.ID)
		return err == nil
	}) {
		t.Fatalf("the ops cluster's kubeconfig: %v", err)
	}
	data, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
	must(t, err)
	must(t, os.WriteFile(path, data, 0o600))
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	must(t, err)
	cs, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	return cs
}

// stateVersions maps every state Secret and Lease of the namespace to its resourceVersion.
func stateVersions(t *testing.T, ctx context.Context, cs *kubernetes.Clientset) map[string]string {
	t.Helper()
	out := map[string]string{}
	secrets, err := cs.CoreV1().Secrets("reconcile-system").List(ctx, metav1.ListOptions{})
	must(t, err)
	for _, s := range secrets.Items {
		out["secret/"+s.Name] = s.ResourceVersion
	}
	leases, err := cs.CoordinationV1().Leases("reconcile-system").List(ctx, metav1.ListOptions{})
	must(t, err)
	for _, l := range leases.Items {
		out["lease/"+l.Name] = l.ResourceVersion
	}
	if len(secrets.Items) == 0 {
		t.Fatal("the state namespace holds no Secret: the state is not in kubernetes")
	}
	return out
}

// noPendingRelease checks that no Helm release in the manager is left pending.
func noPendingRelease(t *testing.T, ctx context.Context, store state.Backend, f *spec.Fleet) {
	t.Helper()
	data, err := store.ReadFile("kubeconfigs/" + f.Manager.Name)
	must(t, err)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	must(t, err)
	cs, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	secrets, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	must(t, err)
	if len(secrets.Items) == 0 {
		t.Error("no Helm release in the manager")
	}
	for _, s := range secrets.Items {
		if st := s.Labels["status"]; strings.HasPrefix(st, "pending") {
			t.Errorf("helm release %s/%s revision %s is left %s", s.Namespace, s.Labels["name"], s.Labels["version"], st)
		}
	}
}

// runIn runs reconcile in-process with the local state defaults under dir (an empty
// machine) and returns its exit code and output.
func runIn(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"), "XDG_STATE_HOME="+dir, "HOME="+dir)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("run reconcile: %v", err)
	}
	return 0, out.String()
}

// reconcileProc is reconcile running as a process of its own (the test binary, see
// childArgsEnv), logging JSON at debug level to a file.
type reconcileProc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	code    int
}

func startReconcile(t *testing.T, dir, name string, args ...string) *reconcileProc {
	t.Helper()
	p := &reconcileProc{name: name, logPath: filepath.Join(dir, "reconcile-"+name+".log"), done: make(chan struct{})}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	must(t, err)
	home := filepath.Join(dir, "home-"+name)
	must(t, os.MkdirAll(home, 0o700))
	args = append([]string{"--log-format", "json", "--log-level", "debug"}, args...)
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"), "XDG_STATE_HOME="+home, "XDG_CACHE_HOME="+home)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	must(t, p.cmd.Start())
	go func() {
		err := p.cmd.Wait()
		logFile.Close()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("---- reconcile %s (tail) ----\n%s", name, p.stderrTail())
		}
	})
	return p
}

func (p *reconcileProc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		t.Fatalf("reconcile %s did not exit within %s", p.name, within)
	}
	return -1
}

// stop ends a daemon with SIGTERM, as systemd and the kubelet do, and waits for it.
func (p *reconcileProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Errorf("reconcile %s exited %d after SIGTERM", p.name, code)
	}
}

type logEntry struct {
	Time time.Time `json:"time"`
	Msg  string    `json:"msg"`
	Step string    `json:"step"`
}

func (p *reconcileProc) entries() []logEntry {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && !e.Time.IsZero() {
			out = append(out, e)
		}
	}
	return out
}

// waitLog waits for a log entry that matches and returns it.
func (p *reconcileProc) waitLog(t *testing.T, within time.Duration, match func(logEntry) bool) logEntry {
	t.Helper()
	var found logEntry
	ok := waitCond(context.Background(), within, 100*time.Millisecond, func() bool {
		for _, e := range p.entries() {
			if match(e) {
				found = e
				return true
			}
		}
		select {
		case <-p.done:
			return false
		default:
		}
		return false
	})
	if !ok {
		t.Fatalf("reconcile %s: the awaited log entry did not come within %s\n%s", p.name, within, p.stderrTail())
	}
	return found
}

func (p *reconcileProc) stderrTail() string {
	data, _ := os.ReadFile(p.logPath)
	return tail(string(data), 40)
}
