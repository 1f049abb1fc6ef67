package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The plan's cost through the CLI, against the lab's Linode API (issue 16): the dry run shows
// what the four clusters will cost, -o json carries the numbers, a saved plan still applies
// (prices are not part of what it is checked against), the pass that applies caches the
// prices, and the next pass shows the cost unchanged, plans nothing and rewrites no cache.
func TestCLICostAgainstLabAPI(t *testing.T) {
	t.Parallel()
	const token = "lab-token-cost"
	_, dir, body := regionsAgainstLabAPI(t, token, 300*time.Millisecond)
	fleetPath := filepath.Join(dir, "fleet.yaml")
	must(t, os.WriteFile(fleetPath, []byte(body), 0o644))
	stateDir := filepath.Join(dir, "state")
	saved := filepath.Join(dir, "plan.json")
	base := []string{"-f", fleetPath, "--state-dir", stateDir, "--target", "cluster"}
	args := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }

	code, out, errs := runCLI(t, args("--once", "--dry-run", "--detailed-exitcode", "--save-plan", saved)...)
	if code != 2 {
		t.Fatalf("dry run: exit %d, want 2\n%s\n%s", code, out, errs)
	}
	// 4 x 3 x g6-standard-2 at $24.00: the targeted steps create the clusters, not the mesh's
	// NodeBalancers.
	for _, want := range []string{"  cluster/ap: $72.00/mo (new)", "pool g6-standard-2: 3 nodes, $72.00/mo (new)", "Cost: $0.00/mo -> $288.00/mo (+$288.00)\nPlan: 8 to add"} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(stateDir, "linode", "prices.json")); err == nil {
		t.Error("the dry run cached the prices")
	}

	code, out, errs = runCLI(t, args("--once", "--dry-run", "-o", "json")...)
	if code != 0 {
		t.Fatalf("-o json: exit %d\n%s", code, errs)
	}
	var p struct {
		Cost struct {
			Before, After struct{ MinCents, MaxCents int64 }
			Clusters      []struct{ Cluster string }
		}
	}
	must(t, json.Unmarshal([]byte(out), &p))
	if p.Cost.Before.MinCents != 0 || p.Cost.After.MinCents != 28800 || p.Cost.After.MaxCents != 28800 || len(p.Cost.Clusters) != 4 {
		t.Errorf("-o json cost = %+v", p.Cost)
	}

	code, out, errs = runCLI(t, args("--once", "--plan", saved)...)
	if code != 0 {
		t.Fatalf("--plan: exit %d (a saved plan must apply whatever the prices)\n%s\n%s", code, out, errs)
	}
	cache := filepath.Join(stateDir, "linode", "prices.json")
	fi, err := os.Stat(cache)
	if err != nil {
		t.Fatalf("the pass that applied did not cache the prices: %v", err)
	}

	code, out, errs = runCLI(t, args("--once", "--detailed-exitcode")...)
	if code != 0 || !strings.Contains(out, "No changes") || !strings.Contains(out, "Cost: $288.00/mo (unchanged)") {
		t.Fatalf("second pass: exit %d, want 0, no changes and the cost unchanged\n%s\n%s", code, out, errs)
	}
	if fi2, err := os.Stat(cache); err != nil || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("the second pass rewrote the price cache (%v)", err)
	}
}
