// Package charts builds the lab's Helm chart repository: the real Karmada chart, copied from the
// karmada module in the Go module cache and pinned to its release, and Istio's own base, istiod
// and gateway charts, packaged from the istio.io/istio module in the Go module cache (pinned in
// lab/tools/istio/go.mod) with a version stamped in. No chart is fetched from the internet.
package charts

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
)

// Chart names in the repository.
const (
	ChartKarmada = "karmada"
	ChartBase    = "base"
	ChartIstiod  = "istiod"
	ChartGateway = "gateway"
)

// The Istio charts come from this module, at this version: a snapshot of Istio's main branch
// (the proxy serves no tagged release of istio.io/istio). lab/tools/istio/go.mod requires the
// same version, so build.sh downloads it; a test checks that they agree.
const (
	IstioModule        = "istio.io/istio"
	IstioModuleVersion = "v0.0.0-20260827124520-eed52ebb66ad"
)

// DefaultIstioVersion is the version (and appVersion) stamped on the Istio charts, which say
// 1.0.0 upstream until Istio's release builder stamps them: the Istio version the snapshot's
// VERSION file names ("1.31", as a patch version 1.31.0) with a pre-release suffix naming the
// snapshot, "dev.<commit time>.<commit>" (istioChartVersion derives it; a test checks they agree).
// It sorts below 1.31.0, as a build of the branch before that release should.
const DefaultIstioVersion = "1.31.0-dev.20260827124520.eed52ebb66ad"

// istioChartDirs are the charts' directories in the istio module, by chart name.
var istioChartDirs = map[string]string{
	ChartBase:    "manifests/charts/base",
	ChartIstiod:  "manifests/charts/istio-control/istio-discovery",
	ChartGateway: "manifests/charts/gateway",
}

const karmadaModule = "github.com/karmada-io/karmada"

// helperImageTags pin the chart's two helper images (certificate generation and kubectl in hook
// Jobs), which upstream leaves at "latest" even in releases. The lab never pulls them: the pins
// only keep a rendered release reproducible.
var helperImageTags = map[string]string{
	"cfssl":   "v1.6.5",
	"kubectl": "1.35.2",
}

//go:embed all:src
var sources embed.FS

// RepoOptions choose the chart versions and the URL the index points at.
type RepoOptions struct {
	// KarmadaVersion is the karmada module (and chart and image) version, e.g. "v1.18.2";
	// default: the version this binary was built with, else the one in the current module's go.mod.
	KarmadaVersion string
	// IstioVersion is the version and appVersion stamped on the Istio charts; default
	// DefaultIstioVersion (another one is for tests of upgrades: the charts stay the module's).
	IstioVersion string
	// BaseURL prefixes the chart URLs in index.yaml; empty keeps them relative to the index.
	BaseURL string
}

// Repo is a built chart repository: a flat directory of chart archives and index.yaml.
type Repo struct {
	Dir string
	// KarmadaVersion is the Karmada chart's version, with the leading "v" as upstream's releases.
	KarmadaVersion string
	IstioVersion   string
	// Files maps a chart name to its archive's file name in Dir.
	Files map[string]string
}

// ChartPath is the archive of the named chart, for loader.Load.
func (r *Repo) ChartPath(name string) string {
	f, ok := r.Files[name]
	if !ok {
		return ""
	}
	return filepath.Join(r.Dir, f)
}

// BuildRepo packages the Karmada chart and Istio's charts into dir (created if missing) and
// indexes them.
func BuildRepo(dir string, o RepoOptions) (*Repo, error) {
	if o.IstioVersion == "" {
		o.IstioVersion = DefaultIstioVersion
	}
	o.IstioVersion = strings.TrimPrefix(o.IstioVersion, "v")
	if o.KarmadaVersion == "" {
		v, err := moduleVersion(karmadaModule)
		if err != nil {
			return nil, fmt.Errorf("karmada version: %w", err)
		}
		o.KarmadaVersion = v
	}
	o.KarmadaVersion = "v" + strings.TrimPrefix(o.KarmadaVersion, "v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &Repo{Dir: dir, KarmadaVersion: o.KarmadaVersion, IstioVersion: o.IstioVersion, Files: map[string]string{}}

	karmada, err := karmadaChart(o.KarmadaVersion)
	if err != nil {
		return nil, err
	}
	if err := save(r, karmada); err != nil {
		return nil, err
	}
	istio, err := IstioModuleDir()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{ChartBase, ChartIstiod, ChartGateway} {
		c, err := istioChart(istio, name, o.IstioVersion)
		if err != nil {
			return nil, err
		}
		if err := save(r, c); err != nil {
			return nil, err
		}
	}

	idx, err := repo.IndexDirectory(dir, o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	for name := range r.Files {
		if !idx.Has(name, versionOf(r, name)) {
			return nil, fmt.Errorf("index %s: chart %s missing", dir, name)
		}
	}
	idx.SortEntries()
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		return nil, err
	}
	return r, nil
}

func versionOf(r *Repo, name string) string {
	if name == ChartKarmada {
		return r.KarmadaVersion
	}
	return r.IstioVersion
}

func save(r *Repo, c *chart.Chart) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("chart %s: %w", c.Name(), err)
	}
	p, err := chartutil.Save(c, r.Dir)
	if err != nil {
		return fmt.Errorf("package %s: %w", c.Name(), err)
	}
	r.Files[c.Name()] = filepath.Base(p)
	return nil
}

// IstioModuleDir is the directory of the istio module at IstioModuleVersion in the Go module
// cache, downloaded through the module proxy when it is not there yet (build.sh downloads it
// with the lab's binaries; once cached this needs no network).
func IstioModuleDir() (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("go", "mod", "download", "-json", IstioModule+"@"+IstioModuleVersion)
	// Outside any module and workspace: the download must not touch a go.mod or go.sum.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &mod); jerr == nil && mod.Error != "" {
		err = errors.New(mod.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s (make lab-bin downloads it): %w: %s", IstioModule, IstioModuleVersion, err, strings.TrimSpace(stderr.String()))
	}
	if mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no directory", IstioModule, IstioModuleVersion)
	}
	return mod.Dir, nil
}

// istioChart loads one of Istio's charts from the istio module directory and stamps version
// on it (version and appVersion; upstream's say 1.0.0).
func istioChart(moduleDir, name, version string) (*chart.Chart, error) {
	c, err := loader.LoadDir(filepath.Join(moduleDir, filepath.FromSlash(istioChartDirs[name])))
	if err != nil {
		return nil, fmt.Errorf("load istio chart %s: %w", name, err)
	}
	if c.Name() != name {
		return nil, fmt.Errorf("istio chart in %s is named %q, want %q", istioChartDirs[name], c.Name(), name)
	}
	c.Metadata.Version, c.Metadata.AppVersion = version, version
	return c, nil
}

var pseudoVersion = regexp.MustCompile(`^v0\.0\.0-(\d{14})-([0-9a-f]{12})$`)

// istioChartVersion is the version a snapshot of the istio module stands for: the Istio version
// its VERSION file names ("1.31" becomes 1.31.0), with the pre-release suffix
// dev.<commit time>.<commit> taken from the module's pseudo-version.
func istioChartVersion(moduleDir, moduleVersion string) (string, error) {
	m := pseudoVersion.FindStringSubmatch(moduleVersion)
	if m == nil {
		return "", fmt.Errorf("%s is not a pseudo-version of a snapshot", moduleVersion)
	}
	data, err := os.ReadFile(filepath.Join(moduleDir, "VERSION"))
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(data))
	if !regexp.MustCompile(`^\d+\.\d+$`).MatchString(v) {
		return "", fmt.Errorf("VERSION of %s says %q, not major.minor", moduleVersion, v)
	}
	return v + ".0-dev." + m[1] + "." + m[2], nil
}

// embeddedChart loads one of our chart sources (the common library chart).
func embeddedChart(root string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(sources, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := sources.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, root+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", root, err)
	}
	return c, nil
}

// karmadaChart copies the chart out of the karmada module into a temporary directory, pins its
// images and version, vendors our common library chart in place of the unreachable upstream one,
// and loads it.
func karmadaChart(version string) (*chart.Chart, error) {
	src, err := karmadaChartDir(version)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "karmada-chart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, ChartKarmada)
	if err := copyTree(src, dst); err != nil {
		return nil, fmt.Errorf("copy karmada chart: %w", err)
	}

	valuesPath := filepath.Join(dst, chartutil.ValuesfileName)
	values, err := os.ReadFile(valuesPath)
	if err != nil {
		return nil, err
	}
	pinned, err := pinImages(values, version)
	if err != nil {
		return nil, fmt.Errorf("karmada %s values.yaml: %w", version, err)
	}
	if err := os.WriteFile(valuesPath, pinned, 0o644); err != nil {
		return nil, err
	}
	// The lock names the upstream repository; the vendored chart replaces it.
	if err := os.Remove(filepath.Join(dst, "Chart.lock")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := writeEmbedded("src/common", filepath.Join(dst, "charts", "common")); err != nil {
		return nil, err
	}

	c, err := loader.LoadDir(dst)
	if err != nil {
		return nil, fmt.Errorf("load karmada chart: %w", err)
	}
	c.Lock = nil
	c.Metadata.Version, c.Metadata.AppVersion = version, version
	var common *chart.Chart
	for _, d := range c.Dependencies() {
		if d.Name() == "common" {
			common = d
		}
	}
	if common == nil {
		return nil, errors.New("karmada chart: vendored common chart not loaded")
	}
	// A dependency whose version range does not match is dropped at render time, so name ours exactly.
	var deps []*chart.Dependency
	for _, d := range c.Metadata.Dependencies {
		if d.Name == "common" {
			d = &chart.Dependency{Name: "common", Version: common.Metadata.Version}
		}
		deps = append(deps, d)
	}
	c.Metadata.Dependencies = deps
	if err := action.CheckDependencies(c, c.Metadata.Dependencies); err != nil {
		return nil, fmt.Errorf("karmada chart: %w", err)
	}
	if err := checkNoLatest(c.Values, ""); err != nil {
		return nil, fmt.Errorf("karmada chart: %w", err)
	}
	return c, nil
}

var (
	anchorLine   = regexp.MustCompile(`(?m)^(karmadaImageVersion:\s*&karmadaImageVersion\s+)\S+`)
	topLevelKey  = regexp.MustCompile(`^([A-Za-z0-9_]+):`)
	latestTagRow = regexp.MustCompile(`^(\s+tag:\s*)["']?latest["']?\s*$`)
)

// pinImages sets the karmadaImageVersion anchor (every component's image.tag is an alias of it)
// and the helper images' tags. Any other "latest" tag is an error: it would float.
func pinImages(values []byte, version string) ([]byte, error) {
	if !anchorLine.Match(values) {
		return nil, errors.New("no karmadaImageVersion anchor")
	}
	values = anchorLine.ReplaceAll(values, []byte("${1}"+version))
	lines := strings.Split(string(values), "\n")
	top := ""
	for i, l := range lines {
		if m := topLevelKey.FindStringSubmatch(l); m != nil {
			top = m[1]
		}
		m := latestTagRow.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		tag, ok := helperImageTags[top]
		if !ok {
			return nil, fmt.Errorf("line %d: %s.image.tag is latest", i+1, top)
		}
		lines[i] = m[1] + tag
	}
	return []byte(strings.Join(lines, "\n")), nil
}

// checkNoLatest reports any tag (a "tag" key) left at latest in a values tree.
func checkNoLatest(v map[string]any, prefix string) error {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		switch t := v[k].(type) {
		case map[string]any:
			if err := checkNoLatest(t, p); err != nil {
				return err
			}
		case string:
			if k == "tag" && (t == "latest" || t == "") {
				return fmt.Errorf("%s is %q", p, t)
			}
		}
	}
	return nil
}

// karmadaChartDir finds charts/karmada of the karmada module in the Go module cache.
func karmadaChartDir(version string) (string, error) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	cache := strings.TrimSpace(string(out))
	if cache == "" {
		return "", errors.New("go env GOMODCACHE is empty")
	}
	dir := filepath.Join(cache, filepath.FromSlash(escapeModulePath(karmadaModule)+"@"+version), "charts", ChartKarmada)
	if _, err := os.Stat(filepath.Join(dir, chartutil.ChartfileName)); err != nil {
		return "", fmt.Errorf("karmada chart %s not in the module cache (go mod download %s@%s): %w", version, karmadaModule, version, err)
	}
	return dir, nil
}

// escapeModulePath is the module cache's case encoding: an upper-case letter becomes "!" and its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// moduleVersion is the version of a module this binary was built with, else the one the
// current directory's main module requires.
func moduleVersion(mod string) (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == mod {
				if d.Replace != nil && d.Replace.Version != "" {
					return d.Replace.Version, nil
				}
				return d.Version, nil
			}
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w: %s", mod, err, strings.TrimSpace(stderr.String()))
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return "", fmt.Errorf("go list -m %s: no version", mod)
	}
	return v, nil
}

// copyTree copies a directory of regular files (module cache files are read-only; copies are not).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// writeEmbedded writes one of our chart sources to disk.
func writeEmbedded(root, dst string) error {
	return fs.WalkDir(sources, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(p, root), "/")))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := sources.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// Handler serves the repository: index.yaml and the chart archives, nothing else.
func (r *Repo) Handler() http.Handler {
	files := http.FileServer(http.Dir(r.Dir))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := path.Clean("/" + req.URL.Path)
		if name != "/index.yaml" && !(path.Dir(name) == "/" && strings.HasSuffix(name, ".tgz")) {
			http.NotFound(w, req)
			return
		}
		files.ServeHTTP(w, req)
	})
}

// Serve serves the repository on listen (e.g. "127.0.0.1:0") until ctx is done, and returns its URL.
func Serve(ctx context.Context, listen string, r *Repo) (string, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}
