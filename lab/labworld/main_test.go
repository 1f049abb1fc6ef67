package labworld

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// reexecEnv makes the test binary run Main instead of the tests: `lab up` starts it as the
// serve process.
const reexecEnv = "LABWORLD_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(reexecEnv) == "1" {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) // `<binary> serve ...`
	}
	os.Exit(m.Run())
}

func TestUpStatusDown(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	c := cli{exe: os.Args[0], env: []string{reexecEnv + "=1"}}
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := c.run(context.Background(), args, &out, &out)
		return code, out.String()
	}
	t.Cleanup(func() { run("down", "--dir", dir) })

	code, out := run("up", "--dir", dir, "--linode-listen", "127.0.0.1:0", "--charts-listen", "127.0.0.1:0",
		"--addresses", "127.0.0.50-127.0.0.59")
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	s, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "export LINODE_URL="+s.LinodeURL+" LINODE_TOKEN="+s.Token) {
		t.Errorf("up does not print the environment to use:\n%s", out)
	}
	if fi, err := os.Stat(statePath(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lab.json: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if code, out := run("up", "--dir", dir); code != 0 || !strings.Contains(out, "already runs") {
		t.Errorf("second up: exit %d\n%s", code, out)
	}
	if code, out := run("status", "--dir", dir); code != 0 || strings.Contains(out, "FAIL") {
		t.Errorf("status of a running lab: exit %d\n%s", code, out)
	}
	if code, out := run("env", "--dir", dir); code != 0 || s.DNS == "" || !strings.Contains(out, "export "+DNSEnv+"="+s.DNS+"\n") {
		t.Errorf("env: exit %d, lab.json dns %q\n%s", code, s.DNS, out)
	}
	procs, err := readPIDFile(pidFilePath(dir))
	if err != nil || len(procs) == 0 {
		t.Fatalf("recorded processes: %v, %v; want etcd at least", procs, err)
	}
	procs = append(procs, s.process())

	if code, out := run("down", "--dir", dir); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	for _, p := range procs {
		if p.alive() {
			t.Errorf("process %d still runs after down", p.PID)
		}
	}
	for _, u := range []string{s.LinodeURL, s.ChartsURL} {
		hostport, _, _ := strings.Cut(strings.TrimPrefix(u, "http://"), "/")
		if listening(hostport) {
			t.Errorf("%s still listens after down", hostport)
		}
	}
	if err := dnsAnswers(s.DNS); err == nil {
		t.Errorf("the lab DNS server %s still answers after down", s.DNS)
	}
	if _, err := os.Stat(statePath(dir)); !os.IsNotExist(err) {
		t.Errorf("lab.json left after down: %v", err)
	}
	if code, out := run("status", "--dir", dir); code == 0 {
		t.Errorf("status after down: exit 0\n%s", out)
	}
}

func TestDownKillsWhatServeLeft(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	c := cli{exe: os.Args[0], env: []string{reexecEnv + "=1"}}
	var out bytes.Buffer
	if code := c.run(context.Background(), []string{"up", "--dir", dir, "--linode-listen", "127.0.0.1:0",
		"--charts-listen", "127.0.0.1:0", "--addresses", "127.0.0.45-127.0.0.49"}, &out, &out); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out.String())
	}
	t.Cleanup(func() { _ = c.run(context.Background(), []string{"down", "--dir", dir}, &out, &out) })
	s, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	procs, err := readPIDFile(pidFilePath(dir))
	if err != nil || len(procs) == 0 {
		t.Fatalf("recorded processes: %v, %v", procs, err)
	}
	// The serve process dies without cleaning up; its children must still go with down.
	terminateHard(t, s.process())
	out.Reset()
	if code := c.run(context.Background(), []string{"down", "--dir", dir}, &out, &out); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, out.String())
	}
	for _, p := range procs {
		if p.alive() {
			t.Errorf("process %d still runs after down", p.PID)
		}
	}
}

// terminateHard kills one process (not its group) with SIGKILL and waits until it is gone.
func terminateHard(t *testing.T, p procID) {
	t.Helper()
	if err := syscallKill(p.PID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the serve process to die", func(context.Context) (bool, error) {
		return !p.alive(), nil
	})
}

func TestProcStatOfSelf(t *testing.T) {
	t.Parallel()
	ppid, start, err := procStat(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if ppid != os.Getppid() || start == 0 {
		t.Errorf("procStat = ppid %d start %d; want ppid %d and a start time", ppid, start, os.Getppid())
	}
	self := procID{PID: os.Getpid(), Start: start}
	if !self.alive() {
		t.Error("this process does not count as alive")
	}
	if (procID{PID: os.Getpid(), Start: start + 1}).alive() {
		t.Error("a process with another start time (a reused PID) counts as alive")
	}
}

func TestPIDFileRoundTrip(t *testing.T) {
	t.Parallel()
	path := pidFilePath(t.TempDir())
	if procs, err := readPIDFile(path); err != nil || len(procs) != 0 {
		t.Fatalf("missing file: %v, %v", procs, err)
	}
	if err := os.WriteFile(path, []byte("123 456\ngarbage\n1 2\n789 1011\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	procs, err := readPIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// PID 1 is never ours to kill.
	want := []procID{{123, 456}, {789, 1011}}
	if len(procs) != len(want) || procs[0] != want[0] || procs[1] != want[1] {
		t.Errorf("read %v, want %v", procs, want)
	}
}
