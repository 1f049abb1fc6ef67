// Package helm installs, upgrades, recovers and observes Helm releases through the Helm v3
// SDK (storage driver "secret"), and loads charts from repositories, OCI registries and disk.
package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	orasregistry "oras.land/oras-go/v2/registry"
	"sigs.k8s.io/yaml"

	"github.com/reconcile-dev/reconcile/spec"
)

// maxDownload bounds an index.yaml or chart archive read from a repository.
const maxDownload = 64 << 20

// fetchTimeout bounds one HTTP request to a chart repository.
const fetchTimeout = 2 * time.Minute

// LoadChart loads the chart src names: from a Helm repository (src.Repo, chart src.Name or
// defaultName, src.Version), an OCI registry (src.OCI) or disk (src.Path, a directory or .tgz).
// Downloaded archives are cached in cacheDir keyed by source, name and version, so a chart
// version is fetched once. A chart whose Chart.yaml lists dependencies must carry them.
func LoadChart(ctx context.Context, src spec.ChartSource, defaultName, cacheDir string) (*chart.Chart, error) {
	name := src.Name
	if name == "" {
		name = defaultName
	}
	var (
		ch   *chart.Chart
		err  error
		what string
	)
	switch {
	case src.Path != "":
		what = src.Path
		ch, err = loader.Load(src.Path)
	case src.OCI != "":
		what = src.OCI
		ch, err = loadOCI(ctx, src.OCI, src.Version, cacheDir)
	case src.Repo != "":
		what = redact(src.Repo) + " " + name
		ch, err = loadRepo(ctx, src.Repo, name, src.Version, cacheDir)
	default:
		return nil, errors.New("chart: no repo, oci or path given")
	}
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", what, err)
	}
	if err := checkDependencies(ch); err != nil {
		return nil, fmt.Errorf("chart %s: %w", what, err)
	}
	return ch, nil
}

func checkDependencies(ch *chart.Chart) error {
	if ch.Metadata == nil || len(ch.Metadata.Dependencies) == 0 {
		return nil
	}
	if err := action.CheckDependencies(ch, ch.Metadata.Dependencies); err != nil {
		return fmt.Errorf("dependencies: %w (vendor them into charts/, e.g. with `helm dependency build`)", err)
	}
	return nil
}

// loadRepo resolves name at version in the repository index, downloads the archive (or takes it
// from the cache) and loads it.
func loadRepo(ctx context.Context, repoURL, name, version, cacheDir string) (*chart.Chart, error) {
	if version == "" {
		return nil, errors.New("a repository chart needs a version")
	}
	base, err := url.Parse(strings.TrimSuffix(repoURL, "/") + "/")
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("repository URL %q is not an http(s) URL", redact(repoURL))
	}
	cached := cachePath(cacheDir, "repo", repoURL, name, version)
	if cached != "" {
		if data, err := os.ReadFile(cached); err == nil {
			if ch, err := loadArchive(data, name); err == nil {
				return ch, nil
			}
			// A damaged cache entry is fetched again below.
		}
	}

	indexURL := base.ResolveReference(&url.URL{Path: "index.yaml"})
	raw, err := download(ctx, indexURL.String())
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	var index repo.IndexFile
	if err := yaml.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("index %s: %w", indexURL.Redacted(), err)
	}
	cv, err := pickVersion(index, name, version)
	if err != nil {
		return nil, err
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("index lists %s %s without a download URL", name, cv.Version)
	}
	ref, err := url.Parse(cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%s %s: download URL: %w", name, cv.Version, err)
	}
	archiveURL := base.ResolveReference(ref)
	data, err := download(ctx, archiveURL.String())
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, cv.Version, err)
	}
	if cv.Digest != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, strings.TrimPrefix(cv.Digest, "sha256:")) {
			return nil, fmt.Errorf("%s %s: digest mismatch: index says sha256:%s, download %s is sha256:%s",
				name, cv.Version, strings.TrimPrefix(cv.Digest, "sha256:"), archiveURL.Redacted(), got)
		}
	}
	ch, err := loadArchive(data, name)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, cv.Version, err)
	}
	if cached != "" {
		if err := writeCache(cached, data); err != nil {
			return nil, fmt.Errorf("chart cache: %w", err)
		}
	}
	return ch, nil
}

// pickVersion finds version in the index, with or without a leading "v" on either side.
func pickVersion(index repo.IndexFile, name, version string) (*repo.ChartVersion, error) {
	versions, ok := index.Entries[name]
	if !ok || len(versions) == 0 {
		var names []string
		for n := range index.Entries {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("repository has no chart %q (it has: %s)", name, listOrNone(names))
	}
	want := strings.TrimPrefix(version, "v")
	var have []string
	for _, cv := range versions {
		if cv == nil || cv.Metadata == nil {
			continue
		}
		if strings.TrimPrefix(cv.Version, "v") == want {
			return cv, nil
		}
		have = append(have, cv.Version)
	}
	sort.Strings(have)
	return nil, fmt.Errorf("repository has no version %s of chart %q (available: %s)", version, name, listOrNone(have))
}

// redact hides a password in a URL ("https://user:xxxxx@host/...").
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func download(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", req.URL.Redacted(), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL.Redacted(), err)
	}
	if len(data) > maxDownload {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", req.URL.Redacted(), maxDownload)
	}
	return data, nil
}

// loadArchive loads a chart archive and checks that it is the chart asked for.
func loadArchive(data []byte, name string) (*chart.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if name != "" && ch.Name() != name {
		return nil, fmt.Errorf("archive holds chart %q, not %q", ch.Name(), name)
	}
	return ch, nil
}

// loadOCI pulls ref (oci://host/path/chart, tagged with version unless it carries a tag or
// digest) through Helm's registry client.
func loadOCI(ctx context.Context, ref, version, cacheDir string) (*chart.Chart, error) {
	if !registry.IsOCI(ref) {
		return nil, fmt.Errorf("OCI reference %q must start with oci://", ref)
	}
	raw := strings.TrimPrefix(ref, "oci://")
	parsed, err := orasregistry.ParseReference(raw)
	if err != nil {
		// Without a tag the parser still checks registry and repository.
		return nil, fmt.Errorf("malformed OCI reference %q: %w", ref, err)
	}
	if parsed.Reference == "" {
		if version == "" {
			return nil, fmt.Errorf("OCI reference %q has no tag and no version is given", ref)
		}
		// OCI tags cannot hold "+": Helm pushes semver build metadata with "_" instead.
		raw += ":" + strings.ReplaceAll(version, "+", "_")
		if _, err := orasregistry.ParseReference(raw); err != nil {
			return nil, fmt.Errorf("malformed OCI reference %q with version %q: %w", ref, version, err)
		}
	}
	cached := cachePath(cacheDir, "oci", raw, "", "")
	if cached != "" {
		if data, err := os.ReadFile(cached); err == nil {
			if ch, err := loadArchive(data, ""); err == nil {
				return ch, nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client, err := registry.NewClient(registry.ClientOptWriter(io.Discard))
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	res, err := client.Pull(raw, registry.PullOptWithChart(true))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", raw, err)
	}
	if res.Chart == nil || len(res.Chart.Data) == 0 {
		return nil, fmt.Errorf("pull %s: no chart layer", raw)
	}
	ch, err := loadArchive(res.Chart.Data, "")
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", raw, err)
	}
	if cached != "" {
		if err := writeCache(cached, res.Chart.Data); err != nil {
			return nil, fmt.Errorf("chart cache: %w", err)
		}
	}
	return ch, nil
}

// cachePath names the cached archive of one chart version ("" when caching is off).
func cachePath(cacheDir, kind, source, name, version string) string {
	if cacheDir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(kind + "\x00" + source + "\x00" + name + "\x00" + version))
	file := hex.EncodeToString(sum[:16]) + ".tgz"
	if name != "" {
		file = safeName(name) + "-" + safeName(version) + "-" + file
	}
	return filepath.Join(cacheDir, file)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// writeCache writes through a temporary file and a rename, so a reader never sees half a file.
func writeCache(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".chart-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
