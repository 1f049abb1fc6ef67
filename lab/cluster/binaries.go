// Package cluster runs real Kubernetes control planes on loopback for the lab: one etcd, and per
// cluster a kube-apiserver and kube-controller-manager built from source by lab/tools/build.sh.
// No kubelet runs; the Node objects a cluster is given are kept Ready by a heartbeat instead.
package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Versions of the binaries lab/tools/build.sh builds. The go.mod files under lab/tools are the
// source of truth; a test checks that these agree with them.
const (
	KubernetesVersion = "v1.36.3"
	EtcdVersion       = "v3.6.5"
	KarmadaVersion    = "v1.18.2"
	// IstioModuleVersion is the istio.io/istio module istiod (pilot-discovery) is built from
	// (lab/tools/istio/go.mod; lab/charts serves the same module's charts).
	IstioModuleVersion = "v0.0.0-20260827124520-eed52ebb66ad"
)

// Binaries are the paths of the executables a lab cluster runs.
type Binaries struct {
	Etcd, KubeAPIServer, KubeControllerManager string
}

// KarmadaBinaries are the paths of the Karmada components built by lab/tools/build.sh.
type KarmadaBinaries struct {
	AggregatedAPIServer, ControllerManager, Scheduler, Webhook, Agent string
}

// CacheDir is where lab/tools/build.sh puts binaries:
// $RECONCILE_LAB_CACHE, else $XDG_CACHE_HOME/reconcile-lab, else $HOME/.cache/reconcile-lab.
func CacheDir() (string, error) {
	if d := os.Getenv("RECONCILE_LAB_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "reconcile-lab"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("lab cache dir: set RECONCILE_LAB_CACHE: %w", err)
	}
	return filepath.Join(home, ".cache", "reconcile-lab"), nil
}

// FindBinaries returns the cached etcd, kube-apiserver and kube-controller-manager, or an error
// naming every one that is missing.
func FindBinaries() (Binaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	b := Binaries{
		Etcd:                  filepath.Join(dir, "etcd-"+EtcdVersion, "etcd"),
		KubeAPIServer:         filepath.Join(dir, "kubernetes-"+KubernetesVersion, "kube-apiserver"),
		KubeControllerManager: filepath.Join(dir, "kubernetes-"+KubernetesVersion, "kube-controller-manager"),
	}
	return b, checkExecutables(b.Etcd, b.KubeAPIServer, b.KubeControllerManager)
}

// FindKarmadaBinaries returns the cached Karmada components, or an error naming every one that is
// missing.
func FindKarmadaBinaries() (KarmadaBinaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return KarmadaBinaries{}, err
	}
	p := func(name string) string { return filepath.Join(dir, "karmada-"+KarmadaVersion, "karmada-"+name) }
	b := KarmadaBinaries{
		AggregatedAPIServer: p("aggregated-apiserver"),
		ControllerManager:   p("controller-manager"),
		Scheduler:           p("scheduler"),
		Webhook:             p("webhook"),
		Agent:               p("agent"),
	}
	return b, checkExecutables(b.AggregatedAPIServer, b.ControllerManager, b.Scheduler, b.Webhook, b.Agent)
}

// FindIstiod returns the cached pilot-discovery (istiod), or an error wrapping
// ErrBinariesMissing.
func FindIstiod() (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "istio-"+IstioModuleVersion, "pilot-discovery")
	return p, checkExecutables(p)
}

// FindXDSProbe returns the cached xds-probe (lab/tools/istio/cmd/xds-probe: a proxyless gRPC
// client that reports what istiod serves it), or an error wrapping ErrBinariesMissing. It is
// built with istiod (build.sh istio), into the same directory.
func FindXDSProbe() (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "istio-"+IstioModuleVersion, "xds-probe")
	return p, checkExecutables(p)
}

// ErrBinariesMissing is wrapped by FindBinaries, FindKarmadaBinaries, FindIstiod and FindXDSProbe when a binary is not built.
var ErrBinariesMissing = errors.New("lab binaries not built: run `make lab-bin` (lab/tools/build.sh)")

func checkExecutables(paths ...string) error {
	var missing []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w; missing %q", ErrBinariesMissing, missing)
	}
	return nil
}
