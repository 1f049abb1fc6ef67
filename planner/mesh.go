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

// Names of the mesh objects reconcile writes in every member's istio-system.
const (
	GatewayName          = "cross-network-gateway"
	ReaderServiceAccount = "istio-reader-service-account"
	ReaderTokenSecret    = "istio-reader-service-account-istio-remote-secret-token"
)

func (b *builder) eastWest() bool { return *b.f.Mesh.EastWestGateway }

// mesh plans the mesh layer. It refuses with *RootGuardError when members hold a root the
// state store does not have, unless the root is replaced on purpose (Options.ReplaceMeshRoot).
func (b *builder) mesh() error {
	if !b.f.Mesh.On() {
		return nil
	}
	root := b.w.RootCA
	foreign := b.foreignRoots()
	if len(foreign) > 0 && !b.opts.ReplaceMeshRoot {
		e := &RootGuardError{Members: foreign}
		if root != nil {
			e.StoreRoot = root.RootFingerprint
		}
		return e
	}
	ca := b.f.Mesh.CA
	switch {
	case b.opts.ReplaceMeshRoot && (root != nil || len(foreign) > 0):
		if un := b.unobservedMembers(); len(un) > 0 {
			return fmt.Errorf("planner: --replace-mesh-root: the mesh of %s could not be read this pass; "+
				"the root is replaced only by a pass that reads every member, or their trust would split", strings.Join(un, ", "))
		}
		b.replacingRoot = true
		reason := "--replace-mesh-root: the mesh root is replaced on purpose"
		if len(foreign) > 0 {
			reason += "; members hold a root the state store does not have"
		}
		p := &plan.RootCA{KeyType: ca.KeyType, Validity: ca.RootValidity}
		if root != nil {
			p.Replaces = &plan.Cert{RootFingerprint: root.RootFingerprint, NotAfter: root.NotAfter.UTC().Format(time.RFC3339)}
		}
		changes := []plan.Change{{Field: "root", Before: rootText(root), After: "new self-signed " + ca.KeyType + ", fingerprint " + plan.KnownAfterApply}}
		if held := b.membersRoots(); held != "" {
			changes = append(changes, plan.Change{Field: "members' roots", Before: held, After: "the new root"})
		}
		trust := strings.Join(b.trustChanges(), ", ")
		if trust == "" {
			trust = "none"
		}
		changes = append(changes, plan.Change{Field: "the members whose trust it changes", After: trust})
		b.add(plan.Step{Address: AddrRootCA, Layer: plan.Mesh, Kind: plan.KindRootCA, Action: plan.Replace,
			Reason: reason, Changes: changes, Payload: plan.Payload{RootCA: p}})
	case root == nil:
		if un := b.unobservedMembers(); len(un) > 0 {
			// A runner that cannot read every member does not invent a new truth.
			b.rootHeld = true
			b.note("%s is held: the state store has no mesh root and the mesh of %s could not be read, "+
				"so a member may hold a root already; the steps that need a root are held too", AddrRootCA, strings.Join(un, ", "))
			break
		}
		b.add(plan.Step{Address: AddrRootCA, Layer: plan.Mesh, Kind: plan.KindRootCA, Action: plan.Create,
			Reason:  "no mesh root CA in the state store",
			Changes: []plan.Change{{Field: "root", After: "self-signed " + ca.KeyType}},
			Payload: plan.Payload{RootCA: &plan.RootCA{KeyType: ca.KeyType, Validity: ca.RootValidity}}})
	}
	for _, m := range b.members {
		b.meshMemberSteps(m)
	}
	for _, n := range b.members {
		for _, x := range b.members {
			if n.Name != x.Name {
				b.remoteSecret(n, x)
			}
		}
	}
	for _, x := range b.members {
		b.retireReaderTokens(x)
	}
	// Secrets pointing at members that left would keep istiod watching a cluster that is gone.
	for _, n := range b.members {
		mm := b.meshMember(n.Name)
		if mm == nil {
			continue
		}
		for _, x := range sortedKeys(mm.RemoteSecrets) {
			if x == n.Name || b.isMember(x) {
				continue
			}
			b.add(plan.Step{Address: addrRemoteSecret(n.Name, x), Layer: plan.Mesh, Kind: plan.KindRemoteSecret, Action: plan.Delete,
				Cluster: n.Name, Peer: x, Reason: x + " left the fleet",
				Changes: []plan.Change{{Field: "secret", Before: "istio-remote-secret-" + x, After: removed}},
				Payload: plan.Payload{RemoteSecret: &plan.RemoteSecret{Namespace: MeshNamespace}}})
		}
	}
	return nil
}

// membersRoots shows the roots the members' cacerts chain to, members with one root together:
// "ap, eu: sha256:…; us: sha256:…".
func (b *builder) membersRoots() string {
	byRoot := map[string][]string{}
	for _, m := range b.members {
		mm := b.meshMember(m.Name)
		switch {
		case mm == nil:
		case mm.CACertsInvalid != "":
			byRoot["unreadable"] = append(byRoot["unreadable"], m.Name)
		case mm.CACerts != nil:
			byRoot[fingerprintText(mm.CACerts.RootFingerprint)] = append(byRoot[fingerprintText(mm.CACerts.RootFingerprint)], m.Name)
		}
	}
	var parts []string
	for _, r := range sortedKeys(byRoot) {
		sort.Strings(byRoot[r])
		parts = append(parts, strings.Join(byRoot[r], ", ")+": "+r)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func (b *builder) meshMemberSteps(m *spec.Member) {
	name := m.Name
	mm := b.meshMember(name)
	if b.meshHeld(name) {
		// Its steps are named, as if its mesh were empty, and held: none is planned.
		why := b.unobserved(name)
		if why == "" && b.meshUnobserved(name) != "" {
			why = name + " " + b.meshUnobserved(name)
		}
		if why == "" {
			return // held for another reason (its name is taken), said in a note
		}
		b.diverting, mm = why, nil
		defer func() { b.diverting = "" }()
	}
	obs := b.cluster(name)
	chain := []string{addrKubeconfig(name), addrCluster(name)}
	// dependsOnChain makes a step depend on the nearest planned earlier step of the member's chain.
	dependsOnChain := func() []string { return b.nearest(chain...) }

	nsAddr := addrMesh(name, "namespace")
	label := "topology.istio.io/network"
	nsPayload := plan.Payload{Namespace: &plan.Namespace{Name: MeshNamespace, Labels: map[string]string{label: m.Network}}}
	switch {
	case mm == nil || !mm.Namespace:
		b.add(plan.Step{Address: nsAddr, Layer: plan.Mesh, Kind: plan.KindMeshNamespace, Action: plan.Create, Cluster: name,
			Reason: "no " + MeshNamespace + " namespace in " + name, DependsOn: dependsOnChain(),
			Changes: []plan.Change{{Field: "namespace", After: MeshNamespace}, {Field: "label " + label, After: m.Network}},
			Payload: nsPayload})
	case mm.NetworkLabel != m.Network:
		b.add(plan.Step{Address: nsAddr, Layer: plan.Mesh, Kind: plan.KindMeshNamespace, Action: plan.Update, Cluster: name,
			Reason: "the network label differs from the member's network", DependsOn: dependsOnChain(),
			Changes: []plan.Change{{Field: "label " + label, Before: mm.NetworkLabel, After: m.Network}},
			Payload: nsPayload})
	}
	chain = append([]string{nsAddr}, chain...)

	caAddr := addrMesh(name, "cacerts")
	ca := plan.Step{Address: caAddr, Layer: plan.Mesh, Kind: plan.KindCACerts, Cluster: name,
		DependsOn: append(dependsOnChain(), b.present(AddrRootCA)...)}
	renew := b.f.Mesh.CA.RenewBefore.Duration
	switch {
	case b.replacingRoot && mm != nil && mm.CACertsInvalid != "":
		ca.Action, ca.Reason = plan.Replace, "the mesh root is replaced (--replace-mesh-root)"
		ca.Changes = []plan.Change{{Field: "root", Before: "unreadable cacerts", After: "the new root " + plan.KnownAfterApply}}
	case mm == nil || mm.CACerts == nil:
		if b.rootHeld && b.diverting == "" {
			// No root to issue from: the rest of the member's mesh waits with it.
			b.meshCut = append(b.meshCut, name)
			return
		}
		ca.Action, ca.Reason = plan.Create, "no cacerts secret in "+name
		ca.Changes = []plan.Change{{Field: "intermediate", After: "issued by the mesh root for " + name}}
	case b.replacingRoot:
		ca.Action, ca.Reason = plan.Replace, "the mesh root is replaced (--replace-mesh-root)"
		ca.Changes = []plan.Change{{Field: "root", Before: fingerprintText(mm.CACerts.RootFingerprint), After: "the new root " + plan.KnownAfterApply}}
	case !mm.CACerts.NotAfter.Add(-renew).After(b.w.Now) && b.w.RootCA != nil && !mm.CACerts.NotAfter.Before(b.w.RootCA.NotAfter):
		// An intermediate is never issued past its root: one that already runs to the root's
		// expiry cannot be renewed, and re-issuing it would restart istiod on every pass.
		b.note("member/%s/mesh/cacerts: the intermediate expires %s with the mesh root itself, so renewing it cannot "+
			"extend it; replace the root (reconcile --once --replace-mesh-root) before then",
			name, mm.CACerts.NotAfter.UTC().Format(time.RFC3339))
	case !mm.CACerts.NotAfter.Add(-renew).After(b.w.Now):
		ca.Action = plan.Replace
		ca.Reason = "expires " + mm.CACerts.NotAfter.UTC().Format(time.RFC3339) + ", re-issued from the same root"
		ca.Changes = []plan.Change{{Field: "notAfter", Before: mm.CACerts.NotAfter.UTC().Format(time.RFC3339), After: plan.KnownAfterApply}}
	}
	if ca.Action != plan.NoOp {
		p := &plan.CACerts{Namespace: MeshNamespace, KeyType: b.f.Mesh.CA.KeyType, Validity: b.f.Mesh.CA.IntermediateValidity}
		if ca.Action == plan.Replace {
			// An unreadable cacerts is named by nothing: the driver replaces it while it is
			// not an intermediate of the store's root.
			p.Replaces = &plan.Cert{}
			if mm.CACerts != nil {
				p.Replaces = &plan.Cert{RootFingerprint: mm.CACerts.RootFingerprint,
					NotAfter: mm.CACerts.NotAfter.UTC().Format(time.RFC3339)}
			}
		}
		ca.Payload.CACerts = p
		b.add(ca)
	}
	chain = append([]string{caAddr}, chain...)

	components := []string{ComponentBase, ComponentIstiod}
	if b.eastWest() {
		components = append(components, ComponentEastWest)
	}
	if b.f.IngressGatewayOn() {
		components = append(components, ComponentIngress)
	}
	for _, comp := range components {
		addr := addrMesh(name, comp)
		var values map[string]any
		switch comp {
		case ComponentBase:
			values = IstioBaseValues(b.f, name)
		case ComponentIstiod:
			values = IstiodValues(b.f, name)
		case ComponentIngress:
			values = IngressValues(b.f, name)
		default:
			values = EastWestValues(b.f, name)
		}
		key := ReleaseKey(MeshNamespace, MeshReleaseName(comp))
		var rel *world.Release
		if obs != nil {
			rel = obs.Releases[key]
		}
		st := plan.Step{Address: addr, Layer: plan.Mesh, Kind: plan.KindMeshRelease, Cluster: name, Component: comp,
			DependsOn: dependsOnChain()}
		if rel == nil {
			st.Action, st.Reason = plan.Create, "no release "+key+" in "+name
			st.Changes = append([]plan.Change{{Field: "chart", After: chartText(b.f.Mesh.Chart, meshChartName(comp)) + versionSuffix(b.f.Mesh.Chart, b.f.Mesh.Version)}},
				diffValues("values", nil, values)...)
		} else {
			if rel.Status != "deployed" {
				st.Changes = append(st.Changes, plan.Change{Field: "status", Before: statusText(rel.Status), After: "deployed"})
			}
			st.Changes = append(st.Changes, releaseChanges(rel, b.meshVersion(), values)...)
			st.Action, st.Reason = plan.Update, "release "+key+" differs from fleet.yaml"
		}
		if len(st.Changes) > 0 {
			st.Payload.Release = &plan.Release{Name: MeshReleaseName(comp), Namespace: MeshNamespace,
				Chart: b.f.Mesh.Chart, ChartName: meshChartName(comp), Values: values, Timeout: b.f.Mesh.Timeout}
			b.add(st)
		}
		chain = append([]string{addr}, chain...)
		if comp == ComponentBase {
			// The reader token's service account comes with the base chart.
			b.readerToken(name, mm, b.nearest(chain...))
		}
	}
	if b.eastWest() && (mm == nil || !mm.Gateway) {
		b.add(plan.Step{Address: addrMesh(name, "expose"), Layer: plan.Mesh, Kind: plan.KindExpose, Action: plan.Create, Cluster: name,
			Reason: "no cross-network Gateway in " + name, DependsOn: dependsOnChain(),
			Changes: []plan.Change{{Field: "gateway", After: MeshNamespace + "/" + GatewayName + " (port 15443, AUTO_PASSTHROUGH, *.local)"}},
			Payload: plan.Payload{Gateway: &plan.Gateway{Namespace: MeshNamespace, Name: GatewayName}}})
	}
}

// meshVersion is the version of the mesh charts: the chart source's, else the mesh's.
func (b *builder) meshVersion() string {
	if v := b.f.Mesh.Chart.Version; v != "" {
		return v
	}
	return b.f.Mesh.Version
}

func meshChartName(comp string) string {
	if comp == ComponentEastWest || comp == ComponentIngress {
		return "gateway"
	}
	return comp
}

// versionSuffix shows the mesh version when the chart source does not carry one.
func versionSuffix(c spec.ChartSource, version string) string {
	if c.Version != "" || version == "" {
		return ""
	}
	return " " + version
}

// remoteSecret plans istio-remote-secret-<x> in member n.
func (b *builder) remoteSecret(n, x *spec.Member) {
	addr := addrRemoteSecret(n.Name, x.Name)
	tokenAddr := addrMesh(x.Name, "reader-token")
	want := ""
	ep := b.memberEndpoint(x)
	if xm := b.meshMember(x.Name); xm != nil && xm.ReaderToken != "" && !b.has(tokenAddr) {
		if ep.From == nil && ep.Value != "" {
			want = world.RemoteSecretFingerprint(ep.Value, xm.ReaderToken)
		}
	}
	var have string
	var ok bool
	if nm := b.meshMember(n.Name); nm != nil {
		have, ok = nm.RemoteSecrets[x.Name]
	}
	shown := plan.KnownAfterApply
	if want != "" {
		shown = short(want)
	}
	st := plan.Step{Address: addr, Layer: plan.Mesh, Kind: plan.KindRemoteSecret, Cluster: n.Name, Peer: x.Name,
		DependsOn: append(b.present(tokenAddr), b.nearest(addrMesh(n.Name, ComponentIstiod), addrMesh(n.Name, ComponentBase),
			addrMesh(n.Name, "cacerts"), addrMesh(n.Name, "namespace"), addrKubeconfig(n.Name), addrCluster(n.Name))...)}
	switch {
	case !ok:
		st.Action, st.Reason = plan.Create, "istiod in "+n.Name+" does not watch "+x.Name+" yet"
		st.Changes = []plan.Change{{Field: "istio-remote-secret-" + x.Name, After: shown}}
	case want == "" || have != want:
		st.Action, st.Reason = plan.Update, x.Name+"'s endpoint or reader token changed"
		if t, ok := b.steps[tokenAddr]; ok && t.Action == plan.Replace {
			st.Reason = x.Name + "'s istio-reader token is rotated"
		}
		st.Changes = []plan.Change{{Field: "istio-remote-secret-" + x.Name, Before: short(have), After: shown}}
	default:
		return
	}
	if b.meshHeld(n.Name) || b.meshHeld(x.Name) {
		for _, c := range []string{n.Name, x.Name} {
			if why := b.unobserved(c); why != "" {
				b.hold(st, why)
				break
			}
			if why := b.meshUnobserved(c); why != "" {
				b.hold(st, c+" "+why)
				break
			}
		}
		return
	}
	if slices.Contains(b.meshCut, n.Name) || slices.Contains(b.meshCut, x.Name) {
		return
	}
	if unknown(ep) {
		b.note("%s is held: the API endpoint of %s is not known (its kubeconfig could not be read)", addr, x.Name)
		return
	}
	st.DependsOn = append(st.DependsOn, refSteps(nil, ep)...)
	st.Payload.RemoteSecret = &plan.RemoteSecret{Namespace: MeshNamespace, Endpoint: ep}
	b.add(st)
}

func hasMeshObjects(mm *world.MeshMember) bool {
	return mm != nil && (mm.Namespace || mm.CACerts != nil || mm.Gateway || mm.ReaderToken != "" || len(mm.RemoteSecrets) > 0)
}
