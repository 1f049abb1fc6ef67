package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runLab(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runLab("version")
	if code != 0 || !strings.HasPrefix(out, "reconcile-lab ") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

func TestUsage(t *testing.T) {
	code, out, _ := runLab("help")
	if code != 0 || !strings.Contains(out, "reconcile-lab up") || strings.Contains(out, "reconcile lab") {
		t.Fatalf("help: exit %d, %q", code, out)
	}
	for _, args := range [][]string{nil, {"frobnicate"}} {
		if code, _, errs := runLab(args...); code != 1 || !strings.Contains(errs, "reconcile-lab up") {
			t.Errorf("%v: exit %d, stderr %q; want 1 with the usage", args, code, errs)
		}
	}
}

// env and down of a lab that does not run start nothing.
func TestNoLab(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runLab("env", "--dir", dir)
	if code != 1 || !strings.Contains(errs, "start it with `reconcile-lab up`") {
		t.Errorf("env without a lab: exit %d, stderr %q", code, errs)
	}
	code, out, errs := runLab("down", "--dir", dir)
	if code != 0 || !strings.Contains(out, "was not running") {
		t.Errorf("down without a lab: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
