package helm

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/progress"
)

// hookChart is configMapChart with a pre-install/pre-upgrade hook Job, which Helm waits on.
func hookChart(name, version string) *chart.Chart {
	ch := configMapChart(name, version)
	ch.Templates = append(ch.Templates, &chart.File{Name: "templates/hook.yaml", Data: []byte(`apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-setup
  namespace: {{ .Release.Namespace }}
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-delete-policy": before-hook-creation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: setup
        image: registry.example/setup:1
`)})
	return ch
}

func newClient(t *testing.T) (*Client, *labtest.WriteCounter, kubernetes.Interface) {
	t.Helper()
	cfg := labConfig(t)
	counted, wc := countedConfig(cfg)
	c, err := New(counted, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return c, wc, clientset(t, cfg)
}

// history lists a release's revisions as "revision:status", oldest first.
func history(t *testing.T, c *Client, ns, name string) []string {
	t.Helper()
	op, err := c.operation(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	defer op.done()
	h, err := op.history(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range h {
		out = append(out, strconv.Itoa(r.Version)+":"+r.Info.Status.String())
	}
	return out
}

// upgradeByHand does what `helm upgrade <name> <chart> --set ...` does, outside Ensure.
func upgradeByHand(t *testing.T, c *Client, ns, name string, ch *chart.Chart, values map[string]any) {
	t.Helper()
	op, err := c.operation(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	defer op.done()
	up := action.NewUpgrade(op.cfg)
	up.Namespace, up.Timeout = ns, time.Minute
	if _, err := up.RunWithContext(context.Background(), name, ch, values); err != nil {
		t.Fatalf("upgrade by hand: %v", err)
	}
}

func TestEnsureLifecycle(t *testing.T) {
	t.Parallel()
	c, wc, cs := newClient(t)
	ctx := context.Background()
	const ns, name = "helm-lifecycle", "demo"
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	rel := func(version string, values map[string]any) Release {
		// Wait only on ConfigMaps: they are ready once they exist (no kubelet runs here).
		return Release{Name: name, Namespace: ns, Chart: configMapChart("demo", version), Values: values,
			Timeout: time.Minute, Wait: true, CreateNamespace: true}
	}
	steps := []struct {
		name     string
		do       func(t *testing.T)
		release  Release
		want     Outcome
		data     map[string]string
		noWrites bool
	}{
		{name: "install into a new namespace", release: rel("1.0.0", map[string]any{"data": map[string]any{"a": 1, "b": "x"}}),
			want: Installed, data: map[string]string{"a": "1", "b": "x", "default": "yes"}},
		{name: "same values, other types and order", release: rel("1.0.0", map[string]any{"data": map[string]any{"b": "x", "a": 1.0}}),
			want: Unchanged, data: map[string]string{"a": "1", "b": "x", "default": "yes"}, noWrites: true},
		{name: "values change", release: rel("1.0.0", map[string]any{"data": map[string]any{"a": 2}}),
			want: Upgraded, data: map[string]string{"a": "2", "default": "yes"}},
		{name: "drift by hand is undone",
			do: func(t *testing.T) {
				upgradeByHand(t, c, ns, name, configMapChart("demo", "1.0.0"), map[string]any{"data": map[string]any{"a": "hand"}})
				got := getRelease(t, c, ns, name)
				if !reflect.DeepEqual(got.Values, map[string]any{"data": map[string]any{"a": "hand"}}) {
					t.Fatalf("after the hand upgrade Get says values %v", got.Values)
				}
			},
			release: rel("1.0.0", map[string]any{"data": map[string]any{"a": 2}}), want: Upgraded, data: map[string]string{"a": "2", "default": "yes"}},
		{name: "chart version change", release: rel("1.1.0", map[string]any{"data": map[string]any{"a": 2}}),
			want: Upgraded, data: map[string]string{"a": "2", "default": "yes"}},
		{name: "empty values reset to the chart's", release: rel("1.1.0", nil),
			want: Upgraded, data: map[string]string{"default": "yes"}},
		{name: "converged again", release: rel("1.1.0", map[string]any{}), want: Unchanged,
			data: map[string]string{"default": "yes"}, noWrites: true},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) {
			if s.do != nil {
				s.do(t)
			}
			wc.Reset()
			got, err := c.Ensure(ctx, s.release)
			if err != nil {
				t.Fatal(err)
			}
			if got != s.want {
				t.Errorf("Ensure = %s, want %s", got, s.want)
			}
			writes := wc.Take()
			if s.noWrites && len(writes) > 0 {
				t.Errorf("Ensure wrote %d times, want none: %v", len(writes), writes)
			}
			if !s.noWrites && len(writes) == 0 {
				t.Errorf("Ensure %s without a write", got)
			}
			if d := configMapData(t, cs, ns, name+"-cm"); !reflect.DeepEqual(d, s.data) {
				t.Errorf("configmap data %v, want %v", d, s.data)
			}
			r := getRelease(t, c, ns, name)
			if r == nil || r.Status != "deployed" || r.Chart != "demo" || r.ChartVersion != s.release.Chart.Metadata.Version {
				t.Errorf("Get = %s, want demo %s deployed", describe(r), s.release.Chart.Metadata.Version)
			}
		}) {
			return
		}
	}

	rels, err := c.List(ctx, ns, "helm-lifecycle-empty")
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 || rels[ns+"/"+name] == nil || rels[ns+"/"+name].ChartVersion != "1.1.0" {
		t.Errorf("List = %s, want only %s/%s at 1.1.0", describe(rels), ns, name)
	}

	if err := c.Uninstall(ctx, name, ns, time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := getRelease(t, c, ns, name); r != nil {
		t.Errorf("after Uninstall Get = %s, want nil", describe(r))
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name+"-cm", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("configmap after Uninstall: %v, want not found", err)
	}
	wc.Reset()
	if err := c.Uninstall(ctx, name, ns, 0); err != nil {
		t.Errorf("Uninstall of an absent release: %v", err)
	}
	if w := wc.Take(); len(w) > 0 {
		t.Errorf("Uninstall of an absent release wrote %v", w)
	}
}

func TestEnsureHooksAndRecovery(t *testing.T) {
	t.Parallel()
	c, _, cs := newClient(t)
	ctx := context.Background()
	const ns, name = "helm-hooks", "hooked"
	createNamespace(t, cs, ns)
	rel := func(version string, data string, timeout time.Duration) Release {
		return Release{Name: name, Namespace: ns, Chart: hookChart("hooked", version),
			Values: map[string]any{"data": map[string]any{"v": data}}, Timeout: timeout}
	}
	hookJob := func(ctx context.Context) (string, bool) {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, name+"-setup", metav1.GetOptions{})
		if err != nil || complete(j) {
			return "", false
		}
		return string(j.UID), true
	}

	// cancel starts Ensure, waits until Helm waits on a fresh hook Job (not otherUID), then
	// cancels it as a crash would end it.
	cancelMidHook := func(t *testing.T, r Release, otherUID string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { _, err := c.Ensure(ctx, r); done <- err }()
		waitFor(t, time.Minute, "the hook job", func(ctx context.Context) (bool, error) {
			uid, ok := hookJob(ctx)
			return ok && uid != otherUID, nil
		})
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Ensure returned %v, want context.Canceled", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Ensure did not return after its context was cancelled")
		}
	}

	t.Run("install cancelled mid-hook is recovered", func(t *testing.T) {
		cancelMidHook(t, rel("1.0.0", "one", time.Minute), "")
		if r := getRelease(t, c, ns, name); r == nil || r.Status != release.StatusPendingInstall.String() {
			t.Fatalf("after the cancelled install Get = %s, want pending-install", describe(r))
		}
		j := startJobCompleter(t, cs, ns)
		defer j.stop()
		got, err := c.Ensure(ctx, rel("1.0.0", "one", time.Minute))
		if err != nil || got != Recovered {
			t.Fatalf("Ensure = %s, %v; want recovered", got, err)
		}
		if h := history(t, c, ns, name); !reflect.DeepEqual(h, []string{"1:deployed"}) {
			t.Errorf("history %v, want one deployed revision", h)
		}
		if j.count.Load() == 0 {
			t.Error("no hook job was completed: the hook did not run")
		}
		if d := configMapData(t, cs, ns, name+"-cm"); d["v"] != "one" {
			t.Errorf("configmap %v", d)
		}
	})

	t.Run("upgrade runs the pre-upgrade hook", func(t *testing.T) {
		j := startJobCompleter(t, cs, ns)
		defer j.stop()
		got, err := c.Ensure(ctx, rel("1.0.0", "two", time.Minute))
		if err != nil || got != Upgraded {
			t.Fatalf("Ensure = %s, %v; want upgraded", got, err)
		}
		if j.count.Load() == 0 {
			t.Error("the pre-upgrade hook job was not seen")
		}
	})

	t.Run("upgrade cancelled mid-hook is rolled back and upgraded", func(t *testing.T) {
		uid, _ := hookJob(ctx) // the completed one, if it is still there
		cancelMidHook(t, rel("2.0.0", "three", time.Minute), uid)
		if r := getRelease(t, c, ns, name); r == nil || r.Status != release.StatusPendingUpgrade.String() {
			t.Fatalf("after the cancelled upgrade Get = %s, want pending-upgrade", describe(r))
		}
		j := startJobCompleter(t, cs, ns)
		defer j.stop()
		got, err := c.Ensure(ctx, rel("2.0.0", "three", time.Minute))
		if err != nil || got != Recovered {
			t.Fatalf("Ensure = %s, %v; want recovered", got, err)
		}
		want := []string{"1:superseded", "2:superseded", "3:failed", "4:superseded", "5:deployed"}
		if h := history(t, c, ns, name); !reflect.DeepEqual(h, want) {
			t.Errorf("history %v, want %v (install, upgrade, cancelled upgrade, rollback, upgrade)", h, want)
		}
		r := getRelease(t, c, ns, name)
		if r.ChartVersion != "2.0.0" || !reflect.DeepEqual(r.Values, map[string]any{"data": map[string]any{"v": "three"}}) {
			t.Errorf("Get = %s", describe(r))
		}
		if d := configMapData(t, cs, ns, name+"-cm"); d["v"] != "three" {
			t.Errorf("configmap %v", d)
		}
	})

	t.Run("uninstall", func(t *testing.T) {
		if err := c.Uninstall(ctx, name, ns, time.Minute); err != nil {
			t.Fatal(err)
		}
		if r := getRelease(t, c, ns, name); r != nil {
			t.Fatalf("Get after Uninstall = %s", describe(r))
		}
	})

	t.Run("failed first install is reinstalled", func(t *testing.T) {
		// Nothing completes the hook: the install times out and is recorded as failed.
		_, err := c.Ensure(ctx, rel("1.0.0", "four", 2*time.Second))
		if err == nil {
			t.Fatal("install without a completed hook succeeded")
		}
		if r := getRelease(t, c, ns, name); r == nil || r.Status != release.StatusFailed.String() {
			t.Fatalf("after the timed-out install Get = %s, want failed", describe(r))
		}
		j := startJobCompleter(t, cs, ns)
		defer j.stop()
		got, err := c.Ensure(ctx, rel("1.0.0", "four", time.Minute))
		if err != nil || got != Recovered {
			t.Fatalf("Ensure = %s, %v; want recovered", got, err)
		}
		if h := history(t, c, ns, name); !reflect.DeepEqual(h, []string{"1:deployed"}) {
			t.Errorf("history %v, want one deployed revision", h)
		}
	})
}

func TestEnsureRejectsBadReleases(t *testing.T) {
	t.Parallel()
	// Nothing listens there: these must fail before any request.
	c, err := New(&rest.Config{Host: "https://127.0.0.21:1"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		r       Release
		wantErr string
	}{
		{name: "no name", r: Release{Namespace: "x", Chart: configMapChart("a", "1")}, wantErr: "needs a name"},
		{name: "no chart", r: Release{Name: "x", Namespace: "x"}, wantErr: "no chart"},
		{name: "values not JSON", r: Release{Name: "x", Namespace: "x", Chart: configMapChart("a", "1"),
			Values: map[string]any{"f": func() {}}}, wantErr: "values"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := c.Ensure(context.Background(), tc.r); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Ensure error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) did not fail")
	}
}

// deploymentChart is a chart of one Deployment; no kubelet runs in the lab, so it never
// becomes available.
func deploymentChart() *chart.Chart {
	return &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "app", Version: "1.0.0", Type: "application"},
		Templates: []*chart.File{{Name: "templates/deployment.yaml", Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
      - name: app
        image: registry.example/app:1
`)}},
	}
}

// Wait is honoured and bounded by Timeout: a Deployment that never becomes available fails
// the install in time, and the failed first install is reinstalled by the next Ensure.
func TestEnsureWaitTimesOut(t *testing.T) {
	t.Parallel()
	c, _, cs := newClient(t)
	ctx := context.Background()
	const ns, name = "helm-wait", "app"
	createNamespace(t, cs, ns)

	// The install's wait says every interval what it awaits: Helm's own word on what is not ready.
	var logs syncBuffer
	pc, err := New(c.cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = pc.Ensure(progress.WithInterval(ctx, 500*time.Millisecond),
		Release{Name: name, Namespace: ns, Chart: deploymentChart(), Wait: true, Timeout: 3 * time.Second})
	if err == nil {
		t.Fatal("Ensure with Wait on a Deployment that cannot become available succeeded")
	}
	for _, want := range []string{`msg="waiting for helm install of helm-wait/app: `, " of 3s, helm: Deployment is not ready: helm-wait/app."} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the install's progress lacks %q:\n%s", want, logs.String())
		}
	}
	if te := (*state.TransientError)(nil); !errors.As(err, &te) {
		t.Errorf("a wait that timed out is not marked transient: %v", err)
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Errorf("Ensure took %s with a 3s timeout", d)
	}
	if r := getRelease(t, c, ns, name); r == nil || r.Status != release.StatusFailed.String() {
		t.Fatalf("after the timed-out install Get = %s, want failed", describe(r))
	}

	got, err := c.Ensure(ctx, Release{Name: name, Namespace: ns, Chart: deploymentChart(), Timeout: time.Minute})
	if err != nil || got != Recovered {
		t.Fatalf("Ensure = %s, %v; want recovered", got, err)
	}
	if h := history(t, c, ns, name); !reflect.DeepEqual(h, []string{"1:deployed"}) {
		t.Errorf("history %v, want one deployed revision", h)
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("deployment: %v", err)
	}

	// A failed upgrade is rolled back to the last deployed revision, then upgraded.
	values := map[string]any{"note": "second"}
	if _, err := c.Ensure(ctx, Release{Name: name, Namespace: ns, Chart: deploymentChart(), Values: values,
		Wait: true, Timeout: 3 * time.Second}); err == nil {
		t.Fatal("upgrade with Wait on a Deployment that cannot become available succeeded")
	}
	if r := getRelease(t, c, ns, name); r == nil || r.Status != release.StatusFailed.String() {
		t.Fatalf("after the timed-out upgrade Get = %s, want failed", describe(r))
	}
	got, err = c.Ensure(ctx, Release{Name: name, Namespace: ns, Chart: deploymentChart(), Values: values, Timeout: time.Minute})
	if err != nil || got != Recovered {
		t.Fatalf("Ensure = %s, %v; want recovered", got, err)
	}
	want := []string{"1:superseded", "2:failed", "3:superseded", "4:deployed"}
	if h := history(t, c, ns, name); !reflect.DeepEqual(h, want) {
		t.Errorf("history %v, want %v (install, failed upgrade, rollback, upgrade)", h, want)
	}
	if r := getRelease(t, c, ns, name); !reflect.DeepEqual(r.Values, values) {
		t.Errorf("values %v, want %v", r.Values, values)
	}
}
