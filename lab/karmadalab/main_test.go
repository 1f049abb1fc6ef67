package karmadalab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/cluster"
)

// lab is what every test of the package shares: one etcd, started on first use.
var lab struct {
	once    sync.Once
	dir     string
	etcd    *cluster.Etcd
	bins    cluster.Binaries
	karmada cluster.KarmadaBinaries
	err     error
	skip    string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if lab.etcd != nil {
		_ = lab.etcd.Stop()
	}
	if lab.dir != "" {
		_ = os.RemoveAll(lab.dir)
	}
	os.Exit(code)
}

// labEtcd returns the shared etcd and binaries, skipping the test when binaries are not built
// (failing it when RECONCILE_LAB_REQUIRED is set).
func labEtcd(t *testing.T) (*cluster.Etcd, cluster.Binaries, cluster.KarmadaBinaries) {
	t.Helper()
	lab.once.Do(func() {
		bins, err := cluster.FindBinaries()
		if err == nil {
			lab.karmada, err = cluster.FindKarmadaBinaries()
		}
		if err != nil {
			lab.skip = err.Error()
			return
		}
		lab.bins = bins
		if lab.dir, lab.err = os.MkdirTemp("", "karmadalab-"); lab.err != nil {
			return
		}
		lab.etcd, lab.err = cluster.StartEtcd(context.Background(), filepath.Join(lab.dir, "etcd"), bins)
	})
	if lab.skip != "" {
		if os.Getenv("RECONCILE_LAB_REQUIRED") != "" {
			t.Fatalf("RECONCILE_LAB_REQUIRED is set: %s", lab.skip)
		}
		t.Skipf("skipping lab test: %s (set RECONCILE_LAB_REQUIRED=1 to make this a failure)", lab.skip)
	}
	if lab.err != nil {
		t.Fatal(lab.err)
	}
	return lab.etcd, lab.bins, lab.karmada
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := cluster.PollUntil(context.Background(), timeout, what, nil, cond); err != nil {
		t.Fatal(err)
	}
}

// startMember starts a lab cluster with one Ready node whose ExternalIP is its address.
func startMember(t *testing.T, etcd *cluster.Etcd, bins cluster.Binaries, name, address string) *cluster.Cluster {
	t.Helper()
	c, err := cluster.StartCluster(context.Background(), cluster.ClusterOptions{
		Name: name, Dir: filepath.Join(t.TempDir(), name), Address: address, Etcd: etcd, Bins: bins,
		Nodes: []cluster.NodeSpec{{Name: name + "-node", ExternalIP: address}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%100000)
}

// testDir is a fresh directory for a test's logs: under $KARMADALAB_KEEP (kept for debugging)
// when set, else under t.TempDir().
func testDir(t *testing.T, name string) string {
	if keep := os.Getenv("KARMADALAB_KEEP"); keep != "" {
		d, err := os.MkdirTemp(keep, name+"-")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return filepath.Join(t.TempDir(), name)
}
