package planner

import (
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// AddrDNSZone is the address of the entry's zone step.
const AddrDNSZone = "entry/zone"

func addrIngress(m string) string   { return "member/" + m + "/entry/address" }
func addrRecord(name string) string { return "entry/record/" + name }

// RegistryHeritage starts every registry TXT record reconcile writes; OwnerRecord is the
// whole record of a fleet. As external-dns does, a name is the fleet's only while it holds the
// fleet's record: records of others in the zone are never changed or deleted.
const RegistryHeritage = "heritage=reconcile"

// OwnerRecord is the registry TXT record marking a name as fleet's.
func OwnerRecord(fleet string) string { return RegistryHeritage + ",fleet=" + fleet }

// ComponentIngress is the mesh component of the north-south ingress gateway.
const ComponentIngress = "ingress"

// IngressValues are the values of the Istio gateway chart for a member's ingress gateway:
// a LoadBalancer Service istio-system/istio-ingressgateway, as Istio's own profiles name it.
func IngressValues(f *spec.Fleet, member string) map[string]any {
	return map[string]any{
		"name": MeshReleaseName(ComponentIngress),
		"labels": map[string]any{
			"istio": "ingressgateway",
			"app":   "istio-ingressgateway",
		},
		"service": map[string]any{"type": "LoadBalancer"},
	}
}

// UnhealthyMembers are the members the daemon's checks withdrew, sorted; none when every
// member is unhealthy (the entry fails open and keeps them all) or the fleet has no entry.
func UnhealthyMembers(f *spec.Fleet, w *world.World) []string {
	if f.Entry == nil || w == nil || w.Entry == nil {
		return nil
	}
	var out []string
	for _, m := range f.Members {
		if h := w.Entry.Health[m.Name]; h != nil && !h.Healthy {
			out = append(out, m.Name)
		}
	}
	if len(out) == len(f.Members) {
		return nil
	}
	return out
}

// entry plans the fleet's DNS name: the zone, each member's ingress address, the shared name
// with every healthy member's address, the per-member names, and the removal of names the
// fleet owns but no longer wants.
func (b *builder) entry() {
	e := b.f.Entry
	if e == nil {
		return
	}
	obs := b.w.Entry
	if obs == nil {
		obs = &world.Entry{}
	}
	owner := OwnerRecord(b.f.Metadata.Name)
	if obs.Unobserved != "" {
		why := "the DNS zone " + e.Domain + " could not be read: " + obs.Unobserved
		b.note("%s: the entry's records are held until a pass reads it", why)
		b.diverting = why
		defer func() { b.diverting = "" }()
	}
	if obs.Zone == nil {
		b.add(plan.Step{Address: AddrDNSZone, Layer: plan.Entry, Kind: plan.KindDNSZone, Action: plan.Create,
			Reason:  "no DNS Manager zone " + e.Domain,
			Changes: []plan.Change{{Field: "zone", After: e.Domain + " (master, SOA " + e.SOAEmail + ")"}},
			Payload: plan.Payload{DNSZone: &plan.DNSZone{Domain: e.Domain, SOAEmail: e.SOAEmail,
				Tags: []string{world.LinodeFleetTag(b.f.Metadata.Name)}}}})
	}

	// Each member's addresses: known, or an ingress-address step's output.
	addrs := map[string][]plan.Value{}
	unobserved := map[string]string{}
	known := map[string]bool{} // addresses of observed members
	ns, svc := e.ServiceRef()
	for _, m := range b.members {
		if why := b.unobserved(m.Name); why != "" || b.conflicts[m.Name] != "" {
			if why == "" {
				why = b.conflicts[m.Name]
			}
			unobserved[m.Name] = why
			continue
		}
		if ips, ok := obs.Ingress[m.Name]; ok && len(ips) > 0 {
			for _, ip := range ips {
				addrs[m.Name] = append(addrs[m.Name], plan.Known(ip))
				known[ip] = true
			}
			continue
		}
		st := plan.Step{Address: addrIngress(m.Name), Layer: plan.Entry, Kind: plan.KindIngressAddress, Action: plan.Wait,
			Cluster: m.Name, Reason: "service " + e.Service + " in " + m.Name + " has no LoadBalancer address yet",
			DependsOn: b.nearest(addrMesh(m.Name, ComponentIngress), addrMesh(m.Name, ComponentIstiod), addrMesh(m.Name, ComponentBase),
				addrMesh(m.Name, "namespace"), addrKubeconfig(m.Name), addrCluster(m.Name)),
			Payload: plan.Payload{Ingress: &plan.IngressAddress{Namespace: ns, Name: svc}}}
		if _, ok := obs.Ingress[m.Name]; !ok && !b.has(addrMesh(m.Name, ComponentIngress)) && b.cluster(m.Name) != nil &&
			b.cluster(m.Name).Reachable && !(e.Service == spec.DefaultEntryService && b.f.IngressGatewayOn()) {
			b.note("member %s has no Service %s: it is not published until the Service exists", m.Name, e.Service)
			continue
		}
		b.add(st)
		addrs[m.Name] = []plan.Value{{From: &plan.Ref{Step: st.Address, Output: plan.OutputIngressIPs}}}
	}

	// The shared name: every healthy member, or every member when none is healthy.
	unhealthy := map[string]*world.MemberHealth{}
	for _, m := range b.members {
		if h := obs.Health[m.Name]; h != nil && !h.Healthy {
			unhealthy[m.Name] = h
		}
	}
	failOpen := len(b.members) > 0 && len(unhealthy) == len(b.members)
	if failOpen {
		b.note("every member failed its health checks: the entry keeps them all published (it fails open)")
	}
	var shared []plan.Value
	var withdrawn []string
	for _, m := range b.members {
		if h := unhealthy[m.Name]; h != nil && !failOpen {
			withdrawn = append(withdrawn, m.Name+" (unhealthy since "+h.Since.UTC().Format(time.RFC3339)+": "+h.Reason+")")
			continue
		}
		shared = append(shared, addrs[m.Name]...)
	}
	if len(unobserved) > 0 {
		// What an unobserved member publishes cannot be read from its cluster: keep the
		// addresses the name holds that no observed member accounts for, but for those the
		// checks withdrew.
		drop := map[string]bool{}
		for m, h := range unhealthy {
			if _, un := unobserved[m]; un && !failOpen {
				for _, a := range h.Addresses {
					drop[a] = true
				}
			}
		}
		if nm := obs.Names[e.Hostname]; nm != nil && owns(nm, owner) {
			for _, r := range append(slices.Clone(nm.A), nm.AAAA...) {
				if !known[r.Target] && !drop[r.Target] {
					shared = append(shared, plan.Known(r.Target))
				}
			}
		}
	}
	b.record(e, obs, e.Hostname, "", shared, withdrawn, owner)
	wanted := map[string]bool{e.Hostname: true}
	if e.PerMemberNames {
		for _, m := range b.members {
			name := e.MemberName(m.Name)
			wanted[name] = true
			if why := unobserved[m.Name]; why != "" {
				b.hold(plan.Step{Address: addrRecord(name), Layer: plan.Entry, Cluster: m.Name}, why)
				continue
			}
			b.record(e, obs, name, m.Name, addrs[m.Name], nil, owner)
		}
	}
	for _, name := range sortedKeys(obs.Names) {
		nm := obs.Names[name]
		if wanted[name] || !owns(nm, owner) {
			continue
		}
		b.add(plan.Step{Address: addrRecord(name), Layer: plan.Entry, Kind: plan.KindDNSRecord, Action: plan.Delete,
			Reason:  name + "." + e.Domain + " is the fleet's but no longer in fleet.yaml",
			Changes: []plan.Change{{Field: "records", Before: recordsText(nm), After: removed}},
			Payload: plan.Payload{DNSRecord: &plan.DNSRecord{Domain: e.Domain, Name: name, Owner: owner}}})
	}
}

// record plans the address records at name: exactly want, with the entry's TTL.
func (b *builder) record(e *spec.Entry, obs *world.Entry, name, member string, want []plan.Value, withdrawn []string, owner string) {
	fqdn := name + "." + e.Domain
	nm := obs.Names[name]
	if nm != nil && !owns(nm, owner) && (len(nm.A) > 0 || len(nm.AAAA) > 0 || slices.Contains(nm.Other, "CNAME") || ownedByOther(nm)) {
		b.note("%s holds records reconcile does not own (no TXT %q): they are left alone; remove them or choose another hostname", fqdn, owner)
		return
	}
	if len(want) == 0 {
		if len(withdrawn) == 0 {
			b.note("%s: no member has an address yet, so nothing is published", fqdn)
		} else {
			b.note("%s: no member is left to publish: the records stay as they are", fqdn)
		}
		return
	}
	st := plan.Step{Address: addrRecord(name), Layer: plan.Entry, Kind: plan.KindDNSRecord, Cluster: member,
		DependsOn: b.present(AddrDNSZone)}
	var after []string
	pending := false
	seen := map[string]bool{}
	var values []plan.Value
	for _, v := range want {
		if v.From != nil {
			pending = true
			st.DependsOn = append(st.DependsOn, v.From.Step)
			after = append(after, plan.KnownAfterApply)
			values = append(values, v)
			continue
		}
		if !seen[v.Value] {
			seen[v.Value] = true
			after = append(after, v.Value)
			values = append(values, v)
		}
	}
	sortValues(values)
	sort.Strings(after)
	after = slices.Compact(after)
	var before []string
	ttlOK := true
	hasOwner := nm != nil && owns(nm, owner)
	if nm != nil {
		for _, r := range append(slices.Clone(nm.A), nm.AAAA...) {
			before = append(before, r.Target)
			if r.TTL != e.TTL {
				ttlOK = false
			}
		}
	}
	sort.Strings(before)
	if !pending && slices.Equal(before, after) && ttlOK && hasOwner {
		return
	}
	if len(before) == 0 && !hasOwner {
		st.Action, st.Reason = plan.Create, "no records at "+fqdn
		st.Changes = append(st.Changes, plan.Change{Field: "owner", After: "TXT " + owner})
	} else {
		st.Action, st.Reason = plan.Update, "the records at "+fqdn+" differ from fleet.yaml"
		if len(withdrawn) > 0 {
			st.Reason = "health checks withdrew " + strings.Join(memberNames(withdrawn), ", ")
		}
		if !hasOwner {
			st.Changes = append(st.Changes, plan.Change{Field: "owner", After: "TXT " + owner})
		}
	}
	if !slices.Equal(before, after) {
		st.Changes = append(st.Changes, plan.Change{Field: "addresses", Before: strings.Join(before, ", "), After: strings.Join(after, ", ")})
	}
	if !ttlOK {
		st.Changes = append(st.Changes, plan.Change{Field: "ttl", After: strconv.Itoa(e.TTL)})
	} else if len(before) == 0 {
		st.Changes = append(st.Changes, plan.Change{Field: "ttl", After: strconv.Itoa(e.TTL)})
	}
	for _, w := range withdrawn {
		st.Changes = append(st.Changes, plan.Change{Field: "withdrawn", After: w})
	}
	st.Payload.DNSRecord = &plan.DNSRecord{Domain: e.Domain, Name: name, TTL: e.TTL, Addresses: values, Owner: owner}
	b.add(st)
}

func memberNames(withdrawn []string) []string {
	out := make([]string, len(withdrawn))
	for i, w := range withdrawn {
		out[i], _, _ = strings.Cut(w, " ")
	}
	return out
}

func sortValues(v []plan.Value) {
	sort.SliceStable(v, func(i, j int) bool {
		a, b := v[i], v[j]
		if (a.From == nil) != (b.From == nil) {
			return a.From == nil
		}
		if a.From != nil {
			return a.From.Step < b.From.Step
		}
		return ipLess(a.Value, b.Value)
	})
}

func ipLess(a, b string) bool {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if ia == nil || ib == nil {
		return a < b
	}
	return string(ia.To16()) < string(ib.To16())
}

// owns reports whether the name holds the fleet's registry record.
func owns(nm *world.DNSName, owner string) bool {
	for _, r := range nm.TXT {
		if strings.Trim(r.Target, `"`) == owner {
			return true
		}
	}
	return false
}

// ownedByOther reports whether the name holds another owner's registry record.
func ownedByOther(nm *world.DNSName) bool {
	for _, r := range nm.TXT {
		if strings.HasPrefix(strings.Trim(r.Target, `"`), RegistryHeritage+",") {
			return true
		}
	}
	return false
}

func recordsText(nm *world.DNSName) string {
	var parts []string
	for _, r := range nm.A {
		parts = append(parts, "A "+r.Target)
	}
	for _, r := range nm.AAAA {
		parts = append(parts, "AAAA "+r.Target)
	}
	for _, r := range nm.TXT {
		parts = append(parts, "TXT "+strings.Trim(r.Target, `"`))
	}
	return strings.Join(parts, ", ")
}
