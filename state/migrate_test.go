package state

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	from, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	to, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"mesh-root.pem":  []byte("root"),
		"kubeconfigs/us": []byte("us kubeconfig"),
		"kubeconfigs/eu": bytes.Repeat([]byte{0, 1, 2, 255}, 1000),
		"empty":          {},
	}
	for name, data := range files {
		if err := from.WriteFile(name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := from.RecordPass(PassRecord{Succeeded: 3}); err != nil {
		t.Fatal(err)
	}
	if err := to.WriteFile("kubeconfigs/old", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	// The lock file and the chart cache are not state.
	lock, err := from.Lock(context.Background(), LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if err := from.WriteFile(ChartCacheDir+"/x.tgz", []byte("chart")); err != nil {
		t.Fatal(err)
	}

	r, err := Migrate(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"empty", "kubeconfigs/eu", "kubeconfigs/us", "mesh-root.pem", "passes.jsonl"}
	if !slices.Equal(r.Copied, want) || len(r.Unchanged) != 0 || !slices.Equal(r.OnlyInTarget, []string{"kubeconfigs/old"}) {
		t.Fatalf("first migrate: %+v", r)
	}
	for name, data := range files {
		got, err := to.ReadFile(name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s in the target: %q, %v", name, got, err)
		}
	}
	if p, err := to.Passes(); err != nil || len(p) != 1 || p[0].Succeeded != 3 {
		t.Fatalf("passes in the target: %+v, %v", p, err)
	}
	if got, err := to.ReadFile("kubeconfigs/old"); err != nil || string(got) != "kept" {
		t.Fatalf("a file only the target holds: %q, %v", got, err)
	}

	r, err = Migrate(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Copied) != 0 || !slices.Equal(r.Unchanged, want) {
		t.Fatalf("second migrate copied again: %+v", r)
	}
	if s := r.String(); s != "0 copied, 5 unchanged, 1 only in the target (kept)" {
		t.Errorf("report: %q", s)
	}

	if err := from.WriteFile("mesh-root.pem", []byte("rotated")); err != nil {
		t.Fatal(err)
	}
	r, err = Migrate(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Copied, []string{"mesh-root.pem"}) || len(r.Unchanged) != 4 {
		t.Fatalf("migrate after a change: %+v", r)
	}
}

// lossy is a backend that loses what is written to it: the verification must notice.
type lossy struct{ *Store }

func (l lossy) WriteFile(name string, data []byte) error {
	return l.Store.WriteFile(name, append(append([]byte(nil), data...), '!'))
}

func TestMigrateVerifies(t *testing.T) {
	t.Parallel()
	from, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	to, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := from.WriteFile("a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	_, err = Migrate(context.Background(), from, lossy{to})
	if err == nil || !strings.Contains(err.Error(), "reads back different") {
		t.Fatalf("err = %v", err)
	}
}

func TestMigrateCancelled(t *testing.T) {
	t.Parallel()
	from, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	to, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := from.WriteFile("a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Migrate(ctx, from, to); err == nil {
		t.Fatal("a cancelled migrate succeeded")
	}
	if to.Exists("a") {
		t.Fatal("a cancelled migrate copied")
	}
}
