package kubestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"
	"testing"

	"github.com/reconcile-dev/reconcile/state"
)

func TestMigrateLocalKubernetesLocal(t *testing.T) {
	t.Parallel()
	local, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2<<20)
	_, _ = rand.Read(big)
	files := map[string][]byte{
		"mesh-root.pem":    []byte("root"),
		"kubeconfigs/us":   []byte("us"),
		"pool-cache/eu":    []byte("{}"),
		"credentials/huge": big,
	}
	for name, data := range files {
		if err := local.WriteFile(name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := local.RecordPass(state.PassRecord{Succeeded: 1}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	kube := open(t, ns, "eu")
	if err := kube.WriteFile("only-here", []byte("x")); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	r, err := state.Migrate(ctx, local, kube)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"credentials/huge", "kubeconfigs/us", "mesh-root.pem", "passes.jsonl", "pool-cache/eu"}
	if !slices.Equal(r.Copied, want) || len(r.Unchanged) != 0 || !slices.Equal(r.OnlyInTarget, []string{"only-here"}) {
		t.Fatalf("local to kubernetes: %+v", r)
	}
	if r, err = state.Migrate(ctx, local, open(t, ns, "eu")); err != nil || len(r.Copied) != 0 || !slices.Equal(r.Unchanged, want) {
		t.Fatalf("again: %+v, %v", r, err)
	}

	back, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if r, err = state.Migrate(ctx, open(t, ns, "eu"), back); err != nil || len(r.Copied) != len(want)+1 {
		t.Fatalf("kubernetes to local: %+v, %v", r, err)
	}
	for name, data := range files {
		if got, err := back.ReadFile(name); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s after the round trip: %d bytes, %v", name, len(got), err)
		}
	}
	if p, err := back.Passes(); err != nil || len(p) != 1 || p[0].Succeeded != 1 {
		t.Fatalf("passes after the round trip: %+v, %v", p, err)
	}
	if r, err = state.Migrate(ctx, open(t, ns, "eu"), back); err != nil || len(r.Copied) != 0 {
		t.Fatalf("kubernetes to local again: %+v, %v", r, err)
	}
}
