package mesh

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/reconcile-dev/reconcile/spec"
)

func TestComponentChart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, p := range []string{"base/Chart.yaml", "istiod-1.30.3.tgz", "istiod-1.29.0.tgz", "gateway-1.30.3.tgz"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		src     spec.ChartSource
		chart   string
		want    spec.ChartSource
		wantErr bool
	}{
		{"repo takes the chart name", spec.ChartSource{Repo: "https://r", Version: "1.30.3"}, "istiod",
			spec.ChartSource{Repo: "https://r", Name: "istiod", Version: "1.30.3"}, false},
		{"repo replaces the chart name", spec.ChartSource{Repo: "https://r", Name: "istio", Version: "1.30.2"}, "gateway",
			spec.ChartSource{Repo: "https://r", Name: "gateway", Version: "1.30.2"}, false},
		{"oci prefix", spec.ChartSource{OCI: "oci://reg/istio/", Version: "1.30.3"}, "base",
			spec.ChartSource{OCI: "oci://reg/istio/base", Version: "1.30.3"}, false},
		{"directory with a chart subdirectory", spec.ChartSource{Path: dir}, "base",
			spec.ChartSource{Path: filepath.Join(dir, "base")}, false},
		{"directory with archives, version picks", spec.ChartSource{Path: dir, Version: "1.30.3"}, "istiod",
			spec.ChartSource{Path: filepath.Join(dir, "istiod-1.30.3.tgz"), Version: "1.30.3"}, false},
		{"directory with two archives and no version", spec.ChartSource{Path: dir}, "istiod", spec.ChartSource{}, true},
		{"directory with one archive", spec.ChartSource{Path: dir}, "gateway",
			spec.ChartSource{Path: filepath.Join(dir, "gateway-1.30.3.tgz")}, false},
		{"missing directory", spec.ChartSource{Path: filepath.Join(dir, "nope")}, "base", spec.ChartSource{}, true},
		{"no chart name", spec.ChartSource{Repo: "https://r", Version: "1.30.3"}, "", spec.ChartSource{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := componentChart(tc.src, tc.chart)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
