package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/helm"
)

// HelmSDK is Config.Helm over state/helm: charts are loaded with helm.LoadChart (cached in
// Release.CacheDir) and installed or upgraded with helm.Client.Ensure.
func HelmSDK(log *slog.Logger) func(*rest.Config) (HelmClient, error) {
	return func(cfg *rest.Config) (HelmClient, error) {
		c, err := helm.New(cfg, log)
		if err != nil {
			return nil, err
		}
		return sdkClient{c: c, log: log}, nil
	}
}

type sdkClient struct {
	c   *helm.Client
	log *slog.Logger
}

func (s sdkClient) Ensure(ctx context.Context, r Release) error {
	ch, err := helm.LoadChart(ctx, r.Chart, r.ChartName, r.CacheDir)
	if err != nil {
		return err
	}
	out, err := s.c.Ensure(ctx, helm.Release{Name: r.Name, Namespace: r.Namespace, Chart: ch, Values: r.Values,
		Timeout: r.Timeout, Wait: r.Wait, WaitForJobs: r.WaitForJobs, CreateNamespace: r.CreateNamespace})
	if err != nil {
		return err
	}
	if s.log != nil && out != helm.Unchanged {
		s.log.Info("mesh release", "release", r.Namespace+"/"+r.Name, "outcome", out.String())
	}
	return nil
}

func (s sdkClient) Uninstall(ctx context.Context, name, namespace string) error {
	return s.c.Uninstall(ctx, name, namespace, 0)
}

// componentChart is the mesh chart source narrowed to one component's chart. fleet.yaml's
// mesh.chart names where all three charts are: a repository (chart name per component), an
// OCI prefix (oci://host/path, the chart name is appended) or a local directory holding
// base, istiod and gateway as subdirectories or as <name>-<version>.tgz archives. The source
// carries the version (the planner defaults it to mesh.version).
func componentChart(src spec.ChartSource, chartName string) (spec.ChartSource, error) {
	if chartName == "" {
		return src, fmt.Errorf("mesh release names no chart")
	}
	switch {
	case src.Path != "":
		p, err := chartInDir(src.Path, chartName, src.Version)
		if err != nil {
			return src, err
		}
		src.Path = p
	case src.OCI != "":
		src.OCI = strings.TrimSuffix(src.OCI, "/") + "/" + chartName
	default:
		src.Name = chartName
	}
	return src, nil
}

func chartInDir(dir, name, version string) (string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("mesh chart path: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("mesh chart path %s is not a directory holding base, istiod and gateway", dir)
	}
	if fi, err := os.Stat(filepath.Join(dir, name, "Chart.yaml")); err == nil && !fi.IsDir() {
		return filepath.Join(dir, name), nil
	}
	if version != "" {
		p := filepath.Join(dir, name+"-"+strings.TrimPrefix(version, "v")+".tgz")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	matches, _ := filepath.Glob(filepath.Join(dir, name+"-[0-9]*.tgz"))
	sort.Strings(matches)
	if len(matches) == 1 {
		return matches[0], nil
	}
	return "", fmt.Errorf("mesh chart path %s holds no single chart %q (a %s/ directory or a %s-<version>.tgz)", dir, name, name, name)
}
