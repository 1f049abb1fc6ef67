package main

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Status is what `reconcile status` shows: every layer of the fleet as one pass observes it,
// and whether the fleet is healthy. Text and JSON are both drawn from it. It holds no secret:
// credentials appear by name and age only.
type Status struct {
	Fleet      string    `json:"fleet"`
	ObservedAt time.Time `json:"observedAt"`
	// Health is "healthy" or "degraded"; Reasons say why a fleet is degraded, layer by layer.
	Health      string             `json:"health"`
	Reasons     []string           `json:"reasons,omitempty"`
	Clusters    []ClusterStatus    `json:"clusters"`
	Karmada     KarmadaStatus      `json:"karmada"`
	Mesh        *MeshStatus        `json:"mesh,omitempty"`
	Workloads   []WorkloadStatus   `json:"workloads,omitempty"`
	Credentials []CredentialStatus `json:"credentials,omitempty"`
	Entry       *EntryStatus       `json:"entry,omitempty"`
	// Pending is what a plan made now would do (status never applies it).
	Pending PendingStatus `json:"pending"`
	// Passes are the last passes recorded in the state, newest last.
	Passes []state.PassRecord `json:"passes,omitempty"`
}

// Health values.
const (
	Healthy  = "healthy"
	Degraded = "degraded"
)

// ClusterStatus is one LKE or existing cluster of the fleet.
type ClusterStatus struct {
	Name string `json:"name"`
	Role string `json:"role"` // manager or member
	// Existing: a cluster given by kubeconfig; the LKE fields below are empty then.
	Existing   bool         `json:"existing,omitempty"`
	LinodeID   int          `json:"linodeID,omitempty"`
	Region     string       `json:"region,omitempty"`
	Status     string       `json:"status"` // the LKE status (ready, not_ready), "not found" or "existing"
	K8sVersion string       `json:"k8sVersion,omitempty"`
	Pools      []PoolStatus `json:"pools,omitempty"`
	// Reachable: its API answered; Unreadable says why a part of it could not be read.
	Reachable  bool   `json:"reachable"`
	Unreadable string `json:"unreadable,omitempty"`
}

// PoolStatus is an LKE node pool and how many of its nodes are ready.
type PoolStatus struct {
	Type       string `json:"type"`
	Count      int    `json:"count"`
	ReadyNodes int    `json:"readyNodes"`
}

// KarmadaStatus is the control plane and its members.
type KarmadaStatus struct {
	Reachable           bool           `json:"reachable"`
	APIServiceAvailable bool           `json:"apiServiceAvailable"`
	Members             []MemberStatus `json:"members,omitempty"`
}

// MemberStatus is a declared member as Karmada sees it.
type MemberStatus struct {
	Name     string `json:"name"`
	JoinMode string `json:"joinMode"` // declared in fleet.yaml
	Joined   bool   `json:"joined"`
	SyncMode string `json:"syncMode,omitempty"` // as Karmada holds it
	Ready    string `json:"ready,omitempty"`    // True, False, Unknown, "" (no condition yet)
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	// ReadySince is when the Ready condition last changed (zero when not read).
	ReadySince time.Time `json:"readySince,omitzero"`
}

// MeshStatus is the mesh's PKI and remote secrets.
type MeshStatus struct {
	Root     *CertStatus        `json:"root,omitempty"`
	RootLost bool               `json:"rootLost,omitempty"`
	Members  []MeshMemberStatus `json:"members"`
}

// CertStatus is a certificate by subject, root fingerprint and expiry; never its key.
type CertStatus struct {
	Subject         string    `json:"subject"`
	RootFingerprint string    `json:"rootFingerprint"`
	NotAfter        time.Time `json:"notAfter"`
}

// MeshMemberStatus is one member's side of the mesh.
type MeshMemberStatus struct {
	Name string `json:"name"`
	// Observed: the member answered and its mesh objects were read.
	Observed     bool        `json:"observed"`
	Intermediate *CertStatus `json:"intermediate,omitempty"`
	// IntermediateInvalid says why a cacerts secret could not be read as an intermediate.
	IntermediateInvalid string `json:"intermediateInvalid,omitempty"`
	// Istiod is istiod's own view of its sync; reconcile does not ask istiod ("not asked").
	Istiod        string               `json:"istiod"`
	RemoteSecrets []RemoteSecretStatus `json:"remoteSecrets,omitempty"`
}

// RemoteSecretStatus is istio-remote-secret-<remote> in a member.
type RemoteSecretStatus struct {
	Remote string `json:"remote"`
	// State: current, stale (a plan now would write it again), missing, or not observed.
	State string `json:"state"`
}

// Remote secret states.
const (
	SecretCurrent     = "current"
	SecretStale       = "stale"
	SecretMissing     = "missing"
	SecretNotObserved = "not observed"
)

// IstiodNotAsked is the istiod sync status reconcile reports: it does not query istiod.
const IstiodNotAsked = "not asked"

// WorkloadStatus is a fleet workload: its weights and, per named resource, the split.
type WorkloadStatus struct {
	Name      string           `json:"name"`
	Namespace string           `json:"namespace,omitempty"`
	Weights   map[string]int64 `json:"weights"`
	Policy    bool             `json:"policy"` // its PropagationPolicy is in Karmada
	Resources []ResourceStatus `json:"resources,omitempty"`
	// Rollout is the workload's gated rollout toward Weights, as the state store keeps it;
	// nil when none is under way (or it was for other weights).
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// RolloutStatus is where a gated rollout of weights stands.
type RolloutStatus struct {
	// Stage is the stage applied last, of Stages (0: back at the weights before the first).
	Stage   int              `json:"stage"`
	Stages  int              `json:"stages"`
	Weights map[string]int64 `json:"weights"`
	Split   map[string]int32 `json:"split,omitempty"`
	Started time.Time        `json:"started"`
	// State is "waiting for the gate", "gate held", or "halted".
	State string `json:"state"`
	// NextAt is when the next stage may start (its gate held) or the gate times out.
	NextAt        time.Time `json:"nextAt,omitzero"`
	LastGoodStage int       `json:"lastGoodStage"`
	Halted        string    `json:"halted,omitempty"`
}

// ResourceStatus is one named resource a workload's policy selects.
type ResourceStatus struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Found: the resource is in Karmada with spec.replicas (Replicas); a resource without
	// replicas (a Service) is not divided and shows as not found.
	Found    bool            `json:"found"`
	Replicas int32           `json:"replicas"`
	Members  []ResourceSplit `json:"members,omitempty"`
}

// ResourceSplit is one member's share of a resource: what the weights predict, what
// Karmada's scheduler decided, and what the member reports through the binding's status.
type ResourceSplit struct {
	Member    string        `json:"member"`
	Weight    int64         `json:"weight"`
	Predicted int32         `json:"predicted"`
	Scheduled int32         `json:"scheduled"`
	Reported  *MemberReport `json:"reported,omitempty"`
}

// MemberReport is one entry of a ResourceBinding's status.aggregatedStatus.
type MemberReport struct {
	Applied       bool   `json:"applied"`
	Health        string `json:"health,omitempty"` // Healthy, Unhealthy, Unknown
	Replicas      int64  `json:"replicas"`
	ReadyReplicas int64  `json:"readyReplicas"`
}

// BindingReporting is what status read from Karmada beyond the World, by workload key
// ("namespace/Kind/name"): the members' reports from the resource's binding.
type BindingReporting map[string]MemberReport

// CredentialStatus is a credential reconcile made, by name and age.
type CredentialStatus struct {
	Member string `json:"member"`
	Kind   string `json:"kind"` // karmada-tokens, istio-reader-token, agent-certificate
	// Names are the token Secrets or the certificate's subject.
	Names    []string  `json:"names,omitempty"`
	Created  time.Time `json:"created,omitzero"`
	NotAfter time.Time `json:"notAfter,omitzero"`
}

// PendingStatus counts the steps a plan made now would have.
type PendingStatus struct {
	Add     int      `json:"add"`
	Change  int      `json:"change"`
	Destroy int      `json:"destroy"`
	Wait    int      `json:"wait"`
	Notes   []string `json:"notes,omitempty"`
	// Error is why no plan could be made (the root guard refusing, for one).
	Error string `json:"error,omitempty"`
	// Cost is what the fleet's LKE clusters cost a month now and after that plan.
	Cost *plan.Cost `json:"cost,omitempty"`
}

// statusInput is everything a Status is built from; building it does no I/O.
type statusInput struct {
	Fleet *spec.Fleet
	World *world.World
	// Plan is what planning the world now yields (nil with PlanErr when planning refused).
	Plan    *plan.Plan
	PlanErr error
	// ReadySince is when each Karmada member's Ready condition last changed.
	ReadySince map[string]time.Time
	// Reports are the members' reports per workload key ("namespace/Kind/name").
	Reports map[string]BindingReporting
	// ReportsErr says why the bindings could not be read ("" when read).
	ReportsErr string
	Passes     []state.PassRecord
}

// passesShown is how many of the last passes status shows.
const passesShown = 5

// buildStatus builds the Status of in.Fleet from what was observed, and judges its health.
func buildStatus(in statusInput) *Status {
	f, w := in.Fleet, in.World
	if w == nil {
		w = &world.World{}
	}
	s := &Status{Fleet: f.Metadata.Name, ObservedAt: w.Now}
	s.clusters(f, w)
	s.karmada(f, w, in.ReadySince)
	if f.MeshOn() {
		s.mesh(f, w, in.Plan)
	}
	s.workloads(f, w, in.Reports, in.ReportsErr)
	s.credentials(f, w)
	s.entry(f, w)
	s.pending(in.Plan, in.PlanErr)
	s.passes(in.Passes)
	s.Health = Healthy
	if len(s.Reasons) > 0 {
		s.Health = Degraded
	}
	return s
}

func (s *Status) degraded(format string, args ...any) {
	s.Reasons = append(s.Reasons, fmt.Sprintf(format, args...))
}

func (s *Status) clusters(f *spec.Fleet, w *world.World) {
	add := func(name, role string, c spec.Cluster) {
		cs := ClusterStatus{Name: name, Role: role, Existing: !c.IsLKE()}
		oc := w.Clusters[name]
		what := role + " " + name
		switch {
		case oc == nil && c.IsLKE():
			cs.Status = "not found"
			s.Clusters = append(s.Clusters, cs)
			s.degraded("%s: no LKE cluster found", what)
			return
		case oc == nil:
			oc = &world.Cluster{Name: name}
		}
		cs.LinodeID, cs.Region, cs.K8sVersion = oc.LinodeID, oc.Region, oc.K8sVersion
		cs.Reachable, cs.Unreadable = oc.Reachable, oc.Unreadable
		cs.Status = oc.Status
		if cs.Existing {
			cs.Status = "existing"
		}
		for _, p := range oc.Pools {
			ps := PoolStatus{Type: p.Type, Count: p.Count}
			for _, n := range p.Nodes {
				if n.Status == "ready" {
					ps.ReadyNodes++
				}
			}
			cs.Pools = append(cs.Pools, ps)
		}
		s.Clusters = append(s.Clusters, cs)
		if c.IsLKE() && oc.Status != "ready" {
			s.degraded("%s: LKE cluster %d is %s", what, oc.LinodeID, orUnknown(oc.Status))
		}
		for _, p := range cs.Pools {
			if p.ReadyNodes < p.Count {
				s.degraded("%s: pool %s has %d of %d nodes ready", what, p.Type, p.ReadyNodes, p.Count)
			}
		}
		switch {
		case !oc.Reachable:
			s.degraded("%s: API server unreachable", what)
		case oc.Unreadable != "":
			s.degraded("%s: not read in full: %s", what, oc.Unreadable)
		}
	}
	add(f.Manager.Name, "manager", f.Manager.Cluster)
	for _, m := range f.Members {
		add(m.Name, "member", m.Cluster)
	}
}

func orUnknown(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

func (s *Status) karmada(f *spec.Fleet, w *world.World, since map[string]time.Time) {
	k := w.Karmada
	if k != nil {
		s.Karmada.Reachable, s.Karmada.APIServiceAvailable = k.Reachable, k.APIServiceAvailable
	}
	switch {
	case k == nil || !k.Reachable:
		s.degraded("karmada: API not reachable")
	case !k.APIServiceAvailable:
		s.degraded("karmada: the cluster API service is not available")
	}
	for _, m := range f.Members {
		ms := MemberStatus{Name: m.Name, JoinMode: string(f.MemberJoinMode(m))}
		var km *world.KarmadaMember
		if k != nil {
			km = k.Members[m.Name]
		}
		if km != nil {
			ms.Joined, ms.SyncMode, ms.Ready, ms.Reason, ms.Message = true, km.SyncMode, km.Ready, km.Reason, km.Message
			ms.ReadySince = since[m.Name]
		}
		s.Karmada.Members = append(s.Karmada.Members, ms)
		switch {
		case k == nil || !k.APIServiceAvailable:
			// said above: Karmada's members could not be read
		case km == nil:
			s.degraded("member %s: not joined to Karmada", m.Name)
		case km.Ready != "True":
			why := orUnknown(km.Ready)
			if km.Reason != "" {
				why += " (" + km.Reason + ")"
			}
			s.degraded("member %s: Karmada Ready is %s", m.Name, why)
		}
	}
}

func certStatus(c *world.CertInfo) *CertStatus {
	if c == nil {
		return nil
	}
	return &CertStatus{Subject: c.Subject, RootFingerprint: c.RootFingerprint, NotAfter: c.NotAfter}
}

func (s *Status) mesh(f *spec.Fleet, w *world.World, p *plan.Plan) {
	ms := &MeshStatus{Root: certStatus(w.RootCA), RootLost: w.RootCALost}
	s.Mesh = ms
	renew := f.Mesh.CA.RenewBefore.Duration
	expiring := func(what string, c *world.CertInfo) {
		if left := c.NotAfter.Sub(w.Now); left < renew {
			s.degraded("%s expires in %s (at %s; mesh.ca.renewBefore %s)", what, ageText(left), c.NotAfter.UTC().Format(time.RFC3339), durationText(renew))
		}
	}
	switch {
	case w.RootCALost:
		s.degraded("mesh: the root CA's files are gone from the state")
	case w.RootCA == nil:
		s.degraded("mesh: no root CA in the state")
	default:
		expiring("mesh: the root CA", w.RootCA)
	}
	planned := map[string]bool{}
	if p != nil {
		for _, st := range p.Steps {
			planned[st.Address] = true
		}
	}
	for _, m := range f.Members {
		mm := MeshMemberStatus{Name: m.Name, Istiod: IstiodNotAsked}
		obs := w.Mesh[m.Name]
		mm.Observed = obs != nil
		if obs != nil {
			mm.Intermediate, mm.IntermediateInvalid = certStatus(obs.CACerts), obs.CACertsInvalid
			switch {
			case obs.CACertsInvalid != "":
				s.degraded("member %s: cacerts: %s", m.Name, obs.CACertsInvalid)
			case obs.CACerts == nil:
				s.degraded("member %s: no intermediate CA (cacerts)", m.Name)
			default:
				expiring("member "+m.Name+": the intermediate CA", obs.CACerts)
				if w.RootCA != nil && obs.CACerts.RootFingerprint != w.RootCA.RootFingerprint {
					s.degraded("member %s: the intermediate chains to root %s, not the fleet's %s", m.Name,
						shortFingerprint(obs.CACerts.RootFingerprint), shortFingerprint(w.RootCA.RootFingerprint))
				}
			}
		}
		for _, x := range f.Members {
			if x.Name == m.Name {
				continue
			}
			rs := RemoteSecretStatus{Remote: x.Name}
			present := false
			if obs != nil {
				_, present = obs.RemoteSecrets[x.Name]
			}
			switch {
			case obs == nil:
				rs.State = SecretNotObserved // the member was not read: said with the cluster
			case !present:
				rs.State = SecretMissing
				s.degraded("member %s: no remote secret for %s", m.Name, x.Name)
			case planned["member/"+m.Name+"/mesh/remote-secret/"+x.Name]:
				rs.State = SecretStale
				s.degraded("member %s: the remote secret for %s is stale", m.Name, x.Name)
			default:
				rs.State = SecretCurrent
			}
			mm.RemoteSecrets = append(mm.RemoteSecrets, rs)
		}
		ms.Members = append(ms.Members, mm)
	}
}

func (s *Status) workloads(f *spec.Fleet, w *world.World, reports map[string]BindingReporting, reportsErr string) {
	if reportsErr != "" && len(f.Workloads) > 0 {
		s.degraded("workloads: the bindings could not be read: %s", reportsErr)
	}
	for i := range f.Workloads {
		wl := &f.Workloads[i]
		want := planner.DesiredPolicy(f, wl)
		ws := WorkloadStatus{Name: wl.Name, Namespace: want.Namespace, Weights: want.Weights}
		if w.Karmada != nil {
			_, ws.Policy = w.Karmada.Policies[want.Namespace+"/"+want.Name]
		}
		if w.Karmada != nil && w.Karmada.APIServiceAvailable && !ws.Policy {
			s.degraded("workload %s: no policy in Karmada", wl.Name)
		}
		if rec := w.Rollouts[wl.Name]; wl.Rollout != nil && rec != nil && maps.Equal(rec.Target, want.Weights) {
			ws.Rollout = &RolloutStatus{Stage: rec.Stage, Stages: rec.Stages, Weights: rec.Weights, Split: rec.Split,
				Started: rec.Started, LastGoodStage: rec.LastGoodStage, Halted: rec.Halted}
			switch {
			case rec.Halted != "":
				ws.Rollout.State = "halted"
				s.degraded("workload %s: rollout halted at stage %d/%d: %s", wl.Name, rec.Stage, rec.Stages, rec.Halted)
			case rec.GateHeld:
				ws.Rollout.State, ws.Rollout.NextAt = "gate held", rec.Started.Add(wl.Rollout.Interval.Duration)
			default:
				ws.Rollout.State, ws.Rollout.NextAt = "waiting for the gate", rec.Started.Add(wl.Rollout.Timeout.Duration)
			}
		}
		for _, r := range wl.Resources {
			if r.Name == "" {
				continue // a label selector: its resources are shown by the plan, not here
			}
			key := want.Namespace + "/" + r.Kind + "/" + r.Name
			rs := ResourceStatus{Kind: r.Kind, Name: r.Name}
			var obs *world.Workload
			if w.Karmada != nil {
				obs = w.Karmada.Workloads[key]
			}
			if obs == nil {
				// Not in Karmada, or a resource without replicas (a Service): nothing is divided.
				ws.Resources = append(ws.Resources, rs)
				continue
			}
			rs.Found, rs.Replicas = true, obs.Replicas
			predicted := planner.Divide(want.Weights, obs.Replicas, obs.UID)
			got := reports[key]
			names := slices.Clone(want.Clusters)
			for m := range obs.Scheduled {
				if !slices.Contains(names, m) {
					names = append(names, m)
				}
			}
			sort.Strings(names)
			differs := false
			for _, m := range names {
				sp := ResourceSplit{Member: m, Weight: want.Weights[m], Predicted: predicted[m], Scheduled: obs.Scheduled[m]}
				rep, ok := got[m]
				if ok {
					sp.Reported = &rep
				}
				what := fmt.Sprintf("workload %s: %s %s", wl.Name, r.Kind, r.Name)
				switch {
				case reports == nil:
					// the bindings were not read: said once above
				case !ok && sp.Scheduled > 0:
					s.degraded("%s: %s reports no status yet", what, m)
				case !ok:
				case !rep.Applied:
					s.degraded("%s is not applied in %s", what, m)
				case rep.Health == "Unhealthy":
					s.degraded("%s is unhealthy in %s", what, m)
				case rep.Health != "Healthy" && rep.ReadyReplicas < int64(sp.Scheduled):
					// Karmada has not judged it healthy yet and not all of its share is ready.
					s.degraded("%s has %d of %d replicas ready in %s (health %s)", what, rep.ReadyReplicas, sp.Scheduled, m, orUnknown(rep.Health))
				}
				differs = differs || sp.Predicted != sp.Scheduled
				rs.Members = append(rs.Members, sp)
			}
			if differs && ws.Rollout != nil && ws.Rollout.Halted == "" {
				differs = false // the split moves stage by stage toward the weights'
			}
			if differs {
				s.degraded("workload %s: Karmada's split of %s %s (%s) is not the one the weights give (%s)", wl.Name, r.Kind, r.Name,
					splitText(rs.Members, func(sp ResourceSplit) int32 { return sp.Scheduled }),
					splitText(rs.Members, func(sp ResourceSplit) int32 { return sp.Predicted }))
			}
			ws.Resources = append(ws.Resources, rs)
		}
		s.Workloads = append(s.Workloads, ws)
	}
}

func splitText(members []ResourceSplit, n func(ResourceSplit) int32) string {
	parts := make([]string, len(members))
	for i, sp := range members {
		parts[i] = fmt.Sprintf("%s %d", sp.Member, n(sp))
	}
	return strings.Join(parts, ", ")
}

func (s *Status) credentials(f *spec.Fleet, w *world.World) {
	rotation := f.Credentials.TokenRotation.Duration
	old := func(c CredentialStatus, what string) {
		if age := w.Now.Sub(c.Created); rotation > 0 && !c.Created.IsZero() && age >= rotation {
			s.degraded("member %s: the %s is %s old (credentials.tokenRotation %s)", c.Member, what, ageText(age), durationText(rotation))
		}
	}
	for _, m := range f.Members {
		oc := w.Clusters[m.Name]
		if oc != nil && oc.PushJoin != nil && len(oc.PushJoin.Tokens) > 0 {
			c := CredentialStatus{Member: m.Name, Kind: "karmada-tokens", Names: oc.PushJoin.Tokens, Created: oc.PushJoin.TokenCreated}
			s.Credentials = append(s.Credentials, c)
			old(c, "Karmada token")
		}
		if oc != nil && oc.Agent != nil {
			c := CredentialStatus{Member: m.Name, Kind: "agent-certificate", Names: []string{oc.Agent.Subject},
				Created: oc.Agent.NotBefore, NotAfter: oc.Agent.NotAfter}
			s.Credentials = append(s.Credentials, c)
			if !w.Now.Before(oc.Agent.NotAfter) {
				s.degraded("member %s: the agent certificate expired at %s", m.Name, oc.Agent.NotAfter.UTC().Format(time.RFC3339))
			} else {
				old(c, "agent certificate")
			}
		}
		if mm := w.Mesh[m.Name]; mm != nil && mm.ReaderTokenSecret != "" {
			c := CredentialStatus{Member: m.Name, Kind: "istio-reader-token", Names: []string{mm.ReaderTokenSecret}, Created: mm.ReaderTokenCreated}
			s.Credentials = append(s.Credentials, c)
			old(c, "istio-reader token")
		}
	}
}

func (s *Status) pending(p *plan.Plan, err error) {
	if err != nil {
		s.Pending.Error = err.Error()
		s.degraded("plan: %v", err)
		return
	}
	if p == nil {
		return
	}
	sum := p.Summary()
	s.Pending = PendingStatus{Add: sum.Add, Change: sum.Change, Destroy: sum.Destroy, Wait: sum.Wait, Notes: p.Notes, Cost: p.Cost}
}

func (s *Status) passes(all []state.PassRecord) {
	if len(all) > passesShown {
		all = all[len(all)-passesShown:]
	}
	s.Passes = all
	for i := len(all) - 1; i >= 0; i-- {
		p := all[i]
		if p.DryRun {
			continue
		}
		if p.Error != "" || p.Failed > 0 {
			why := p.Error
			if why == "" {
				why = fmt.Sprintf("%d steps failed", p.Failed)
			}
			s.degraded("the last pass (%s) failed: %s", p.Time.UTC().Format(time.RFC3339), why)
		}
		return
	}
}

// ageText shows a duration as the plan does token ages: "31d", "5h", "12m", "0m".
func ageText(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dm", int(d/time.Minute))
}

// durationText writes a duration as fleet.yaml does: "720h", "90m".
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

func shortFingerprint(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// EntryStatus is the fleet's DNS entry: its names and each member's ingress and health.
type EntryStatus struct {
	Name string `json:"name"`
	// Zone says whether the DNS zone exists ("present", "absent", or why it was not read).
	Zone    string              `json:"zone"`
	Members []EntryMemberStatus `json:"members"`
	// Published are the addresses the shared name answers with now.
	Published []string `json:"published,omitempty"`
}

// EntryMemberStatus is one member's ingress and health.
type EntryMemberStatus struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses,omitempty"`
	// Health is healthy, unhealthy or "not checked" (no check has judged it yet).
	Health    string    `json:"health"`
	Since     time.Time `json:"since,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	Published bool      `json:"published"`
}

func (s *Status) entry(f *spec.Fleet, w *world.World) {
	e := f.Entry
	if e == nil {
		return
	}
	es := &EntryStatus{Name: e.FQDN(), Zone: "absent"}
	obs := w.Entry
	if obs == nil {
		obs = &world.Entry{}
	}
	switch {
	case obs.Unobserved != "":
		es.Zone = "not read: " + obs.Unobserved
		s.degraded("entry %s: the DNS zone could not be read: %s", es.Name, obs.Unobserved)
	case obs.Zone != nil:
		es.Zone = "present"
	default:
		s.degraded("entry %s: no DNS zone %s", es.Name, e.Domain)
	}
	published := map[string]bool{}
	if nm := obs.Names[e.Hostname]; nm != nil {
		for _, r := range append(slices.Clone(nm.A), nm.AAAA...) {
			published[r.Target] = true
			es.Published = append(es.Published, r.Target)
		}
	}
	for _, m := range f.Members {
		ms := EntryMemberStatus{Name: m.Name, Addresses: obs.Ingress[m.Name], Health: "not checked"}
		if h := obs.Health[m.Name]; h != nil {
			ms.Health, ms.Since, ms.Reason = "healthy", h.Since, h.Reason
			if !h.Healthy {
				ms.Health = "unhealthy"
				s.degraded("entry %s: member %s is unhealthy since %s: %s", es.Name, m.Name, h.Since.UTC().Format(time.RFC3339), h.Reason)
			}
		}
		for _, a := range ms.Addresses {
			ms.Published = ms.Published || published[a]
		}
		es.Members = append(es.Members, ms)
	}
	s.Entry = es
}
