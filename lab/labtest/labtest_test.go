package labtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestWriteCounter(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	type req struct{ method, path string }
	cases := []struct {
		name       string
		ignore     func(*http.Request) bool
		reqs       []req
		wantWrites []string
		wantReads  int
	}{
		{"reads only", nil, []req{{"GET", "/a"}, {"HEAD", "/b"}}, nil, 2},
		{"writes and reads", nil, []req{{"POST", "/a"}, {"GET", "/a"}, {"PATCH", "/b?x=1"}, {"DELETE", "/c"}},
			[]string{"POST /a", "PATCH /b?x=1", "DELETE /c"}, 1},
		{"ignored writes", func(r *http.Request) bool { return strings.Contains(r.URL.RawQuery, "dryRun") },
			[]req{{"PUT", "/a?dryRun=All"}, {"PUT", "/a"}}, []string{"PUT /a"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &WriteCounter{Ignore: tc.ignore}
			client := &http.Client{Transport: c.Wrap(http.DefaultTransport)}
			for _, r := range tc.reqs {
				hr, err := http.NewRequest(r.method, srv.URL+r.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(hr)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			var want []string
			for _, w := range tc.wantWrites {
				m, p, _ := strings.Cut(w, " ")
				want = append(want, m+" "+srv.URL+p)
			}
			if got := c.Writes(); !slices.Equal(got, want) {
				t.Errorf("Writes = %q, want %q", got, want)
			}
			if got := c.Reads(); got != tc.wantReads {
				t.Errorf("Reads = %d, want %d", got, tc.wantReads)
			}
			if got := c.Take(); !slices.Equal(got, want) {
				t.Errorf("Take = %q, want %q", got, want)
			}
			if got, n := c.Writes(), c.Reads(); len(got) != 0 || n != 0 {
				t.Errorf("after Take: %d writes, %d reads, want none", len(got), n)
			}
		})
	}
}

func TestWriteCounterReset(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	c := &WriteCounter{}
	client := &http.Client{Transport: c.Wrap(http.DefaultTransport)}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			for _, m := range []string{"GET", "POST"} {
				r, _ := http.NewRequest(m, srv.URL, nil)
				if resp, err := client.Do(r); err == nil {
					resp.Body.Close()
				} else {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if w, r := len(c.Writes()), c.Reads(); w != 8 || r != 8 {
		t.Errorf("concurrent: %d writes, %d reads, want 8 and 8", w, r)
	}
	c.Reset()
	if w, r := len(c.Writes()), c.Reads(); w != 0 || r != 0 {
		t.Errorf("after Reset: %d writes, %d reads, want none", w, r)
	}
}

func TestSyncBuffer(t *testing.T) {
	t.Parallel()
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Go(func() { _, _ = b.Write([]byte("ab")) })
	}
	wg.Wait()
	if b.String() != "abababab" || b.Len() != 8 {
		t.Errorf("String = %q, Len = %d, want abababab and 8", b.String(), b.Len())
	}
	mark := b.Len()
	_, _ = b.Write([]byte("cd"))
	if got := b.From(mark); got != "cd" {
		t.Errorf("From(mark) = %q, want cd", got)
	}
	if got := b.From(100); got != "" {
		t.Errorf("From past the end = %q, want empty", got)
	}
}

// recordingTB records how Skip ends a test instead of ending it.
type recordingTB struct {
	testing.TB
	calls []string
}

func (r *recordingTB) Helper()                        {}
func (r *recordingTB) Fatalf(format string, a ...any) { r.calls = append(r.calls, "fatal") }
func (r *recordingTB) Skipf(format string, a ...any)  { r.calls = append(r.calls, "skip") }

func TestSkip(t *testing.T) {
	// Not parallel: it sets the environment.
	for _, tc := range []struct {
		env  string
		want string
	}{{"", "skip"}, {"1", "fatal"}} {
		t.Setenv(RequiredEnv, tc.env)
		r := &recordingTB{TB: t}
		Skip(r, "binaries not built")
		if len(r.calls) == 0 || r.calls[0] != tc.want {
			t.Errorf("%s=%q: Skip did %v, want %s first", RequiredEnv, tc.env, r.calls, tc.want)
		}
	}
}
