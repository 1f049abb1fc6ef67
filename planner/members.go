package planner

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// memberEndpoint is the API URL Karmada and the other members use for m: fleet.yaml's
// apiEndpoint, else the observed one, else the output of the step that stores m's kubeconfig.
// It is empty (and no reference) when nothing can tell it.
func (b *builder) memberEndpoint(m *spec.Member) plan.Value {
	if m.APIEndpoint != "" {
		return plan.Known(m.APIEndpoint)
	}
	if c := b.cluster(m.Name); c != nil && c.APIEndpoint != "" {
		return plan.Known(c.APIEndpoint)
	}
	if b.has(addrKubeconfig(m.Name)) {
		return plan.Value{From: &plan.Ref{Step: addrKubeconfig(m.Name), Output: plan.OutputAPIEndpoint}}
	}
	return plan.Value{}
}

func unknown(v plan.Value) bool { return v.From == nil && v.Value == "" }

func (b *builder) member(m *spec.Member) {
	if b.conflicts[m.Name] != "" {
		return // held, with a note (holdConflicts)
	}
	b.lkeCluster(m.Name, m.Cluster, plan.Members)
	mode := b.f.MemberJoinMode(*m)
	km := b.karmadaMember(m.Name)
	obs := b.cluster(m.Name)
	endpoint := b.memberEndpoint(m)
	agentValues, agentRefs, agentShown := splitValues(AgentValues(b.f, m.Name, endpoint, b.peekNodeIP()))
	agentKey := ReleaseKey(AgentNamespace, AgentRelease)
	renewAgent := b.opts.RotateCredentials
	var rotateTokens, retireTokens []string
	var tokenReason string
	step := plan.Step{Address: addrJoin(m.Name), Layer: plan.Members, Kind: plan.KindJoin, Cluster: m.Name,
		DependsOn: append(b.present(AddrKarmadaReady), b.nearest(addrKubeconfig(m.Name), addrCluster(m.Name))...)}
	if km == nil {
		step.Action, step.Reason = plan.Create, m.Name+" is not a Karmada member"
		step.Changes = []plan.Change{{Field: "syncMode", After: string(mode)}, {Field: "apiEndpoint", After: endpoint.Shown()}}
		if mode == spec.Pull {
			step.Changes = append(step.Changes, plan.Change{Field: "agent.release", After: agentKey})
			step.Changes = append(step.Changes, diffValues("agent.values", nil, agentShown)...)
		}
	} else if stale := b.replacedIdentity(m.Name, km); stale != "" {
		// The cluster behind the member is not the one Karmada knows: a region rebuilt.
		step.Action, step.Reason = plan.Replace, stale
		after := plan.KnownAfterApply
		if obs != nil && obs.KubeSystemUID != "" {
			after = obs.KubeSystemUID
		}
		step.Changes = []plan.Change{{Field: "identity", Before: km.ID, After: after}, {Field: "syncMode", After: string(mode)}}
		if endpoint.From != nil || endpoint.Value != km.APIEndpoint {
			step.Changes = append(step.Changes, plan.Change{Field: "apiEndpoint", Before: km.APIEndpoint, After: endpoint.Shown()})
		}
	} else {
		if km.SyncMode != string(mode) {
			step.Changes = append(step.Changes, plan.Change{Field: "syncMode", Before: km.SyncMode, After: string(mode)})
		}
		if endpoint.From == nil && endpoint.Value != "" && km.APIEndpoint != endpoint.Value {
			step.Changes = append(step.Changes, plan.Change{Field: "apiEndpoint", Before: km.APIEndpoint, After: endpoint.Value})
		}
		if obs != nil && obs.Reachable {
			if mode == spec.Push {
				step.Changes = append(step.Changes, pushJoinChanges(obs.PushJoin, km)...)
				var tokenChanges []plan.Change
				tokenChanges, rotateTokens, retireTokens, tokenReason = b.pushTokens(m.Name, obs.PushJoin)
				if len(step.Changes) > 0 || km.SyncMode != string(mode) {
					tokenReason = "" // the join has more to do than its tokens
				}
				step.Changes = append(step.Changes, tokenChanges...)
			} else {
				step.Changes = append(step.Changes, agentChanges(obs.Releases[agentKey], agentKey,
					b.f.Manager.Karmada.Chart.Version, agentShown)...)
				identity, renew := b.agentIdentity(m.Name, obs.Agent, km)
				step.Changes = append(step.Changes, identity...)
				renewAgent = renew
			}
		}
		step.Action, step.Reason = plan.Update, "Karmada member "+m.Name+" differs from fleet.yaml"
		if tokenReason != "" {
			step.Reason = tokenReason
		}
		if b.adopts(m.Name) {
			step.Reason = "adopt: Karmada's Cluster " + m.Name + " is this very cluster (id " + km.ID + ", its kube-system UID) but lacks the fleet's mark"
			step.Changes = append(step.Changes, plan.Change{Field: "label " + world.FleetLabel, Before: km.Fleet, After: b.f.Metadata.Name})
		}
	}
	switch {
	case len(step.Changes) == 0:
	case b.held(m.Name):
		if why := b.unobserved(m.Name); why != "" {
			b.hold(step, why)
		}
	case unknown(endpoint):
		b.note("member/%s/join is held: the API endpoint of %s is not known (its kubeconfig could not be read)", m.Name, m.Name)
	default:
		j := &plan.Join{Mode: mode, APIEndpoint: endpoint}
		if mode == spec.Pull {
			k := b.f.Manager.Karmada
			b.managerNodeIP() // plans the node-address step when the agent's server refers to it
			j.Agent = &plan.Release{Name: AgentRelease, Namespace: AgentNamespace, Chart: k.Chart,
				ChartName: spec.DefaultKarmadaChartName, Values: agentValues, Refs: agentRefs, Timeout: k.Timeout,
				Wait: true, WaitForJobs: true, CreateNamespace: true}
			j.Manager, j.CertSecret = b.f.Manager.Name, k.Namespace+"/"+k.Release+"-cert"
			j.AgentCertLifetime = &spec.Duration{Duration: b.f.Credentials.AgentCertificateLifetime()}
			j.RenewAgentCert = renewAgent
			step.DependsOn = append(step.DependsOn, refSteps(agentRefs)...)
		} else {
			j.RemoveAgent = obs != nil && obs.Releases[agentKey] != nil
			j.RotateTokens, j.RetireTokens = rotateTokens, retireTokens
		}
		step.DependsOn = append(step.DependsOn, refSteps(nil, endpoint)...)
		j.Adopt = b.adopts(m.Name)
		if step.Action == plan.Replace {
			j.Replaces = km.ID
		}
		step.Payload.Join = j
		b.add(step)
	}
	switch {
	case b.has(step.Address):
		b.add(plan.Step{Address: addrMemberReady(m.Name), Layer: plan.Members, Kind: plan.KindMemberReady, Action: plan.Wait,
			Cluster: m.Name, Reason: "the member must be Ready before it receives replicas",
			DependsOn: []string{step.Address}})
	case km != nil && km.Ready != "True":
		ready := plan.Step{Address: addrMemberReady(m.Name), Layer: plan.Members, Kind: plan.KindMemberReady, Action: plan.Wait,
			Cluster: m.Name, Reason: "Karmada reports the member " + readyText(km)}
		if why := b.unobserved(m.Name); why != "" {
			// Waiting for a member nothing of which answers would only hold up the pass.
			b.hold(ready, why)
		} else {
			b.add(ready)
		}
		b.excluded[m.Name] = true
		b.note("member %s is %s in Karmada: Karmada taints it, so it cannot receive replicas until it is Ready",
			m.Name, readyText(km))
	}
}

// replacedIdentity says why the fleet's Karmada Cluster of a member stands for another cluster
// than the one behind the member now, or "": the LKE cluster is being created anew in this plan
// (deleted behind the fleet's back), or the member answers with another kube-system UID.
func (b *builder) replacedIdentity(name string, km *world.KarmadaMember) string {
	if km == nil || !km.OwnedBy(b.f.Metadata.Name) || km.ID == "" {
		return ""
	}
	if s, ok := b.steps[addrCluster(name)]; ok && s.Action == plan.Create {
		return "cluster replaced: no LKE cluster " + name + " exists any more, so a new one is created; Karmada's Cluster " +
			name + " stands for the old one (id " + km.ID + ")"
	}
	if c := b.cluster(name); c != nil && c.KubeSystemUID != "" && c.KubeSystemUID != km.ID {
		what := "kube-system UID " + km.ID + " -> " + c.KubeSystemUID
		if c.LinodeID != 0 {
			what = fmt.Sprintf("LKE %d, %s", c.LinodeID, what)
		}
		return "cluster replaced: " + what
	}
	return ""
}

// agentIdentity lists what differs in a Pull member's agent identity: a certificate that is
// not the member's own user (an agent joined before agents had their own, with Karmada's
// admin certificate), one due for renewal (older than credentials.tokenRotation, or any
// with RotateCredentials), and its RBAC in Karmada. renew says the certificate is replaced.
func (b *builder) agentIdentity(name string, a *world.AgentCredential, km *world.KarmadaMember) (changes []plan.Change, renew bool) {
	switch {
	case a == nil:
		// No certificate read (no agent release yet, or it was not readable): the release
		// changes say what happens; a new certificate comes with it.
	case a.Subject != world.AgentUser(name) || !slices.Contains(a.Groups, world.AgentGroup):
		changes = append(changes, plan.Change{Field: "agent.identity", Before: userText(a.Subject, a.Groups),
			After: userText(world.AgentUser(name), []string{world.AgentGroup})})
		renew = true
	case b.opts.RotateCredentials:
		changes = append(changes, plan.Change{Field: "agent.certificate", Before: b.certAge(a), After: "renewed (--rotate-credentials)"})
		renew = true
	case b.rotates(a.NotBefore):
		changes = append(changes, plan.Change{Field: "agent.certificate", Before: b.certAge(a),
			After: "renewed (credentials.tokenRotation " + durationText(b.f.Credentials.TokenRotation.Duration) + ")"})
		renew = true
	case halfLived(a, b.w.Now):
		// Karmada's signer may issue for less than asked (its --cluster-signing-duration):
		// a certificate is renewed once half of the life it really has is over.
		changes = append(changes, plan.Change{Field: "agent.certificate", Before: b.certAge(a),
			After: "renewed (half of its lifetime is over)"})
		renew = true
	}
	if km != nil && len(km.AgentRBACMissing) > 0 {
		changes = append(changes, plan.Change{Field: "agent.rbac", Before: "missing " + strings.Join(km.AgentRBACMissing, ", "),
			After: "RBAC " + "system:karmada:" + name + ":agent* (this member's objects only)"})
	}
	return changes, renew
}

func userText(user string, groups []string) string {
	if len(groups) == 0 {
		return user
	}
	return user + " (" + strings.Join(groups, ", ") + ")"
}

// halfLived reports whether half of a certificate's lifetime is over at now.
func halfLived(a *world.AgentCredential, now time.Time) bool {
	if now.IsZero() || a.NotBefore.IsZero() || !a.NotAfter.After(a.NotBefore) {
		return false
	}
	return !now.Before(a.NotBefore.Add(a.NotAfter.Sub(a.NotBefore) / 2))
}

// certAge shows how old a certificate is and when it expires.
func (b *builder) certAge(a *world.AgentCredential) string {
	expires := "expires " + a.NotAfter.UTC().Format(time.DateOnly)
	if a.NotBefore.IsZero() {
		return expires
	}
	return "issued " + b.tokenAge(a.NotBefore) + " ago, " + expires
}
