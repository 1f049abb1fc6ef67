package planner

import (
	"fmt"
	"sort"
	"strings"

	"github.com/reconcile-dev/reconcile/state/world"
)

// RootGuardError is Compute's refusal when members hold a mesh root the state store does not
// have (the store has no root, or another one). Planning from that store would put a new root
// in every member's cacerts in one pass and break mTLS across the mesh: a fresh CI runner with
// an empty --state-dir did just that, and the bastion put its root back on its next pass.
// Replacing a trust root is an explicit act: Options.ReplaceMeshRoot.
type RootGuardError struct {
	// StoreRoot is the fingerprint of the state store's root; "" when the store has none.
	StoreRoot string
	// Members are the members whose cacerts chain to another root (or cannot be read as an
	// intermediate at all), sorted by name.
	Members []ForeignRoot
}

// ForeignRoot is one member's cacerts that does not chain to the store's root.
type ForeignRoot struct {
	Member string
	// Root is the fingerprint of the root the member's cacerts chains to; "" when Invalid.
	Root string
	// Invalid says why the member's cacerts could not be read as an intermediate.
	Invalid string
}

func (e *RootGuardError) Error() string {
	var b strings.Builder
	store := "the state store has no mesh root"
	if e.StoreRoot != "" {
		store = "the state store's mesh root is " + fingerprintText(e.StoreRoot)
	}
	fmt.Fprintf(&b, "mesh root guard: members hold a mesh root the state store does not have (%s); "+
		"nothing is planned and nothing was written:", store)
	// Members with the same root on one line: a split mesh shows as two lines.
	byRoot := map[string][]string{}
	var invalid []string
	for _, m := range e.Members {
		if m.Invalid != "" {
			invalid = append(invalid, fmt.Sprintf("\n  %s: its cacerts is not an intermediate reconcile can read (%s)", m.Member, m.Invalid))
			continue
		}
		byRoot[m.Root] = append(byRoot[m.Root], m.Member)
	}
	roots := sortedKeys(byRoot)
	sort.SliceStable(roots, func(i, j int) bool { return byRoot[roots[i]][0] < byRoot[roots[j]][0] })
	for _, r := range roots {
		fmt.Fprintf(&b, "\n  %s: cacerts chains to root %s", strings.Join(byRoot[r], ", "), fingerprintText(r))
	}
	for _, s := range invalid {
		b.WriteString(s)
	}
	b.WriteString("\nA new root would break mTLS between every member and the rest of the mesh. To fix it, either " +
		"point reconcile at the state that holds the members' root (--state-dir, or the fleet's state: backend; " +
		"`reconcile state migrate` moves a local state into the shared one), " +
		"or pass --replace-mesh-root to replace the mesh root on purpose (every member's cacerts is re-issued from a new root)")
	return b.String()
}

// fingerprintText is a root fingerprint as people compare it: sha256: and 16 hex digits.
func fingerprintText(fp string) string {
	fp = strings.TrimPrefix(fp, "sha256:")
	if len(fp) > 16 {
		fp = fp[:16]
	}
	return "sha256:" + fp
}

// foreignRoots are the fleet's members whose cacerts does not chain to the store's root.
func (b *builder) foreignRoots() []ForeignRoot {
	var out []ForeignRoot
	for _, m := range b.members {
		mm := b.meshMember(m.Name)
		switch {
		case mm == nil:
		case mm.CACertsInvalid != "":
			out = append(out, ForeignRoot{Member: m.Name, Invalid: mm.CACertsInvalid})
		case mm.CACerts != nil && (b.w.RootCA == nil || mm.CACerts.RootFingerprint != b.w.RootCA.RootFingerprint):
			out = append(out, ForeignRoot{Member: m.Name, Root: mm.CACerts.RootFingerprint})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Member < out[j].Member })
	return out
}

// meshUnobserved says why the mesh side of member name was not read this pass: it could not
// be read in full (world.MarkUnreadable), or it exists and has a kubeconfig but did not answer.
// It is "" when it was read, and for a cluster that does not exist yet or whose kubeconfig
// the plan stores first (nothing of the mesh can be in it).
func (b *builder) meshUnobserved(name string) string {
	c := b.cluster(name)
	switch {
	case c == nil:
		return ""
	case c.Unreadable != "":
		return c.Unreadable
	case c.Unreachable != "":
		return "did not answer: " + c.Unreachable
	case c.Reachable, b.has(addrKubeconfig(name)), b.has(addrCluster(name)) && c.LinodeID == 0:
		return ""
	}
	if m, ok := b.f.Member(name); ok && m.IsLKE() && c.LinodeID == 0 {
		return ""
	}
	return "could not be reached"
}

// meshHeld reports whether steps of the mesh that act in or point at member name are held
// because its mesh could not be read: it is never planned as empty. The plan says so once.
func (b *builder) meshHeld(name string) bool {
	if b.held(name) {
		return true
	}
	why := b.meshUnobserved(name)
	if why == "" {
		return false
	}
	if b.heldNoted == nil {
		b.heldNoted = map[string]bool{}
	}
	if !b.heldNoted[name] {
		b.heldNoted[name] = true
		b.note("cluster %s %s: its mesh is not known, so its mesh steps are held until a pass reads it", name, why)
	}
	return true
}

// unobservedMembers are the fleet's members whose mesh was not read this pass, sorted: those
// of meshUnobserved, and LKE clusters that exist but whose kubeconfig is not stored yet (the
// observer could not fetch it). Nothing of them is planned as empty, but a root is neither
// created nor replaced while one of them might hold another.
func (b *builder) unobservedMembers() []string {
	var out []string
	for _, m := range b.members {
		c := b.cluster(m.Name)
		if b.meshUnobserved(m.Name) != "" || (c != nil && c.LinodeID != 0 && !c.KubeconfigStored && !c.Reachable) {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

// trustChanges are the members whose trust a new root changes: those holding a cacerts.
func (b *builder) trustChanges() []string {
	var out []string
	for _, m := range b.members {
		if mm := b.meshMember(m.Name); mm != nil && (mm.CACerts != nil || mm.CACertsInvalid != "") {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

// rootText shows a root the plan replaces.
func rootText(r *world.CertInfo) string {
	if r == nil {
		return "none in the state store"
	}
	return fingerprintText(r.RootFingerprint)
}
