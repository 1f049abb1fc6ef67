package planner

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
)

// Defaults the planner applies when the fleet leaves them out (spec applies the same ones).
const (
	DefaultMaxDeleteShare = 0.34
	DefaultRenewBefore    = 720 * time.Hour
	DefaultNamespace      = "default"
)

// ErrRootCALost is wrapped by Compute's error when the mesh root CA is gone from the store.
var ErrRootCALost = errors.New("the mesh root CA was lost")

// Addresses of the steps that exist once per fleet.
const (
	AddrKarmadaRelease    = "manager/karmada/release"
	AddrKarmadaKubeconfig = "manager/karmada/kubeconfig"
	AddrKarmadaReady      = "manager/karmada/ready"
	AddrRootCA            = "mesh/root-ca"
)

// Addresses of per-cluster, per-member and per-workload steps.
func addrCluster(name string) string    { return "cluster/" + name }
func addrKubeconfig(name string) string { return "cluster/" + name + "/kubeconfig" }
func addrJoin(m string) string          { return "member/" + m + "/join" }
func addrMemberReady(m string) string   { return "member/" + m + "/ready" }
func addrUnjoin(m string) string        { return "member/" + m + "/unjoin" }
func addrMesh(m, part string) string    { return "member/" + m + "/mesh/" + part }
func addrRemoteSecret(in, from string) string {
	return "member/" + in + "/mesh/remote-secret/" + from
}
func addrManifests(w string) string { return "workload/" + w + "/manifests" }
func addrPolicy(w string) string    { return "workload/" + w + "/policy" }

// Compute plans what it takes to make the observed world match the desired fleet. It is a pure
// function: the same inputs give the same plan, byte for byte, and neither input is modified.
// A converged world gives a plan with no steps. It returns *GuardError when the plan would
// destroy more than the fleet allows without opts.AllowDestroy, and refuses to plan a new mesh
// root when the old one was lost.
func Compute(desired *spec.Fleet, observed *world.World, opts Options) (*Plan, error) {
	if desired == nil {
		return nil, errors.New("planner: no desired fleet")
	}
	if observed == nil {
		observed = &world.World{}
	}
	if desired.Mesh.On() && observed.RootCALost {
		return nil, fmt.Errorf("%w: the state store records a root that is no longer there; "+
			"a new root would break trust across the mesh (every member's workloads would stop "+
			"trusting the others), so none is planned: restore the root CA files into the state store", ErrRootCALost)
	}
	b := &builder{f: desired, w: observed, steps: map[string]*Step{}, excluded: map[string]bool{}}
	for i := range desired.Members {
		b.members = append(b.members, &desired.Members[i])
	}
	b.manager()
	for _, m := range b.members {
		b.member(m)
	}
	b.mesh()
	b.weights()
	b.removals()
	if err := b.guard(opts); err != nil {
		return nil, err
	}
	p := &Plan{
		Fleet:            desired.Metadata.Name,
		Steps:            b.sorted(),
		Notes:            b.notes,
		SpecFingerprint:  SpecFingerprint(desired),
		WorldFingerprint: WorldFingerprint(observed),
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("planner: %w", err)
	}
	return p, nil
}

type builder struct {
	f       *spec.Fleet
	w       *world.World
	members []*spec.Member
	steps   map[string]*Step
	notes   []string
	// excluded members are joined but not Ready: Karmada gives them no replicas.
	excluded map[string]bool
}

func (b *builder) add(s Step) {
	b.steps[s.Address] = &s
}

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *builder) has(addr string) bool { _, ok := b.steps[addr]; return ok }

// nearest is the first of addrs that is in the plan: steps of a chain depend on their closest
// planned predecessor, since an unplanned one is already satisfied.
func (b *builder) nearest(addrs ...string) []string {
	for _, a := range addrs {
		if b.has(a) {
			return []string{a}
		}
	}
	return nil
}

// present is every one of addrs that is in the plan.
func (b *builder) present(addrs ...string) []string {
	var out []string
	for _, a := range addrs {
		if b.has(a) {
			out = append(out, a)
		}
	}
	return out
}

func (b *builder) sorted() []Step {
	order := map[Layer]int{}
	for i, l := range Layers {
		order[l] = i
	}
	out := make([]Step, 0, len(b.steps))
	for _, s := range b.steps {
		st := *s
		st.DependsOn = dedupe(st.DependsOn)
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if order[out[i].Layer] != order[out[j].Layer] {
			return order[out[i].Layer] < order[out[j].Layer]
		}
		return out[i].Address < out[j].Address
	})
	return out
}

func dedupe(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}

func (b *builder) cluster(name string) *world.Cluster {
	if b.w.Clusters == nil {
		return nil
	}
	return b.w.Clusters[name]
}

func (b *builder) karmadaMember(name string) *world.KarmadaMember {
	if b.w.Karmada == nil || b.w.Karmada.Members == nil {
		return nil
	}
	return b.w.Karmada.Members[name]
}

func (b *builder) meshMember(name string) *world.MeshMember {
	if b.w.Mesh == nil {
		return nil
	}
	return b.w.Mesh[name]
}

func (b *builder) isMember(name string) bool {
	for _, m := range b.members {
		if m.Name == name {
			return true
		}
	}
	return false
}

// ---- clusters ----

// lkeCluster plans cluster/<name> and cluster/<name>/kubeconfig for an LKE cluster.
func (b *builder) lkeCluster(name string, c spec.Cluster, layer Layer) {
	if !c.IsLKE() {
		return
	}
	obs := b.cluster(name)
	if obs == nil || obs.LinodeID == 0 {
		changes := []Change{{Field: "region", After: c.Region}}
		if c.K8sVersion != "" {
			changes = append(changes, Change{Field: "k8sVersion", After: c.K8sVersion})
		}
		if c.HighAvailability {
			changes = append(changes, Change{Field: "highAvailability", After: "true"})
		}
		if tags := sortedSet(c.Tags); len(tags) > 0 {
			changes = append(changes, Change{Field: "tags", After: strings.Join(tags, ", ")})
		}
		for i, p := range c.Pools {
			changes = append(changes, Change{Field: fmt.Sprintf("pool[%d]", i), After: desiredPool(p)})
		}
		b.add(Step{Address: addrCluster(name), Layer: layer, Kind: KindCluster, Action: Create,
			Cluster: name, Changes: changes, Reason: "no LKE cluster " + name + " exists"})
	} else {
		b.updateCluster(name, c, obs, layer)
	}
	if obs == nil || !obs.KubeconfigStored {
		b.add(Step{Address: addrKubeconfig(name), Layer: layer, Kind: KindKubeconfig, Action: Create,
			Cluster: name, Reason: "no kubeconfig for " + name + " in the state store",
			DependsOn: b.present(addrCluster(name))})
	}
}

func (b *builder) updateCluster(name string, c spec.Cluster, obs *world.Cluster, layer Layer) {
	var changes []Change
	if c.Region != "" && obs.Region != "" && c.Region != obs.Region {
		b.note("cluster/%s: region %s -> %s is refused: an LKE cluster cannot move; "+
			"add a new member in %s and remove this one instead", name, obs.Region, c.Region, c.Region)
	}
	if c.K8sVersion != "" && obs.K8sVersion != "" && c.K8sVersion != obs.K8sVersion {
		if c.AllowUpgrade {
			changes = append(changes, Change{Field: "k8sVersion", Before: obs.K8sVersion, After: c.K8sVersion})
		} else {
			b.note("cluster/%s: k8sVersion %s -> %s is not planned: set allowUpgrade: true on the cluster "+
				"to upgrade it in place", name, obs.K8sVersion, c.K8sVersion)
		}
	}
	switch {
	case c.HighAvailability && !obs.HighAvailability:
		changes = append(changes, Change{Field: "highAvailability", Before: "false", After: "true"})
	case !c.HighAvailability && obs.HighAvailability:
		b.note("cluster/%s: highAvailability stays on: LKE cannot turn an HA control plane off", name)
	}
	if !sameTags(c.Tags, obs.Tags) {
		changes = append(changes, Change{Field: "tags", Before: strings.Join(sortedSet(obs.Tags), ", "), After: strings.Join(sortedSet(c.Tags), ", ")})
	}
	pools := slices.Clone(obs.Pools)
	sort.SliceStable(pools, func(i, j int) bool { return pools[i].ID < pools[j].ID })
	for i := 0; i < max(len(c.Pools), len(pools)); i++ {
		field := fmt.Sprintf("pool[%d]", i)
		switch {
		case i >= len(pools):
			changes = append(changes, Change{Field: field, After: desiredPool(c.Pools[i])})
		case i >= len(c.Pools):
			changes = append(changes, Change{Field: field, Before: observedPool(pools[i]), After: removed})
		default:
			changes = append(changes, poolChanges(field, c.Pools[i], pools[i])...)
		}
	}
	if len(changes) == 0 {
		return
	}
	b.add(Step{Address: addrCluster(name), Layer: layer, Kind: KindCluster, Action: Update,
		Cluster: name, Changes: changes, Reason: "LKE cluster " + name + " differs from fleet.yaml"})
}

func poolChanges(field string, want spec.Pool, have world.Pool) []Change {
	if want.Type != have.Type {
		return []Change{{Field: field + ".type", Before: have.Type,
			After: want.Type + " (pool replaced: the new pool is created first, then the old one deleted)"}}
	}
	var out []Change
	if want.Autoscaler == nil && want.Count != 0 && want.Count != have.Count {
		out = append(out, Change{Field: field + ".count", Before: fmt.Sprint(have.Count), After: fmt.Sprint(want.Count)})
	}
	w, h := "off", "off"
	if want.Autoscaler != nil {
		w = fmt.Sprintf("%d-%d", want.Autoscaler.Min, want.Autoscaler.Max)
	}
	if have.Autoscaler != nil {
		h = fmt.Sprintf("%d-%d", have.Autoscaler.Min, have.Autoscaler.Max)
	}
	if w != h {
		out = append(out, Change{Field: field + ".autoscaler", Before: h, After: w})
	}
	if !sameTags(want.Tags, have.Tags) {
		out = append(out, Change{Field: field + ".tags", Before: strings.Join(sortedSet(have.Tags), ", "), After: strings.Join(sortedSet(want.Tags), ", ")})
	}
	return out
}

func desiredPool(p spec.Pool) string {
	s := fmt.Sprintf("%s x%d", p.Type, p.Count)
	if p.Autoscaler != nil {
		s += fmt.Sprintf(" (autoscaler %d-%d)", p.Autoscaler.Min, p.Autoscaler.Max)
	}
	if len(p.Tags) > 0 {
		s += " tags " + strings.Join(sortedSet(p.Tags), ", ")
	}
	return s
}

func observedPool(p world.Pool) string {
	s := fmt.Sprintf("%s x%d", p.Type, p.Count)
	if p.Autoscaler != nil {
		s += fmt.Sprintf(" (autoscaler %d-%d)", p.Autoscaler.Min, p.Autoscaler.Max)
	}
	return s
}

// sameTags compares tag sets without regard to order or case (the Linode API may lowercase
// tags). World tags are the user's only: observers leave out the ownership tags.
func sameTags(want, have []string) bool {
	return slices.Equal(sortedSet(lower(want)), sortedSet(lower(have)))
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}

// ---- manager: Karmada control plane ----

func (b *builder) managerNodeIP() string {
	if c := b.cluster(b.f.Manager.Name); c != nil && len(c.NodeIPs) > 0 {
		return c.NodeIPs[0]
	}
	return ""
}

func (b *builder) manager() {
	mgr := b.f.Manager.Name
	b.lkeCluster(mgr, b.f.Manager.Cluster, Managers)
	relName, ns := KarmadaRelease(b.f)
	var rel *world.Release
	if c := b.cluster(mgr); c != nil {
		rel = c.Releases[ReleaseKey(ns, relName)]
	}
	values := KarmadaValues(b.f, b.managerNodeIP())
	version := b.f.Manager.Karmada.Chart.Version
	deps := b.nearest(addrKubeconfig(mgr), addrCluster(mgr))
	step := Step{Address: AddrKarmadaRelease, Layer: Managers, Kind: KindKarmadaRelease,
		Cluster: mgr, DependsOn: deps}
	switch {
	case rel == nil:
		step.Action, step.Reason = Create, "no release "+ReleaseKey(ns, relName)+" on "+mgr
		step.Changes = append([]Change{{Field: "chart", After: chartText(b.f.Manager.Karmada.Chart, "karmada")}},
			diffValues("values", nil, values)...)
	case rel.Status != "deployed":
		step.Action = Replace
		step.Reason = "release " + ReleaseKey(ns, relName) + " is " + statusText(rel.Status) + ": reinstalled to recover"
		step.Changes = append([]Change{{Field: "status", Before: statusText(rel.Status), After: "deployed"}},
			releaseChanges(rel, version, values)...)
	default:
		step.Changes = releaseChanges(rel, version, values)
		step.Action, step.Reason = Update, "release "+ReleaseKey(ns, relName)+" differs from fleet.yaml"
	}
	if len(step.Changes) > 0 {
		b.add(step)
	}
	k := b.w.Karmada
	switch {
	case b.has(AddrKarmadaRelease):
		b.add(Step{Address: AddrKarmadaKubeconfig, Layer: Managers, Kind: KindKarmadaKubeconfig, Action: Create,
			Cluster: mgr, Reason: "the release writes a new " + relName + "-kubeconfig", DependsOn: []string{AddrKarmadaRelease}})
	case k == nil || !k.Reachable:
		b.add(Step{Address: AddrKarmadaKubeconfig, Layer: Managers, Kind: KindKarmadaKubeconfig, Action: Create,
			Cluster: mgr, Reason: "the Karmada API was not reachable with the stored kubeconfig", DependsOn: deps})
	}
	var why string
	switch {
	case b.has(AddrKarmadaKubeconfig):
		why = "Karmada must answer before members join"
	case k == nil || !k.Reachable:
		why = "the Karmada API did not answer"
	case !k.APIServiceAvailable:
		why = "APIService v1alpha1.cluster.karmada.io is not Available"
	}
	if why != "" {
		b.add(Step{Address: AddrKarmadaReady, Layer: Managers, Kind: KindKarmadaReady, Action: Wait,
			Cluster: mgr, Reason: why, DependsOn: b.present(AddrKarmadaKubeconfig)})
	}
}

func releaseChanges(rel *world.Release, version string, values map[string]any) []Change {
	var out []Change
	if version != "" && strings.TrimPrefix(version, "v") != strings.TrimPrefix(rel.ChartVersion, "v") {
		out = append(out, Change{Field: "version", Before: rel.ChartVersion, After: version})
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

// ---- members: join and ready ----

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
	b.lkeCluster(m.Name, m.Cluster, Members)
	mode := joinMode(b.f, m)
	km := b.karmadaMember(m.Name)
	obs := b.cluster(m.Name)
	endpoint := b.memberEndpoint(m)
	shownEndpoint := endpoint
	if shownEndpoint == "" {
		shownEndpoint = KnownAfterApply
	}
	agentValues := AgentValues(b.f, m.Name, endpoint, b.managerNodeIP())
	agentKey := ReleaseKey(AgentNamespace, AgentRelease)
	step := Step{Address: addrJoin(m.Name), Layer: Members, Kind: KindJoin, Cluster: m.Name,
		DependsOn: append(b.present(AddrKarmadaReady), b.nearest(addrKubeconfig(m.Name), addrCluster(m.Name))...)}
	if km == nil {
		step.Action, step.Reason = Create, m.Name+" is not a Karmada member"
		step.Changes = []Change{{Field: "syncMode", After: string(mode)}, {Field: "apiEndpoint", After: shownEndpoint}}
		if mode == spec.Pull {
			step.Changes = append(step.Changes, Change{Field: "agent.release", After: agentKey})
			step.Changes = append(step.Changes, diffValues("agent.values", nil, agentValues)...)
		}
	} else {
		if km.SyncMode != string(mode) {
			step.Changes = append(step.Changes, Change{Field: "syncMode", Before: km.SyncMode, After: string(mode)})
		}
		if endpoint != "" && km.APIEndpoint != endpoint {
			step.Changes = append(step.Changes, Change{Field: "apiEndpoint", Before: km.APIEndpoint, After: endpoint})
		}
		if obs != nil && obs.Reachable {
			if mode == spec.Push {
				step.Changes = append(step.Changes, pushJoinChanges(obs.PushJoin, km)...)
			} else {
				step.Changes = append(step.Changes, agentChanges(obs.Releases[agentKey], agentKey,
					b.f.Manager.Karmada.Chart.Version, agentValues)...)
			}
		}
		step.Action, step.Reason = Update, "Karmada member "+m.Name+" differs from fleet.yaml"
	}
	if len(step.Changes) > 0 {
		b.add(step)
	}
	switch {
	case b.has(step.Address):
		b.add(Step{Address: addrMemberReady(m.Name), Layer: Members, Kind: KindMemberReady, Action: Wait,
			Cluster: m.Name, Reason: "the member must be Ready before it receives replicas",
			DependsOn: []string{step.Address}})
	case km != nil && km.Ready != "True":
		b.add(Step{Address: addrMemberReady(m.Name), Layer: Members, Kind: KindMemberReady, Action: Wait,
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

func pushJoinChanges(pj *world.PushJoin, km *world.KarmadaMember) []Change {
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
		return []Change{{Field: "member-side", Before: "missing " + strings.Join(missing, ", "), After: "present"}}
	}
	if pj.CredentialHash != "" && km.SecretHash != "" && pj.CredentialHash != km.SecretHash {
		return []Change{{Field: "credentials", Before: short(km.SecretHash), After: short(pj.CredentialHash)}}
	}
	return nil
}

func agentChanges(rel *world.Release, key, version string, values map[string]any) []Change {
	if rel == nil {
		return []Change{{Field: "agent.release", After: key}}
	}
	var out []Change
	if rel.Status != "deployed" {
		out = append(out, Change{Field: "agent.status", Before: statusText(rel.Status), After: "deployed"})
	}
	if version != "" && strings.TrimPrefix(version, "v") != strings.TrimPrefix(rel.ChartVersion, "v") {
		out = append(out, Change{Field: "agent.version", Before: rel.ChartVersion, After: version})
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

// ---- mesh ----

func (b *builder) eastWest() bool {
	return b.f.Mesh.EastWestGateway == nil || *b.f.Mesh.EastWestGateway
}

func (b *builder) mesh() {
	if !b.f.Mesh.On() {
		return
	}
	if b.w.RootCA == nil {
		keyType := b.f.Mesh.CA.KeyType
		if keyType == "" {
			keyType = "rsa-4096"
		}
		b.add(Step{Address: AddrRootCA, Layer: Mesh, Kind: KindRootCA, Action: Create,
			Reason:  "no mesh root CA in the state store",
			Changes: []Change{{Field: "root", After: "self-signed " + keyType}}})
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
			b.add(Step{Address: addrRemoteSecret(n.Name, x), Layer: Mesh, Kind: KindRemoteSecret, Action: Delete,
				Cluster: n.Name, Peer: x, Reason: x + " left the fleet",
				Changes: []Change{{Field: "secret", Before: "istio-remote-secret-" + x, After: removed}}})
		}
	}
}

func (b *builder) meshMemberSteps(m *spec.Member) {
	name := m.Name
	mm := b.meshMember(name)
	obs := b.cluster(name)
	chain := []string{addrKubeconfig(name), addrCluster(name)}
	// dependsOnChain makes a step depend on the nearest planned earlier step of the member's chain.
	dependsOnChain := func() []string { return b.nearest(chain...) }

	nsAddr := addrMesh(name, "namespace")
	label := "topology.istio.io/network"
	switch {
	case mm == nil || !mm.Namespace:
		b.add(Step{Address: nsAddr, Layer: Mesh, Kind: KindMeshNamespace, Action: Create, Cluster: name,
			Reason: "no " + MeshNamespace + " namespace in " + name, DependsOn: dependsOnChain(),
			Changes: []Change{{Field: "namespace", After: MeshNamespace}, {Field: "label " + label, After: m.Network}}})
	case mm.NetworkLabel != m.Network:
		b.add(Step{Address: nsAddr, Layer: Mesh, Kind: KindMeshNamespace, Action: Update, Cluster: name,
			Reason: "the network label differs from the member's network", DependsOn: dependsOnChain(),
			Changes: []Change{{Field: "label " + label, Before: mm.NetworkLabel, After: m.Network}}})
	}
	chain = append([]string{nsAddr}, chain...)

	caAddr := addrMesh(name, "cacerts")
	ca := Step{Address: caAddr, Layer: Mesh, Kind: KindCACerts, Cluster: name,
		DependsOn: append(dependsOnChain(), b.present(AddrRootCA)...)}
	root := b.w.RootCA
	renew := b.f.Mesh.CA.RenewBefore.Duration
	if renew == 0 {
		renew = DefaultRenewBefore
	}
	switch {
	case mm == nil || mm.CACerts == nil:
		ca.Action, ca.Reason = Create, "no cacerts secret in "+name
		ca.Changes = []Change{{Field: "intermediate", After: "issued by the mesh root for " + name}}
	case root == nil || mm.CACerts.RootFingerprint != root.RootFingerprint:
		ca.Action, ca.Reason = Replace, "the intermediate chains to another root"
		rootFP := KnownAfterApply
		if root != nil {
			rootFP = short(root.RootFingerprint)
		}
		ca.Changes = []Change{{Field: "root", Before: short(mm.CACerts.RootFingerprint), After: rootFP}}
	case !mm.CACerts.NotAfter.Add(-renew).After(b.w.Now):
		ca.Action = Replace
		ca.Reason = "expires " + mm.CACerts.NotAfter.UTC().Format(time.RFC3339) + ", re-issued from the same root"
		ca.Changes = []Change{{Field: "notAfter", Before: mm.CACerts.NotAfter.UTC().Format(time.RFC3339), After: KnownAfterApply}}
	}
	if ca.Action != NoOp {
		b.add(ca)
	}
	chain = append([]string{caAddr}, chain...)

	components := []string{ComponentBase, ComponentIstiod}
	if b.eastWest() {
		components = append(components, ComponentEastWest)
	}
	for _, comp := range components {
		addr := addrMesh(name, comp)
		var values map[string]any
		switch comp {
		case ComponentBase:
			values = IstioBaseValues(b.f, name)
		case ComponentIstiod:
			values = IstiodValues(b.f, name)
		default:
			values = EastWestValues(b.f, name)
		}
		key := ReleaseKey(MeshNamespace, MeshReleaseName(comp))
		var rel *world.Release
		if obs != nil {
			rel = obs.Releases[key]
		}
		st := Step{Address: addr, Layer: Mesh, Kind: KindMeshRelease, Cluster: name, Peer: comp,
			DependsOn: dependsOnChain()}
		if rel == nil {
			st.Action, st.Reason = Create, "no release "+key+" in "+name
			st.Changes = append([]Change{{Field: "chart", After: chartText(b.f.Mesh.Chart, meshChartName(comp)) + versionSuffix(b.f.Mesh.Chart, b.f.Mesh.Version)}},
				diffValues("values", nil, values)...)
		} else {
			if rel.Status != "deployed" {
				st.Changes = append(st.Changes, Change{Field: "status", Before: statusText(rel.Status), After: "deployed"})
			}
			st.Changes = append(st.Changes, releaseChanges(rel, b.meshVersion(), values)...)
			st.Action, st.Reason = Update, "release "+key+" differs from fleet.yaml"
		}
		if len(st.Changes) > 0 {
			b.add(st)
		}
		chain = append([]string{addr}, chain...)
		if comp == ComponentBase {
			// The reader token's service account comes with the base chart.
			b.readerToken(name, mm, b.nearest(chain...))
		}
	}
	if b.eastWest() && (mm == nil || !mm.Gateway) {
		b.add(Step{Address: addrMesh(name, "expose"), Layer: Mesh, Kind: KindExpose, Action: Create, Cluster: name,
			Reason: "no cross-network Gateway in " + name, DependsOn: dependsOnChain(),
			Changes: []Change{{Field: "gateway", After: MeshNamespace + "/cross-network-gateway (port 15443, AUTO_PASSTHROUGH, *.local)"}}})
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
	if comp == ComponentEastWest {
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

func (b *builder) readerToken(name string, mm *world.MeshMember, deps []string) {
	if mm != nil && mm.ReaderToken != "" {
		return
	}
	b.add(Step{Address: addrMesh(name, "reader-token"), Layer: Mesh, Kind: KindReaderToken, Action: Create,
		Cluster: name, Reason: "no istio-reader token in " + name, DependsOn: deps,
		Changes: []Change{{Field: "secret", After: MeshNamespace + "/istio-reader-service-account-istio-remote-secret-token"}}})
}

// remoteSecret plans istio-remote-secret-<x> in member n.
func (b *builder) remoteSecret(n, x *spec.Member) {
	addr := addrRemoteSecret(n.Name, x.Name)
	tokenAddr := addrMesh(x.Name, "reader-token")
	want := ""
	if xm := b.meshMember(x.Name); xm != nil && xm.ReaderToken != "" && !b.has(tokenAddr) {
		if ep := b.memberEndpoint(x); ep != "" {
			want = world.RemoteSecretFingerprint(ep, xm.ReaderToken)
		}
	}
	var have string
	var ok bool
	if nm := b.meshMember(n.Name); nm != nil {
		have, ok = nm.RemoteSecrets[x.Name]
	}
	shown := KnownAfterApply
	if want != "" {
		shown = short(want)
	}
	st := Step{Address: addr, Layer: Mesh, Kind: KindRemoteSecret, Cluster: n.Name, Peer: x.Name,
		DependsOn: append(b.present(tokenAddr), b.nearest(addrMesh(n.Name, ComponentIstiod), addrMesh(n.Name, ComponentBase),
			addrMesh(n.Name, "cacerts"), addrMesh(n.Name, "namespace"), addrKubeconfig(n.Name), addrCluster(n.Name))...)}
	switch {
	case !ok:
		st.Action, st.Reason = Create, "istiod in "+n.Name+" does not watch "+x.Name+" yet"
		st.Changes = []Change{{Field: "istio-remote-secret-" + x.Name, After: shown}}
	case want == "" || have != want:
		st.Action, st.Reason = Update, x.Name+"'s endpoint or reader token changed"
		st.Changes = []Change{{Field: "istio-remote-secret-" + x.Name, Before: short(have), After: shown}}
	default:
		return
	}
	b.add(st)
}

func hasMeshObjects(mm *world.MeshMember) bool {
	return mm != nil && (mm.Namespace || mm.CACerts != nil || mm.Gateway || mm.ReaderToken != "" || len(mm.RemoteSecrets) > 0)
}

// ---- weights ----

func workloadNamespace(w *spec.Workload) string {
	if w.ClusterScoped {
		return ""
	}
	if w.Namespace == "" {
		return DefaultNamespace
	}
	return w.Namespace
}

func policyKey(namespace, name string) string { return namespace + "/" + name }

// DesiredPolicy is the (Cluster)PropagationPolicy of a workload: the members of the fleet that
// have a weight, sorted, with their weights, replicas divided.
func DesiredPolicy(f *spec.Fleet, w *spec.Workload) *world.Policy {
	p := &world.Policy{Namespace: workloadNamespace(w), Name: w.Name, ClusterScoped: w.ClusterScoped,
		Weights: map[string]int64{}, Divided: true}
	for _, r := range w.Resources {
		p.Resources = append(p.Resources, world.ResourceRef{APIVersion: r.APIVersion, Kind: r.Kind,
			Name: r.Name, LabelSelector: r.LabelSelector})
	}
	for _, m := range f.Members {
		if wt, ok := w.Weights[m.Name]; ok && wt > 0 {
			p.Clusters = append(p.Clusters, m.Name)
			p.Weights[m.Name] = wt
		}
	}
	sort.Strings(p.Clusters)
	return p
}

func (b *builder) weights() {
	k := b.w.Karmada
	wanted := map[string]bool{}
	for i := range b.f.Workloads {
		w := &b.f.Workloads[i]
		want := DesiredPolicy(b.f, w)
		key := policyKey(want.Namespace, want.Name)
		wanted[key] = true
		if len(w.Manifests) > 0 || len(w.Objects) > 0 {
			var have string
			if k != nil {
				have = k.ManifestHashes[w.Name]
			}
			if k == nil || have != w.ManifestDigest {
				st := Step{Address: addrManifests(w.Name), Layer: Weights, Kind: KindManifests, Workload: w.Name,
					Namespace: want.Namespace, DependsOn: b.present(AddrKarmadaReady),
					Changes: []Change{{Field: "digest", Before: short(have), After: short(w.ManifestDigest)}}}
				if have == "" {
					st.Action, st.Reason = Create, "the manifests were not applied yet"
				} else {
					st.Action, st.Reason = Update, "the manifests changed since they were applied"
				}
				for _, o := range w.Objects {
					st.Changes = append(st.Changes, Change{Field: "object", After: objectText(o, want.Namespace)})
				}
				b.add(st)
			}
		}
		var have *world.Policy
		if k != nil {
			have = k.Policies[key]
		}
		st := Step{Address: addrPolicy(w.Name), Layer: Weights, Kind: KindPolicy, Workload: w.Name,
			Namespace: want.Namespace, DependsOn: b.nearest(addrManifests(w.Name), AddrKarmadaReady)}
		st.Changes = policyChanges(have, want)
		if have == nil {
			st.Action, st.Reason = Create, "no policy "+policyName(want)+" in Karmada"
		} else {
			st.Action, st.Reason = Update, "policy "+policyName(want)+" differs from fleet.yaml"
		}
		if len(st.Changes) == 0 {
			// The policy stays, but new manifests may change the replicas it divides: the
			// manifests step shows the split they lead to.
			if ms, ok := b.steps[addrManifests(w.Name)]; ok {
				ms.Changes = append(ms.Changes, b.splitChanges(w, want)...)
			}
			continue
		}
		for _, m := range want.Clusters {
			if !b.excluded[m] {
				st.DependsOn = append(st.DependsOn, b.present(addrMemberReady(m))...)
			}
		}
		st.Changes = append(st.Changes, b.splitChanges(w, want)...)
		b.add(st)
	}
	if k == nil {
		return
	}
	for _, key := range sortedKeys(k.Policies) {
		if wanted[key] {
			continue
		}
		p := k.Policies[key]
		addr := addrPolicy(p.Name)
		if b.has(addr) {
			addr += "/" + p.Namespace
		}
		b.add(Step{Address: addr, Layer: Weights, Kind: KindPolicy, Action: Delete, Workload: p.Name,
			Namespace: p.Namespace, Reason: "workload " + p.Name + " left fleet.yaml (its resources are left alone)",
			Changes: []Change{{Field: "policy", Before: policyName(p), After: removed}}})
	}
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

func policyChanges(have, want *world.Policy) []Change {
	var out []Change
	var h world.Policy
	if have != nil {
		h = *have
	}
	if have != nil && h.ClusterScoped != want.ClusterScoped {
		out = append(out, Change{Field: "clusterScoped", Before: fmt.Sprint(h.ClusterScoped), After: fmt.Sprint(want.ClusterScoped)})
	}
	if a, bf := resourcesText(want.Resources), resourcesText(h.Resources); a != bf {
		out = append(out, Change{Field: "resources", Before: bf, After: a})
	}
	if a, bf := strings.Join(want.Clusters, ", "), strings.Join(sortedSet(h.Clusters), ", "); a != bf {
		out = append(out, Change{Field: "clusters", Before: bf, After: a})
	}
	if a, bf := weightsText(want.Weights), weightsText(h.Weights); a != bf {
		out = append(out, Change{Field: "weights", Before: bf, After: a})
	}
	if have == nil || h.Divided != want.Divided {
		before := ""
		if have != nil {
			before = fmt.Sprint(h.Divided)
		}
		out = append(out, Change{Field: "divided", Before: before, After: fmt.Sprint(want.Divided)})
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

// splitChanges show how each named resource's replicas will be divided, next to the split
// Karmada made last: "eu 4 (was 4), ap 2 (was 3), us 4 (was 3)".
func (b *builder) splitChanges(w *spec.Workload, want *world.Policy) []Change {
	weights := map[string]int64{}
	for m, wt := range want.Weights {
		if !b.excluded[m] {
			weights[m] = wt
		}
	}
	type target struct {
		field string
		text  string
	}
	var targets []target
	for _, r := range w.Resources {
		if r.Name == "" {
			continue
		}
		ns := want.Namespace
		key := ns + "/" + r.Kind + "/" + r.Name
		var obs *world.Workload
		if b.w.Karmada != nil {
			obs = b.w.Karmada.Workloads[key]
		}
		var replicas *int32
		uid := ""
		if obs != nil {
			replicas, uid = &obs.Replicas, obs.UID
		}
		// Manifests about to be applied in this plan set the replica count Karmada will divide;
		// otherwise Karmada's count stands (someone may have scaled it there).
		if obs == nil || b.has(addrManifests(w.Name)) {
			for _, o := range w.Objects {
				if o.Kind == r.Kind && o.Name == r.Name && (o.Namespace == "" || o.Namespace == ns) && o.Replicas != nil {
					replicas = o.Replicas
				}
			}
		}
		if replicas == nil {
			continue
		}
		split := Divide(weights, *replicas, uid)
		var parts []string
		for _, m := range b.members {
			after, inAfter := split[m.Name]
			var before int32
			inBefore := false
			if obs != nil {
				before, inBefore = obs.Scheduled[m.Name]
			}
			if !inAfter && !inBefore {
				continue
			}
			s := fmt.Sprintf("%s %d", m.Name, after)
			if obs != nil {
				s += fmt.Sprintf(" (was %d)", before)
			}
			parts = append(parts, s)
		}
		if obs != nil {
			for _, m := range sortedKeys(obs.Scheduled) {
				if !b.isMember(m) {
					parts = append(parts, fmt.Sprintf("%s 0 (was %d)", m, obs.Scheduled[m]))
				}
			}
		}
		targets = append(targets, target{r.Kind + "/" + r.Name, strings.Join(parts, ", ")})
	}
	var out []Change
	for _, t := range targets {
		// Only resources with replicas are divided; name them when there are several.
		field := "split"
		if len(targets) > 1 {
			field += " " + t.field
		}
		out = append(out, Change{Field: field, After: t.text})
	}
	return out
}

// ---- members that left the fleet ----

// holdsKarmada reports whether a cluster runs a Karmada control plane.
func (b *builder) holdsKarmada(c *world.Cluster) bool {
	relName, ns := KarmadaRelease(b.f)
	return c != nil && c.Releases[ReleaseKey(ns, relName)] != nil
}

func (b *builder) removedNames() []string {
	set := map[string]bool{}
	if k := b.w.Karmada; k != nil {
		for n := range k.Members {
			set[n] = true
		}
	}
	for n := range b.w.Clusters {
		set[n] = true
	}
	if b.f.Mesh.On() {
		for n := range b.w.Mesh {
			set[n] = true
		}
	}
	var out []string
	for n := range set {
		if n != b.f.Manager.Name && !b.isMember(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (b *builder) removals() {
	for _, r := range b.removedNames() {
		if b.karmadaMember(r) != nil {
			st := Step{Address: addrUnjoin(r), Layer: Members, Kind: KindUnjoin, Action: Delete, Cluster: r,
				Reason:  r + " left fleet.yaml",
				Changes: []Change{{Field: "karmada member", Before: r, After: removed}}}
			// Replicas move off the member before it goes.
			if k := b.w.Karmada; k != nil {
				for _, key := range sortedKeys(k.Policies) {
					p := k.Policies[key]
					if slices.Contains(p.Clusters, r) {
						for _, s := range b.steps {
							if s.Kind == KindPolicy && s.Namespace == p.Namespace && s.Workload == p.Name {
								st.DependsOn = append(st.DependsOn, s.Address)
							}
						}
					}
				}
			}
			b.add(st)
		}
		obs := b.cluster(r)
		deleting := false
		if obs != nil && obs.LinodeID != 0 {
			if b.f.Safety.Prune {
				b.add(Step{Address: addrCluster(r), Layer: Members, Kind: KindCluster, Action: Delete, Cluster: r,
					Reason:    r + " left fleet.yaml and safety.prune is on",
					DependsOn: b.present(addrUnjoin(r)),
					Changes:   []Change{{Field: "LKE cluster", Before: fmt.Sprintf("%s (id %d, %s)", obs.Label, obs.LinodeID, obs.Region), After: removed}}})
				deleting = true
			} else {
				b.note("cluster/%s left fleet.yaml and is kept (LKE cluster %d): safety.prune is off, "+
					"so only its membership and mesh secrets are withdrawn", r, obs.LinodeID)
			}
		}
		if b.f.Mesh.On() && !deleting && obs != nil && obs.Reachable && hasMeshObjects(b.meshMember(r)) {
			var deps []string
			for _, m := range b.members {
				deps = append(deps, b.present(addrRemoteSecret(m.Name, r))...)
			}
			b.add(Step{Address: addrMesh(r, "teardown"), Layer: Mesh, Kind: KindMeshTeardown, Action: Delete,
				Cluster: r, Reason: r + " left the fleet: its mesh objects are removed", DependsOn: deps,
				Changes: []Change{{Field: "mesh", Before: MeshNamespace + " objects of reconcile", After: removed}}})
		}
	}
}

// guard refuses plans that unjoin or delete too many members at once, or the manager's cluster.
func (b *builder) guard(opts Options) error {
	if opts.AllowDestroy {
		return nil
	}
	maxShare := DefaultMaxDeleteShare
	if b.f.Safety.MaxDeleteShare != nil {
		maxShare = *b.f.Safety.MaxDeleteShare
	}
	e := &GuardError{MaxShare: maxShare}
	gone := map[string]bool{}
	for _, addr := range sortedKeys(b.steps) {
		s := b.steps[addr]
		switch {
		case s.Kind == KindUnjoin:
			gone[s.Cluster] = true
		case s.Kind == KindCluster && s.Action == Delete:
			if s.Cluster == b.f.Manager.Name || b.holdsKarmada(b.cluster(s.Cluster)) {
				e.Manager = s.Cluster
			} else {
				gone[s.Cluster] = true
			}
		default:
			continue
		}
		e.Removals = append(e.Removals, addr)
	}
	observed := map[string]bool{}
	if k := b.w.Karmada; k != nil {
		for n := range k.Members {
			observed[n] = true
		}
	}
	for n, c := range b.w.Clusters {
		if n != b.f.Manager.Name && !b.holdsKarmada(c) {
			observed[n] = true
		}
	}
	e.Members, e.Observed = len(gone), len(observed)
	tooMany := e.Members > 0 && float64(e.Members) > maxShare*float64(e.Observed)
	if e.Manager == "" && !tooMany {
		return nil
	}
	return e
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
