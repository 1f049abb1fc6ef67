package cluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCacheDir(t *testing.T) {
	tests := []struct {
		name, lab, xdg, home, want string
	}{
		{name: "explicit", lab: "/x/lab", xdg: "/x/xdg", home: "/x/home", want: "/x/lab"},
		{name: "xdg", xdg: "/x/xdg", home: "/x/home", want: "/x/xdg/reconcile-lab"},
		{name: "home", home: "/x/home", want: "/x/home/.cache/reconcile-lab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RECONCILE_LAB_CACHE", tt.lab)
			t.Setenv("XDG_CACHE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := CacheDir()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("CacheDir() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFindBinaries(t *testing.T) {
	files := map[string]string{
		"etcd":    filepath.Join("etcd-"+EtcdVersion, "etcd"),
		"apiserv": filepath.Join("kubernetes-"+KubernetesVersion, "kube-apiserver"),
		"kcm":     filepath.Join("kubernetes-"+KubernetesVersion, "kube-controller-manager"),
	}
	tests := []struct {
		name    string
		present map[string]os.FileMode
		wantErr bool
	}{
		{name: "none", wantErr: true},
		{name: "one missing", present: map[string]os.FileMode{"etcd": 0o755, "apiserv": 0o755}, wantErr: true},
		{name: "not executable", present: map[string]os.FileMode{"etcd": 0o644, "apiserv": 0o755, "kcm": 0o755}, wantErr: true},
		{name: "all", present: map[string]os.FileMode{"etcd": 0o755, "apiserv": 0o755, "kcm": 0o755}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("RECONCILE_LAB_CACHE", dir)
			for key, mode := range tt.present {
				p := filepath.Join(dir, files[key])
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
					t.Fatal(err)
				}
			}
			bins, err := FindBinaries()
			if tt.wantErr {
				if !errors.Is(err, ErrBinariesMissing) || !strings.Contains(err.Error(), "make lab-bin") {
					t.Fatalf("FindBinaries() error = %v, want ErrBinariesMissing telling to run make lab-bin", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Binaries{
				Etcd:                  filepath.Join(dir, files["etcd"]),
				KubeAPIServer:         filepath.Join(dir, files["apiserv"]),
				KubeControllerManager: filepath.Join(dir, files["kcm"]),
			}
			if bins != want {
				t.Errorf("FindBinaries() = %+v, want %+v", bins, want)
			}
		})
	}
}

func TestFindKarmadaBinariesMissing(t *testing.T) {
	t.Setenv("RECONCILE_LAB_CACHE", t.TempDir())
	if _, err := FindKarmadaBinaries(); !errors.Is(err, ErrBinariesMissing) {
		t.Fatalf("FindKarmadaBinaries() error = %v, want ErrBinariesMissing", err)
	}
	if _, err := FindIstiod(); !errors.Is(err, ErrBinariesMissing) {
		t.Fatalf("FindIstiod() error = %v, want ErrBinariesMissing", err)
	}
	if _, err := FindXDSProbe(); !errors.Is(err, ErrBinariesMissing) {
		t.Fatalf("FindXDSProbe() error = %v, want ErrBinariesMissing", err)
	}
}

// The versions FindBinaries looks for must be the ones lab/tools/build.sh builds, which come from
// the go.mod files under lab/tools; Karmada's must also match the product's go.mod.
func TestVersionsMatchToolsModules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		gomod, module, want string
	}{
		{"../tools/go.mod", "k8s.io/kubernetes", KubernetesVersion},
		{"../tools/cmd/etcd/go.mod", "go.etcd.io/etcd/server/v3", EtcdVersion},
		{"../tools/karmada/go.mod", "github.com/karmada-io/karmada", KarmadaVersion},
		{"../../go.mod", "github.com/karmada-io/karmada", KarmadaVersion},
		{"../tools/istio/go.mod", "istio.io/istio", IstioModuleVersion},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(tt.gomod)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
			if len(f) >= 2 && f[0] == tt.module {
				got = f[1]
				break
			}
		}
		if got != tt.want {
			t.Errorf("%s requires %s %q, lab/cluster expects %q", tt.gomod, tt.module, got, tt.want)
		}
	}
}

// build.sh --list must name exactly the paths the Find functions look for.
func TestBuildScriptListsFoundPaths(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	t.Setenv("RECONCILE_LAB_CACHE", dir)
	out, err := exec.Command("bash", "../tools/build.sh", "--list").Output()
	if err != nil {
		t.Fatalf("build.sh --list: %v", err)
	}
	listed := strings.Fields(string(out))
	bins, _ := FindBinaries()
	karmada, _ := FindKarmadaBinaries()
	istiod, _ := FindIstiod()
	probe, _ := FindXDSProbe()
	for _, want := range []string{bins.Etcd, bins.KubeAPIServer, bins.KubeControllerManager,
		karmada.AggregatedAPIServer, karmada.ControllerManager, karmada.Scheduler, karmada.Webhook, karmada.Agent, istiod, probe} {
		if !slices.Contains(listed, want) {
			t.Errorf("build.sh --list does not list %s; it lists %v", want, listed)
		}
	}
	if len(listed) != 10 {
		t.Errorf("build.sh --list printed %d paths, want 10: %v", len(listed), listed)
	}
}
