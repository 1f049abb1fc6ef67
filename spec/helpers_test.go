package spec

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// baseFleet is a small valid fleet as a generic document, for cases to modify.
func baseFleet() map[string]any {
	pool := func() any { return map[string]any{"type": "g6-standard-2", "count": 3} }
	member := func(name, region, network string) any {
		return map[string]any{"name": name, "region": region, "k8sVersion": "1.33", "pools": []any{pool()}, "network": network}
	}
	return map[string]any{
		"apiVersion": APIVersion,
		"kind":       Kind,
		"metadata":   map[string]any{"name": "test"},
		"manager": map[string]any{
			"name": "cluster-manager", "region": "eu-west", "k8sVersion": "1.33", "pools": []any{pool()},
			"karmada": map[string]any{"chart": map[string]any{"repo": "https://example.com/charts", "version": "v1.18.2"}},
		},
		"members": []any{member("eu", "eu-west", "network1"), member("ap", "ap-south", "network2")},
		"mesh":    map[string]any{"version": "1.30.3", "meshID": "mesh1"},
		"workloads": []any{map[string]any{
			"name":      "hello",
			"resources": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"}},
			"weights":   map[string]any{"eu": 1, "ap": 2},
		}},
	}
}

var segment = regexp.MustCompile(`^([^\[]*)((?:\[\d+\])*)$`)

// walkTo returns the container holding the last segment of path and a setter/deleter for it.
func walkTo(t *testing.T, doc map[string]any, path string) (set func(any), del func()) {
	t.Helper()
	var cur any = doc
	parts := strings.Split(path, ".")
	type step struct {
		key string
		idx int // -1 for a key
	}
	var steps []step
	for _, p := range parts {
		m := segment.FindStringSubmatch(p)
		if m == nil {
			t.Fatalf("bad path %q", path)
		}
		steps = append(steps, step{key: m[1], idx: -1})
		for _, is := range regexp.MustCompile(`\d+`).FindAllString(m[2], -1) {
			i, _ := strconv.Atoi(is)
			steps = append(steps, step{idx: i})
		}
	}
	for _, s := range steps[:len(steps)-1] {
		if s.idx >= 0 {
			cur = cur.([]any)[s.idx]
			continue
		}
		m := cur.(map[string]any)
		if _, ok := m[s.key]; !ok {
			m[s.key] = map[string]any{}
		}
		cur = m[s.key]
	}
	last := steps[len(steps)-1]
	if last.idx >= 0 {
		list := cur.([]any)
		return func(v any) { list[last.idx] = v }, func() { t.Fatalf("cannot delete a list item in %q", path) }
	}
	m := cur.(map[string]any)
	return func(v any) { m[last.key] = v }, func() { delete(m, last.key) }
}

func set(t *testing.T, doc map[string]any, path string, v any) {
	t.Helper()
	s, _ := walkTo(t, doc, path)
	s(v)
}

func del(t *testing.T, doc map[string]any, path string) {
	t.Helper()
	_, d := walkTo(t, doc, path)
	d()
}

// writeFleet writes doc as fleet.yaml into a fresh directory, with extra files beside it.
func writeFleet(t *testing.T, doc any, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	var data []byte
	switch d := doc.(type) {
	case string:
		data = []byte(d)
	default:
		var err error
		if data, err = yaml.Marshal(doc); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadErrors loads a fleet that must be invalid and returns its problems.
func loadErrors(t *testing.T, path string) []FieldError {
	t.Helper()
	f, err := Load(path)
	if err == nil {
		t.Fatalf("Load succeeded (%+v), want errors", f.Metadata)
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error is %T (%v), want *spec.Errors", err, err)
	}
	return errs.List
}

func mustLoad(t *testing.T, path string) *Fleet {
	t.Helper()
	f, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return f
}
