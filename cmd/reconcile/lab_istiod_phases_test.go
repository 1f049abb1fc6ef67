package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// The phases TestLabIstiod runs once every istiod lists the other members synced (issue 12,
// items 8 and 6): a token rotation under istiod's watch, then a member joining and leaving.
const (
	// meshSampleEvery is how often the rotation's poller reads every istiod's /debug/clusterz.
	meshSampleEvery = 100 * time.Millisecond
	// rotationSettleTimeout bounds the wait, after the rotating pass, for every remote secret
	// to carry the new tokens and every istiod to have rebuilt its remote clusters from them.
	rotationSettleTimeout = 2 * time.Minute
	// rotationPhaseTimeout bounds the whole rotation phase (its pass included); the poller
	// never samples longer.
	rotationPhaseTimeout = e2ePassTimeout + 4*time.Minute
	// membershipSyncedTimeout bounds the wait, after a pass that adds or removes a member,
	// for every istiod to list exactly the members, synced.
	membershipSyncedTimeout = 3 * time.Minute
)

// istiodMember is a mesh member's lab cluster: its directory (istiod's files), an admin
// client and config.
type istiodMember struct {
	name   string
	dir    string
	cfg    *rest.Config
	client kubernetes.Interface
}

// istiodMembers maps each of names to the lab cluster that serves its API server (reached as
// reconcile reaches it, through its state store).
func istiodMembers(t *testing.T, l *labworld.Lab, store *state.Store, names []string) []istiodMember {
	t.Helper()
	var ms []istiodMember
	for _, m := range names {
		cfg, err := kube.Access{Store: store}.RESTConfig(m)
		must(t, err)
		var lc *labworld.LabCluster
		for _, c := range l.Clusters() {
			if c.RESTConfig.Host == cfg.Host {
				lc = &c
			}
		}
		if lc == nil {
			t.Fatalf("member %s (%s) is no lab cluster", m, cfg.Host)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		must(t, err)
		ms = append(ms, istiodMember{name: m, dir: lc.Dir, cfg: cfg, client: cs})
	}
	return ms
}

// meshSample is one reading of every member's istiod /debug/clusterz.
type meshSample struct {
	at time.Time
	// synced counts the (member, other member) pairs whose istiod lists the other member from
	// a remote secret as synced; want is all of them.
	synced, want int
	// notSynced says, for each other pair, what istiod said ("eu: ap syncing", "eu: ap
	// missing", "eu: no istiod ..."), sorted.
	notSynced []string
	// foreign lists, per member, the remote clusters its istiod lists that are not members.
	foreign map[string][]string
	// raw is each member's /debug/clusterz (or why there is none).
	raw map[string]string
	// registryGaps, when the rotation's poller watches probe Services, lists each istiod that
	// lacks one ("eu lacks rotation-probe-ap.default.svc.cluster.local"), sorted.
	registryGaps []string
	// oldTokens lists the members whose old istio-reader token Secret still exists (rotation).
	oldTokens []string
}

var meshHTTP = &http.Client{Timeout: 5 * time.Second}

// sampleMesh reads every member's istiod /debug/clusterz once.
func sampleMesh(ctx context.Context, ms []istiodMember) meshSample {
	s := meshSample{at: time.Now(), want: len(ms) * (len(ms) - 1), foreign: map[string][]string{}, raw: map[string]string{}}
	isMember := map[string]bool{}
	for _, m := range ms {
		isMember[m.name] = true
	}
	for _, m := range ms {
		info, err := labworld.ReadIstiod(m.dir)
		if err != nil {
			s.raw[m.name] = "no istiod: " + err.Error()
			s.notSynced = append(s.notSynced, m.name+": no istiod")
			continue
		}
		entries, err := labworld.ReadClusterz(ctx, meshHTTP, info.Monitoring)
		if err != nil {
			s.raw[m.name] = err.Error()
			s.notSynced = append(s.notSynced, m.name+": clusterz unreadable: "+err.Error())
			continue
		}
		data, _ := json.Marshal(entries)
		s.raw[m.name] = string(data)
		status := map[string]string{}
		for _, e := range entries {
			if e.SecretName == "" {
				continue // its own cluster
			}
			status[e.ID] = e.SyncStatus
			if !isMember[e.ID] {
				s.foreign[m.name] = append(s.foreign[m.name], e.ID+" "+e.SyncStatus)
			}
		}
		for _, x := range ms {
			if x.name == m.name {
				continue
			}
			switch st, ok := status[x.name]; {
			case st == "synced":
				s.synced++
			case !ok:
				s.notSynced = append(s.notSynced, m.name+": "+x.name+" missing")
			default:
				s.notSynced = append(s.notSynced, m.name+": "+x.name+" "+st)
			}
		}
	}
	sort.Strings(s.notSynced)
	return s
}

// meshPoller samples every member's /debug/clusterz every meshSampleEvery until stopped (or
// its context ends).
type meshPoller struct {
	mu      sync.Mutex
	samples []meshSample
	cancel  context.CancelFunc
	done    chan struct{}
}

// startMeshPoller starts sampling; hook, if set, adds to each sample.
func startMeshPoller(ctx context.Context, ms []istiodMember, hook func(context.Context, *meshSample)) *meshPoller {
	ctx, cancel := context.WithCancel(ctx)
	p := &meshPoller{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(meshSampleEvery)
		defer tick.Stop()
		for {
			s := sampleMesh(ctx, ms)
			if hook != nil {
				hook(ctx, &s)
			}
			if ctx.Err() != nil {
				return // a reading cut off by the stop is no sample
			}
			p.mu.Lock()
			p.samples = append(p.samples, s)
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// last is the latest sample (ok false before the first).
func (p *meshPoller) last() (meshSample, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.samples) == 0 {
		return meshSample{}, false
	}
	return p.samples[len(p.samples)-1], true
}

// stop ends the sampling and returns every sample.
func (p *meshPoller) stop() []meshSample {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.samples
}

// meshWindow is a run of consecutive samples with fewer than all pairs synced.
type meshWindow struct {
	from, to time.Time // the first bad sample, the first good one after it (or the last sample)
	samples  int
	closed   bool // a good sample ended it
	what     []string
}

func (w meshWindow) length() time.Duration { return w.to.Sub(w.from) }

// unsyncedWindows finds the runs of samples with fewer than all pairs synced.
func unsyncedWindows(samples []meshSample) []meshWindow {
	var out []meshWindow
	var cur *meshWindow
	for _, s := range samples {
		if s.synced == s.want {
			if cur != nil {
				cur.to, cur.closed = s.at, true
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur == nil {
			cur = &meshWindow{from: s.at}
		}
		cur.samples++
		cur.to = s.at
		for _, w := range s.notSynced {
			if !slices.Contains(cur.what, w) {
				cur.what = append(cur.what, w)
			}
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// sampleGaps are the largest and mean time between consecutive samples.
func sampleGaps(samples []meshSample) (maxGap, mean time.Duration) {
	if len(samples) < 2 {
		return 0, 0
	}
	for i := 1; i < len(samples); i++ {
		maxGap = max(maxGap, samples[i].at.Sub(samples[i-1].at))
	}
	return maxGap, samples[len(samples)-1].at.Sub(samples[0].at) / time.Duration(len(samples)-1)
}

// istiodLog is istiod's log in a member's lab cluster.
func istiodLog(m istiodMember) string {
	return readFile(filepath.Join(m.dir, labworld.IstiodDirName, "istiod.log"))
}

// istiodPhases is what TestLabIstiod's later phases share.
type istiodPhases struct {
	lf        *labFleet
	fleet     string // metadata.name
	fleetPath string
	stateDir  string
	store     *state.Store
	members   []istiodMember
}

// pass runs `reconcile` with args on the fleet; its exit code, stdout, stderr, and when it
// ended.
func (p *istiodPhases) pass(ctx context.Context, args ...string) (int, string, string, time.Time) {
	var stdout, stderr bytes.Buffer
	code := run(ctx, append(args, "--state-dir", p.stateDir, "-f", p.fleetPath), &stdout, &stderr)
	return code, stdout.String(), stderr.String(), time.Now()
}

// readerToken is member m's current istio-reader token Secret.
func (p *istiodPhases) readerToken(t *testing.T, ctx context.Context, m istiodMember) *corev1.Secret {
	t.Helper()
	toks, err := kube.ListTokens(ctx, m.client, mesh.MeshNamespace, mesh.ReaderTokenSecret, mesh.ReaderServiceAcct, p.fleet)
	must(t, err)
	cur := toks.Current()
	if cur == nil {
		t.Fatalf("%s: no current istio-reader token", m.name)
	}
	return cur
}

// remoteSecretToken is the token of the kubeconfig for x in n's remote secret for x.
func remoteSecretToken(ctx context.Context, n, x istiodMember) (string, error) {
	s, err := n.client.CoreV1().Secrets(mesh.MeshNamespace).Get(ctx, mesh.RemoteSecretName(x.name), metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[x.name])
	if err != nil {
		return "", err
	}
	return cfg.BearerToken, nil
}

// rotationUnderWatch (item 8): while a poller reads every istiod's /debug/clusterz every
// 100 ms, one `--once --rotate-credentials` pass replaces every istio-reader token (new token
// Secret first, every remote secret rewritten from it, then the old Secret deleted). The
// sampling goes on until every remote secret carries the new token and every istiod has
// rebuilt the remote cluster from it, and synced it.
//
// How istiod takes a changed remote secret (Istio's pkg/kube/multicluster: addRemoteConfig,
// ClusterStore.Swap, Cluster.Run, PendingClusterSwap): for a changed kubeconfig it logs
// "Update cluster", builds a new cluster with the new credentials and puts it in the store at
// once, so /debug/clusterz lists the new one, "syncing"; the previous cluster, if it was
// synced, keeps serving (ClusterStore.AllReady hands it out while the new one syncs) until the
// new one synced, then it is stopped ("stopping previous cluster <id> after new cluster
// synced"). A remote secret that is deleted instead ("Deleting cluster_id=...") drops the
// cluster outright.
//
// So each sample also reads every istiod's /debug/registryz for a probe Service made in every
// member before the rotation: a remote cluster istiod stopped serving would take its probe out
// of the registry. Asserted, for every sample: no pair missing, timed out, closed or
// unreadable; no probe missing from any registry; a pair shown "syncing" only while its
// istiod rebuilds that remote cluster after an update (the swap its log records). Measured and
// logged: the samples, each window with fewer than all pairs "synced" (which pairs, when,
// how long), each istiod's swap times, when the old token Secrets went. Afterwards, with every
// old token refused by its API server (401), the rebuilt remote clusters work: a Service made
// in each member then reaches every other istiod's registry, which only a live watch with the
// new token can bring, and every istiod lists all pairs synced.
func (p *istiodPhases) rotationUnderWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), rotationPhaseTimeout)
	defer cancel()
	ms := p.members
	before := map[string]*corev1.Secret{}
	logStart := map[string]int{}
	for _, m := range ms {
		before[m.name] = p.readerToken(t, ctx, m)
		logStart[m.name] = len(istiodLog(m))
	}
	since := func(m istiodMember) string {
		log := istiodLog(m)
		if len(log) < logStart[m.name] {
			return log // a new istiod's log
		}
		return log[logStart[m.name]:]
	}

	// Probe Services, one in each member, that every istiod must know all along.
	probes := p.makeProbes(t, ctx, "rotation-probe")
	var gaps []string
	if !waitCond(ctx, time.Minute, 250*time.Millisecond, func() bool { gaps = registryGaps(ctx, ms, probes); return len(gaps) == 0 }) {
		t.Fatalf("the probe Services did not reach every istiod before the rotation: %s", strings.Join(gaps, "; "))
	}

	poller := startMeshPoller(ctx, ms, func(ctx context.Context, s *meshSample) {
		s.registryGaps = registryGaps(ctx, ms, probes)
		for _, m := range ms {
			if _, err := m.client.CoreV1().Secrets(mesh.MeshNamespace).Get(ctx, before[m.name].Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				s.oldTokens = append(s.oldTokens, m.name)
			}
		}
	})
	stopped := false
	defer func() {
		if !stopped {
			poller.stop()
		}
	}()
	// The first sample is the state the rotation starts from.
	if !waitCond(ctx, 30*time.Second, 20*time.Millisecond, func() bool { _, ok := poller.last(); return ok }) {
		t.Fatal("the poller took no sample")
	}
	if s, _ := poller.last(); s.synced != s.want || len(s.registryGaps) > 0 {
		t.Fatalf("before the rotation: %d of %d synced (%s), registry gaps %v", s.synced, s.want, strings.Join(s.notSynced, ", "), s.registryGaps)
	}
	passStart := time.Now()
	code, stdout, stderr, passEnd := p.pass(ctx, "--once", "--rotate-credentials")
	if code != 0 {
		t.Fatalf("--once --rotate-credentials: exit %d\nstdout:\n%s\nstderr:\n%s", code, tail(stdout, 60), tail(stderr, 60))
	}
	t.Logf("rotation: the --rotate-credentials pass took %s", passEnd.Sub(passStart).Round(time.Millisecond))
	for _, m := range ms {
		for _, want := range []string{"-/+ member/" + m.name + "/mesh/reader-token", "- member/" + m.name + "/mesh/reader-token/retire"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("the rotation's plan lacks %q:\n%s", want, tail(stdout, 80))
			}
		}
	}

	// Until every remote secret carries the new token and every istiod rebuilt its remote
	// clusters from them, and they synced.
	after := map[string]*corev1.Secret{}
	for _, m := range ms {
		after[m.name] = p.readerToken(t, ctx, m)
		if after[m.name].Name == before[m.name].Name {
			t.Fatalf("%s: the istio-reader token Secret is still %s", m.name, before[m.name].Name)
		}
	}
	var pending []string
	settled := waitCond(ctx, rotationSettleTimeout, 250*time.Millisecond, func() bool {
		pending = nil
		for _, n := range ms {
			log := since(n)
			for _, x := range ms {
				if x.name == n.name {
					continue
				}
				tok, err := remoteSecretToken(ctx, n, x)
				switch {
				case err != nil:
					pending = append(pending, fmt.Sprintf("%s's remote secret for %s: %v", n.name, x.name, err))
				case tok != string(after[x.name].Data[corev1.ServiceAccountTokenKey]):
					pending = append(pending, fmt.Sprintf("%s's remote secret for %s: not the new token", n.name, x.name))
				case !strings.Contains(log, "stopping previous cluster "+x.name+" after new cluster synced"):
					pending = append(pending, fmt.Sprintf("%s's istiod: no rebuilt cluster %s synced yet", n.name, x.name))
				}
			}
		}
		s, ok := poller.last()
		if ok && s.synced != s.want {
			pending = append(pending, "clusterz: "+strings.Join(s.notSynced, ", "))
		}
		return len(pending) == 0
	})
	settledAt := time.Now()
	samples := poller.stop()
	stopped = true
	if !settled {
		for _, m := range ms {
			t.Logf("%s istiod log since the rotation (tail):\n%s", m.name, tail(since(m), 30))
		}
		t.Fatalf("the rotation did not settle within %s of the pass: %s", rotationSettleTimeout, strings.Join(pending, "; "))
	}
	t.Logf("rotation: every remote secret holds the new token and every istiod rebuilt and synced its remote clusters %s after the pass ended",
		settledAt.Sub(passEnd).Round(time.Millisecond))

	// Each istiod's own account: per remote, when it began the update and when the rebuilt
	// cluster synced and the previous one stopped.
	rel := func(at time.Time) string {
		if at.IsZero() {
			return "?"
		}
		return at.Sub(passStart).Round(time.Millisecond).String()
	}
	// When each old token Secret was first seen gone (a lower bound of how long a previous
	// cluster ran on a deleted token: the delete came at most one sample earlier).
	goneAt := map[string]time.Time{}
	for _, m := range ms {
		for _, s := range samples {
			if !slices.Contains(s.oldTokens, m.name) {
				goneAt[m.name] = s.at
				t.Logf("rotation: %s's old istio-reader token Secret first seen gone at %s after the pass began", m.name, rel(s.at))
				break
			}
		}
	}
	rebuilt := map[string][2]time.Time{} // "n: x": istiod n's update of x, and its end
	var longest, onDeleted time.Duration
	for _, n := range ms {
		log := since(n)
		for _, x := range ms {
			if x.name == n.name {
				continue
			}
			upd, updLine := istiodEvent(log, "Update cluster", mesh.RemoteSecretName(x.name))
			done, _ := istiodEvent(log, "stopping previous cluster "+x.name+" after new cluster synced")
			if updLine == "" {
				t.Errorf("%s's istiod logged no update of cluster %s since the rotation:\n%s", n.name, x.name, tail(log, 20))
				continue
			}
			rebuilt[n.name+": "+x.name] = [2]time.Time{upd, done}
			swap := done.Sub(upd)
			longest = max(longest, swap)
			note := ""
			if g, ok := goneAt[x.name]; ok && done.After(g) {
				onDeleted = max(onDeleted, done.Sub(g))
				note = fmt.Sprintf("; its previous cluster ran at least %s on %s's deleted token", done.Sub(g).Round(time.Millisecond), x.name)
			}
			t.Logf("rotation: %s's istiod: update of %s at %s after the pass began, rebuilt cluster synced and previous stopped at %s (%s)%s",
				n.name, x.name, rel(upd), rel(done), swap.Round(time.Millisecond), note)
		}
		if c := strings.Count(log, "Deleting cluster_id="); c > 0 {
			t.Errorf("%s's istiod deleted %d remote clusters during the rotation (an update must rebuild, not delete):\n%s", n.name, c, tail(log, 30))
		}
		if c := strings.Count(log, "Unauthorized"); c > 0 {
			t.Logf("rotation: %s's istiod logged %d lines with Unauthorized since the rotation (a previous cluster whose token was deleted before it stopped):\n%s",
				n.name, c, tail(grepLines(log, "Unauthorized"), 5))
		}
	}
	t.Logf("rotation: longest istiod swap (update logged to rebuilt cluster synced): %s; longest a previous cluster ran on a deleted token: at least %s",
		longest.Round(time.Millisecond), onDeleted.Round(time.Millisecond))

	// What the poller saw.
	maxGap, meanGap := sampleGaps(samples)
	windows := unsyncedWindows(samples)
	var worst meshWindow
	unsynced, badSamples := 0, 0
	for _, w := range windows {
		unsynced += w.samples
		if w.length() > worst.length() || worst.samples == 0 {
			worst = w
		}
	}
	for _, s := range samples {
		var bad []string
		for _, ns := range s.notSynced {
			// A pair "syncing" while its istiod rebuilds it after the update (per its log; a
			// sample's time is taken before its reads, which take well under 200 ms): the
			// previous cluster serves meanwhile (the registry check says whether it did).
			if pair, ok := strings.CutSuffix(ns, " syncing"); ok {
				if w, ok := rebuilt[pair]; ok && !s.at.Before(w[0].Add(-200*time.Millisecond)) && !s.at.After(w[1]) {
					continue
				}
			}
			bad = append(bad, ns)
		}
		bad = append(bad, s.registryGaps...)
		if len(bad) > 0 {
			badSamples++
			t.Errorf("rotation: the sample at %s after the pass began: %s", rel(s.at), strings.Join(bad, ", "))
		}
	}
	t.Logf("rotation: %d samples of %d istiods' /debug/clusterz and /debug/registryz over %s (every %s on average, largest gap %s); "+
		"%d with fewer than %d of %d pairs synced, in %d windows; %d with a pair missing, timed out, closed or unreadable, "+
		"or a probe Service missing from a registry",
		len(samples), len(ms), samples[len(samples)-1].at.Sub(samples[0].at).Round(time.Millisecond), meanGap.Round(time.Millisecond),
		maxGap.Round(time.Millisecond), unsynced, samples[0].want, samples[0].want, len(windows), badSamples)
	if len(windows) == 0 {
		t.Logf("rotation: worst unsynced window: none (every sample %d of %d synced)", samples[0].want, samples[0].want)
	}
	for _, w := range windows {
		t.Logf("rotation: unsynced window of %d samples, from %s to %s after the pass began (%s%s): %s",
			w.samples, rel(w.from), rel(w.to), w.length().Round(time.Millisecond),
			map[bool]string{true: "", false: ", still open at the last sample"}[w.closed], strings.Join(w.what, ", "))
	}
	if len(windows) > 0 {
		t.Logf("rotation: worst unsynced window %s (%d samples), the probe Services in every registry throughout; the pass's steps:\n%s",
			worst.length().Round(time.Millisecond), worst.samples, grepLines(stdout, ": starting", ": done after"))
	}

	// The old tokens are refused now, and the rebuilt remote clusters watch with the new ones: a
	// Service made in each member now reaches every other member's istiod.
	for _, m := range ms {
		var code int
		if !waitCond(ctx, rotateWaitTimeout, 250*time.Millisecond, func() bool {
			code = whoami(ctx, m.cfg, before[m.name].Data[corev1.ServiceAccountTokenKey])
			return code == 401
		}) {
			t.Errorf("%s: the old istio-reader token is still taken (HTTP %d), want 401", m.name, code)
		}
	}
	oldRefused := time.Now()
	fresh := p.makeProbes(t, ctx, "rotation-after")
	if !waitCond(ctx, time.Minute, 250*time.Millisecond, func() bool { gaps = registryGaps(ctx, ms, fresh); return len(gaps) == 0 }) {
		t.Errorf("after the old tokens were refused, the Services made in each member did not reach every istiod: %s", strings.Join(gaps, "; "))
	} else {
		t.Logf("rotation: with the old tokens refused (401), a Service made in each member reached every istiod's registry %s later",
			time.Since(oldRefused).Round(time.Millisecond))
	}
	if s := sampleMesh(ctx, ms); s.synced != s.want {
		t.Errorf("after the rotation, %d of %d remote clusters synced: %s", s.synced, s.want, strings.Join(s.notSynced, ", "))
	}
}

// makeProbes makes a Service <prefix>-<member> in default of every member (deleted when the
// test ends) and returns their host names.
func (p *istiodPhases) makeProbes(t *testing.T, ctx context.Context, prefix string) []string {
	t.Helper()
	var hosts []string
	for _, m := range p.members {
		name := prefix + "-" + m.name
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		_, err := m.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		must(t, err)
		t.Cleanup(func() {
			_ = m.client.CoreV1().Services("default").Delete(context.Background(), name, metav1.DeleteOptions{})
		})
		hosts = append(hosts, name+".default.svc.cluster.local")
	}
	return hosts
}

// grepLines are the lines of s holding any of parts.
func grepLines(s string, parts ...string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, p := range parts {
			if strings.Contains(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// registryHosts are the hostnames of the services member m's istiod knows (/debug/registryz).
func registryHosts(ctx context.Context, m istiodMember) (map[string]bool, error) {
	info, err := labworld.ReadIstiod(m.dir)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+info.Monitoring+"/debug/registryz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := meshHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var services []struct {
		Hostname string `json:"hostname"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&services); err != nil {
		return nil, fmt.Errorf("registryz: HTTP %d: %w", resp.StatusCode, err)
	}
	out := map[string]bool{}
	for _, s := range services {
		out[s.Hostname] = true
	}
	return out, nil
}

// registryGaps lists, for every member's istiod, the hosts it does not know (or why its
// registry could not be read), sorted.
func registryGaps(ctx context.Context, ms []istiodMember, hosts []string) []string {
	var out []string
	for _, n := range ms {
		known, err := registryHosts(ctx, n)
		if err != nil {
			out = append(out, n.name+": "+err.Error())
			continue
		}
		for _, h := range hosts {
			if !known[h] {
				out = append(out, n.name+" lacks "+h)
			}
		}
	}
	sort.Strings(out)
	return out
}

// istiodEvent is the time of the first line of log (istiod's, each line beginning with an
// RFC 3339 time) holding every one of parts; zero if none does.
func istiodEvent(log string, parts ...string) (time.Time, string) {
	for _, line := range strings.Split(log, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if !ok {
			continue
		}
		if f := strings.Fields(line); len(f) > 0 {
			if at, err := time.Parse(time.RFC3339Nano, f[0]); err == nil {
				return at, line
			}
		}
		return time.Time{}, line
	}
	return time.Time{}, ""
}

// membershipChanges (item 6): a fourth member, sa (ap-southeast, network4), joins the fleet;
// after one `--once`, every istiod lists every other member synced, 12 of 12. Then sa leaves
// fleet.yaml (safety.prune is off: its LKE cluster stays, its membership and mesh objects go);
// after one `--once`, the three istiods list each other, 6 of 6, none lists sa any more, and
// sa's istiod is stopped (its Deployment is gone with its mesh). Both times are measured from
// the end of the pass.
func (p *istiodPhases) membershipChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2ePassTimeout+2*membershipSyncedTimeout)
	defer cancel()
	original, err := os.ReadFile(p.fleetPath)
	must(t, err)
	const added = "sa"
	line := fmt.Sprintf("  - {name: %s, region: ap-southeast, k8sVersion: \"1.33\", pools: [{type: g6-standard-2, count: 1}], network: network%d}\n",
		added, len(p.members)+1)
	// The new member goes last in the members list: before the workloads, if any follow it.
	withAdded := append(slices.Clone(original), line...)
	if i := bytes.Index(original, []byte("\nworkloads:")); i >= 0 {
		withAdded = slices.Concat(original[:i+1], []byte(line), original[i+1:])
	}
	must(t, os.WriteFile(p.fleetPath, withAdded, 0o644))
	defer func() { _ = os.WriteFile(p.fleetPath, original, 0o644) }()
	f, err := spec.Load(p.fleetPath)
	must(t, err)
	if len(f.Members) != len(p.members)+1 || f.Members[len(f.Members)-1].Name != added {
		t.Fatalf("the fleet with %s added has members %v: its members list must come last or just before workloads", added, f.Members)
	}

	start := time.Now()
	code, stdout, stderr, passEnd := p.pass(ctx, "--once")
	if code != 0 {
		t.Fatalf("the pass adding %s: exit %d\nstdout:\n%s\nstderr:\n%s", added, code, tail(stdout, 60), tail(stderr, 60))
	}
	t.Logf("membership: the pass adding %s took %s", added, passEnd.Sub(start).Round(time.Millisecond))
	names := make([]string, 0, len(p.members)+1)
	for _, m := range p.members {
		names = append(names, m.name)
	}
	four := istiodMembers(t, p.lf.lab, p.store, append(names, added))
	sa := four[len(four)-1]
	var last meshSample
	if !waitCond(ctx, membershipSyncedTimeout, 100*time.Millisecond, func() bool {
		last = sampleMesh(ctx, four)
		return last.synced == last.want
	}) {
		t.Logf("%s istiod log (tail):\n%s", added, tail(istiodLog(sa), 30))
		t.Fatalf("membership: %d of %d remote clusters synced within %s of the pass adding %s: %s", last.synced, last.want,
			membershipSyncedTimeout, added, strings.Join(last.notSynced, ", "))
	}
	t.Logf("membership: %d of %d remote clusters synced %s after the pass adding %s ended", last.synced, last.want,
		time.Since(passEnd).Round(time.Millisecond), added)
	// reconcile-lab show's Mesh section says the same: a row per pair, every one synced.
	var shown strings.Builder
	labworld.ShowMesh(ctx, f, kube.Access{Store: p.store, Timeout: 10 * time.Second}, p.lf.lab.Dir(), &shown)
	n := 0
	for _, line := range strings.Split(shown.String(), "\n") {
		if cols := strings.Fields(line); len(cols) == 4 && strings.HasPrefix(cols[2], mesh.MeshNamespace+"/") && cols[3] == "synced" {
			n++
		}
	}
	if n != last.want {
		t.Errorf("show's Mesh section has %d rows synced, want %d:\n%s", n, last.want, shown.String())
	} else {
		t.Logf("membership: reconcile-lab show's Mesh section:%s", shown.String())
	}

	// sa leaves.
	must(t, os.WriteFile(p.fleetPath, original, 0o644))
	start = time.Now()
	code, stdout, stderr, passEnd = p.pass(ctx, "--once")
	if code != 0 {
		t.Fatalf("the pass removing %s: exit %d\nstdout:\n%s\nstderr:\n%s", added, code, tail(stdout, 60), tail(stderr, 60))
	}
	t.Logf("membership: the pass removing %s took %s", added, passEnd.Sub(start).Round(time.Millisecond))
	for _, want := range []string{"member/" + added + "/mesh/teardown"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the plan removing %s lacks %q:\n%s", added, want, tail(stdout, 60))
		}
	}
	for _, m := range p.members {
		if want := "- member/" + m.name + "/mesh/remote-secret/" + added; !strings.Contains(stdout, want) {
			t.Errorf("the plan removing %s lacks %q:\n%s", added, want, tail(stdout, 60))
		}
	}
	var saIstiod error
	if !waitCond(ctx, membershipSyncedTimeout, 100*time.Millisecond, func() bool {
		last = sampleMesh(ctx, p.members)
		_, saIstiod = labworld.ReadIstiod(sa.dir)
		return last.synced == last.want && len(last.foreign) == 0 && os.IsNotExist(saIstiod)
	}) {
		t.Fatalf("membership: after the pass removing %s: %d of %d synced (%s), remotes that are no members %v, %s's istiod: %v",
			added, last.synced, last.want, strings.Join(last.notSynced, ", "), last.foreign, added, saIstiod)
	}
	t.Logf("membership: back to %d of %d synced, %s in no istiod's /debug/clusterz and its istiod stopped, %s after the pass removing it ended",
		last.synced, last.want, added, time.Since(passEnd).Round(time.Millisecond))
	for _, m := range p.members {
		t.Logf("%s /debug/clusterz: %s", m.name, last.raw[m.name])
	}
}
