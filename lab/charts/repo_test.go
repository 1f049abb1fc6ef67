package charts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/repo"
)

func fileDigest(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func TestIndex(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	idx, err := repo.LoadIndexFile(filepath.Join(r.Dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		ChartKarmada: r.KarmadaVersion, ChartBase: r.IstioVersion,
		ChartIstiod: r.IstioVersion, ChartGateway: r.IstioVersion,
	}
	if len(idx.Entries) != len(want) {
		t.Errorf("index has %d charts, want %d", len(idx.Entries), len(want))
	}
	for name, version := range want {
		cv, err := idx.Get(name, version)
		if err != nil {
			t.Errorf("%s %s: %v", name, version, err)
			continue
		}
		if cv.AppVersion != version {
			t.Errorf("%s appVersion %q, want %q", name, cv.AppVersion, version)
		}
		if len(cv.URLs) != 1 || cv.URLs[0] != r.Files[name] {
			t.Errorf("%s URLs %v, want the relative %q", name, cv.URLs, r.Files[name])
		}
		if d := fileDigest(t, r.ChartPath(name)); cv.Digest != d {
			t.Errorf("%s digest %q, want %q", name, cv.Digest, d)
		}
	}
	if cv, err := idx.Get(ChartKarmada, r.KarmadaVersion); err == nil && !strings.HasPrefix(cv.Version, "v") {
		t.Errorf("karmada chart version %q lacks the leading v of upstream releases", cv.Version)
	}
}

func TestKarmadaArchive(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	c, err := loader.Load(r.ChartPath(ChartKarmada))
	if err != nil {
		t.Fatal(err)
	}
	if c.Lock != nil {
		t.Error("Chart.lock kept: it names the upstream repository")
	}
	for _, d := range c.Metadata.Dependencies {
		if d.Repository != "" {
			t.Errorf("dependency %s still names repository %q", d.Name, d.Repository)
		}
	}
	var common *chart.Chart
	for _, d := range c.Dependencies() {
		if d.Name() == "common" {
			common = d
		}
	}
	if common == nil || common.Metadata.Type != "library" {
		t.Fatalf("vendored common library chart missing: %v", common)
	}
	// Upstream's CRDs travel in the archive (the hook ConfigMaps are built from them).
	crds := 0
	for _, f := range c.Files {
		if strings.HasPrefix(f.Name, "_crds/bases/") {
			crds++
		}
	}
	if crds == 0 {
		t.Error("no _crds/bases files in the archive")
	}
}

func TestBuildRepoOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const base = "http://127.0.0.1:8879/charts"
	r, err := BuildRepo(dir, RepoOptions{KarmadaVersion: strings.TrimPrefix(goModVersion(t), "v"), IstioVersion: "v1.29.0", BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	if r.KarmadaVersion != goModVersion(t) || r.IstioVersion != "1.29.0" {
		t.Errorf("versions %q, %q, want %q, 1.29.0 (normalized)", r.KarmadaVersion, r.IstioVersion, goModVersion(t))
	}
	idx, err := repo.LoadIndexFile(filepath.Join(dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range r.Files {
		cv, err := idx.Get(name, versionOf(r, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want := base + "/" + file; len(cv.URLs) != 1 || cv.URLs[0] != want {
			t.Errorf("%s URLs %v, want %q", name, cv.URLs, want)
		}
	}
}

func TestBuildRepoUnknownKarmadaVersion(t *testing.T) {
	t.Parallel()
	_, err := BuildRepo(t.TempDir(), RepoOptions{KarmadaVersion: "v0.0.1-nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "module cache") {
		t.Errorf("err = %v, want the chart not found in the module cache", err)
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	url, err := Serve(ctx, "127.0.0.1:0", r)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}

	// Helm's own repository client finds and fetches every chart.
	getters := getter.All(cli.New())
	for name := range r.Files {
		t.Run(name, func(t *testing.T) {
			chartURL, err := repo.FindChartInRepoURL(url, name, versionOf(r, name), "", "", "", getters)
			if err != nil {
				t.Fatalf("find %s: %v", name, err)
			}
			resp, err := client.Get(chartURL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %v", chartURL, resp.StatusCode, err)
			}
			want, err := os.ReadFile(r.ChartPath(name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("GET %s: %d bytes differ from the archive's %d", chartURL, len(body), len(want))
			}
			c, err := loader.LoadArchive(bytes.NewReader(body))
			if err != nil || c.Name() != name {
				t.Errorf("served archive loads as %v, %v", c, err)
			}
		})
	}

	cases := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/index.yaml", http.StatusOK},
		{http.MethodHead, "/" + r.Files[ChartBase], http.StatusOK},
		{http.MethodGet, "/nothing-1.0.0.tgz", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/../index.yaml", http.StatusOK},
		{http.MethodPost, "/index.yaml", http.StatusMethodNotAllowed},
	}
	for _, tc := range cases {
		req, err := http.NewRequestWithContext(ctx, tc.method, url+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}

	cancel()
	// Shutdown runs once the context ends; wait (bounded) until the listener is closed.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url + "/index.yaml")
		if err != nil {
			break
		}
		resp.Body.Close()
		select {
		case <-deadline:
			t.Fatal("server still answers after its context ended")
		case <-tick.C:
		}
	}
}
