package plan

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// GraphError lists everything wrong with a plan graph at once: dependencies on steps that
// are not in the plan, and every cycle.
type GraphError struct {
	// Invalid are steps without an address or with one used twice.
	Invalid []string
	// Missing are "step -> dependency" pairs whose dependency is not in the plan.
	Missing []string
	// Cycles are the strongly connected sets of steps, each sorted, in address order.
	Cycles [][]string
}

func (e *GraphError) Error() string {
	var parts []string
	parts = append(parts, e.Invalid...)
	for _, m := range e.Missing {
		parts = append(parts, "depends on a step not in the plan: "+m)
	}
	for _, c := range e.Cycles {
		parts = append(parts, "cycle: "+strings.Join(c, " -> ")+" -> "+c[0])
	}
	return "invalid plan graph: " + strings.Join(parts, "; ")
}

// Validate checks that every step has an address of its own, that every dependency is a step
// of the plan, that every reference points at a step the referring step depends on, and that
// the graph has no cycles, reporting all problems at once (as *GraphError).
func (p *Plan) Validate() error {
	index := make(map[string]int, len(p.Steps))
	var e GraphError
	for i, s := range p.Steps {
		if s.Address == "" {
			e.Invalid = append(e.Invalid, fmt.Sprintf("step %d has no address", i))
			continue
		}
		if _, dup := index[s.Address]; dup {
			e.Invalid = append(e.Invalid, "step "+s.Address+" appears more than once")
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
	for i := range p.Steps {
		s := &p.Steps[i]
		for _, r := range s.Refs() {
			if !dependsOn(p.Steps, index, s.Address, r.Step) {
				e.Missing = append(e.Missing, s.Address+" -> "+r.Step+" (referenced for "+r.Output+", not a dependency)")
			}
		}
	}
	e.Cycles = cycles(p.Steps, index)
	if len(e.Invalid) == 0 && len(e.Missing) == 0 && len(e.Cycles) == 0 {
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

// dependsOn reports whether step from depends, directly or not, on step to.
func dependsOn(steps []Step, index map[string]int, from, to string) bool {
	seen := map[string]bool{}
	queue := []string{from}
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		i, ok := index[a]
		if !ok {
			continue
		}
		for _, d := range steps[i].DependsOn {
			if d == to {
				return true
			}
			if !seen[d] {
				seen[d] = true
				queue = append(queue, d)
			}
		}
	}
	return false
}

// Target keeps the steps whose address matches a target (a path.Match pattern, the address
// itself or an address prefix) and every step they depend on, as terraform's -target does.
func (p *Plan) Target(targets []string) *Plan {
	byAddr := make(map[string]Step, len(p.Steps))
	for _, s := range p.Steps {
		byAddr[s.Address] = s
	}
	keep := map[string]bool{}
	var visit func(addr string)
	visit = func(addr string) {
		if keep[addr] {
			return
		}
		s, ok := byAddr[addr]
		if !ok {
			return
		}
		keep[addr] = true
		for _, d := range s.DependsOn {
			visit(d)
		}
	}
	targeted := func(addr string) bool {
		for _, t := range targets {
			if matched, _ := path.Match(t, addr); matched || addr == t || strings.HasPrefix(addr, t+"/") {
				return true
			}
		}
		return false
	}
	for _, s := range p.Steps {
		if targeted(s.Address) {
			visit(s.Address)
		}
	}
	out := *p
	out.Held = nil
	for _, h := range p.Held {
		if targeted(h.Address) {
			out.Held = append(out.Held, h)
		}
	}
	out.Steps = nil
	for _, s := range p.Steps {
		if keep[s.Address] {
			out.Steps = append(out.Steps, s)
		}
	}
	return &out
}
