package state

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDefaultStoreDir(t *testing.T) {
	// Not parallel: it sets the environment.
	home := t.TempDir()
	systemdRoot := filepath.Join(home, ".local/state/reconcile/eu")
	if os.Geteuid() == 0 {
		systemdRoot = "/var/lib/reconcile/eu"
	}
	cases := []struct {
		name  string
		env   map[string]string
		fleet string
		want  string
	}{
		{"xdg default", nil, "eu", filepath.Join(home, ".local/state/reconcile/eu")},
		{"xdg set", map[string]string{"XDG_STATE_HOME": "/srv/state"}, "eu", "/srv/state/reconcile/eu"},
		{"xdg relative is ignored", map[string]string{"XDG_STATE_HOME": "rel"}, "eu", filepath.Join(home, ".local/state/reconcile/eu")},
		{"systemd state directory", map[string]string{"STATE_DIRECTORY": "/var/lib/reconcile", "INVOCATION_ID": "x"}, "eu", "/var/lib/reconcile/eu"},
		{"systemd several state directories", map[string]string{"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"}, "eu", "/var/lib/a/eu"},
		{"systemd service without state directory", map[string]string{"INVOCATION_ID": "x"}, "eu", systemdRoot},
		{"fleet name cannot escape", map[string]string{"XDG_STATE_HOME": "/s"}, "../../etc", "/s/reconcile/.._.._etc"},
		{"fleet name dot-dot", map[string]string{"XDG_STATE_HOME": "/s"}, "..", "/s/reconcile/_.."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			for _, k := range []string{"XDG_STATE_HOME", "STATE_DIRECTORY", "INVOCATION_ID"} {
				t.Setenv(k, tc.env[k])
			}
			if got := DefaultStoreDir(tc.fleet); got != tc.want {
				t.Errorf("DefaultStoreDir(%q) = %q, want %q", tc.fleet, got, tc.want)
			}
		})
	}
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "state", "eu"))
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func TestOpenStore(t *testing.T) {
	t.Parallel()
	t.Run("creates 0700", func(t *testing.T) {
		t.Parallel()
		s := openStore(t)
		if p := perm(t, s.Dir()); p != 0o700 {
			t.Errorf("dir mode = %o, want 700", p)
		}
		if !filepath.IsAbs(s.Dir()) {
			t.Errorf("Dir() = %q, want absolute", s.Dir())
		}
	})
	t.Run("tightens an existing dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenStore(dir); err != nil {
			t.Fatalf("OpenStore: %v", err)
		}
		if p := perm(t, dir); p != 0o700 {
			t.Errorf("dir mode = %o, want 700", p)
		}
	})
	t.Run("refuses a file", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenStore(f); err == nil {
			t.Error("OpenStore on a file succeeded")
		}
	})
	t.Run("refuses a dir owned by someone else", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory away")
		}
		dir := t.TempDir()
		if err := os.Chown(dir, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		_, err := OpenStore(dir)
		if err == nil || !strings.Contains(err.Error(), "owned by uid 4242") {
			t.Errorf("OpenStore = %v, want an ownership error", err)
		}
	})
}

func TestWriteReadFile(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	for _, name := range []string{"root-ca.key", "kubeconfigs/eu", "kubeconfigs/ap"} {
		for _, data := range []string{"first", "second, longer than the first"} {
			if err := s.WriteFile(name, []byte(data)); err != nil {
				t.Fatalf("WriteFile(%s): %v", name, err)
			}
			got, err := s.ReadFile(name)
			if err != nil || string(got) != data {
				t.Fatalf("ReadFile(%s) = %q, %v; want %q", name, got, err, data)
			}
		}
		if p := perm(t, s.Path(name)); p != 0o600 {
			t.Errorf("%s mode = %o, want 600", name, p)
		}
		if !s.Exists(name) {
			t.Errorf("Exists(%s) = false after a write", name)
		}
	}
	if p := perm(t, filepath.Join(s.Dir(), "kubeconfigs")); p != 0o700 {
		t.Errorf("subdir mode = %o, want 700", p)
	}
	if err := s.Remove("kubeconfigs/eu"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if s.Exists("kubeconfigs/eu") {
		t.Error("Exists after Remove")
	}
	if _, err := s.ReadFile("kubeconfigs/eu"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile after Remove: %v, want ErrNotExist", err)
	}
	if err := s.Remove("kubeconfigs/eu"); err != nil {
		t.Errorf("Remove of a missing file: %v", err)
	}
}

func TestWriteFileTightensSubdir(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	sub := filepath.Join(s.Dir(), "certs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile("certs/eu.pem", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if p := perm(t, sub); p != 0o700 {
		t.Errorf("subdir mode = %o, want 700", p)
	}
}

// entries lists every file under dir, relative.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteFileLeavesNoTempFiles(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Go(func() { errs <- s.WriteFile("kubeconfigs/eu", []byte(fmt.Sprintf("version %d", i))) })
		wg.Go(func() { errs <- s.WriteFile("root-ca.pem", bytes.Repeat([]byte{'x'}, 4096*i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("WriteFile: %v", err)
		}
	}
	// A write that fails at the rename (the name is a directory) cleans up its temp file too.
	if err := os.MkdirAll(filepath.Join(s.Dir(), "kubeconfigs", "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile("kubeconfigs/dir", []byte("x")); err == nil {
		t.Error("WriteFile over a directory succeeded")
	}
	got := entries(t, s.Dir())
	if want := []string{"kubeconfigs/eu", "root-ca.pem"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("files = %v, want exactly %v", got, want)
	}
	data, err := s.ReadFile("kubeconfigs/eu")
	if err != nil || !strings.HasPrefix(string(data), "version ") {
		t.Errorf("ReadFile = %q, %v: want one whole version", data, err)
	}
}

func TestStoreRejectsEscapingNames(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	outside := t.TempDir()
	// A symlink planted in the store must not lead writes or reads out of it.
	if err := os.Symlink(outside, filepath.Join(s.Dir(), "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(s.Dir(), "link")); err != nil {
		t.Fatal(err)
	}
	names := []string{"", ".", "..", "../x", "/etc/passwd", "a/../../x", "a/./b", "a//b", "a/b/c", "sub/", `..\x`, "lock", "out/x", "link"}
	for _, name := range names {
		if _, err := s.ReadFile(name); err == nil {
			t.Errorf("ReadFile(%q) succeeded", name)
		}
		if s.Exists(name) {
			t.Errorf("Exists(%q) = true", name)
		}
	}
	for _, name := range names {
		// Writing "link" may replace the link itself (rename does not follow it), but
		// must not write through it: checked below.
		if err := s.WriteFile(name, []byte("x")); err == nil && name != "link" {
			t.Errorf("WriteFile(%q) succeeded", name)
		}
	}
	if got := entries(t, outside); strings.Join(got, " ") != "secret" {
		t.Errorf("files outside the store = %v, want only the original", got)
	}
	if data, _ := os.ReadFile(filepath.Join(outside, "secret")); string(data) != "s" {
		t.Errorf("file outside the store was changed to %q", data)
	}
}

func TestLockInProcess(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := context.Background()
	l, err := s.Lock(ctx, LockOptions{})
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if p := perm(t, filepath.Join(s.Dir(), "lock")); p != 0o600 {
		t.Errorf("lock mode = %o, want 600", p)
	}
	host, _ := os.Hostname()
	if h := l.Holder(); h.PID != os.Getpid() || h.Host != host || h.Since.IsZero() {
		t.Errorf("Holder = %+v, want this process on %s", h, host)
	}
	_, err = s.Lock(ctx, LockOptions{})
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != os.Getpid() || le.Holder.Host != host {
		t.Fatalf("second Lock = %v, want a LockedError with pid %d", err, os.Getpid())
	}
	for _, want := range []string{"local " + s.Dir(), fmt.Sprintf("pid %d on %s since ", os.Getpid(), host), "--lock-timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q, want it to say %q", err, want)
		}
	}
	// A waiting Lock gives up after its wait, and says it waited.
	_, err = s.Lock(ctx, LockOptions{Wait: 300 * time.Millisecond})
	if !errors.As(err, &le) || le.Waited != 300*time.Millisecond || !strings.Contains(err.Error(), "waited 300ms") {
		t.Fatalf("waiting Lock = %v, want a LockedError after waiting 300ms", err)
	}
	// A waiting Lock takes the lock once it is released.
	got := make(chan error, 1)
	go func() {
		l2, err := s.Lock(ctx, LockOptions{Wait: time.Minute})
		if err == nil {
			err = l2.Release()
		}
		got <- err
	}()
	if err := l.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiting Lock after release: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting Lock did not get the released lock")
	}
	// A cancelled context ends the wait.
	l, err = s.Lock(ctx, LockOptions{})
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	defer l.Release()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Lock(cctx, LockOptions{Wait: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	for _, n := range []string{"passes.jsonl", "kubeconfigs/us", "mesh/root-key.pem", "charts/x"} {
		if err := s.WriteFile(n, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.Lock(context.Background(), LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kubeconfigs/us", "mesh/root-key.pem", "passes.jsonl"}
	if !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q (no lock, no chart cache)", got, want)
	}
}

const lockChildEnv = "RECONCILE_TEST_LOCK_CHILD_DIR"

// TestLockHelperProcess is the child of TestLockAcrossProcesses: it takes the lock, says so
// on stdout and holds it until stdin closes. Run directly, it has nothing to do.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockChildEnv)
	if dir == "" {
		t.Skip("helper process for TestLockAcrossProcesses")
	}
	s, err := OpenStore(dir)
	if err == nil {
		var l Lock
		if l, err = s.Lock(context.Background(), LockOptions{}); err == nil {
			fmt.Println("locked")
			_, _ = io.Copy(io.Discard, os.Stdin)
			err = l.Release()
		}
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestLockAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, release := range []string{"unlock", "killed"} {
		t.Run(release, func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), lockChildEnv+"="+s.Dir())
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			line := make(chan string, 1)
			go func() {
				l, _ := bufio.NewReader(stdout).ReadString('\n')
				line <- strings.TrimSpace(l)
			}()
			select {
			case l := <-line:
				if l != "locked" {
					t.Fatalf("child said %q, want locked", l)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("child did not take the lock")
			}

			_, err = s.Lock(context.Background(), LockOptions{})
			want := fmt.Sprintf("pid %d on ", cmd.Process.Pid)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Lock while the child holds it = %v, want it to name %q", err, want)
			}

			if release == "unlock" {
				stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Fatalf("child: %v", err)
				}
			} else {
				cmd.Process.Kill()
				_ = cmd.Wait()
			}
			l, err := s.Lock(context.Background(), LockOptions{})
			if err != nil {
				t.Fatalf("Lock after the child let go (%s): %v", release, err)
			}
			l.Release()
		})
	}
}

func TestRecordPass(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	// Seed 999 records and a torn line as if a writer had crashed mid-append.
	var seed bytes.Buffer
	for i := range maxPasses - 1 {
		fmt.Fprintf(&seed, `{"time":"2026-01-01T00:00:00Z","duration":%d,"plan":{"add":0,"change":0,"destroy":0,"wait":0},"succeeded":0,"failed":0,"skipped":0}`+"\n", i)
	}
	seed.WriteString(`{"time":"2026-01-0`)
	if err := s.WriteFile("passes.jsonl", seed.Bytes()); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		err := s.RecordPass(PassRecord{
			Time: now.Add(time.Duration(i) * time.Minute), Duration: time.Duration(5000 + i),
			Plan: PassPlan{Add: 3, Change: 1, Destroy: i, Wait: 2}, Succeeded: 5, Failed: 1, Skipped: 2,
			Error: fmt.Sprintf("member/eu/join: pass %d", i),
		})
		if err != nil {
			t.Fatalf("RecordPass: %v", err)
		}
	}
	passes, err := s.Passes()
	if err != nil {
		t.Fatalf("Passes: %v", err)
	}
	if len(passes) != maxPasses {
		t.Fatalf("kept %d passes, want %d", len(passes), maxPasses)
	}
	// 999 seeded + 3 new: the two oldest seeded records are gone.
	if passes[0].Duration != 2 {
		t.Errorf("oldest kept record has duration %d, want 2", passes[0].Duration)
	}
	last := passes[len(passes)-1]
	if last.Duration != 5002 || last.Plan.Destroy != 2 || last.Error != "member/eu/join: pass 2" || !last.Time.Equal(now.Add(2*time.Minute)) {
		t.Errorf("newest record = %+v", last)
	}
	if p := perm(t, s.Path("passes.jsonl")); p != 0o600 {
		t.Errorf("passes.jsonl mode = %o, want 600", p)
	}
	data, _ := s.ReadFile("passes.jsonl")
	if n := bytes.Count(data, []byte("\n")); n != maxPasses || !bytes.HasSuffix(data, []byte("}\n")) {
		t.Errorf("passes.jsonl has %d lines (ends %q), want %d whole lines", n, data[len(data)-3:], maxPasses)
	}
}

func TestRecordPassFromEmpty(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	if passes, err := s.Passes(); err != nil || len(passes) != 0 {
		t.Fatalf("Passes on a new store = %v, %v", passes, err)
	}
	if err := s.RecordPass(PassRecord{Succeeded: 7}); err != nil {
		t.Fatal(err)
	}
	passes, err := s.Passes()
	if err != nil || len(passes) != 1 || passes[0].Succeeded != 7 {
		t.Errorf("Passes = %+v, %v", passes, err)
	}
}
