package state

import (
	"errors"
	"os"
	"slices"
	"testing"
)

func TestOverlayLeavesTheBaseAlone(t *testing.T) {
	t.Parallel()
	base := openStore(t)
	for _, n := range []string{"kubeconfigs/us", "mesh/root.json"} {
		if err := base.WriteFile(n, []byte("base "+n)); err != nil {
			t.Fatal(err)
		}
	}
	o := NewOverlay(base)
	if err := o.WriteFile("kubeconfigs/us", []byte("fetched")); err != nil {
		t.Fatal(err)
	}
	if err := o.WriteFile("linode/pools-us.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := o.Remove("mesh/root.json"); err != nil {
		t.Fatal(err)
	}
	if got, _ := o.ReadFile("kubeconfigs/us"); string(got) != "fetched" {
		t.Errorf("overlay read = %q, want what was written through it", got)
	}
	if got, _ := base.ReadFile("kubeconfigs/us"); string(got) != "base kubeconfigs/us" {
		t.Errorf("base = %q, want it unchanged", got)
	}
	if o.Exists("mesh/root.json") || !base.Exists("mesh/root.json") {
		t.Error("a removal through the overlay must hide the file there and keep it in the base")
	}
	if _, err := o.ReadFile("mesh/root.json"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read of a removed file = %v, want ErrNotExist", err)
	}
	if base.Exists("linode/pools-us.json") {
		t.Error("a write through the overlay reached the base")
	}
	names, err := o.List()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kubeconfigs/us", "linode/pools-us.json"}; !slices.Equal(names, want) {
		t.Errorf("List = %q, want %q", names, want)
	}
	if err := o.RecordPass(PassRecord{}); err != nil {
		t.Fatal(err)
	}
	if p, _ := base.Passes(); len(p) != 0 {
		t.Errorf("a dry run's pass was recorded: %v", p)
	}
	if err := o.WriteFile("../escape", nil); err == nil {
		t.Error("an invalid name was accepted")
	}
}
