package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
)

// GraphError lists everything wrong with a plan graph at once: dependencies on steps that
// are not in the plan, and every cycle.
type GraphError struct {
	// Missing are "step -> dependency" pairs whose dependency is not in the plan.
	Missing []string
	// Cycles are the strongly connected sets of steps, each sorted, in address order.
	Cycles [][]string
}

func (e *GraphError) Error() string {
	var parts []string
	for _, m := range e.Missing {
		parts = append(parts, "depends on a step not in the plan: "+m)
	}
	for _, c := range e.Cycles {
		parts = append(parts, "cycle: "+strings.Join(c, " -> ")+" -> "+c[0])
	}
	return "invalid plan graph: " + strings.Join(parts, "; ")
}

// Validate checks that every dependency is a step of the plan and that the graph has no
// cycles, reporting all problems at once (as *GraphError).
func (p *Plan) Validate() error {
	index := make(map[string]int, len(p.Steps))
	var e GraphError
	for i, s := range p.Steps {
		if _, dup := index[s.Address]; dup {
			e.Missing = append(e.Missing, s.Address+" (address appears twice)")
		}
		index[s.Address] = i
	}
	for _, s := range p.Steps {
		for _, d := range s.DependsOn {
			if _, ok := index[d]; !ok {
				e.Missing = append(e.Missing, s.Address+" -> "+d)
			}
		}
	}
	e.Cycles = cycles(p.Steps, index)
	if len(e.Missing) == 0 && len(e.Cycles) == 0 {
		return nil
	}
	sort.Strings(e.Missing)
	return &e
}

// cycles returns every strongly connected component of more than one step, and every step
// that depends on itself (Tarjan's algorithm, iterated in address order for stable output).
func cycles(steps []Step, index map[string]int) [][]string {
	n := len(steps)
	idx := make([]int, n)
	low := make([]int, n)
	on := make([]bool, n)
	for i := range idx {
		idx[i] = -1
	}
	var stack []int
	var out [][]string
	counter := 0
	var visit func(v int)
	visit = func(v int) {
		idx[v], low[v] = counter, counter
		counter++
		stack = append(stack, v)
		on[v] = true
		for _, d := range steps[v].DependsOn {
			w, ok := index[d]
			if !ok {
				continue
			}
			if idx[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if on[w] {
				low[v] = min(low[v], idx[w])
			}
		}
		if low[v] != idx[v] {
			return
		}
		var comp []string
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			on[w] = false
			comp = append(comp, steps[w].Address)
			if w == v {
				break
			}
		}
		self := false
		for _, d := range steps[v].DependsOn {
			self = self || d == steps[v].Address
		}
		if len(comp) > 1 || self {
			sort.Strings(comp)
			out = append(out, comp)
		}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return steps[order[a]].Address < steps[order[b]].Address })
	for _, v := range order {
		if idx[v] < 0 {
			visit(v)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out
}

// GuardError is returned when a plan would destroy more than the fleet allows in one pass.
type GuardError struct {
	// Removals are the addresses of the unjoin and delete steps that tripped the guard.
	Removals []string
	// Members is how many of the Observed members would be unjoined or deleted.
	Members, Observed int
	// MaxShare is safety.maxDeleteShare.
	MaxShare float64
	// Manager names the manager cluster the plan would delete ("" when none).
	Manager string
}

func (e *GuardError) Error() string {
	var why []string
	if e.Manager != "" {
		why = append(why, fmt.Sprintf("it would delete cluster %q, which runs the Karmada control plane", e.Manager))
	}
	if e.Observed > 0 && float64(e.Members) > e.MaxShare*float64(e.Observed) {
		why = append(why, fmt.Sprintf("it would unjoin or delete %d of %d members (%.0f%%), more than safety.maxDeleteShare %.0f%%",
			e.Members, e.Observed, 100*float64(e.Members)/float64(e.Observed), 100*e.MaxShare))
	}
	return "refusing the plan: " + strings.Join(why, ", and ") +
		" (" + strings.Join(e.Removals, ", ") + "); if this is intended, run again with --allow-destroy" +
		" or raise safety.maxDeleteShare"
}

// SpecFingerprint is the sha256 of the desired fleet's canonical JSON, together with the
// digests of the workloads' manifests (which are not part of the document's JSON).
func SpecFingerprint(f *spec.Fleet) string {
	digests := map[string]string{}
	for _, w := range f.Workloads {
		if w.ManifestDigest != "" {
			digests[w.Name] = w.ManifestDigest
		}
	}
	return fingerprint(struct {
		Fleet     *spec.Fleet       `json:"fleet"`
		Manifests map[string]string `json:"manifests,omitempty"`
	}{f, digests})
}

// WorldFingerprint is the sha256 of the observed world's JSON with Now zeroed, so observing
// the same world twice gives the same fingerprint.
func WorldFingerprint(w *world.World) string {
	c := *w
	c.Now = time.Time{}
	return fingerprint(&c)
}

func fingerprint(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only unencodable values (a func in chart values) get here; they make a fingerprint
		// that never matches, so a saved plan is refused rather than trusted.
		b = []byte("unencodable: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
