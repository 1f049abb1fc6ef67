package progress

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination safe for the reporting goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newLog() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// waitFor polls until cond holds; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLongWaitLogsElapsedBoundAndState(t *testing.T) {
	t.Parallel()
	log, buf := newLog()
	ctx := WithInterval(WithStep(context.Background(), "member/eu/ready"), 20*time.Millisecond)
	w := Start(ctx, log, "cluster eu Ready", 5*time.Minute)
	w.Set("Ready=False reason ClusterNotReachable")
	waitFor(t, func() bool { return strings.Contains(buf.String(), "waiting for") })
	w.End()
	w.End() // twice is fine
	out := buf.String()
	for _, want := range []string{
		"level=INFO",
		`msg="waiting for cluster eu Ready: `,
		" of 5m0s, Ready=False reason ClusterNotReachable",
		"step=member/eu/ready",
		`for="cluster eu Ready"`,
		"bound=5m0s",
		"elapsed=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// Nothing is logged once the wait ended.
	n := strings.Count(buf.String(), "waiting for")
	time.Sleep(60 * time.Millisecond)
	if m := strings.Count(buf.String(), "waiting for"); m != n {
		t.Errorf("%d lines after End, want none", m-n)
	}
}

func TestShortWaitLogsNothing(t *testing.T) {
	t.Parallel()
	log, buf := newLog()
	w := Start(WithInterval(context.Background(), time.Hour), log, "a kubeconfig", time.Minute)
	w.Set("503 not yet available")
	w.End()
	if s := buf.String(); s != "" {
		t.Errorf("a wait shorter than the interval logged:\n%s", s)
	}
}

func TestDefaultIntervalAndNilWait(t *testing.T) {
	t.Parallel()
	if got := Interval(context.Background()); got != 15*time.Second {
		t.Errorf("default interval %s, want 15s", got)
	}
	if got := Interval(WithInterval(context.Background(), 0)); got != DefaultInterval {
		t.Errorf("zero interval gives %s, want the default", got)
	}
	var w *Wait
	w.Set("x")
	w.End()
}

func TestSinkHearsRunningAndDone(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []Report
	sink := Sink(func(r Report) { mu.Lock(); got = append(got, r); mu.Unlock() })
	ctx := WithSink(WithStep(context.Background(), "cluster/eu"), sink)
	stop := Every(ctx, slog.New(slog.DiscardHandler), time.Hour, "the kubeconfig of cluster eu", time.Minute,
		func() string { return "503" })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || !got[len(got)-1].Done || got[len(got)-1].Step != "cluster/eu" {
		t.Fatalf("the sink did not hear the end of the wait: %+v", got)
	}
}

func TestLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		r    Report
		want string
	}{
		{Report{What: "x", Elapsed: 45 * time.Second, Bound: 10 * time.Minute, State: "Job not completed"},
			"waiting for x: 45s of 10m0s, Job not completed"},
		{Report{What: "x", Elapsed: 1500 * time.Millisecond}, "waiting for x: 2s"},
		{Report{What: "x", Elapsed: 120 * time.Millisecond, Bound: time.Second}, "waiting for x: 120ms of 1s"},
	} {
		if got := c.r.Line(); got != c.want {
			t.Errorf("Line() = %q, want %q", got, c.want)
		}
	}
}
