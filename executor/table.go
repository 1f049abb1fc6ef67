package executor

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/reconcile-dev/reconcile/state/progress"
)

// Table draws the steps a walk is running, with how long each has run and what it waits for,
// at the bottom of a terminal: redrawn at most once a second, lines printed through it appear
// above it, and Close clears it. It is only for a terminal (`--once` on a tty); logs and
// pipes get plain lines and never a Table.
type Table struct {
	mu      sync.Mutex
	out     io.Writer
	width   int
	now     func() time.Time
	running map[string]*tableRow
	drawn   int       // lines of the table on screen
	drawnAt time.Time // when the table was last drawn
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

type tableRow struct {
	began time.Time
	wait  string // the step's current wait, "" when none
}

// tableRows bounds the rows drawn; the rest are counted.
const tableRows = 15

// NewTable starts a table on out, a terminal width columns wide (80 when not known), redrawn
// every second until Close.
func NewTable(out io.Writer, width int) *Table {
	if width <= 0 {
		width = 80
	}
	t := &Table{out: out, width: width, now: time.Now, running: map[string]*tableRow{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
				t.mu.Lock()
				t.redraw()
				t.mu.Unlock()
			}
		}
	}()
	return t
}

// Event follows the walk: a step that starts gets a row, one that ends loses it.
func (t *Table) Event(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Type {
	case EventStart:
		t.running[e.Step] = &tableRow{began: t.now()}
	case EventDone, EventFailed, EventSkipped:
		delete(t.running, e.Step)
	}
	if t.now().Sub(t.drawnAt) >= time.Second {
		t.redraw()
	}
}

// Progress is a progress.Sink: the step's row shows what it waits for.
func (t *Table) Progress(r progress.Report) {
	t.mu.Lock()
	defer t.mu.Unlock()
	row := t.running[r.Step]
	if row == nil {
		return
	}
	row.wait = ""
	if !r.Done {
		row.wait = r.Line()
	}
}

// Println prints a line above the table.
func (t *Table) Println(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clear()
	fmt.Fprintln(t.out, line)
	t.redraw()
}

// Above returns a writer whose output appears above the table: for logs written to the same
// terminal (stderr), which would otherwise tear it.
func (t *Table) Above(w io.Writer) io.Writer { return aboveTable{t: t, w: w} }

type aboveTable struct {
	t *Table
	w io.Writer
}

func (a aboveTable) Write(p []byte) (int, error) {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	a.t.clear()
	n, err := a.w.Write(p)
	a.t.redraw()
	return n, err
}

// Close stops the redraws and clears the table. Calling it twice is fine.
func (t *Table) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.clear()
	t.mu.Unlock()
	close(t.stop)
	<-t.done
}

// clear erases the table drawn last (cursor up over its lines, erase to the end of screen).
func (t *Table) clear() {
	if t.drawn > 0 {
		fmt.Fprintf(t.out, "\r\x1b[%dA\x1b[J", t.drawn)
		t.drawn = 0
	}
}

// redraw replaces the table on screen by the current one.
func (t *Table) redraw() {
	t.clear()
	if t.closed || len(t.running) == 0 {
		return
	}
	lines := t.lines()
	fmt.Fprint(t.out, strings.Join(lines, "\n")+"\n")
	t.drawn, t.drawnAt = len(lines), t.now()
}

// lines are the table's lines, each cut to the terminal's width.
func (t *Table) lines() []string {
	steps := make([]string, 0, len(t.running))
	for s := range t.running {
		steps = append(steps, s)
	}
	sort.Slice(steps, func(i, j int) bool {
		a, b := t.running[steps[i]], t.running[steps[j]]
		if !a.began.Equal(b.began) {
			return a.began.Before(b.began)
		}
		return steps[i] < steps[j]
	})
	now := t.now()
	out := []string{fmt.Sprintf("running %d steps:", len(steps))}
	for i, s := range steps {
		if i == tableRows {
			out = append(out, fmt.Sprintf("  ... and %d more", len(steps)-tableRows))
			break
		}
		r := t.running[s]
		l := fmt.Sprintf("  %-6s %s", progress.Duration(now.Sub(r.began).Truncate(time.Second)), s)
		if r.wait != "" {
			l += "  " + r.wait
		}
		out = append(out, cut(l, t.width-1))
	}
	return out
}

// cut shortens s to n runes, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if n < 1 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
