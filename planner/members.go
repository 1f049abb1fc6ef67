package planner

import (
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

func joinMode(f *spec.Fleet, m *spec.Member) spec.JoinMode {
	switch {
	case m.JoinMode != "":
		return m.JoinMode
	case f.JoinMode != "":
		return f.JoinMode
	}
	return spec.Push
}

// memberEndpoint is the API URL Karmada and the other members use for m ("" when not known yet).
func (b *builder) memberEndpoint(m *spec.Member) string {
	if m.APIEndpoint != "" {
		return m.APIEndpoint
	}
	if c := b.cluster(m.Name); c != nil {
		return c.APIEndpoint
	}
	return ""
}

func (b *builder) member(m *spec.Member) {
	b.lkeCluster(m.Name, m.Cluster, plan.Members)
	mode := joinMode(b.f, m)
	km := b.karmadaMember(m.Name)
	obs := b.cluster(m.Name)
	endpoint := b.memberEndpoint(m)
	shownEndpoint := endpoint
	if shownEndpoint == "" {
		shownEndpoint = plan.KnownAfterApply
	}
	agentValues := AgentValues(b.f, m.Name, endpoint, b.managerNodeIP())
	agentKey := ReleaseKey(AgentNamespace, AgentRelease)
	step := plan.Step{Address: addrJoin(m.Name), Layer: plan.Members, Kind: plan.KindJoin, Cluster: m.Name,
		DependsOn: append(b.present(AddrKarmadaReady), b.nearest(addrKubeconfig(m.Name), addrCluster(m.Name))...)}
	if km == nil {
		step.Action, step.Reason = plan.Create, m.Name+" is not a Karmada member"
		step.Changes = []plan.Change{{Field: "syncMode", After: string(mode)}, {Field: "apiEndpoint", After: shownEndpoint}}
		if mode == spec.Pull {
			step.Changes = append(step.Changes, plan.Change{Field: "agent.release", After: agentKey})
			step.Changes = append(step.Changes, diffValues("agent.values", nil, agentValues)...)
		}
	} else {
		if km.SyncMode != string(mode) {
			step.Changes = append(step.Changes, plan.Change{Field: "syncMode", Before: km.SyncMode, After: string(mode)})
		}
		if endpoint != "" && km.APIEndpoint != endpoint {
			step.Changes = append(step.Changes, plan.Change{Field: "apiEndpoint", Before: km.APIEndpoint, After: endpoint})
		}
		if obs != nil && obs.Reachable {
			if mode == spec.Push {
				step.Changes = append(step.Changes, pushJoinChanges(obs.PushJoin, km)...)
			} else {
				step.Changes = append(step.Changes, agentChanges(obs.Releases[agentKey], agentKey,
					b.f.Manager.Karmada.Chart.Version, agentValues)...)
			}
		}
		step.Action, step.Reason = plan.Update, "Karmada member "+m.Name+" differs from fleet.yaml"
	}
	if len(step.Changes) > 0 {
		b.add(step)
	}
	switch {
	case b.has(step.Address):
		b.add(plan.Step{Address: addrMemberReady(m.Name), Layer: plan.Members, Kind: plan.KindMemberReady, Action: plan.Wait,
			Cluster: m.Name, Reason: "the member must be Ready before it receives replicas",
			DependsOn: []string{step.Address}})
	case km != nil && km.Ready != "True":
		b.add(plan.Step{Address: addrMemberReady(m.Name), Layer: plan.Members, Kind: plan.KindMemberReady, Action: plan.Wait,
			Cluster: m.Name, Reason: "Karmada reports the member " + readyText(km)})
		b.excluded[m.Name] = true
		b.note("member %s is %s in Karmada: Karmada taints it, so it cannot receive replicas until it is Ready",
			m.Name, readyText(km))
	}
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
	if pj.CredentialHash != "" && km.SecretHash != "" && pj.CredentialHash != km.SecretHash {
		return []plan.Change{{Field: "credentials", Before: short(km.SecretHash), After: short(pj.CredentialHash)}}
	}
	return nil
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
