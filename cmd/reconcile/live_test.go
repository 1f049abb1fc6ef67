package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/lab/labtest"
)

// The live table is for a terminal only: a buffer, a file or a pipe (CI, tests) gets the
// plain lines as before, and dry runs and JSON output never get one.
func TestNoLiveTableWithoutATerminal(t *testing.T) {
	t.Parallel()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, c := range []struct {
		name string
		cmd  string
		o    options
		out  any
	}{
		{"buffer", "", options{once: true, output: "text"}, &bytes.Buffer{}},
		{"file", "apply", options{output: "text"}, file},
		{"pipe", "", options{once: true, output: "text"}, w},
		{"dry run", "plan", options{output: "text"}, os.Stdout},
		{"json", "", options{once: true, output: "json"}, os.Stdout},
		{"daemon", "", options{output: "text"}, os.Stdout},
	} {
		out, _ := c.out.(interface{ Write([]byte) (int, error) })
		if tb := liveTable(c.cmd, c.o, out); tb != nil {
			tb.Close()
			t.Errorf("%s: a live table", c.name)
		}
	}
	if got := logsAbove(nil, file); got != file {
		t.Error("logs to a file are rerouted")
	}
}

// With a table (a terminal), the steps' lines are drawn above it and it is cleared at the end.
func TestEngineWithLiveTable(t *testing.T) {
	t.Parallel()
	fleet := loadExample(t, "regions")
	fw := newFakeWorld(testNow)
	var out labtest.SyncBuffer
	r := newTestReconciler(t, fw, &out)
	r.Table = executor.NewTable(&out, 100)
	if _, err := r.Reconcile(context.Background(), fleet, false); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"running ", " steps:\n", "cluster/eu: done after ", "\x1b[J", "Apply complete: "} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(s, ": starting\n") {
		t.Error("start lines printed although the table shows the running steps")
	}
	if i, j := strings.LastIndex(s, "\x1b[J"), strings.LastIndex(s, "running "); j > i {
		t.Error("the table is not cleared at the end")
	}
}
