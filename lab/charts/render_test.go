package charts

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// labKubeVersion is the kube-apiserver the lab runs; some Karmada templates depend on it.
var labKubeVersion = chartutil.KubeVersion{Version: "v1.36.3", Major: "1", Minor: "36"}

var (
	sharedOnce sync.Once
	sharedRepo *Repo
	sharedErr  error
	sharedDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// testRepo builds the repository once for the package's tests (it copies and packages the
// Karmada chart, which takes a few seconds).
func testRepo(t *testing.T) *Repo {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "lab-charts-")
		if sharedErr != nil {
			return
		}
		sharedRepo, sharedErr = BuildRepo(sharedDir, RepoOptions{})
	})
	if sharedErr != nil {
		t.Fatalf("BuildRepo: %v", sharedErr)
	}
	return sharedRepo
}

// object is one rendered Kubernetes object.
type object struct {
	Kind, Name, Namespace string
	Hook                  string
	Doc                   map[string]any
	Text                  string
}

// rendered is what a client-only install would create: regular objects and hooks.
type rendered []object

func (r rendered) find(kind, name string) (object, bool) {
	for _, o := range r {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return object{}, false
}

func (r rendered) kinds() map[string]int {
	out := map[string]int{}
	for _, o := range r {
		out[o.Kind]++
	}
	return out
}

func (r rendered) String() string {
	var lines []string
	for _, o := range r {
		h := ""
		if o.Hook != "" {
			h = " (hook " + o.Hook + ")"
		}
		lines = append(lines, fmt.Sprintf("%s %s/%s%s", o.Kind, o.Namespace, o.Name, h))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// render installs a packaged chart client-only (Helm's dry run), as `helm install --dry-run` does.
func render(t *testing.T, chartPath, namespace, release string, values map[string]any) (rendered, error) {
	t.Helper()
	c, err := loader.Load(chartPath)
	if err != nil {
		t.Fatalf("load %s: %v", chartPath, err)
	}
	return renderChart(c, namespace, release, values)
}

func renderChart(c *chart.Chart, namespace, release string, values map[string]any) (rendered, error) {
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun = true
	inst.ClientOnly = true
	inst.Replace = true
	inst.IncludeCRDs = true
	inst.ReleaseName = release
	inst.Namespace = namespace
	kv := labKubeVersion
	inst.KubeVersion = &kv
	rel, err := inst.Run(c, values)
	if err != nil {
		return nil, err
	}
	var out rendered
	add := func(text, hook string) error {
		if strings.TrimSpace(text) == "" {
			return nil
		}
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			return fmt.Errorf("rendered manifest does not parse: %w\n%s", err, text)
		}
		if doc == nil {
			return nil
		}
		md, _ := doc["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		ns, _ := md["namespace"].(string)
		kind, _ := doc["kind"].(string)
		out = append(out, object{Kind: kind, Name: name, Namespace: ns, Hook: hook, Doc: doc, Text: text})
		return nil
	}
	for _, text := range releaseutil.SplitManifests(rel.Manifest) {
		if err := add(text, ""); err != nil {
			return nil, err
		}
	}
	for _, h := range rel.Hooks {
		events := make([]string, 0, len(h.Events))
		for _, e := range h.Events {
			events = append(events, string(e))
		}
		if err := add(h.Manifest, strings.Join(events, ",")); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// images lists every container image of an object (pods, pod templates, job templates).
func images(doc map[string]any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				if k == "containers" || k == "initContainers" {
					if list, ok := e.([]any); ok {
						for _, c := range list {
							if cm, ok := c.(map[string]any); ok {
								if img, ok := cm["image"].(string); ok {
									out = append(out, img)
								}
							}
						}
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

// field walks a rendered object along keys (string keys for maps, int for lists).
func field(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := field(v, path...).(string)
	return s
}

// containerEnv is the env of a workload's first container, name -> value.
func containerEnv(doc map[string]any) map[string]string {
	out := map[string]string{}
	env, _ := field(doc, "spec", "template", "spec", "containers", 0, "env").([]any)
	for _, e := range env {
		name := str(e, "name")
		out[name] = str(e, "value")
	}
	return out
}

var _ = io.Discard
