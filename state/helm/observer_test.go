package helm

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// noFiles is a state store holding nothing.
type noFiles struct{}

func (noFiles) WriteFile(string, []byte) error  { return fs.ErrPermission }
func (noFiles) ReadFile(string) ([]byte, error) { return nil, fs.ErrNotExist }
func (noFiles) Exists(string) bool              { return false }

// syncBuffer is a log sink safe for the observer's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestObserver(t *testing.T) {
	t.Parallel()
	cfg := labConfig(t)
	c, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs := clientset(t, cfg)

	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "lab.kubeconfig")
	if err := os.WriteFile(kubeconfig, lab.cluster.Kubeconfig(), 0o600); err != nil {
		t.Fatal(err)
	}
	// A kubeconfig whose server does not answer: its releases cannot be listed.
	dead, err := clientcmd.Load(lab.cluster.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range dead.Clusters {
		cl.Server = "https://127.0.0.21:1"
	}
	deadPath := filepath.Join(dir, "dead.kubeconfig")
	if err := clientcmd.WriteToFile(*dead, deadPath); err != nil {
		t.Fatal(err)
	}

	install := func(ns, name, data string) {
		t.Helper()
		_, err := c.Ensure(ctx, Release{Name: name, Namespace: ns, Chart: configMapChart("demo", "1.0.0"),
			Values: map[string]any{"data": map[string]any{"k": data}}, CreateNamespace: true, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
	}
	install("helm-observe", "first", "1")
	install("helm-observe", "second", "2")
	install("helm-observe-other", "elsewhere", "3")
	install("istio-system", "istiod", "4")
	t.Cleanup(func() {
		for _, ns := range []string{"helm-observe", "helm-observe-other", "istio-system"} {
			_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	})
	// An upgrade leaves two revisions: the latest is what is observed.
	install("helm-observe", "second", "2b")

	fleet := &spec.Fleet{
		Manager: spec.Manager{Name: "mgr", Cluster: spec.Cluster{Kubeconfig: &spec.Kubeconfig{Path: kubeconfig}}},
		Members: []spec.Member{
			{Name: "dead", Cluster: spec.Cluster{Kubeconfig: &spec.Kubeconfig{Path: deadPath}}},
			{Name: "creating", Cluster: spec.Cluster{Region: "eu-central"}},
			{Name: "down", Cluster: spec.Cluster{Kubeconfig: &spec.Kubeconfig{Path: kubeconfig}}},
		},
	}
	newWorld := func() *world.World {
		return &world.World{Clusters: map[string]*world.Cluster{
			"mgr":      {Name: "mgr", Reachable: true},
			"dead":     {Name: "dead", Reachable: true}, // answered the probe, fails now
			"creating": {Name: "creating", Reachable: true},
			"down":     {Name: "down"},
		}}
	}
	rel := func(ns, name, version, data string) *world.Release {
		return &world.Release{Name: name, Namespace: ns, Chart: "demo", ChartVersion: version, Status: "deployed",
			Values: map[string]any{"data": map[string]any{"k": data}}}
	}

	cases := []struct {
		name       string
		namespaces []string
		want       map[string]*world.Release
	}{
		{name: "given namespaces", namespaces: []string{"helm-observe"}, want: map[string]*world.Release{
			"helm-observe/first":  rel("helm-observe", "first", "1.0.0", "1"),
			"helm-observe/second": rel("helm-observe", "second", "1.0.0", "2b"),
		}},
		{name: "the fleet's namespaces", namespaces: []string{"istio-system", "karmada-system"}, want: map[string]*world.Release{
			"istio-system/istiod": rel("istio-system", "istiod", "1.0.0", "4"),
		}},
		{name: "namespace without releases", namespaces: []string{"helm-observe-none"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			o := Observer{
				Access:     kube.Access{Store: noFiles{}, Timeout: 5 * time.Second},
				Namespaces: tc.namespaces,
				Log:        slog.New(slog.NewTextHandler(&logs, nil)),
			}
			w := newWorld()
			if err := o.Observe(ctx, fleet, w); err != nil {
				t.Fatalf("Observe: %v", err)
			}
			if got := w.Clusters["mgr"].Releases; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mgr releases = %s\nwant %s", describe(got), describe(tc.want))
			}
			for _, name := range []string{"dead", "creating", "down"} {
				if r := w.Clusters[name].Releases; r != nil {
					t.Errorf("cluster %s has releases %s, want none", name, describe(r))
				}
			}
			for _, name := range []string{"dead", "creating"} {
				if !strings.Contains(logs.String(), "cluster="+name) {
					t.Errorf("no warning about cluster %s in the log:\n%s", name, logs.String())
				}
				// Unread is not absent: the planner must not plan its releases as missing.
				if !strings.HasPrefix(w.Clusters[name].Unreadable, "helm releases: ") {
					t.Errorf("cluster %s: Unreadable = %q", name, w.Clusters[name].Unreadable)
				}
			}
			if u := w.Clusters["mgr"].Unreadable + w.Clusters["down"].Unreadable; u != "" {
				t.Errorf("clusters read in full (or not tried) are not unreadable: %q", u)
			}
			if strings.Contains(logs.String(), "cluster=down") {
				t.Errorf("an unreachable cluster was tried:\n%s", logs.String())
			}
		})
	}
}

// An observer told no namespaces would see no release and make the plan install them all
// again: it refuses instead.
func TestObserverNeedsNamespaces(t *testing.T) {
	t.Parallel()
	err := Observer{Access: kube.Access{Store: noFiles{}}}.Observe(context.Background(), &spec.Fleet{}, &world.World{})
	if err == nil || !strings.Contains(err.Error(), "no namespaces") {
		t.Fatalf("err = %v", err)
	}
}
