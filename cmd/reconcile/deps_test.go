package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The binary that runs with a cloud token does not link the lab (a fake Linode API, a process
// spawner, embedded charts): that is cmd/reconcile-lab. Test files may still use the lab.
func TestNoLabDependency(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool to list the dependencies with")
		}
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	const lab = "github.com/reconcile-dev/reconcile/lab"
	n := 0
	for _, pkg := range strings.Fields(string(out)) {
		n++
		if pkg == lab || strings.HasPrefix(pkg, lab+"/") {
			t.Errorf("cmd/reconcile depends on %s; the lab belongs in cmd/reconcile-lab", pkg)
		}
	}
	if n == 0 {
		t.Fatal("go list -deps printed no packages")
	}
}
