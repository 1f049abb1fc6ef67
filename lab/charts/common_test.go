package charts

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
)

// TestCommonHelpers renders the two helpers of our common library through a chart that calls them
// exactly as the Karmada chart's templates do.
func TestCommonHelpers(t *testing.T) {
	t.Parallel()
	common, err := embeddedChart("src/common")
	if err != nil {
		t.Fatal(err)
	}
	if common.Metadata.Type != "library" || common.Name() != "common" {
		t.Fatalf("common chart is %s of type %q", common.Name(), common.Metadata.Type)
	}
	const tpl = `apiVersion: v1
kind: ConfigMap
metadata:
  name: probe
data:
  image: {{ include "common.images.image" (dict "imageRoot" .Values.image "global" .Values.global) | quote }}
  pullSecrets: |
    {{- include "common.images.pullSecrets" (dict "images" (list .Values.image .Values.other) "global" .Values.global) | nindent 4 }}
`
	cases := []struct {
		name        string
		values      map[string]any
		image       string
		pullSecrets []string // names, in order; nil = no imagePullSecrets at all
	}{
		{
			name:   "registry, repository, tag",
			values: map[string]any{"image": map[string]any{"registry": "docker.io", "repository": "karmada/karmada-scheduler", "tag": "v1.18.2"}},
			image:  "docker.io/karmada/karmada-scheduler:v1.18.2",
		},
		{
			name: "global registry wins",
			values: map[string]any{
				"global": map[string]any{"imageRegistry": "registry.lab:5000"},
				"image":  map[string]any{"registry": "docker.io", "repository": "karmada/karmada-agent", "tag": "v1.18.2"},
			},
			image: "registry.lab:5000/karmada/karmada-agent:v1.18.2",
		},
		{
			name:   "no registry",
			values: map[string]any{"image": map[string]any{"repository": "etcd", "tag": "3.6.6-0"}},
			image:  "etcd:3.6.6-0",
		},
		{
			name:   "digest over tag",
			values: map[string]any{"image": map[string]any{"registry": "r", "repository": "x", "tag": "v1", "digest": "sha256:abc"}},
			image:  "r/x@sha256:abc",
		},
		{
			name: "pull secrets from global and images, deduplicated",
			values: map[string]any{
				"global": map[string]any{"imagePullSecrets": []any{"shared"}},
				"image":  map[string]any{"registry": "r", "repository": "x", "tag": "v1", "pullSecrets": []any{"mine", "shared"}},
				"other":  map[string]any{"repository": "y", "tag": "v2", "pullSecrets": []any{map[string]any{"name": "byname"}}},
			},
			image:       "r/x:v1",
			pullSecrets: []string{"shared", "mine", "byname"},
		},
		{
			name:   "empty pull secrets render nothing",
			values: map[string]any{"global": map[string]any{"imagePullSecrets": []any{}}, "image": map[string]any{"repository": "x", "tag": "v1", "pullSecrets": []any{}}},
			image:  "x:v1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			probe := &chart.Chart{
				Metadata:  &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "probe", Version: "0.1.0", Type: "application"},
				Templates: []*chart.File{{Name: "templates/probe.yaml", Data: []byte(tpl)}},
				Values:    map[string]any{"global": map[string]any{}, "image": map[string]any{}, "other": map[string]any{}},
			}
			probe.AddDependency(common)
			objs, err := renderChart(probe, "default", "probe", tc.values)
			if err != nil {
				t.Fatal(err)
			}
			cm, ok := objs.find("ConfigMap", "probe")
			if !ok {
				t.Fatalf("probe not rendered:\n%s", objs)
			}
			if got := str(cm.Doc, "data", "image"); got != tc.image {
				t.Errorf("image %q, want %q", got, tc.image)
			}
			ps := str(cm.Doc, "data", "pullSecrets")
			if tc.pullSecrets == nil {
				if strings.TrimSpace(ps) != "" {
					t.Errorf("pull secrets rendered for none:\n%s", ps)
				}
				return
			}
			want := "imagePullSecrets:\n"
			for _, n := range tc.pullSecrets {
				want += "  - name: " + n + "\n"
			}
			if strings.TrimSpace(ps) != strings.TrimSpace(want) {
				t.Errorf("pull secrets:\n%s\nwant:\n%s", ps, want)
			}
		})
	}
}
