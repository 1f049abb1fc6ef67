package planner

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/world"

	"github.com/reconcile-dev/reconcile/spec"
)

// ErrRootCALost is wrapped by Compute's error when the mesh root CA is gone from the store.
var ErrRootCALost = errors.New("the mesh root CA was lost")

// Addresses of the steps that exist once per fleet.
const (
	AddrKarmadaRelease    = "manager/karmada/release"
	AddrKarmadaKubeconfig = "manager/karmada/kubeconfig"
	AddrKarmadaReady      = "manager/karmada/ready"
	AddrRootCA            = "mesh/root-ca"
	// AddrNodeAddress waits for the manager node the Karmada API will be reached on.
	AddrNodeAddress = "manager/karmada/node-address"
)

// KarmadaKubeconfigFile is the Karmada kubeconfig's name in fleet.yaml's kubeconfigDir.
const KarmadaKubeconfigFile = "karmada-config"

// Addresses of per-cluster, per-member and per-workload steps.
func addrCluster(name string) string    { return "cluster/" + name }
func addrKubeconfig(name string) string { return "cluster/" + name + "/kubeconfig" }

func addrJoin(m string) string        { return "member/" + m + "/join" }
func addrMemberReady(m string) string { return "member/" + m + "/ready" }
func addrUnjoin(m string) string      { return "member/" + m + "/unjoin" }
func addrMesh(m, part string) string  { return "member/" + m + "/mesh/" + part }
func addrRemoteSecret(in, from string) string {
	return "member/" + in + "/mesh/remote-secret/" + from
}
func addrManifests(w string) string { return "workload/" + w + "/manifests" }
func addrPolicy(w string) string    { return "workload/" + w + "/policy" }

// Compute plans what it takes to make the observed world match the desired fleet. It is a pure
// function: the same inputs give the same plan, byte for byte, and neither input is modified.
// A converged world gives a plan with no steps. It returns *GuardError when the plan would
// destroy more than the fleet allows without opts.AllowDestroy, *RootGuardError when members
// hold a mesh root the state store does not have (without opts.ReplaceMeshRoot), and refuses
// to plan a new mesh root when the old one was lost.
func Compute(desired *spec.Fleet, observed *world.World, opts Options) (*plan.Plan, error) {
	if desired == nil {
		return nil, errors.New("planner: no desired fleet")
	}
	if observed == nil {
		observed = &world.World{}
	}
	if desired.Safety.MaxDeleteShare == nil || desired.Manager.Karmada.Namespace == "" {
		return nil, errors.New("planner: the fleet has no defaults (read it with spec.Load or spec.Parse, or call spec.ApplyDefaults)")
	}
	if desired.Mesh.On() && observed.RootCALost {
		return nil, fmt.Errorf("%w: the state store records a root that is no longer there; "+
			"a new root would break trust across the mesh (every member's workloads would stop "+
			"trusting the others), so none is planned: restore the root CA files into the state store", ErrRootCALost)
	}
	b := &builder{f: desired, w: observed, opts: opts, steps: map[string]*plan.Step{}, excluded: map[string]bool{}}
	for i := range desired.Members {
		b.members = append(b.members, &desired.Members[i])
	}
	b.holdConflicts()
	b.manager()
	for _, m := range b.members {
		b.member(m)
	}
	if err := b.mesh(); err != nil {
		return nil, err
	}
	b.weights()
	b.entry()
	b.removals()
	if err := b.guard(opts); err != nil {
		return nil, err
	}
	steps := b.sorted()
	p := &plan.Plan{
		Fleet:            desired.Metadata.Name,
		Steps:            steps,
		Held:             b.sortedHeld(),
		Notes:            b.notes,
		Cost:             Cost(desired, observed, steps),
		SpecFingerprint:  SpecFingerprint(desired),
		WorldFingerprint: WorldFingerprint(observed),
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("planner: %w", err)
	}
	return p, nil
}

type builder struct {
	opts    Options
	f       *spec.Fleet
	w       *world.World
	members []*spec.Member
	steps   map[string]*plan.Step
	notes   []string
	// excluded members are joined but not Ready: Karmada gives them no replicas.
	excluded map[string]bool
	// heldNoted are the unreadable clusters whose note is written.
	heldNoted map[string]bool
	// heldSteps are the steps held because a cluster they act in was not observed (plan.Held).
	heldSteps map[string]plan.Held
	// diverting, when set, is why the steps add is given are held instead (the mesh of a
	// member that was not observed is computed as if empty, only to name its steps).
	diverting string
	// conflicts are the members held because another owns their Karmada Cluster's name.
	conflicts map[string]string
	// replacingRoot: the plan replaces the mesh root (Options.ReplaceMeshRoot), so every
	// member's cacerts is re-issued from the new one.
	replacingRoot bool
	// rootHeld: the store has no root and a member's mesh was not read, so no root is planned;
	// meshCut are the members whose mesh steps stop short of cacerts for it.
	rootHeld bool
	meshCut  []string
}

func (b *builder) add(s plan.Step) {
	if b.diverting != "" {
		b.hold(s, b.diverting)
		return
	}
	b.steps[s.Address] = &s
}

// hold records step s as held ("? address (not observed: why)"): a cluster it acts in was
// not observed, so the plan cannot say whether the step is needed, and it is not executed.
func (b *builder) hold(s plan.Step, why string) {
	if b.heldSteps == nil {
		b.heldSteps = map[string]plan.Held{}
	}
	b.heldSteps[s.Address] = plan.Held{Address: s.Address, Layer: s.Layer, Cluster: s.Cluster, Reason: "not observed: " + why}
}

// unobserved says why cluster name was not observed this pass ("" when it was): it did not
// answer (world.Cluster.Unreachable), or an observer could not read it in full.
func (b *builder) unobserved(name string) string {
	c := b.cluster(name)
	switch {
	case c == nil:
		return ""
	case c.Unreachable != "":
		return name + " did not answer: " + c.Unreachable
	case c.Unreadable != "":
		return name + " could not be read in full: " + c.Unreadable
	}
	return ""
}

func (b *builder) sortedHeld() []plan.Held {
	order := map[plan.Layer]int{}
	for i, l := range plan.Layers {
		order[l] = i
	}
	out := make([]plan.Held, 0, len(b.heldSteps))
	for _, h := range b.heldSteps {
		if !b.has(h.Address) {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if order[out[i].Layer] != order[out[j].Layer] {
			return order[out[i].Layer] < order[out[j].Layer]
		}
		return out[i].Address < out[j].Address
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *builder) has(addr string) bool { _, ok := b.steps[addr]; return ok }

// held reports whether steps that act in cluster name are held because an observer could not
// read it in full this pass (world.MarkUnreadable): what could not be read is not absent, so
// nothing is planned from it. The plan says so once per cluster.
func (b *builder) held(name string) bool {
	if b.conflicts[name] != "" {
		return true
	}
	c := b.cluster(name)
	if c == nil || c.Unreadable == "" && c.Unreachable == "" {
		return false
	}
	if b.heldNoted == nil {
		b.heldNoted = map[string]bool{}
	}
	if !b.heldNoted[name] {
		b.heldNoted[name] = true
		if c.Unreachable != "" {
			b.note("cluster %s did not answer (%s): the steps that act in it are held until a pass reaches it", name, c.Unreachable)
		} else {
			b.note("cluster %s could not be read in full (%s): the steps that act in it are held until a pass reads it", name, c.Unreadable)
		}
	}
	return true
}

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

func (b *builder) sorted() []plan.Step {
	order := map[plan.Layer]int{}
	for i, l := range plan.Layers {
		order[l] = i
	}
	out := make([]plan.Step, 0, len(b.steps))
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Options change what the planner may propose.
type Options struct {
	// AllowDestroy lifts the guard against deleting the manager or many members at once.
	AllowDestroy bool
	// ForceUnjoin makes unjoin steps strip finalizers when deleting an unreachable member
	// does not finish (as `karmadactl unjoin --force`).
	ForceUnjoin bool
	// ReplaceMeshRoot replaces the mesh root on purpose: a new root, and every member's
	// cacerts re-issued from it. Without it, members holding a root the state store does not
	// have make Compute refuse with *RootGuardError. Meant for one pass (--once), not a daemon.
	ReplaceMeshRoot bool
	// RotateCredentials replaces every credential reconcile made (the Push members' Karmada
	// tokens, the istio-reader tokens, the Pull agents' certificates) whatever its age, as
	// credentials.tokenRotation does for the old ones. Meant for one pass (--once).
	RotateCredentials bool
}
