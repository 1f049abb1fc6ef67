package linode

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

// Issue 10: a runner with an empty state store (a fresh CI runner) read nothing of the LKE
// clusters that exist, so their contents were planned as absent. The observer now fetches the
// kubeconfig of a cluster that has a ready node and stores it as the kubeconfig step would
// (same files, same record, same copy), with reads only.
func TestObserveFetchesMissingKubeconfig(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{})
	f := testFleet("mgr")
	f.KubeconfigDir = t.TempDir()
	stepStore := newStore(t)
	converge(t, newDriver(t, l, stepStore), f, "mgr")
	want := waitSettled(t, newDriver(t, l, stepStore), f, "mgr").Clusters["mgr"]

	empty := newStore(t)
	l.api.ResetRequests()
	got := observe(t, newDriver(t, l, empty), f).Clusters["mgr"]
	if w := l.writes(); len(w) != 0 {
		t.Errorf("observing wrote to the Linode API: %s", describe(w))
	}
	if !got.KubeconfigStored || got.Unreadable != "" {
		t.Fatalf("KubeconfigStored %v, unreadable %q: want the kubeconfig fetched", got.KubeconfigStored, got.Unreadable)
	}
	if got.APIEndpoint == "" || got.APIEndpoint != want.APIEndpoint {
		t.Errorf("API endpoint %q, want %q", got.APIEndpoint, want.APIEndpoint)
	}
	for _, name := range []string{kubeconfigName("mgr"), kubeconfigRecordName("mgr")} {
		a, errA := stepStore.ReadFile(name)
		b, errB := empty.ReadFile(name)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: the observer stored other content than the kubeconfig step (%v, %v)", name, errA, errB)
		}
	}
	if _, err := os.Stat(filepath.Join(f.KubeconfigDir, "kubeconfig-mgr")); err != nil {
		t.Errorf("the copy in kubeconfigDir: %v", err)
	}
	// A second pass finds it stored and fetches nothing.
	l.api.ResetRequests()
	observe(t, newDriver(t, l, empty), f)
	for _, r := range l.api.Requests() {
		if r.Method == http.MethodGet && filepath.Base(r.Path) == "kubeconfig" {
			t.Errorf("the kubeconfig was fetched again: %s", r.Path)
		}
	}
}

// A cluster with no ready node yet keeps today's behaviour: nothing is fetched or stored, and
// the kubeconfig step is planned and waits for it.
func TestObserveKubeconfigNotReady(t *testing.T) {
	t.Parallel()
	l := newLab(t, linodeapi.Options{NodeReadyDelay: time.Hour})
	f := testFleet("mgr")
	st := newStore(t)
	d := newDriver(t, l, st)
	if err := apply(t.Context(), d, createStep(f, "mgr")); err != nil {
		t.Fatal(err)
	}
	l.api.ResetRequests()
	c := observe(t, d, f).Clusters["mgr"]
	if c == nil || c.LinodeID == 0 {
		t.Fatal("the new cluster is not observed")
	}
	if c.KubeconfigStored || c.Unreadable != "" || st.Exists(kubeconfigName("mgr")) {
		t.Errorf("KubeconfigStored %v, unreadable %q, stored %v: want none", c.KubeconfigStored, c.Unreadable, st.Exists(kubeconfigName("mgr")))
	}
	for _, r := range l.api.Requests() {
		if filepath.Base(r.Path) == "kubeconfig" {
			t.Errorf("fetched the kubeconfig of a cluster with no ready node: %s", r.Path)
		}
	}
}
