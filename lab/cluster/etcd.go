package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// etcdStartTimeout bounds how long StartEtcd waits for /health.
const etcdStartTimeout = 60 * time.Second

// Etcd is one etcd member on 127.0.0.1 that every lab cluster shares, each under its own prefix.
type Etcd struct {
	clientURL string
	proc      *Process
}

// StartEtcd runs etcd with its data and log (etcd.log) in dir, on free ports of 127.0.0.1, and
// returns once it answers /health. fsync is off: lab data is disposable.
func StartEtcd(ctx context.Context, dir string, bins Binaries) (*Etcd, error) {
	if bins.Etcd == "" {
		return nil, fmt.Errorf("start etcd: no etcd binary given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	clientPort, err := FreePort("127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	peerPort, err := FreePort("127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	proc, err := StartProcess("etcd", filepath.Join(dir, "etcd.log"), bins.Etcd,
		"--name", "lab",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "lab="+peerURL,
		"--initial-cluster-state", "new",
		"--unsafe-no-fsync",
		"--log-level", "warn",
	)
	if err != nil {
		return nil, err
	}
	e := &Etcd{clientURL: clientURL, proc: proc}
	client := &http.Client{Timeout: 2 * time.Second}
	err = PollUntil(ctx, etcdStartTimeout, "etcd /health", []*Process{proc}, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
			return false, fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return true, nil
	})
	if err != nil {
		_ = proc.Stop()
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	return e, nil
}

// Endpoint is etcd's client URL, for --etcd-servers.
func (e *Etcd) Endpoint() string { return e.clientURL }

// Stop ends etcd and waits for it to exit; its ports are free afterwards.
func (e *Etcd) Stop() error { return e.proc.Stop() }
