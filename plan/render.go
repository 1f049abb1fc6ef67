package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// GroupOver is how many alike steps of a layer (same action, same address once the cluster
// and peer names are replaced by *) a text plan shows one by one; more are one line.
const GroupOver = 10

// TextOptions tune WriteTextWith.
type TextOptions struct {
	// Verbose shows every step on its own, however many are alike.
	Verbose bool
}

// WriteText renders the plan for people, like `terraform plan`: a header per layer, one line
// per step with its symbol, address and reason, the changed fields indented below, the notes,
// and a summary line. More than GroupOver alike steps of a layer are one line with their count
// and members (see WriteTextWith). It reads only the serializable Plan, so it cannot disagree
// with WriteJSON.
func (p *Plan) WriteText(w io.Writer) error {
	return p.WriteTextWith(w, TextOptions{})
}

// WriteTextWith is WriteText with options: opt.Verbose draws every step of a large plan.
// Grouping is display only: the plan, its JSON and what is executed are the same.
func (p *Plan) WriteTextWith(w io.Writer, opt TextOptions) error {
	bw := bufio.NewWriter(w)
	switch {
	case len(p.Steps) == 0 && len(p.Held) > 0:
		fmt.Fprintln(bw, "No changes planned; the steps marked ? are held: what they act in was not observed.")
		fmt.Fprintln(bw)
	case len(p.Steps) == 0 && len(p.Notes) == 0:
		fmt.Fprintln(bw, "No changes. The fleet matches fleet.yaml.")
	case len(p.Steps) == 0:
		fmt.Fprintln(bw, "No changes planned, but see the notes: the plan could not promise everything.")
	}
	for _, layer := range Layers {
		var steps []*Step
		for i := range p.Steps {
			if p.Steps[i].Layer == layer {
				steps = append(steps, &p.Steps[i])
			}
		}
		var held []Held
		for _, h := range p.Held {
			if h.Layer == layer {
				held = append(held, h)
			}
		}
		if len(steps) == 0 && len(held) == 0 {
			continue
		}
		fmt.Fprintf(bw, "%s:\n", layer)
		lastMembers := ""
		groups := map[string][]*Step{}
		if !opt.Verbose {
			for _, s := range steps {
				k := groupKey(s)
				groups[k] = append(groups[k], s)
			}
		}
		for _, s := range steps {
			g := groups[groupKey(s)]
			switch {
			case len(g) <= GroupOver:
				writeStep(bw, s)
			case g[0] == s:
				lastMembers = writeGroup(bw, g, lastMembers)
			}
		}
		for _, h := range held {
			fmt.Fprintf(bw, "  %s %s  (%s)\n", HeldSymbol, h.Address, h.Reason)
		}
		fmt.Fprintln(bw)
	}
	if len(p.Notes) > 0 {
		if len(p.Steps) == 0 && len(p.Held) == 0 {
			fmt.Fprintln(bw)
		}
		fmt.Fprintln(bw, "Notes:")
		for _, n := range p.Notes {
			fmt.Fprintf(bw, "  - %s\n", n)
		}
		fmt.Fprintln(bw)
	}
	if p.Cost != nil {
		writeCost(bw, p.Cost)
	}
	if len(p.Steps) > 0 {
		s := p.Summary()
		held := ""
		if len(p.Held) > 0 {
			held = fmt.Sprintf(" %d held (not observed).", len(p.Held))
		}
		fmt.Fprintf(bw, "Plan: %d to add, %d to change, %d to destroy.%s\n", s.Add, s.Change, s.Destroy, held)
	}
	return bw.Flush()
}

// WriteJSON writes the plan as indented JSON, the form a saved plan is kept in.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

func writeStep(bw *bufio.Writer, s *Step) {
	fmt.Fprintf(bw, "  %s %s  (%s)\n", s.Action.Symbol(), s.Address, s.Reason)
	for _, c := range s.Changes {
		fmt.Fprintf(bw, "        %s\n", changeText(c))
	}
	if len(s.DependsOn) > 0 {
		fmt.Fprintf(bw, "        after: %s\n", strings.Join(s.DependsOn, ", "))
	}
}

func changeText(c Change) string {
	switch {
	case c.Before == "":
		return fmt.Sprintf("%s: %s", c.Field, c.After)
	case c.After == "":
		return fmt.Sprintf("%s: %s -> (none)", c.Field, c.Before)
	}
	return fmt.Sprintf("%s: %s -> %s", c.Field, c.Before, c.After)
}

// groupKey is what alike steps share: action and the address's shape, the step's cluster
// and peer names replaced by *.
func groupKey(s *Step) string {
	return string(s.Action) + " " + shape(s)
}

// shape is the step's address with its cluster and peer names as *: member/*/mesh/cacerts.
func shape(s *Step) string {
	parts := strings.Split(s.Address, "/")
	// The cluster's name comes first in an address, the peer's last.
	if i := slices.Index(parts, s.Cluster); s.Cluster != "" && i >= 0 {
		parts[i] = "*"
	}
	if i := lastIndex(parts, s.Peer); s.Peer != "" && i >= 0 {
		parts[i] = "*"
	}
	return strings.Join(parts, "/")
}

func lastIndex(ss []string, v string) int {
	for i := len(ss) - 1; i >= 0; i-- {
		if ss[i] == v {
			return i
		}
	}
	return -1
}

// writeGroup draws alike steps as one line: the count and shape, what they are, whom they
// concern, their reason when all share it (names as *) and the changes all of them make.
// Members the group above in the layer listed too are not listed again; it returns its list.
func writeGroup(bw *bufio.Writer, g []*Step, above string) string {
	first := g[0]
	clusters := names(g, func(s *Step) string { return s.Cluster })
	what := "kind " + string(first.Kind)
	switch least, most := peersEach(g); {
	case most > 0 && least == most:
		what += fmt.Sprintf(", %d members x %d peers", len(clusters), most)
	case most > 0:
		what += fmt.Sprintf(", %d members x %d to %d peers", len(clusters), least, most)
	case len(clusters) > 0:
		what += fmt.Sprintf(", %d members", len(clusters))
	}
	fmt.Fprintf(bw, "  %s %d x %s  (%s)\n", first.Action.Symbol(), len(g), shape(first), what)
	if reason, same := commonReason(g); same {
		fmt.Fprintf(bw, "        reason: %s\n", reason)
	} else {
		fmt.Fprintf(bw, "        reason, for %s: %s (others differ)\n", first.Address, first.Reason)
	}
	members := strings.Join(clusters, ", ")
	switch {
	case members == "":
	case members == above:
		fmt.Fprintf(bw, "        members: the %d above\n", len(clusters))
	default:
		fmt.Fprintf(bw, "        members: %s\n", members)
	}
	common, differ := commonChanges(g)
	for _, c := range common {
		fmt.Fprintf(bw, "        %s\n", c)
	}
	if differ {
		fmt.Fprintln(bw, "        (changes differ from step to step: --verbose shows each)")
	}
	return members
}

// peersEach is the least and the most peers a cluster of g has; 0, 0 without peers.
func peersEach(g []*Step) (least, most int) {
	peers := map[string]map[string]bool{}
	for _, s := range g {
		if s.Peer == "" {
			continue
		}
		if peers[s.Cluster] == nil {
			peers[s.Cluster] = map[string]bool{}
		}
		peers[s.Cluster][s.Peer] = true
	}
	for _, ps := range peers {
		if n := len(ps); least == 0 || n < least {
			least = n
		}
		most = max(most, len(ps))
	}
	return least, most
}

// names are the distinct non-empty values of f over g, sorted.
func names(g []*Step, f func(*Step) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range g {
		if n := f(s); n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// commonReason is the reason every step of g gives once its own cluster and peer names are *.
func commonReason(g []*Step) (string, bool) {
	var want string
	for i, s := range g {
		r := starNames(s.Reason, s.Cluster, s.Peer)
		if i == 0 {
			want = r
		} else if r != want {
			return "", false
		}
	}
	return want, true
}

// starNames replaces the whole-word occurrences of the names in text by *.
func starNames(text string, names ...string) string {
	for _, n := range names {
		if n == "" {
			continue
		}
		var b strings.Builder
		for rest := text; ; {
			i := strings.Index(rest, n)
			if i < 0 {
				b.WriteString(rest)
				break
			}
			end := i + len(n)
			if (i == 0 || !nameByte(rest[i-1])) && (end == len(rest) || !nameByte(rest[end])) {
				b.WriteString(rest[:i] + "*")
			} else {
				b.WriteString(rest[:end])
			}
			rest = rest[end:]
		}
		text = b.String()
	}
	return text
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// commonChanges are the change lines (names as *) every step of g has, in the first step's
// order, and whether some step has others.
func commonChanges(g []*Step) ([]string, bool) {
	count := map[string]int{}
	total := 0
	for _, s := range g {
		seen := map[string]bool{}
		for _, c := range s.Changes {
			l := starNames(changeText(c), s.Cluster, s.Peer)
			if !seen[l] {
				seen[l] = true
				count[l]++
				total++
			}
		}
	}
	var common []string
	seen := map[string]bool{}
	for _, c := range g[0].Changes {
		l := starNames(changeText(c), g[0].Cluster, g[0].Peer)
		if count[l] == len(g) && !seen[l] {
			seen[l] = true
			common = append(common, l)
		}
	}
	return common, total != len(common)*len(g)
}
