package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// writeStatusText draws a Status as aligned sections, one per layer, after the verdict.
func writeStatusText(out io.Writer, st *Status) error {
	if st == nil {
		return errNoStatus
	}
	now := st.ObservedAt
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }

	p("Fleet %s: %s (observed %s)\n", st.Fleet, strings.ToUpper(st.Health), now.UTC().Format(time.RFC3339))
	for _, r := range st.Reasons {
		p("  - %s\n", r)
	}

	p("\nCLUSTERS\n")
	p("  NAME\tROLE\tLINODE\tREGION\tSTATUS\tVERSION\tPOOLS (ready/count)\tAPI\n")
	for _, c := range st.Clusters {
		id, region, version := "-", dash(c.Region), dash(c.K8sVersion)
		if c.LinodeID != 0 {
			id = fmt.Sprint(c.LinodeID)
		}
		var pools []string
		for _, pl := range c.Pools {
			pools = append(pools, fmt.Sprintf("%s %d/%d", pl.Type, pl.ReadyNodes, pl.Count))
		}
		api := "unreachable"
		if c.Reachable {
			api = "reachable"
		}
		if c.Unreadable != "" {
			api += " (not read in full)"
		}
		p("  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Role, id, region, dash(c.Status), version, dash(strings.Join(pools, ", ")), api)
	}

	k := st.Karmada
	p("\nKARMADA  %s\n", karmadaText(k))
	p("  MEMBER\tJOIN\tSYNC\tREADY\tSINCE\tREASON\n")
	for _, m := range k.Members {
		ready, since := dash(m.Ready), "-"
		if !m.Joined {
			ready = "not joined"
		}
		if !m.ReadySince.IsZero() {
			since = ageText(now.Sub(m.ReadySince))
		}
		p("  %s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.JoinMode, dash(m.SyncMode), ready, since, dash(joinNonEmpty(": ", m.Reason, m.Message)))
	}

	if ms := st.Mesh; ms != nil {
		root := "no root CA"
		if ms.Root != nil {
			root = fmt.Sprintf("root %s expires %s", shortFingerprint(ms.Root.RootFingerprint), expiryText(now, ms.Root.NotAfter))
		}
		if ms.RootLost {
			root = "root CA lost from the state"
		}
		p("\nMESH  %s\n", root)
		p("  MEMBER\tINTERMEDIATE EXPIRES\tISTIOD\tREMOTE SECRETS\n")
		for _, m := range ms.Members {
			inter := "-"
			switch {
			case !m.Observed:
				inter = "not observed"
			case m.IntermediateInvalid != "":
				inter = "invalid"
			case m.Intermediate != nil:
				inter = expiryText(now, m.Intermediate.NotAfter)
			}
			var rs []string
			for _, r := range m.RemoteSecrets {
				rs = append(rs, r.Remote+" "+r.State)
			}
			p("  %s\t%s\t%s\t%s\n", m.Name, inter, m.Istiod, dash(strings.Join(rs, ", ")))
		}
	}

	if len(st.Workloads) > 0 {
		p("\nWORKLOADS\n")
		p("  WORKLOAD\tRESOURCE\tREPLICAS\tMEMBER\tWEIGHT\tPREDICTED\tSCHEDULED\tREPORTED (ready/replicas)\tHEALTH\n")
		for _, wl := range st.Workloads {
			name := wl.Name
			if !wl.Policy {
				name += " (no policy)"
			}
			if len(wl.Resources) == 0 {
				p("  %s\t-\t-\t%s\t\t\t\t\t\n", name, weightsText(wl.Weights))
			}
			for _, r := range wl.Resources {
				res := r.Kind + "/" + r.Name
				if !r.Found {
					p("  %s\t%s\t-\t-\t-\t-\t-\t-\tnot divided (no replicas)\n", name, res)
					continue
				}
				for i, sp := range r.Members {
					reported, health := "-", "-"
					if sp.Reported != nil {
						reported = fmt.Sprintf("%d/%d", sp.Reported.ReadyReplicas, sp.Reported.Replicas)
						health = dash(sp.Reported.Health)
						if !sp.Reported.Applied {
							health = "not applied"
						}
					}
					replicas := ""
					if i == 0 {
						replicas = fmt.Sprint(r.Replicas)
					}
					p("  %s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", name, res, replicas, sp.Member, sp.Weight, sp.Predicted, sp.Scheduled, reported, health)
					name, res = "", ""
				}
			}
		}
		for _, wl := range st.Workloads {
			if r := wl.Rollout; r != nil {
				line := fmt.Sprintf("  rollout %s: stage %d/%d (weights %s), %s", wl.Name, r.Stage, r.Stages, weightsText(r.Weights), r.State)
				switch {
				case r.Halted != "":
					line += ": " + r.Halted
				case r.State == "gate held":
					line += "; next stage from " + r.NextAt.UTC().Format(time.RFC3339)
				default:
					line += " until " + r.NextAt.UTC().Format(time.RFC3339)
				}
				p("%s\n", line)
			}
		}
	}

	if len(st.Credentials) > 0 {
		p("\nCREDENTIALS\n")
		p("  MEMBER\tKIND\tNAME\tAGE\tEXPIRES\n")
		for _, c := range st.Credentials {
			age, expires := "unknown", "-"
			if !c.Created.IsZero() {
				age = ageText(now.Sub(c.Created))
			}
			if !c.NotAfter.IsZero() {
				expires = expiryText(now, c.NotAfter)
			}
			p("  %s\t%s\t%s\t%s\t%s\n", c.Member, c.Kind, strings.Join(c.Names, ", "), age, expires)
		}
	}

	if e := st.Entry; e != nil {
		p("\nENTRY  %s  zone %s; answers %s\n", e.Name, e.Zone, dash(strings.Join(e.Published, ", ")))
		p("  MEMBER\tADDRESS\tHEALTH\tSINCE\tPUBLISHED\tREASON\n")
		for _, m := range e.Members {
			since := "-"
			if !m.Since.IsZero() {
				since = ageText(now.Sub(m.Since))
			}
			pub := "no"
			if m.Published {
				pub = "yes"
			}
			p("  %s\t%s\t%s\t%s\t%s\t%s\n", m.Name, dash(strings.Join(m.Addresses, ", ")), m.Health, since, pub, dash(m.Reason))
		}
	}

	pe := st.Pending
	if pe.Error != "" {
		p("\nPLAN NOW  none: %s\n", pe.Error)
	} else {
		p("\nPLAN NOW  %d to add, %d to change, %d to destroy, %d to wait for\n", pe.Add, pe.Change, pe.Destroy, pe.Wait)
	}
	for _, n := range pe.Notes {
		p("  note: %s\n", n)
	}
	if pe.Cost != nil {
		p("  cost: %s\n", pe.Cost.Total())
	}

	p("\nPASSES (last %d)\n", passesShown)
	if len(st.Passes) == 0 {
		p("  none recorded\n")
	} else {
		p("  TIME\tDURATION\tPLAN (+ ~ - <=)\tRESULT\n")
		for _, ps := range st.Passes {
			result := fmt.Sprintf("%d succeeded, %d failed, %d skipped", ps.Succeeded, ps.Failed, ps.Skipped)
			if ps.Error != "" {
				result += ": " + oneLine(ps.Error, 100)
			}
			p("  %s\t%s\t%d %d %d %d\t%s\n", ps.Time.UTC().Format(time.RFC3339), ps.Duration.Round(time.Second),
				ps.Plan.Add, ps.Plan.Change, ps.Plan.Destroy, ps.Plan.Wait, result)
		}
	}
	return tw.Flush()
}

func karmadaText(k KarmadaStatus) string {
	switch {
	case !k.Reachable:
		return "not reachable"
	case !k.APIServiceAvailable:
		return "reachable, cluster API not available"
	}
	return "reachable, cluster API available"
}

func expiryText(now, at time.Time) string {
	if !now.Before(at) {
		return at.UTC().Format("2006-01-02") + " (expired)"
	}
	return at.UTC().Format("2006-01-02") + " (in " + ageText(at.Sub(now)) + ")"
}

func weightsText(w map[string]int64) string {
	names := make([]string, 0, len(w))
	for m := range w {
		names = append(names, m)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, m := range names {
		parts[i] = fmt.Sprintf("%s=%d", m, w[m])
	}
	return strings.Join(parts, " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a pass's error to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}
