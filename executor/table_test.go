package executor

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/progress"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTableShowsRunningStepsAndClears(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	tb := NewTable(&out, 100)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tb.mu.Lock()
	tb.now = func() time.Time { return now }
	tb.mu.Unlock()
	tb.Event(Event{Step: "manager/karmada/release", Type: EventStart})
	tb.Event(Event{Step: "cluster/eu", Type: EventStart})
	tb.Progress(progress.Report{Step: "manager/karmada/release", What: "helm install of karmada-system/karmada",
		Elapsed: 45 * time.Second, Bound: 10 * time.Minute, State: "helm: Job is not completed: karmada-system/pre-install"})
	tb.mu.Lock()
	now = now.Add(47 * time.Second)
	tb.redraw()
	tb.mu.Unlock()
	tb.Println("cluster/eu: done after 3s")
	tb.Event(Event{Step: "cluster/eu", Type: EventDone})
	tb.Close()
	tb.Close()
	s := out.String()
	for _, want := range []string{
		"running 2 steps:\n",
		"  47s    manager/karmada/release  waiting for helm install of karmada-system/karmada: 45s of 10m0s…\n",
		"  47s    cluster/eu\n",
		"\r\x1b[3A\x1b[Jcluster/eu: done after 3s\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table output lacks %q:\n%q", want, s)
		}
	}
	if !strings.HasSuffix(s, "\x1b[J") {
		t.Errorf("the table is not cleared at the end:\n%q", s)
	}
}

func TestTableAboveKeepsLogsOutOfTheTable(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	tb := NewTable(&out, 0)
	tb.Event(Event{Step: "member/eu/ready", Type: EventStart})
	tb.mu.Lock()
	tb.redraw()
	tb.mu.Unlock()
	if _, err := tb.Above(&out).Write([]byte("level=INFO msg=x\n")); err != nil {
		t.Fatal(err)
	}
	tb.Close()
	if s := out.String(); !strings.Contains(s, "\r\x1b[2A\x1b[Jlevel=INFO msg=x\nrunning 1 steps:\n") {
		t.Errorf("a log line is not written above the table:\n%q", s)
	}
}
