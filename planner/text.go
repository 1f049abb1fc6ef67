package planner

import (
	"fmt"
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// What a plan shows: the text of changes and the helpers that render them.

func releaseChanges(rel *world.Release, version string, values map[string]any) []plan.Change {
	var out []plan.Change
	if version != "" && strings.TrimPrefix(version, "v") != strings.TrimPrefix(rel.ChartVersion, "v") {
		out = append(out, plan.Change{Field: "version", Before: rel.ChartVersion, After: version})
	}
	have := rel.Values
	if have == nil {
		have = map[string]any{}
	}
	return append(out, diffValues("values", have, values)...)
}

func statusText(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}

func chartText(c spec.ChartSource, defaultName string) string {
	var s string
	switch {
	case c.OCI != "":
		s = c.OCI
	case c.Path != "":
		s = c.Path
	default:
		name := c.Name
		if name == "" {
			name = defaultName
		}
		s = name
		if c.Repo != "" {
			s = c.Repo + " " + name
		}
	}
	if c.Version != "" {
		s += " " + c.Version
	}
	return s
}

func readyText(km *world.KarmadaMember) string {
	s := "Ready=" + km.Ready
	if km.Ready == "" {
		s = "without a Ready condition"
	}
	if km.Reason != "" {
		s += " (" + km.Reason + ")"
	}
	return s
}

func pushJoinChanges(pj *world.PushJoin, km *world.KarmadaMember) []plan.Change {
	var missing []string
	switch {
	case pj == nil:
		missing = []string{"namespace", "rbac", "tokens"}
	default:
		if !pj.Namespace {
			missing = append(missing, "namespace")
		}
		if !pj.RBAC {
			missing = append(missing, "rbac")
		}
		if !pj.TokensReady {
			missing = append(missing, "tokens")
		}
	}
	if len(missing) > 0 {
		return []plan.Change{{Field: "member-side", Before: "missing " + strings.Join(missing, ", "), After: "present"}}
	}
	var out []plan.Change
	if pj.CredentialHash != "" && km.SecretHash != "" && pj.CredentialHash != km.SecretHash {
		out = append(out, plan.Change{Field: "credentials", Before: short(km.SecretHash), After: short(pj.CredentialHash)})
	}
	if pj.ImpersonatorHash != "" && km.ImpersonatorHash != "" && pj.ImpersonatorHash != km.ImpersonatorHash {
		out = append(out, plan.Change{Field: "impersonator credentials", Before: short(km.ImpersonatorHash), After: short(pj.ImpersonatorHash)})
	}
	return out
}

func agentChanges(rel *world.Release, key, version string, values map[string]any) []plan.Change {
	if rel == nil {
		return []plan.Change{{Field: "agent.release", After: key}}
	}
	var out []plan.Change
	if rel.Status != "deployed" {
		out = append(out, plan.Change{Field: "agent.status", Before: statusText(rel.Status), After: "deployed"})
	}
	if version != "" && strings.TrimPrefix(version, "v") != strings.TrimPrefix(rel.ChartVersion, "v") {
		out = append(out, plan.Change{Field: "agent.version", Before: rel.ChartVersion, After: version})
	}
	have := rel.Values
	if have == nil {
		have = map[string]any{}
	}
	return append(out, diffValues("agent.values", have, values)...)
}

// short abbreviates a fingerprint for display.
func short(fp string) string {
	fp = strings.TrimPrefix(fp, "sha256:")
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

func policyName(p *world.Policy) string {
	if p.ClusterScoped {
		return "ClusterPropagationPolicy " + p.Name
	}
	return "PropagationPolicy " + p.Namespace + "/" + p.Name
}

func objectText(o spec.ManifestObject, ns string) string {
	if o.Namespace != "" {
		ns = o.Namespace
	}
	s := o.Kind + " " + o.Name
	if ns != "" {
		s = o.Kind + " " + ns + "/" + o.Name
	}
	if o.Replicas != nil {
		s += fmt.Sprintf(" (replicas %d)", *o.Replicas)
	}
	return s
}

func policyChanges(have, want *world.Policy) []plan.Change {
	var out []plan.Change
	var h world.Policy
	if have != nil {
		h = *have
	}
	if have != nil && h.ClusterScoped != want.ClusterScoped {
		out = append(out, plan.Change{Field: "clusterScoped", Before: fmt.Sprint(h.ClusterScoped), After: fmt.Sprint(want.ClusterScoped)})
	}
	if a, bf := resourcesText(want.Resources), resourcesText(h.Resources); a != bf {
		out = append(out, plan.Change{Field: "resources", Before: bf, After: a})
	}
	if a, bf := strings.Join(want.Clusters, ", "), strings.Join(sortedSet(h.Clusters), ", "); a != bf {
		out = append(out, plan.Change{Field: "clusters", Before: bf, After: a})
	}
	if a, bf := weightsText(want.Weights), weightsText(h.Weights); a != bf {
		out = append(out, plan.Change{Field: "weights", Before: bf, After: a})
	}
	if have == nil || h.Divided != want.Divided {
		before := ""
		if have != nil {
			before = fmt.Sprint(h.Divided)
		}
		out = append(out, plan.Change{Field: "divided", Before: before, After: fmt.Sprint(want.Divided)})
	}
	return out
}

func resourcesText(rs []world.ResourceRef) string {
	var parts []string
	for _, r := range rs {
		s := r.APIVersion + " " + r.Kind
		if r.Name != "" {
			s += " " + r.Name
		}
		if len(r.LabelSelector) > 0 {
			var sel []string
			for _, k := range sortedKeys(r.LabelSelector) {
				sel = append(sel, k+"="+r.LabelSelector[k])
			}
			s += " {" + strings.Join(sel, ",") + "}"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func weightsText(w map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(w) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, w[k]))
	}
	return strings.Join(parts, ", ")
}
