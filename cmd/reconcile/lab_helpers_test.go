package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/lab/labworld"
)

// labFleet is a lab started for one test, with Karmada, on the loopback range first..last
// (each test file its own, so packages' tests may run side by side), and a fleet directory
// holding the lab's Linode token in ./token. The lab stops when the test ends.
type labFleet struct {
	lab      *labworld.Lab
	dir      string // the test's temporary directory
	fleetDir string
}

func upLab(t *testing.T, first, last net.IP, provision time.Duration) *labFleet {
	t.Helper()
	dir := t.TempDir()
	labLog, err := os.OpenFile(filepath.Join(dir, "lab.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	must(t, err)
	t.Cleanup(func() { labLog.Close() })
	l, err := labworld.Up(context.Background(), labworld.Options{
		Dir: filepath.Join(dir, "lab"), LinodeListen: "127.0.0.1:0", ChartsListen: "127.0.0.1:0",
		ProvisionDelay: provision, Karmada: true,
		Addresses: labworld.AddressRange{First: first, Last: last},
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
	lf := &labFleet{lab: l, dir: dir, fleetDir: filepath.Join(dir, "fleet")}
	must(t, os.MkdirAll(lf.fleetDir, 0o700))
	must(t, os.WriteFile(filepath.Join(lf.fleetDir, "token"), []byte(l.Token+"\n"), 0o600))
	return lf
}
