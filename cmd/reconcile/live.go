package main

import (
	"io"
	"os"

	"golang.org/x/term"

	"github.com/reconcile-dev/reconcile/executor"
)

// liveTable is the table of running steps an applying `--once` with a text plan draws when
// stdout is a terminal; nil otherwise (a pipe, a file, CI, tests: their output never changes).
func liveTable(cmd string, o options, stdout io.Writer) *executor.Table {
	once := o.once || cmd == "apply"
	if !once || o.dryRun || cmd == "plan" || cmd == "validate" || cmd == "state migrate" || o.output != "text" {
		return nil
	}
	width, ok := terminal(stdout)
	if !ok {
		return nil
	}
	return executor.NewTable(stdout, width)
}

// logsAbove makes logs written to stderr appear above the table when stderr is the terminal
// too; logs to a file or a pipe are left as they are.
func logsAbove(t *executor.Table, stderr io.Writer) io.Writer {
	if _, ok := terminal(stderr); !ok {
		return stderr
	}
	return t.Above(stderr)
}

// terminal reports whether w is a terminal, and its width (0 when not known).
func terminal(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		width = 0
	}
	return width, true
}
