package karmada

import (
	"testing"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/state"
)

var (
	_ executor.Driver = (*Driver)(nil)
	_ state.Observer  = (*Driver)(nil)
)

// lab is the etcd every test of the package shares, started on first use. This package's
// tests use the loopback addresses 127.0.0.60-127.0.0.79 only.
var lab = labtest.Etcd{Prefix: "state-karmada-", Karmada: true}

func TestMain(m *testing.M) { lab.Main(m) }

// labEtcd returns the shared etcd and binaries, skipping the test when the binaries are not
// built (failing it when RECONCILE_LAB_REQUIRED is set).
func labEtcd(t *testing.T) (*cluster.Etcd, cluster.Binaries, cluster.KarmadaBinaries) {
	t.Helper()
	return lab.Start(t)
}
