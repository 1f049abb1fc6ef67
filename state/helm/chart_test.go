package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"github.com/reconcile-dev/reconcile/spec"
)

// configMapChart is a chart of one ConfigMap named after the release, holding .Values.data.
func configMapChart(name, version string) *chart.Chart {
	return &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version, Type: "application"},
		Values:   map[string]any{"data": map[string]any{"default": "yes"}},
		Templates: []*chart.File{{Name: "templates/configmap.yaml", Data: []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
  namespace: {{ .Release.Namespace }}
data:
{{- range $k, $v := .Values.data }}
  {{ $k }}: {{ $v | toString | quote }}
{{- end }}
`)}},
	}
}

// packageChart writes ch as a .tgz into dir and returns its path and sha256.
func packageChart(t *testing.T, ch *chart.Chart, dir string) (string, string) {
	t.Helper()
	path, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return path, hex.EncodeToString(sum[:])
}

// chartRepo serves index.yaml and archives like a Helm repository and counts requests.
type chartRepo struct {
	srv      *httptest.Server
	requests atomic.Int64
}

func newChartRepo(t *testing.T) *chartRepo {
	t.Helper()
	dir := t.TempDir()
	r := &chartRepo{}
	mux := http.NewServeMux()
	mux.Handle("/charts/", http.StripPrefix("/charts/", http.FileServer(http.Dir(dir))))
	index := repo.NewIndexFile()
	mux.HandleFunc("/index.yaml", func(w http.ResponseWriter, _ *http.Request) {
		b, err := yaml.Marshal(index)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		mux.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)

	add := func(ch *chart.Chart, baseURL string, digest func(string) string) {
		path, sum := packageChart(t, ch, dir)
		if err := index.MustAdd(ch.Metadata, filepath.Base(path), baseURL, digest(sum)); err != nil {
			t.Fatal(err)
		}
	}
	same := func(s string) string { return s }
	// 1.0.0 with a relative URL, 2.0.0 with an absolute one, 3.0.0 with a wrong digest,
	// v4.0.0 spelled with a "v" in the index.
	add(configMapChart("demo", "1.0.0"), "charts", same)
	add(configMapChart("demo", "2.0.0"), r.srv.URL+"/charts", func(s string) string { return "sha256:" + s })
	add(configMapChart("demo", "3.0.0"), "charts", func(string) string { return strings.Repeat("0", 64) })
	add(configMapChart("demo", "v4.0.0"), "charts", same)
	return r
}

func TestLoadChartFromRepository(t *testing.T) {
	t.Parallel()
	r := newChartRepo(t)
	cases := []struct {
		name, chart, version string
		wantVersion          string
		wantErr              []string
	}{
		{name: "relative URL", chart: "demo", version: "1.0.0", wantVersion: "1.0.0"},
		{name: "v prefix asked", chart: "demo", version: "v1.0.0", wantVersion: "1.0.0"},
		{name: "absolute URL", chart: "demo", version: "2.0.0", wantVersion: "2.0.0"},
		{name: "v prefix in index", chart: "demo", version: "4.0.0", wantVersion: "v4.0.0"},
		{name: "bad digest", chart: "demo", version: "3.0.0", wantErr: []string{"digest mismatch", strings.Repeat("0", 64)}},
		{name: "unknown version", chart: "demo", version: "9.9.9",
			wantErr: []string{"no version 9.9.9", "available: 1.0.0, 2.0.0, 3.0.0, v4.0.0"}},
		{name: "unknown chart", chart: "other", version: "1.0.0", wantErr: []string{`no chart "other"`, "it has: demo"}},
		{name: "no version", chart: "demo", wantErr: []string{"needs a version"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := spec.ChartSource{Repo: r.srv.URL, Name: tc.chart, Version: tc.version}
			ch, err := LoadChart(context.Background(), src, "unused", t.TempDir())
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("loaded %s %s, want an error", ch.Name(), ch.Metadata.Version)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.Name() != tc.chart || ch.Metadata.Version != tc.wantVersion {
				t.Errorf("loaded %s %s, want %s %s", ch.Name(), ch.Metadata.Version, tc.chart, tc.wantVersion)
			}
		})
	}
}

func TestLoadChartDefaultNameAndCache(t *testing.T) {
	t.Parallel()
	r := newChartRepo(t)
	cache := filepath.Join(t.TempDir(), "charts")
	src := spec.ChartSource{Repo: r.srv.URL + "/", Version: "2.0.0"}
	ch, err := LoadChart(context.Background(), src, "demo", cache)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "demo" {
		t.Fatalf("loaded %s, want the default name demo", ch.Name())
	}
	if n := r.requests.Load(); n != 2 {
		t.Errorf("first load made %d requests, want 2 (index and archive)", n)
	}
	entries, err := os.ReadDir(cache)
	if err != nil || len(entries) != 1 {
		t.Fatalf("cache holds %v (%v), want one archive", entries, err)
	}

	before := r.requests.Load()
	if _, err := LoadChart(context.Background(), src, "demo", cache); err != nil {
		t.Fatal(err)
	}
	if n := r.requests.Load() - before; n != 0 {
		t.Errorf("cached load made %d requests, want 0", n)
	}

	// Another version is another cache entry.
	if _, err := LoadChart(context.Background(), spec.ChartSource{Repo: r.srv.URL, Name: "demo", Version: "1.0.0"}, "", cache); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 2 {
		t.Errorf("cache holds %d archives, want 2", len(entries))
	}

	// A damaged cache entry is fetched again.
	if err := os.WriteFile(filepath.Join(cache, entries[0].Name()), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadChart(context.Background(), src, "demo", cache); err != nil {
		t.Fatalf("load over a damaged cache: %v", err)
	}
}

func TestLoadChartFromDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := chartutil.SaveDir(configMapChart("local", "0.1.0"), dir); err != nil {
		t.Fatal(err)
	}
	tgz, _ := packageChart(t, configMapChart("packed", "0.2.0"), t.TempDir())

	withDep := configMapChart("parent", "1.0.0")
	withDep.Metadata.Dependencies = []*chart.Dependency{{Name: "common", Version: "1.0.0", Repository: "https://charts.example"}}
	missingDir := t.TempDir()
	if err := chartutil.SaveDir(withDep, missingDir); err != nil {
		t.Fatal(err)
	}
	withDep.AddDependency(configMapChart("common", "1.0.0"))
	vendored, _ := packageChart(t, withDep, t.TempDir())

	cases := []struct {
		name, path, want string
		wantErr          string
	}{
		{name: "directory", path: filepath.Join(dir, "local"), want: "local 0.1.0"},
		{name: "tgz", path: tgz, want: "packed 0.2.0"},
		{name: "dependency vendored", path: vendored, want: "parent 1.0.0"},
		{name: "dependency missing", path: filepath.Join(missingDir, "parent"), wantErr: "missing in charts/ directory: common"},
		{name: "no such path", path: filepath.Join(dir, "nope"), wantErr: "nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch, err := LoadChart(context.Background(), spec.ChartSource{Path: tc.path}, "", "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.Name() + " " + ch.Metadata.Version; got != tc.want {
				t.Errorf("loaded %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLoadChartBadSources(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		src     spec.ChartSource
		wantErr string
	}{
		{name: "nothing", src: spec.ChartSource{}, wantErr: "no repo, oci or path"},
		{name: "oci without scheme", src: spec.ChartSource{OCI: "registry.example/charts/x", Version: "1.0.0"}, wantErr: "must start with oci://"},
		{name: "oci malformed", src: spec.ChartSource{OCI: "oci://Bad Host/charts/x", Version: "1.0.0"}, wantErr: "malformed OCI reference"},
		{name: "oci empty repository", src: spec.ChartSource{OCI: "oci://registry.example", Version: "1.0.0"}, wantErr: "malformed OCI reference"},
		{name: "oci bad version", src: spec.ChartSource{OCI: "oci://registry.example/charts/x", Version: "1.0 beta"}, wantErr: "malformed OCI reference"},
		{name: "oci no version", src: spec.ChartSource{OCI: "oci://registry.example/charts/x"}, wantErr: "no tag and no version"},
		{name: "repo not http", src: spec.ChartSource{Repo: "ftp://charts.example", Name: "x", Version: "1"}, wantErr: "not an http(s) URL"},
		{name: "repo password not shown", src: spec.ChartSource{Repo: "http://user:s3cret@127.0.0.21:1/charts", Name: "x", Version: "1"},
			wantErr: "user:xxxxx@127.0.0.21:1"},
		{name: "repo password not shown when invalid", src: spec.ChartSource{Repo: "ftp://user:s3cret@charts.example", Name: "x", Version: "1"},
			wantErr: "not an http(s) URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadChart(context.Background(), tc.src, "x", t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the repository password: %v", err)
			}
		})
	}
}
