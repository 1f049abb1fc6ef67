package karmadalab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
)

// lab is what every test of the package shares: one etcd, started on first use.
var lab = labtest.Etcd{Prefix: "karmadalab-", Karmada: true}

func TestMain(m *testing.M) { lab.Main(m) }

// labEtcd returns the shared etcd and binaries, skipping the test when the binaries are not
// built (failing it when RECONCILE_LAB_REQUIRED is set).
func labEtcd(t *testing.T) (*cluster.Etcd, cluster.Binaries, cluster.KarmadaBinaries) {
	t.Helper()
	return lab.Start(t)
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
