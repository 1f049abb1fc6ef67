package planner

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Token rotation. The tokens reconcile makes (a Push member's Karmada tokens, every member's
// istio-reader token) are replaced once they are credentials.tokenRotation old, or all of
// them with Options.RotateCredentials: a new token first, then every consumer written from
// it, and only then are the old token Secrets deleted, so no pass in between leaves a
// consumer with a token that no longer works. A token of unknown age (no creation time
// observed) is never rotated for its age.

// rotates reports whether a token made at created is replaced in this plan.
func (b *builder) rotates(created time.Time) bool {
	if b.opts.RotateCredentials {
		return true
	}
	limit := b.f.Credentials.TokenRotation.Duration
	return limit > 0 && !created.IsZero() && !b.w.Now.IsZero() && b.w.Now.Sub(created) >= limit
}

// tokenAge shows how old a token made at created is: "31d", "5h", "12m", or "unknown".
func (b *builder) tokenAge(created time.Time) string {
	if created.IsZero() || b.w.Now.IsZero() {
		return "unknown"
	}
	d := max(b.w.Now.Sub(created), 0)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dm", int(d/time.Minute))
}

// rotationReason says why a token (what) made at created is rotated.
func (b *builder) rotationReason(what string, created time.Time) string {
	age := what + " is " + b.tokenAge(created) + " old"
	if created.IsZero() {
		age = what + " is of unknown age"
	}
	if b.opts.RotateCredentials {
		return "--rotate-credentials: " + age
	}
	return age + "; credentials.tokenRotation " + durationText(b.f.Credentials.TokenRotation.Duration)
}

// durationText writes a duration as fleet.yaml does: "720h", "90m", "1h30m".
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// pushTokens plans the rotation of a Push member's Karmada tokens and the retirement of older
// token Secrets a rotation left: the changes the join shows, the token Secrets it replaces
// and those it deletes once Karmada's secrets hold the new tokens, and a reason when that is
// all the join does.
func (b *builder) pushTokens(name string, pj *world.PushJoin) (changes []plan.Change, rotate, retire []string, reason string) {
	if pj == nil || !pj.TokensReady || len(pj.Tokens) == 0 {
		return nil, nil, nil, ""
	}
	if b.rotates(pj.TokenCreated) {
		rotate = slices.Clone(pj.Tokens)
		retire = append(retire, pj.Tokens...)
		changes = append(changes, plan.Change{Field: "token", Before: "age " + b.tokenAge(pj.TokenCreated), After: "rotated"})
		reason = b.rotationReason("the Karmada token of "+name, pj.TokenCreated)
	}
	if len(pj.OldTokens) > 0 {
		retire = append(retire, pj.OldTokens...)
		changes = append(changes, plan.Change{Field: "old tokens", Before: strings.Join(pj.OldTokens, ", "), After: removed})
		if reason == "" {
			reason = "token Secrets a rotation left in " + name + " are retired once Karmada holds the current tokens"
		}
	}
	sort.Strings(retire)
	return changes, rotate, retire, reason
}

// readerToken plans member name's istio-reader token: made when there is none, replaced by a
// new generation when it is due for rotation.
func (b *builder) readerToken(name string, mm *world.MeshMember, deps []string) {
	p := &plan.ReaderToken{Namespace: MeshNamespace, ServiceAccount: ReaderServiceAccount, Secret: ReaderTokenSecret}
	st := plan.Step{Address: addrMesh(name, "reader-token"), Layer: plan.Mesh, Kind: plan.KindReaderToken,
		Cluster: name, DependsOn: deps, Payload: plan.Payload{ReaderToken: p}}
	switch {
	case mm == nil || mm.ReaderToken == "":
		st.Action, st.Reason = plan.Create, "no istio-reader token in "+name
		st.Changes = []plan.Change{{Field: "secret", After: MeshNamespace + "/" + ReaderTokenSecret}}
	case b.rotates(mm.ReaderTokenCreated):
		st.Action, st.Reason = plan.Replace, b.rotationReason("istio-reader token", mm.ReaderTokenCreated)
		st.Changes = []plan.Change{{Field: "token", Before: "age " + b.tokenAge(mm.ReaderTokenCreated), After: "rotated"},
			{Field: "secret", Before: MeshNamespace + "/" + mm.ReaderTokenSecret, After: "its next generation"}}
		p.Replaces = mm.ReaderTokenSecret
	default:
		return
	}
	b.add(st)
}

// retireReaderTokens plans the deletion of x's reader token Secrets older than the current
// one (the one a rotation in this plan replaces, and those an earlier rotation left), after
// every other member's remote secret for x is written from the current token. It is held
// while one of them is not (a member whose mesh was not read): that member's istiod still
// reads x with an older token.
func (b *builder) retireReaderTokens(x *spec.Member) {
	xm := b.meshMember(x.Name)
	if xm == nil || xm.ReaderToken == "" || b.meshHeld(x.Name) || slices.Contains(b.meshCut, x.Name) {
		return
	}
	tokenAddr := addrMesh(x.Name, "reader-token")
	rotating := false
	var retire []string
	if s, ok := b.steps[tokenAddr]; ok && s.Action == plan.Replace {
		rotating = true
		retire = append(retire, xm.ReaderTokenSecret)
	}
	retire = append(retire, xm.OldReaderTokens...)
	if len(retire) == 0 {
		return
	}
	addr := addrMesh(x.Name, "reader-token/retire")
	deps := b.present(tokenAddr)
	var waiting []string
	for _, n := range b.members {
		if n.Name == x.Name {
			continue
		}
		rs := addrRemoteSecret(n.Name, x.Name)
		switch {
		case b.has(rs):
			deps = append(deps, rs)
		case !rotating && b.remoteSecretCurrent(n, x):
		default:
			waiting = append(waiting, n.Name)
		}
	}
	if len(waiting) > 0 {
		b.note("%s is held: the remote secrets for %s in %s are not written from its current token in this plan", addr, x.Name, strings.Join(waiting, ", "))
		return
	}
	reason := "the remote secrets for " + x.Name + " hold its current istio-reader token"
	if rotating {
		reason = "the remote secrets for " + x.Name + " hold its new istio-reader token"
	}
	b.add(plan.Step{Address: addr, Layer: plan.Mesh, Kind: plan.KindReaderToken, Action: plan.Delete, Cluster: x.Name,
		Reason: reason + ": the older token Secrets go, and their tokens stop working", DependsOn: deps,
		Changes: []plan.Change{{Field: "secrets", Before: strings.Join(retire, ", "), After: removed}},
		Payload: plan.Payload{ReaderToken: &plan.ReaderToken{Namespace: MeshNamespace, ServiceAccount: ReaderServiceAccount,
			Secret: ReaderTokenSecret, Retire: retire}}})
}

// remoteSecretCurrent reports whether n's remote secret for x was observed written from x's
// current reader token at x's endpoint.
func (b *builder) remoteSecretCurrent(n, x *spec.Member) bool {
	nm, xm := b.meshMember(n.Name), b.meshMember(x.Name)
	ep := b.memberEndpoint(x)
	if nm == nil || xm == nil || xm.ReaderToken == "" || ep.From != nil || ep.Value == "" {
		return false
	}
	have, ok := nm.RemoteSecrets[x.Name]
	return ok && have == world.RemoteSecretFingerprint(ep.Value, xm.ReaderToken)
}
