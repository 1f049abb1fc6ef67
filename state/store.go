package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Store is the local state of one fleet: what cannot be observed (the mesh root CA, minted
// credentials), cached kubeconfigs, and the record of passes. Files are 0600, directories 0700.
type Store struct {
	dir string
	// mu serializes RecordPass's read-modify-write within this process; Lock serializes
	// processes.
	mu sync.Mutex
}

const (
	lockName   = "lock"
	passesName = "passes.jsonl"
	// maxPasses is how many pass records passes.jsonl keeps.
	maxPasses = 1000
)

// DefaultStoreDir is where a fleet's state lives: $STATE_DIRECTORY/<fleet> when systemd gives
// a state directory, /var/lib/reconcile/<fleet> for a root systemd service without one, and
// $XDG_STATE_HOME/reconcile/<fleet> (default ~/.local/state) otherwise.
func DefaultStoreDir(fleet string) string {
	fleet = safeFleetName(fleet)
	if sd := os.Getenv("STATE_DIRECTORY"); sd != "" {
		// systemd passes several directories separated by colons; the first is ours.
		first, _, _ := strings.Cut(sd, ":")
		return filepath.Join(first, fleet)
	}
	if os.Getenv("INVOCATION_ID") != "" && os.Geteuid() == 0 {
		return filepath.Join("/var/lib/reconcile", fleet)
	}
	base := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) { // the XDG spec says to ignore relative paths
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return filepath.Join(os.TempDir(), "reconcile-"+strconv.Itoa(os.Geteuid()), fleet)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "reconcile", fleet)
}

// safeFleetName keeps a fleet name from stepping out of the state root.
func safeFleetName(fleet string) string {
	fleet = strings.ReplaceAll(fleet, string(filepath.Separator), "_")
	if fleet == "" || fleet == "." || fleet == ".." {
		return "_" + fleet
	}
	return fleet
}

// OpenStore opens the store in dir, creating it 0700 or tightening an existing directory to
// 0700. A directory owned by another user is refused: it holds secrets.
func OpenStore(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("state store %s is not a directory", abs)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("state store %s is owned by uid %d, not by this user (uid %d)", abs, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(abs, 0o700); err != nil {
			return nil, fmt.Errorf("state store: tighten %s to 0700: %w", abs, err)
		}
	}
	return &Store{dir: abs}, nil
}

// Dir is the store's absolute directory.
func (s *Store) Dir() string { return s.dir }

// Path is where the named file lives; it does not check the name (WriteFile and ReadFile do).
func (s *Store) Path(name string) string { return filepath.Join(s.dir, filepath.FromSlash(name)) }

// checkName accepts "file" or "sub/file": local, clean, at most one subdirectory, and not the
// lock file (replacing it would break locking).
func checkName(name string) error {
	parts := strings.Split(name, "/")
	switch {
	case name == "" || name == "." || !filepath.IsLocal(name) || path.Clean(name) != name || strings.Contains(name, `\`):
		return fmt.Errorf("state store: invalid file name %q", name)
	case len(parts) > 2:
		return fmt.Errorf("state store: file name %q is nested more than one directory deep", name)
	case name == lockName:
		return fmt.Errorf("state store: %q is reserved", name)
	}
	return nil
}

// root opens the store directory as an os.Root so that no name, and no symlink planted in
// the store, can reach outside it.
func (s *Store) root(name string) (*os.Root, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return os.OpenRoot(s.dir)
}

// WriteFile replaces the named file atomically: a 0600 temp file in the same directory is
// written, synced and renamed over the name, and the directory is synced. A subdirectory in
// the name is created 0700.
func (s *Store) WriteFile(name string, data []byte) error {
	r, err := s.root(name)
	if err != nil {
		return err
	}
	defer r.Close()
	sub, base := path.Split(name)
	sub = strings.TrimSuffix(sub, "/")
	if sub == "" {
		sub = "."
	} else if err := ensureSubdir(r, sub); err != nil {
		return err
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := path.Join(sub, "."+base+".tmp-"+hex.EncodeToString(suffix[:]))
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("state store: write %s: %w", name, err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close() // a second Close after a failed one is harmless
			r.Remove(tmp)
		}
	}()
	// Chmod too: the umask can only have narrowed 0600, but be explicit about what we hold.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("state store: write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("state store: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("state store: write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state store: write %s: %w", name, err)
	}
	if err := r.Rename(tmp, name); err != nil {
		return fmt.Errorf("state store: write %s: %w", name, err)
	}
	committed = true
	return syncDir(r, sub)
}

func ensureSubdir(r *os.Root, sub string) error {
	err := r.Mkdir(sub, 0o700)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		if err != nil {
			return fmt.Errorf("state store: %w", err)
		}
		return nil
	}
	fi, err := r.Lstat(sub)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state store: %s is not a directory", sub)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := r.Chmod(sub, 0o700); err != nil {
			return fmt.Errorf("state store: %w", err)
		}
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(r *os.Root, dir string) error {
	d, err := r.Open(dir)
	if err != nil {
		return fmt.Errorf("state store: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state store: sync %s: %w", dir, err)
	}
	return nil
}

// ReadFile returns the named file's contents; a missing file gives an error that
// errors.Is(err, os.ErrNotExist).
func (s *Store) ReadFile(name string) ([]byte, error) {
	r, err := s.root(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := r.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	return data, nil
}

// Remove deletes the named file; removing a missing file is not an error.
func (s *Store) Remove(name string) error {
	r, err := s.root(name)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state store: %w", err)
	}
	return nil
}

// Exists reports whether the named file is there; an invalid name is never there.
func (s *Store) Exists(name string) bool {
	r, err := s.root(name)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = r.Stat(name)
	return err == nil
}

// Lock takes the fleet's exclusive lock, so two reconcilers never converge the same fleet at
// once. When another process (or another Lock in this one) holds it, Lock waits up to
// opts.Wait and then fails with a *LockedError naming the holder (host, pid, since when) as it
// wrote itself into the lock file. The lock dies with the process.
func (s *Store) Lock(ctx context.Context, opts LockOptions) (Lock, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state store: lock: %w", err)
	}
	holder := opts.Holder
	if holder.PID == 0 && holder.Host == "" {
		holder = ThisHolder()
	}
	deadline := time.Now().Add(opts.Wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("state store: lock %s: %w", f.Name(), err)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			defer f.Close()
			return nil, &LockedError{Where: "local " + s.dir, Holder: readHolder(f), Waited: opts.Wait}
		}
		t := time.NewTimer(min(wait, 200*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("state store: waiting for the lock: %w", ctx.Err())
		case <-t.C:
		}
	}
	holder.Since = time.Now()
	if err := writeHolder(f, holder); err != nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		return nil, fmt.Errorf("state store: lock: %w", err)
	}
	return &fileLock{f: f, holder: holder, lost: make(chan struct{})}, nil
}

type fileLock struct {
	f      *os.File
	holder Holder
	lost   chan struct{} // never closed: a flock is held until released
	once   sync.Once
	err    error
}

func (l *fileLock) Lost() <-chan struct{} { return l.lost }
func (l *fileLock) Holder() Holder        { return l.holder }

func (l *fileLock) Release() error {
	l.once.Do(func() {
		// Clear the holder first so nobody reads a stale one; the file itself stays, as
		// removing it would let two processes lock different inodes.
		_ = l.f.Truncate(0)
		l.err = errors.Join(syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN), l.f.Close())
	})
	return l.err
}

func writeHolder(f *os.File, h Holder) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(append(data, '\n'), 0); err != nil {
		return err
	}
	return f.Sync()
}

// readHolder returns the holder in the lock file; a zero Holder when the holder has not
// written it yet. A bare pid (written by older versions) is read too.
func readHolder(f *os.File) Holder {
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, 0)
	data := bytes.TrimSpace(buf[:n])
	var h Holder
	if json.Unmarshal(data, &h) == nil {
		return h
	}
	if pid, err := strconv.Atoi(string(data)); err == nil {
		h.PID = pid
	}
	return h
}

// List returns every file in the store, sorted; the lock and temp files are not files of the
// store, and neither is the chart cache.
func (s *Store) List() ([]string, error) {
	var out []string
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.Count(rel, "/") > 0 || rel == ChartCacheDir) {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == lockName || strings.HasPrefix(d.Name(), ".") || !d.Type().IsRegular() {
			return nil
		}
		if checkName(rel) == nil {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state store: list: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// Describe implements Backend.
func (s *Store) Describe() string { return "local " + s.dir }

// ChartCacheDir is the subdirectory of a local store that caches downloaded charts; it is
// not state (nothing is lost without it) and is not migrated.
const ChartCacheDir = "charts"

// PassRecord is one line of passes.jsonl: what a reconcile pass did.
type PassRecord struct {
	Time time.Time `json:"time"`
	// Duration is in nanoseconds in the JSON.
	Duration time.Duration `json:"duration"`
	Plan     PassPlan      `json:"plan"`
	// DryRun marks a pass that planned only.
	DryRun    bool   `json:"dryRun,omitempty"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Skipped   int    `json:"skipped"`
	Error     string `json:"error,omitempty"`
}

// PassPlan counts the plan's steps by action (planner.Summary, kept here without importing
// the planner, which imports state).
type PassPlan struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
	Wait    int `json:"wait"`
}

// PassesFile is the name of the pass log in every backend.
const PassesFile = passesName

// AppendPass returns the pass log old with p appended, keeping the last 1000 records and
// dropping a torn last line (a writer that crashed mid-append). Backends share it.
func AppendPass(old []byte, p PassRecord) ([]byte, error) {
	line, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	lines := bytes.SplitAfter(old, []byte("\n"))
	kept := lines[:0]
	for _, l := range lines {
		if len(bytes.TrimSpace(l)) > 0 && l[len(l)-1] == '\n' {
			kept = append(kept, l)
		}
	}
	kept = append(kept, append(line, '\n'))
	if len(kept) > maxPasses {
		kept = kept[len(kept)-maxPasses:]
	}
	return bytes.Join(kept, nil), nil
}

// ParsePasses reads a pass log, oldest first.
func ParsePasses(data []byte) ([]PassRecord, error) {
	var out []PassRecord
	for i, l := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var p PassRecord
		if err := json.Unmarshal(l, &p); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", passesName, i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// RecordPass appends p to passes.jsonl (AppendPass). The file is rewritten atomically, so a
// crash never leaves half a line.
func (s *Store) RecordPass(p PassRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.ReadFile(passesName)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state store: record pass: %w", err)
	}
	data, err := AppendPass(old, p)
	if err != nil {
		return fmt.Errorf("state store: record pass: %w", err)
	}
	return s.WriteFile(passesName, data)
}

// Passes returns the recorded passes, oldest first.
func (s *Store) Passes() ([]PassRecord, error) {
	data, err := s.ReadFile(passesName)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := ParsePasses(data)
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	return out, nil
}
