package main

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linode/linodego"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
	"github.com/reconcile-dev/reconcile/state/weights"
)

// Bounds of the end-to-end waits: generous, the CI machine is a loaded 2-core box.
const (
	e2ePassTimeout = 4 * time.Minute // one full pass, cold start included
	e2eWaitTimeout = 3 * time.Minute // Karmada propagating, a member turning Ready
	e2eManager     = "cluster-manager"
)

var (
	e2eMembers       = []string{"eu", "ap", "us"}
	e2eNetworks      = map[string]string{"eu": "network3", "ap": "network1", "us": "network2"}
	karmadaClusterGV = schema.GroupVersionResource{Group: "cluster.karmada.io", Version: "v1alpha1", Resource: "clusters"}
	bindingGVR       = schema.GroupVersionResource{Group: "work.karmada.io", Version: "v1alpha2", Resource: "resourcebindings"}
	deploymentGVR    = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

// TestLabEndToEnd converges examples/lab/fleet.yaml in one in-process lab and walks it
// through a crash mid-install, the converged checks (Karmada, weights, mesh), a second pass
// that writes nothing, weight edits taken by the daemon, and a member leaving and coming
// back. Phases run in order and stop at the first that fails (RECONCILE_E2E_KEEP_GOING=1
// runs the later ones anyway, to see more at once).
func TestLabEndToEnd(t *testing.T) {
	labtest.KarmadaBinaries(t)
	e := newE2E(t)
	phases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"crash-mid-install", e.crashMidInstall},
		{"converged", e.converged},
		{"second-pass-writes-nothing", e.secondPassWritesNothing},
		{"weights-daemon", e.weightsDaemon},
		{"member-removed-and-back", e.memberRemovedAndBack},
		{"pull-agent-identity", e.pullAgentIdentity},
		{"drift-watch", e.driftWatch},
		{"region-rebuilt-and-foreign-cluster", e.regionRebuilt},
		{"fourth-member", e.fourthMember},
	}
	keepGoing := os.Getenv("RECONCILE_E2E_KEEP_GOING") != ""
	for _, p := range phases {
		start := time.Now()
		ok := t.Run(p.name, p.run)
		t.Logf("phase %s: %s in %s", p.name, map[bool]string{true: "ok", false: "FAILED"}[ok], time.Since(start).Round(time.Millisecond))
		if !ok {
			e.dumpLogs(t)
			if !keepGoing {
				t.FailNow()
			}
		}
	}
	e.logRSS(t)
}

// e2e is the lab, the fleet file and the reconciler the phases share.
type e2e struct {
	lab       *labworld.Lab
	dir       string
	fleetPath string
	helloPath string
	baseFleet string // the fleet as phase 1 writes it
	store     *state.Store
	access    kube.Access // the test's own reads: not counted
	writes    *labtest.WriteCounter
	out       *labtest.SyncBuffer // Reconciler.Out
	logPath   string
	r         *Reconciler
	linode    *linodego.Client
}

func newE2E(t *testing.T) *e2e {
	dir := t.TempDir()
	e := &e2e{dir: dir, fleetPath: filepath.Join(dir, "fleet", "fleet.yaml"), helloPath: filepath.Join(dir, "fleet", "hello.yaml"),
		logPath: filepath.Join(dir, "reconcile.log"), writes: &labtest.WriteCounter{}, out: &labtest.SyncBuffer{}}
	must(t, os.MkdirAll(filepath.Dir(e.fleetPath), 0o700))

	labLog, err := os.OpenFile(filepath.Join(dir, "lab.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { labLog.Close() })
	start := time.Now()
	l, err := labworld.Up(context.Background(), labworld.Options{
		Dir: filepath.Join(dir, "lab"), LinodeListen: "127.0.0.1:0", ChartsListen: "127.0.0.1:0",
		ProvisionDelay: 200 * time.Millisecond, Karmada: true,
		Addresses: labworld.AddressRange{First: net.IPv4(127, 0, 1, 10), Last: net.IPv4(127, 0, 1, 60)}, // no other package uses 127.0.1.x
		Log:       slog.New(slog.NewTextHandler(labLog, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	e.lab = l
	t.Logf("lab up in %s: linode %s, charts %s, karmada %s", time.Since(start).Round(time.Millisecond), l.LinodeURL, l.ChartsURL, l.KarmadaVersion)

	e.store, err = state.OpenStore(filepath.Join(dir, "state"))
	must(t, err)
	e.access = kube.Access{Store: e.store, Timeout: 20 * time.Second}
	logFile, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { logFile.Close() })
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.r = &Reconciler{
		Wire: func(f *spec.Fleet) ([]state.Observer, executor.Drivers, error) {
			return wire(f, e.store, log, wireOptions{wrap: e.writes.Wrap})
		},
		Store: e.store,
		Exec:  executor.Options{Parallelism: 10},
		Out:   e.out,
		Log:   log,
	}

	e.linode = ptr(linodego.NewClient(&http.Client{Timeout: 20 * time.Second}))
	_, err = e.linode.UseURL(l.LinodeURL)
	must(t, err)
	e.linode.SetToken(l.Token)

	// The lab fleet, pointed at this lab: a token file, manifests at an absolute path, and
	// ap joined in Pull mode so both join modes run.
	src, err := os.ReadFile("../../examples/lab/fleet.yaml")
	must(t, err)
	hello, err := os.ReadFile("../../examples/lab/hello.yaml")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(filepath.Dir(e.fleetPath), "token"), []byte(l.Token+"\n"), 0o600))
	body := string(src)
	for _, r := range []struct{ old, new string }{
		{"http://127.0.0.1:18400/v4", l.LinodeURL},
		{"    tokenEnv: LINODE_TOKEN # printed by `reconcile-lab up`\n", "    tokenFile: ./token\n    waitTimeout: 3m\n"},
		{"http://127.0.0.1:18401", l.ChartsURL},
		{"version: v1.18.2", "version: " + l.KarmadaVersion},
		{"./hello.yaml", e.helloPath},
		{"  - name: ap\n", "  - name: ap\n    joinMode: Pull\n"},
	} {
		if !strings.Contains(body, r.old) {
			t.Fatalf("examples/lab/fleet.yaml no longer holds %q; update this test", r.old)
		}
		body = strings.ReplaceAll(body, r.old, r.new)
	}
	e.baseFleet = body
	saveByRename(t, e.helloPath, string(hello))
	saveByRename(t, e.fleetPath, body)
	return e
}

func ptr[T any](v T) *T { return &v }

func (e *e2e) load(t *testing.T) *spec.Fleet {
	t.Helper()
	f, err := spec.Load(e.fleetPath)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// pass runs one pass of the shared reconciler with a bounded context.
func (e *e2e) pass(t *testing.T, f *spec.Fleet) (*PassResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2ePassTimeout)
	defer cancel()
	mark := e.out.Len()
	start := time.Now()
	res, err := e.r.Reconcile(ctx, f, false)
	steps := 0
	if res != nil && res.Plan != nil {
		steps = len(res.Plan.Steps)
	}
	t.Logf("pass: %d steps in %s (err %v)", steps, time.Since(start).Round(time.Millisecond), err)
	if err != nil {
		t.Logf("output of the pass:\n%s", e.out.From(mark))
	}
	return res, err
}

// ---- phase 1 ----

func (e *e2e) crashMidInstall(t *testing.T) {
	f := e.load(t)
	relName, relNS := f.Manager.Karmada.Release, f.Manager.Karmada.Namespace
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.r.Exec.Grace = -1 // steps die with the context, as in a crash
	defer func() { e.r.Exec.Grace = 0 }()

	// Cancel once the release step has started and Helm recorded the release: mid-install.
	crashed := make(chan string, 1)
	go func() {
		defer cancel()
		const line = "manager/karmada/release: starting"
		if !waitCond(ctx, e2ePassTimeout, 20*time.Millisecond, func() bool { return strings.Contains(e.out.String(), line) }) {
			crashed <- "never saw " + strconv.Quote(line)
			return
		}
		status := ""
		waitCond(ctx, 2*time.Minute, 20*time.Millisecond, func() bool {
			status = e.helmStatus(ctx, f, relName, relNS, 1)
			return status != ""
		})
		crashed <- "release step started; helm release v1 status at cancel: " + strconv.Quote(status)
	}()
	start := time.Now()
	res, err := e.r.Reconcile(ctx, f, false)
	t.Logf("crashed pass returned after %s: %v", time.Since(start).Round(time.Millisecond), err)
	select {
	case why := <-crashed:
		t.Log(why)
	case <-time.After(10 * time.Second):
		t.Fatal("the crashed pass returned but the canceller did not report")
	}
	if err == nil {
		t.Fatalf("the pass cancelled mid-install returned no error (plan had %d steps)", len(res.Plan.Steps))
	}

	start = time.Now()
	res, err = e.pass(t, e.load(t))
	if err != nil {
		t.Fatalf("the pass after the crash did not converge: %v", err)
	}
	t.Logf("cold pass after the crash: %d steps in %s", len(res.Plan.Steps), time.Since(start).Round(time.Millisecond))

	// No stuck release: its newest revision is deployed and none is pending.
	ctxR, cancelR := context.WithTimeout(context.Background(), time.Minute)
	defer cancelR()
	kc := e.kubeClient(t, f, e2eManager)
	secrets, err := kc.CoreV1().Secrets(relNS).List(ctxR, metav1.ListOptions{LabelSelector: "owner=helm,name=" + relName})
	must(t, err)
	newest, newestStatus := 0, ""
	for _, s := range secrets.Items {
		v, _ := strconv.Atoi(s.Labels["version"])
		st := s.Labels["status"]
		t.Logf("helm release %s revision %d: %s", relName, v, st)
		if strings.HasPrefix(st, "pending") {
			t.Errorf("helm release %s revision %d is stuck in %s", relName, v, st)
		}
		if v > newest {
			newest, newestStatus = v, st
		}
	}
	if newestStatus != "deployed" {
		t.Errorf("helm release %s: newest revision %d is %q, want deployed", relName, newest, newestStatus)
	}

	// Exactly three Karmada Clusters and four LKE clusters: nothing made twice.
	names := e.karmadaClusterNames(t)
	if want := []string{"ap", "eu", "us"}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("Karmada Clusters = %v, want %v", names, want)
	}
	labels := e.lkeLabels(t)
	if want := []string{"ap", e2eManager, "eu", "us"}; strings.Join(labels, ",") != strings.Join(want, ",") {
		t.Errorf("LKE clusters in the Linode API = %v, want %v", labels, want)
	}
}

// helmStatus is the status label of revision rev of a Helm release, "" when it is not there.
func (e *e2e) helmStatus(ctx context.Context, f *spec.Fleet, name, ns string, rev int) string {
	cfg, err := e.access.For(f).RESTConfig(e2eManager)
	if err != nil {
		return ""
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return ""
	}
	s, err := kc.CoreV1().Secrets(ns).Get(ctx, fmt.Sprintf("sh.helm.release.v1.%s.v%d", name, rev), metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return s.Labels["status"]
}

// ---- phase 2 ----

func (e *e2e) converged(t *testing.T) {
	f := e.load(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eWaitTimeout)
	defer cancel()

	modes := map[string]string{"eu": "Push", "ap": "Pull", "us": "Push"}
	for _, m := range e2eMembers {
		e.waitMemberReady(t, ctx, m, modes[m])
	}
	e.waitSplit(t, ctx, f, map[string]int32{"eu": 4, "ap": 2, "us": 4})
	root := e.meshRoot(t)
	for _, m := range e2eMembers {
		e.checkMesh(t, ctx, f, m, root)
	}
	for _, x := range e2eMembers {
		for _, y := range e2eMembers {
			if x != y {
				e.checkRemoteSecret(t, ctx, f, x, y)
			}
		}
	}
}

func (e *e2e) waitMemberReady(t *testing.T, ctx context.Context, name, mode string) {
	t.Helper()
	dc := e.karmadaDynamic(t)
	var last string
	ok := waitCond(ctx, e2eWaitTimeout, 250*time.Millisecond, func() bool {
		c, err := dc.Resource(karmadaClusterGV).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false
		}
		sm, _, _ := unstructured.NestedString(c.Object, "spec", "syncMode")
		status, reason := clusterReady(c)
		last = fmt.Sprintf("syncMode %s, Ready=%s (%s)", sm, status, reason)
		return sm == mode && status == "True"
	})
	if !ok {
		t.Fatalf("Karmada Cluster %s not Ready in %s mode within %s: %s", name, mode, e2eWaitTimeout, last)
	}
}

func clusterReady(u *unstructured.Unstructured) (status, reason string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Ready" {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			return s, r
		}
	}
	return "Unknown", "no Ready condition"
}

// memberReplicas reads spec.replicas of hello in every member that has it.
func (e *e2e) memberReplicas(ctx context.Context, f *spec.Fleet, members []string) (map[string]int32, error) {
	out := map[string]int32{}
	for _, m := range members {
		cfg, err := e.access.For(f).RESTConfig(m)
		if err != nil {
			return nil, err
		}
		kc, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		d, err := kc.AppsV1().Deployments("default").Get(ctx, "hello", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", m, err)
		}
		out[m] = replicasOf(d.Spec.Replicas)
	}
	return out, nil
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// waitSplit waits until the members' hello Deployments have exactly want.
func (e *e2e) waitSplit(t *testing.T, ctx context.Context, f *spec.Fleet, want map[string]int32) {
	t.Helper()
	var last map[string]int32
	var lastErr error
	ok := waitCond(ctx, e2eWaitTimeout, 250*time.Millisecond, func() bool {
		last, lastErr = e.memberReplicas(ctx, f, e2eMembers)
		return lastErr == nil && fmt.Sprint(last) == fmt.Sprint(want)
	})
	if !ok {
		t.Fatalf("hello replicas in the members = %v (err %v), want %v within %s", last, lastErr, want, e2eWaitTimeout)
	}
}

func (e *e2e) meshRoot(t *testing.T) *mesh.Root {
	t.Helper()
	root, err := mesh.LoadRoot(e.store)
	if err != nil || root == nil {
		t.Fatalf("mesh root in the state store: %v (root %v)", err, root)
	}
	for _, name := range []string{mesh.RootKeyFile} {
		fi, err := os.Stat(filepath.Join(e.store.Dir(), name))
		must(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, fi.Mode().Perm())
		}
	}
	return root
}

func (e *e2e) checkMesh(t *testing.T, ctx context.Context, f *spec.Fleet, m string, root *mesh.Root) {
	t.Helper()
	kc := e.kubeClient(t, f, m)
	ns, err := kc.CoreV1().Namespaces().Get(ctx, planner.MeshNamespace, metav1.GetOptions{})
	if err != nil {
		t.Errorf("member %s: namespace %s: %v", m, planner.MeshNamespace, err)
		return
	}
	if got := ns.Labels[mesh.NetworkLabel]; got != e2eNetworks[m] {
		t.Errorf("member %s: %s label %s = %q, want %q", m, planner.MeshNamespace, mesh.NetworkLabel, got, e2eNetworks[m])
	}
	cfg, err := e.access.For(f).RESTConfig(m)
	must(t, err)
	dc, err := dynamic.NewForConfig(cfg)
	must(t, err)
	if _, err := dc.Resource(mesh.GatewayResource).Namespace(planner.MeshNamespace).Get(ctx, mesh.GatewayName, metav1.GetOptions{}); err != nil {
		t.Errorf("member %s: cross-network Gateway: %v", m, err)
	}
	s, err := kc.CoreV1().Secrets(planner.MeshNamespace).Get(ctx, mesh.CACertsSecret, metav1.GetOptions{})
	if err != nil {
		t.Errorf("member %s: %s: %v", m, mesh.CACertsSecret, err)
		return
	}
	inter, secretRoot, err := mesh.ParseCACerts(s.Data)
	if err != nil {
		t.Errorf("member %s: %s: %v", m, mesh.CACertsSecret, err)
		return
	}
	if !secretRoot.Equal(root.Cert) {
		t.Errorf("member %s: %s carries root %s, not the state store's %s", m, mesh.CACertsSecret,
			mesh.CertFingerprint(secretRoot), mesh.CertFingerprint(root.Cert))
	}
	if err := mesh.VerifyIntermediate(inter, root.Cert, time.Now()); err != nil {
		t.Errorf("member %s: intermediate against the store's root: %v", m, err)
	}
	if !contains(inter.Subject.Locality, m) {
		t.Errorf("member %s: intermediate subject %s does not name the member (L=%s)", m, inter.Subject, m)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkRemoteSecret builds a client from the remote secret of x stored in y: it reads what
// istiod needs in x and is refused a write.
func (e *e2e) checkRemoteSecret(t *testing.T, ctx context.Context, f *spec.Fleet, x, y string) {
	t.Helper()
	name := mesh.RemoteSecretName(x)
	s, err := e.kubeClient(t, f, y).CoreV1().Secrets(planner.MeshNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Errorf("%s in %s: %v", name, y, err)
		return
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[x])
	if err != nil {
		t.Errorf("%s in %s: kubeconfig under key %q: %v", name, y, x, err)
		return
	}
	cfg.Timeout = 20 * time.Second
	cfg.WarningHandler = rest.NoWarnings{} // v1 Endpoints is deprecated: istiod still reads it
	kc, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	lists := map[string]func() error{
		"services":  func() error { _, err := kc.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 1}); return err },
		"endpoints": func() error { _, err := kc.CoreV1().Endpoints("").List(ctx, metav1.ListOptions{Limit: 1}); return err },
		"pods":      func() error { _, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1}); return err },
		"nodes":     func() error { _, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1}); return err },
	}
	for what, list := range lists {
		if err := list(); err != nil {
			t.Errorf("with %s from %s: list %s in %s: %v", name, y, what, x, err)
		}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "e2e-remote-write", Namespace: "default"}}
	_, err = kc.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("with %s from %s: creating a ConfigMap in %s returned %v, want 403 Forbidden", name, y, x, err)
	}
}

// ---- phase 3 ----

func (e *e2e) secondPassWritesNothing(t *testing.T) {
	// The counters must be live, or zero writes below would prove nothing.
	if n := len(e.writes.Writes()); n == 0 {
		t.Fatal("the counting transport saw no write during the cold passes: it is not wired into reconcile's clients")
	}
	if n := len(apiWrites(e.lab.LinodeAPI())); n == 0 {
		t.Fatal("the Linode API recorded no write during the cold passes: its request log is not live")
	}
	e.lab.LinodeAPI().ResetRequests()
	e.writes.Reset()
	mark := e.out.Len()
	res, err := e.pass(t, e.load(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Plan.Steps); n != 0 {
		t.Errorf("the second pass planned %d steps, want none:\n%s", n, e.out.From(mark))
	}
	if w := apiWrites(e.lab.LinodeAPI()); len(w) != 0 {
		t.Errorf("the second pass sent %d writes to the Linode API: %v", len(w), w)
	}
	if w := e.writes.Writes(); len(w) != 0 {
		t.Errorf("the second pass sent %d writes to Kubernetes/Karmada: %v", len(w), w)
	}
	if n := e.writes.Reads(); n == 0 {
		t.Error("the second pass read nothing through the counting transport: it observed the world some other way")
	} else {
		t.Logf("the second pass: %d reads through the counting transport, %d Linode API requests, no write", n, len(e.lab.LinodeAPI().Requests()))
	}
}

// ---- phase 4 ----

type daemonPass struct {
	fleet *spec.Fleet
	res   *PassResult
	err   error
	out   string // what the pass printed
}

func (e *e2e) weightsDaemon(t *testing.T) {
	passes := make(chan daemonPass, 16)
	var mu sync.Mutex
	mark := e.out.Len()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{
		Path: e.fleetPath, Reconciler: e.r, Resync: time.Hour, Debounce: 100 * time.Millisecond, Log: e.r.Log,
		Passed: func(f *spec.Fleet, res *PassResult, err error) {
			mu.Lock()
			out := e.out.From(mark)
			mark = e.out.Len()
			mu.Unlock()
			select {
			case passes <- daemonPass{f, res, err, out}:
			case <-ctx.Done(): // the test stopped listening
			}
		},
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(e2ePassTimeout):
			t.Error("the daemon did not stop within a pass timeout of its cancellation")
		}
	})
	next := func(why string, want func(*spec.Fleet) bool) daemonPass {
		t.Helper()
		deadline := time.After(e2ePassTimeout)
		for {
			select {
			case p := <-passes:
				if p.err != nil {
					t.Fatalf("daemon pass after %s failed: %v\n%s", why, p.err, p.out)
				}
				if want(p.fleet) {
					return p
				}
				t.Logf("a daemon pass on the earlier spec ran (%d steps); waiting for the one after %s", len(p.res.Plan.Steps), why)
			case <-deadline:
				t.Fatalf("no daemon pass took %s within %s", why, e2ePassTimeout)
			}
		}
	}
	first := next("the start", func(*spec.Fleet) bool { return true })
	if n := len(first.res.Plan.Steps); n != 0 {
		t.Errorf("the daemon's first pass on a converged fleet planned %d steps:\n%s", n, first.out)
	}

	steps := []struct {
		name     string
		replicas int32
		weights  map[string]int64
		// onlyPolicy: the plan must be exactly one step, the policy update.
		onlyPolicy bool
		// shape is what the split must look like, whatever the tie-breaks.
		shape func(map[string]int32) bool
	}{
		{"replicas 3, weights 1:1:1", 3, map[string]int64{"us": 1, "ap": 1, "eu": 1}, false, splitIs("ap 1 eu 1 us 1")},
		{"replicas 10", 10, map[string]int64{"us": 1, "ap": 1, "eu": 1}, false, func(s map[string]int32) bool {
			// one member 4, the others 3
			var v []int
			for _, n := range s {
				v = append(v, int(n))
			}
			sort.Ints(v)
			return fmt.Sprint(v) == "[3 3 4]"
		}},
		{"weights us:2 ap:1 eu:2", 10, map[string]int64{"us": 2, "ap": 1, "eu": 2}, true, splitIs("ap 2 eu 4 us 4")},
	}
	replicas, weightsNow := int32(10), map[string]int64{"us": 2, "ap": 1, "eu": 2}
	for _, st := range steps {
		t.Run(strings.NewReplacer(" ", "-", ":", "").Replace(st.name), func(t *testing.T) {
			start := time.Now()
			// The manifest first, then fleet.yaml: the fleet's edit is what the daemon watches.
			if st.replicas != replicas {
				e.writeHello(t, st.replicas)
			}
			took := func(f *spec.Fleet) bool {
				return fmt.Sprint(f.Workloads[0].Weights) == fmt.Sprint(st.weights) && manifestReplicas(f) == st.replicas
			}
			var p daemonPass
			if fmt.Sprint(st.weights) != fmt.Sprint(weightsNow) {
				saveByRename(t, e.fleetPath, withWeights(t, e.baseFleet, st.weights))
				p = next(st.name, took)
			} else {
				// Only the manifest changed: fleet.yaml names it, so the daemon must take it.
				select {
				case p = <-passes:
					if p.err != nil || !took(p.fleet) {
						t.Fatalf("the daemon pass after editing only %s did not take it (err %v)\n%s", e.helloPath, p.err, p.out)
					}
				case <-time.After(time.Minute):
					t.Errorf("PRODUCT BUG: editing only the manifest %s (rename-save) made no daemon pass within 1m: "+
						"Daemon.reload compares the sha256 of fleet.yaml alone and Daemon.Run watches only fleet.yaml's "+
						"directory, so a change to a workload's manifests waits for the resync (cmd/reconcile/daemon.go)", e.helloPath)
					// Go on with the checks: touch fleet.yaml (a comment) so the daemon re-reads.
					saveByRename(t, e.fleetPath, withWeights(t, e.baseFleet, st.weights)+"# touched\n")
					p = next(st.name+" (fleet.yaml touched)", took)
				}
			}
			replicas, weightsNow = st.replicas, st.weights
			t.Logf("%s: the daemon's pass took %s:\n%s", st.name, time.Since(start).Round(time.Millisecond), p.out)
			if st.onlyPolicy {
				if n := len(p.res.Plan.Steps); n != 1 || p.res.Plan.Steps[0].Address != "workload/hello/policy" || p.res.Plan.Steps[0].Action != plan.Update {
					t.Errorf("the plan for %s has %d steps, want exactly one: workload/hello/policy update", st.name, n)
				}
			}
			e.checkSplit(t, p, st.replicas, st.weights, st.shape)
		})
	}
}

// checkSplit compares the members' Deployments with what the pass predicted: the split: line
// of the workload/hello/policy step when the plan has one, and planner.Divide with the UID of
// the resource template in Karmada.
func (e *e2e) checkSplit(t *testing.T, p daemonPass, replicas int32, w map[string]int64, shape func(map[string]int32) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWaitTimeout)
	defer cancel()
	dc := e.karmadaDynamic(t)
	tmpl, err := dc.Resource(deploymentGVR).Namespace("default").Get(ctx, "hello", metav1.GetOptions{})
	must(t, err)
	if got, _, _ := unstructured.NestedInt64(tmpl.Object, "spec", "replicas"); int32(got) != replicas {
		t.Errorf("hello in Karmada has %d replicas, want %d (the manifest's)", got, replicas)
	}
	want := planner.Divide(w, replicas, string(tmpl.GetUID()))
	if !shape(want) {
		t.Errorf("planner.Divide(%v, %d, template UID) = %v, not the split this step expects", w, replicas, want)
	}
	printed, hasPrinted := splitFromPlan(p.out)
	if hasPrinted {
		if fmt.Sprint(printed) != fmt.Sprint(want) {
			t.Errorf("PRODUCT BUG: the plan printed split %v, but the %d replicas of the manifest divided by %v give %v "+
				"(planner.Divide with the template's UID): planner/compute.go splitChanges predicts with the replicas "+
				"observed in Karmada even when the same plan's workload/hello/manifests step changes them", printed, replicas, w, want)
		}
	} else {
		t.Logf("the plan printed no split: line (no policy change); predicting with planner.Divide = %v", want)
	}

	var last map[string]int32
	var lastErr error
	ok := waitCond(ctx, e2eWaitTimeout, 250*time.Millisecond, func() bool {
		last, lastErr = e.memberReplicas(ctx, p.fleet, e2eMembers)
		return lastErr == nil && fmt.Sprint(last) == fmt.Sprint(want)
	})
	if !ok {
		msg := fmt.Sprintf("hello replicas in the members = %v (err %v) within %s, want the predicted %v", last, lastErr, e2eWaitTimeout, want)
		if b, err := dc.Resource(bindingGVR).Namespace("default").Get(ctx, weights.BindingName("Deployment", "hello"), metav1.GetOptions{}); err == nil {
			alt := planner.Divide(w, replicas, string(b.GetUID()))
			clusters, _, _ := unstructured.NestedSlice(b.Object, "spec", "clusters")
			msg += fmt.Sprintf("; the ResourceBinding schedules %v; planner.Divide with the binding's UID = %v", clusters, alt)
		}
		t.Error(msg)
	}
}

// splitIs matches a split written as "ap 1 eu 1 us 1" (members sorted).
func splitIs(want string) func(map[string]int32) bool {
	return func(s map[string]int32) bool {
		var parts []string
		for _, m := range sortedMembers(s) {
			parts = append(parts, fmt.Sprintf("%s %d", m, s[m]))
		}
		return strings.Join(parts, " ") == want
	}
}

func sortedMembers(s map[string]int32) []string {
	var out []string
	for m := range s {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

var splitLine = regexp.MustCompile(`(?m)^\s+split: (.*)$`)
var splitPart = regexp.MustCompile(`^([a-z0-9-]+) (\d+)(?: \(was \d+\))?$`)

// splitFromPlan parses the split: change of the workload/hello/policy step in a printed plan.
func splitFromPlan(out string) (map[string]int32, bool) {
	i := strings.Index(out, "workload/hello/policy  (")
	if i < 0 {
		return nil, false
	}
	rest := out[i:]
	if j := strings.Index(rest, "\n  "); j >= 0 { // the next step, if any
		if k := strings.Index(rest[j+1:], "\n  ~ "); k >= 0 {
			rest = rest[:j+1+k]
		}
	}
	m := splitLine.FindStringSubmatch(rest)
	if m == nil {
		return nil, false
	}
	split := map[string]int32{}
	for _, part := range strings.Split(m[1], ", ") {
		pm := splitPart.FindStringSubmatch(part)
		if pm == nil {
			return nil, false
		}
		n, _ := strconv.Atoi(pm[2])
		if n > 0 {
			split[pm[1]] = int32(n)
		}
	}
	return split, true
}

func manifestReplicas(f *spec.Fleet) int32 {
	for _, o := range f.Workloads[0].Objects {
		if o.Kind == "Deployment" && o.Replicas != nil {
			return *o.Replicas
		}
	}
	return -1
}

func (e *e2e) writeHello(t *testing.T, replicas int32) {
	t.Helper()
	data, err := os.ReadFile(e.helloPath)
	must(t, err)
	re := regexp.MustCompile(`(?m)^  replicas: \d+$`)
	if !re.Match(data) {
		t.Fatalf("%s has no replicas line", e.helloPath)
	}
	saveByRename(t, e.helloPath, re.ReplaceAllString(string(data), fmt.Sprintf("  replicas: %d", replicas)))
}

var weightsBlock = regexp.MustCompile(`(?m)^    weights:\n(      [a-z]+: \d+\n)+`)

// withWeights replaces hello's weights in a fleet text (members with no weight are left out).
func withWeights(t *testing.T, fleet string, w map[string]int64) string {
	t.Helper()
	if !weightsBlock.MatchString(fleet) {
		t.Fatal("the fleet has no weights block")
	}
	block := "    weights:\n"
	for _, m := range []string{"us", "ap", "eu"} {
		if v, ok := w[m]; ok {
			block += fmt.Sprintf("      %s: %d\n", m, v)
		}
	}
	return weightsBlock.ReplaceAllLiteralString(fleet, block)
}

// ---- phase 5 ----

func (e *e2e) memberRemovedAndBack(t *testing.T) {
	full := withWeights(t, e.baseFleet, map[string]int64{"us": 2, "ap": 1, "eu": 2})
	const usBlock = "  - name: us\n    region: us-west\n    k8sVersion: \"1.33\"\n    pools:\n      - type: g6-standard-2\n        count: 3\n    network: network2\n"
	if !strings.Contains(full, usBlock) {
		t.Fatal("the fleet has no member block for us; update this test")
	}
	without := withWeights(t, strings.Replace(full, usBlock, "", 1), map[string]int64{"ap": 1, "eu": 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eWaitTimeout)
	defer cancel()

	saveByRename(t, e.fleetPath, without)
	f := e.load(t)
	if _, err := e.pass(t, f); err != nil {
		t.Fatalf("the pass removing us failed: %v", err)
	}
	if names := e.karmadaClusterNames(t); contains(names, "us") {
		t.Errorf("Karmada Clusters after removing us = %v, us still there", names)
	}
	for _, m := range []string{"eu", "ap"} {
		_, err := e.kubeClient(t, f, m).CoreV1().Secrets(planner.MeshNamespace).Get(ctx, mesh.RemoteSecretName("us"), metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s in %s after removing us: %v, want NotFound", mesh.RemoteSecretName("us"), m, err)
		}
	}
	if labels := e.lkeLabels(t); !contains(labels, "us") {
		t.Errorf("LKE clusters after removing us = %v: us was deleted, but prune is off", labels)
	}
	// The cluster stays, but its mesh is torn down: no other member's secret is left in it
	// (its kubeconfig is still in the state store, which is how reconcile reached it).
	for _, m := range []string{"eu", "ap"} {
		_, err := e.kubeClient(t, f, "us").CoreV1().Secrets(planner.MeshNamespace).Get(ctx, mesh.RemoteSecretName(m), metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s in us after removing us: %v, want NotFound", mesh.RemoteSecretName(m), err)
		}
	}
	e.passPlansNothing(t, "after removing us")

	saveByRename(t, e.fleetPath, full)
	f = e.load(t)
	if _, err := e.pass(t, f); err != nil {
		t.Fatalf("the pass bringing us back failed: %v", err)
	}
	e.waitMemberReady(t, ctx, "us", "Push")
	for _, m := range []string{"eu", "ap"} {
		e.checkRemoteSecret(t, ctx, f, "us", m)
	}
	e.checkRemoteSecret(t, ctx, f, "eu", "us")
	e.waitSplit(t, ctx, f, map[string]int32{"eu": 4, "ap": 2, "us": 4})
	e.passPlansNothing(t, "after bringing us back")
}

// regionRebuilt deletes member us's LKE cluster behind the fleet's back, with a Cluster
// someone joined to the fleet's Karmada by hand alongside (issue 11). One pass recreates us,
// replaces its stale Karmada Cluster, re-joins and re-meshes it and waits for Ready; the next
// plans nothing. The hand-joined Cluster is never touched.
func (e *e2e) regionRebuilt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*e2eWaitTimeout)
	defer cancel()
	f := e.load(t)
	dc := e.karmadaDynamic(t)

	handmade := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
		"metadata": map[string]any{"name": "handmade"},
		"spec":     map[string]any{"syncMode": "Push", "apiEndpoint": "https://127.0.0.1:1", "id": "someone-elses-cluster"},
	}}
	created, err := dc.Resource(karmadaClusterGV).Create(ctx, handmade, metav1.CreateOptions{})
	must(t, err)
	t.Cleanup(func() {
		_ = dc.Resource(karmadaClusterGV).Delete(context.Background(), "handmade", metav1.DeleteOptions{})
	})

	old, err := dc.Resource(karmadaClusterGV).Get(ctx, "us", metav1.GetOptions{})
	must(t, err)
	oldID, _, _ := unstructured.NestedString(old.Object, "spec", "id")
	clusters, err := e.linode.ListLKEClusters(ctx, nil)
	must(t, err)
	oldLKE := 0
	for _, c := range clusters {
		if c.Label == "us" {
			oldLKE = c.ID
		}
	}
	if oldLKE == 0 {
		t.Fatal("no LKE cluster us to delete")
	}
	must(t, e.linode.DeleteLKECluster(ctx, oldLKE))
	if !waitCond(ctx, time.Minute, 250*time.Millisecond, func() bool {
		_, err := e.linode.GetLKECluster(ctx, oldLKE)
		return err != nil
	}) {
		t.Fatal("the deleted LKE cluster is still served")
	}

	mark := e.out.Len()
	res, err := e.pass(t, f)
	if err != nil {
		t.Fatalf("the pass after us was deleted failed: %v\n%s", err, e.out.From(mark))
	}
	join := stepOfPlan(res, "member/us/join")
	if join == nil || join.Action != plan.Replace || join.Payload.Join.Replaces != oldID {
		t.Fatalf("want -/+ member/us/join replacing the Cluster of %s, got %+v", oldID, join)
	}
	for _, s := range res.Plan.Steps {
		if s.Cluster == "handmade" || strings.Contains(s.Address, "handmade") {
			t.Errorf("the hand-joined Cluster was planned for: %s", s.Address)
		}
	}
	e.waitMemberReady(t, ctx, "us", "Push")
	now, err := dc.Resource(karmadaClusterGV).Get(ctx, "us", metav1.GetOptions{})
	must(t, err)
	if id, _, _ := unstructured.NestedString(now.Object, "spec", "id"); id == oldID || id == "" {
		t.Errorf("Karmada's Cluster us still stands for the deleted cluster (id %s)", id)
	}
	for _, m := range []string{"eu", "ap"} {
		e.checkRemoteSecret(t, ctx, f, "us", m)
		e.checkRemoteSecret(t, ctx, f, m, "us")
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What Karmada holds for us, to tell a scheduling problem from a propagation one.
		if b, err := dc.Resource(bindingGVR).Namespace("default").List(context.Background(), metav1.ListOptions{}); err == nil {
			for _, it := range b.Items {
				cl, _, _ := unstructured.NestedSlice(it.Object, "spec", "clusters")
				t.Logf("binding %s: clusters %v", it.GetName(), cl)
			}
		}
		works := schema.GroupVersionResource{Group: "work.karmada.io", Version: "v1alpha1", Resource: "works"}
		if w, err := dc.Resource(works).Namespace("karmada-es-us").List(context.Background(), metav1.ListOptions{}); err == nil {
			for _, it := range w.Items {
				conds, _, _ := unstructured.NestedSlice(it.Object, "status", "conditions")
				t.Logf("work karmada-es-us/%s: deleting=%v conditions %v", it.GetName(), it.GetDeletionTimestamp() != nil, conds)
			}
		} else {
			t.Logf("works in karmada-es-us: %v", err)
		}
	})
	e.waitSplit(t, ctx, f, map[string]int32{"eu": 4, "ap": 2, "us": 4})
	e.passPlansNothing(t, "after us was rebuilt")

	still, err := dc.Resource(karmadaClusterGV).Get(ctx, "handmade", metav1.GetOptions{})
	if err != nil || still.GetUID() != created.GetUID() || still.GetDeletionTimestamp() != nil {
		t.Errorf("the hand-joined Cluster was touched: %v %v", err, still)
	}
	must(t, dc.Resource(karmadaClusterGV).Delete(ctx, "handmade", metav1.DeleteOptions{}))
}

// fourthMember adds a member `sa` to the converged fleet: a new LKE cluster joined to Karmada
// and meshed with the three others, which takes exactly 6 new remote secrets (3 of the others'
// in sa, sa's in each of the 3).
func (e *e2e) fourthMember(t *testing.T) {
	full := withWeights(t, e.baseFleet, map[string]int64{"us": 2, "ap": 1, "eu": 2})
	const saBlock = "  - name: sa\n    region: br-gru\n    k8sVersion: \"1.33\"\n    pools:\n      - type: g6-standard-2\n        count: 1\n    network: network4\n"
	i := strings.Index(full, "\nmesh:")
	if i < 0 {
		t.Fatal("the fleet has no mesh section after its members; update this test")
	}
	withSA := withWeights(t, full[:i+1]+saBlock+full[i+1:], map[string]int64{"us": 2, "ap": 1, "eu": 2, "sa": 1})
	saveByRename(t, e.fleetPath, withSA)
	f := e.load(t)
	res, err := e.pass(t, f)
	if err != nil {
		t.Fatalf("the pass adding sa failed: %v", err)
	}
	var secrets []string
	for _, s := range res.Plan.Steps {
		if s.Kind == plan.KindRemoteSecret {
			if s.Action != plan.Create {
				t.Errorf("adding a member planned %s %s; only creates were expected", s.Action, s.Address)
			}
			secrets = append(secrets, s.Address)
		}
	}
	if len(secrets) != 6 {
		t.Errorf("adding a fourth member planned %d remote secrets, want 6: %v", len(secrets), secrets)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eWaitTimeout)
	defer cancel()
	e.waitMemberReady(t, ctx, "sa", "Push")
	for _, m := range []string{"eu", "ap", "us"} {
		e.checkRemoteSecret(t, ctx, f, "sa", m)
		e.checkRemoteSecret(t, ctx, f, m, "sa")
	}
	e.passPlansNothing(t, "after adding sa")
}

func (e *e2e) passPlansNothing(t *testing.T, when string) {
	t.Helper()
	mark := e.out.Len()
	res, err := e.pass(t, e.load(t))
	if err != nil {
		t.Fatalf("pass %s: %v", when, err)
	}
	if n := len(res.Plan.Steps); n != 0 {
		t.Errorf("the pass %s planned %d steps, want none:\n%s", when, n, e.out.From(mark))
	}
}

// ---- reading the lab ----

func (e *e2e) kubeClient(t *testing.T, f *spec.Fleet, name string) kubernetes.Interface {
	t.Helper()
	cfg, err := e.access.For(f).RESTConfig(name)
	must(t, err)
	kc, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	return kc
}

func (e *e2e) karmadaDynamic(t *testing.T) dynamic.Interface {
	t.Helper()
	cfg, err := e.access.KarmadaRESTConfig()
	must(t, err)
	dc, err := dynamic.NewForConfig(cfg)
	must(t, err)
	return dc
}

func (e *e2e) karmadaClusterNames(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := e.karmadaDynamic(t).Resource(karmadaClusterGV).List(ctx, metav1.ListOptions{})
	must(t, err)
	var names []string
	for _, c := range list.Items {
		names = append(names, c.GetName())
	}
	sort.Strings(names)
	return names
}

func (e *e2e) lkeLabels(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clusters, err := e.linode.ListLKEClusters(ctx, nil)
	must(t, err)
	var labels []string
	for _, c := range clusters {
		labels = append(labels, c.Label)
	}
	sort.Strings(labels)
	return labels
}

// waitCond polls cond every interval until it holds, ctx is done or timeout passes.
func waitCond(ctx context.Context, timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}

// ---- diagnostics ----

// dumpLogs prints the tail of reconcile's output and log and of every log the lab wrote.
func (e *e2e) dumpLogs(t *testing.T) {
	t.Logf("---- reconcile output (tail) ----\n%s", tail(e.out.String(), 60))
	if data, err := os.ReadFile(e.logPath); err == nil {
		t.Logf("---- reconcile log (tail) ----\n%s", tail(string(data), 60))
	}
	_ = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") || path == e.logPath {
			return nil
		}
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			rel, _ := filepath.Rel(e.dir, path)
			t.Logf("---- %s (tail) ----\n%s", rel, tail(string(data), 15))
		}
		return nil
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logRSS logs the resident memory of the lab's processes (this process's children).
func (e *e2e) logRSS(t *testing.T) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := strconv.Itoa(os.Getpid())
	byName := map[string]int64{}
	count := map[string]int{}
	var total int64
	for _, ent := range entries {
		if _, err := strconv.Atoi(ent.Name()); err != nil {
			continue
		}
		f, err := os.Open(filepath.Join("/proc", ent.Name(), "status"))
		if err != nil {
			continue
		}
		var name, ppid string
		var rss int64
		for sc := bufio.NewScanner(f); sc.Scan(); {
			k, v, _ := strings.Cut(sc.Text(), ":")
			v = strings.TrimSpace(v)
			switch k {
			case "Name":
				name = v
			case "PPid":
				ppid = v
			case "VmRSS":
				rss, _ = strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			}
		}
		f.Close()
		if ppid == self {
			byName[name] += rss
			count[name]++
			total += rss
		}
	}
	var parts []string
	for name, kb := range byName {
		parts = append(parts, fmt.Sprintf("%s x%d %d MiB", name, count[name], kb/1024))
	}
	sort.Strings(parts)
	t.Logf("lab processes RSS: %d MiB total (%s)", total/1024, strings.Join(parts, ", "))
}
