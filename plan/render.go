package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText renders the plan for people, like `terraform plan`: a header per layer, one line
// per step with its symbol, address and reason, the changed fields indented below, the notes,
// and a summary line. It reads only the serializable Plan, so it cannot disagree with WriteJSON.
func (p *Plan) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	switch {
	case len(p.Steps) == 0 && len(p.Notes) == 0:
		fmt.Fprintln(bw, "No changes. The fleet matches fleet.yaml.")
	case len(p.Steps) == 0:
		fmt.Fprintln(bw, "No changes planned, but see the notes: the plan could not promise everything.")
	}
	for _, layer := range Layers {
		first := true
		for _, s := range p.Steps {
			if s.Layer != layer {
				continue
			}
			if first {
				fmt.Fprintf(bw, "%s:\n", layer)
				first = false
			}
			fmt.Fprintf(bw, "  %s %s  (%s)\n", s.Action.Symbol(), s.Address, s.Reason)
			for _, c := range s.Changes {
				switch {
				case c.Before == "":
					fmt.Fprintf(bw, "        %s: %s\n", c.Field, c.After)
				case c.After == "":
					fmt.Fprintf(bw, "        %s: %s -> (none)\n", c.Field, c.Before)
				default:
					fmt.Fprintf(bw, "        %s: %s -> %s\n", c.Field, c.Before, c.After)
				}
			}
			if len(s.DependsOn) > 0 {
				fmt.Fprintf(bw, "        after: %s\n", strings.Join(s.DependsOn, ", "))
			}
		}
		if !first {
			fmt.Fprintln(bw)
		}
	}
	if len(p.Notes) > 0 {
		if len(p.Steps) == 0 {
			fmt.Fprintln(bw)
		}
		fmt.Fprintln(bw, "Notes:")
		for _, n := range p.Notes {
			fmt.Fprintf(bw, "  - %s\n", n)
		}
		fmt.Fprintln(bw)
	}
	if len(p.Steps) > 0 {
		s := p.Summary()
		fmt.Fprintf(bw, "Plan: %d to add, %d to change, %d to destroy.\n", s.Add, s.Change, s.Destroy)
	}
	return bw.Flush()
}

// WriteJSON writes the plan as indented JSON, the form a saved plan is kept in.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
