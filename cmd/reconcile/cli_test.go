package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateExamples(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"../../examples/regions/fleet.yaml", "../../examples/existing/fleet.yaml"} {
		code, out, errs := runCLI(t, "validate", "-f", f)
		if code != 0 || !strings.Contains(out, "is valid") {
			t.Errorf("validate %s: exit %d, stdout %q, stderr %q", f, code, out, errs)
		}
	}
}

func TestValidateReportsEveryProblemWithPositions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	body := `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: broken
manager:
  name: manager
  kubeconfig: {path: ./kc}
  karmada:
    chart: {oci: oci://example.org/karmada, version: v1.18.2}
members:
  - name: one
    kubeconfig: {path: ./kc}
workloads:
  - name: web
    resources: [{apiVersion: apps/v1, kind: Deployment, name: web}]
    wieghts: {one: 1}
    weights:
      one: 1
      ghost: 2
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "validate", "-f", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q", code, out)
	}
	for _, want := range []string{
		path + ":16:5: workloads[0].wieghts:",
		path + ":19:7: workloads[0].weights.ghost:",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if out != "" {
		t.Errorf("stdout should be empty on invalid input, got %q", out)
	}
}

func TestSchemaAndVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "schema")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["properties"] == nil {
		t.Fatalf("schema: exit %d, not a JSON Schema: %.200s", code, out)
	}
	code, out, _ = runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "reconcile ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"frobnicate"},
		{"lab", "up"}, // the lab is reconcile-lab now
		{"--dry-run", "-f", "../../examples/existing/fleet.yaml"},
		{"--once", "-o", "yaml", "-f", "../../examples/existing/fleet.yaml"},
		{"--once", "-f", "does-not-exist.yaml"},
	} {
		if code, _, errs := runCLI(t, args...); code != 1 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q; want 1 with a message", args, code, errs)
		}
	}
}
