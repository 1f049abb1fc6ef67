package labdns

import (
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

// The SOA's values for a zone field left at 0, as the API's zone file renders them.
const (
	defaultTTL     = 86400
	defaultRefresh = 14400
	defaultRetry   = 14400
	defaultExpire  = 1209600
)

// nameServers are Linode's, the NS of every zone (as in the API's zone file).
var nameServers = []string{"ns1.linode.com.", "ns2.linode.com.", "ns3.linode.com.", "ns4.linode.com.", "ns5.linode.com."}

// maxChain bounds how many in-zone CNAMEs one answer follows.
const maxChain = 8

// Answer is the authoritative answer to r from zones: records of the zone the name falls
// in (the longest match among active zones) with AA set, NXDOMAIN for a name that does not
// exist, NOERROR with no answer (NODATA) for a name without records of the type, both with
// the zone's SOA; a referral for a name below a delegation (NS records inside the zone);
// REFUSED for a name in none of the zones, a class other than IN, and zone transfers.
func Answer(zones []linodeapi.Zone, r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = false
	if r.IsEdns0() != nil {
		m.SetEdns0(dns.DefaultMsgSize, false)
	}
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	qname := strings.ToLower(dns.Fqdn(q.Name))
	var best *linodeapi.Zone
	for i, z := range zones {
		origin := dns.Fqdn(strings.ToLower(z.Domain))
		if z.Status == "active" && dns.IsSubDomain(origin, qname) &&
			(best == nil || dns.CountLabel(origin) > dns.CountLabel(dns.Fqdn(best.Domain))) {
			best = &zones[i]
		}
	}
	if best == nil || q.Qclass != dns.ClassINET || q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	z := build(*best)
	z.answer(m, qname, q.Qtype, map[string]bool{})
	m.Answer = dns.Dedup(m.Answer, nil)
	return m
}

// zone is a linodeapi.Zone as DNS records.
type zone struct {
	origin string
	soa    *dns.SOA
	rrs    map[string][]dns.RR // owner name (lower case, absolute) -> records
	names  map[string]bool     // every owner and every name between an owner and the origin
}

func build(z linodeapi.Zone) *zone {
	origin := dns.Fqdn(strings.ToLower(z.Domain))
	ttl := uint32(orDefault(z.TTL, defaultTTL))
	out := &zone{origin: origin, rrs: map[string][]dns.RR{}, names: map[string]bool{origin: true}}
	out.soa = &dns.SOA{
		Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  nameServers[0], Mbox: dns.Fqdn(strings.Replace(z.SOAEmail, "@", ".", 1)),
		Serial: z.Serial, Refresh: uint32(orDefault(z.Refresh, defaultRefresh)),
		Retry: uint32(orDefault(z.Retry, defaultRetry)), Expire: uint32(orDefault(z.Expire, defaultExpire)),
		Minttl: ttl,
	}
	out.add(out.soa)
	for _, ns := range nameServers {
		out.add(&dns.NS{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ttl}, Ns: ns})
	}
	for _, r := range z.Records {
		if rr := record(r, origin, ttl); rr != nil {
			out.add(rr)
		}
	}
	return out
}

func (z *zone) add(rr dns.RR) {
	name := rr.Header().Name
	z.rrs[name] = append(z.rrs[name], rr)
	for n := name; n != z.origin && n != "."; n = parent(n) {
		z.names[n] = true
	}
}

// record is one stored record as an RR, or nil for a type the server does not know.
func record(r linodeapi.ZoneRecord, origin string, zoneTTL uint32) dns.RR {
	owner := r.Name
	if r.Type == "SRV" {
		owner = strings.TrimSuffix(r.Service+"."+r.Protocol+"."+r.Name, ".")
	}
	if owner == "" {
		owner = origin
	} else {
		owner = strings.ToLower(owner) + "." + origin
	}
	ttl := zoneTTL
	if r.TTL > 0 {
		ttl = uint32(r.TTL)
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	host := func() string { return absolute(r.Target, origin) }
	switch r.Type {
	case "A":
		ip := net.ParseIP(r.Target).To4()
		if ip == nil {
			return nil
		}
		return &dns.A{Hdr: hdr(dns.TypeA), A: ip}
	case "AAAA":
		ip := net.ParseIP(r.Target)
		if ip == nil {
			return nil
		}
		return &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip}
	case "CNAME":
		return &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: host()}
	case "NS":
		return &dns.NS{Hdr: hdr(dns.TypeNS), Ns: host()}
	case "PTR":
		return &dns.PTR{Hdr: hdr(dns.TypePTR), Ptr: host()}
	case "MX":
		return &dns.MX{Hdr: hdr(dns.TypeMX), Preference: uint16(r.Priority), Mx: host()}
	case "SRV":
		return &dns.SRV{Hdr: hdr(dns.TypeSRV), Priority: uint16(r.Priority), Weight: uint16(r.Weight),
			Port: uint16(r.Port), Target: host()}
	case "TXT":
		return &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: chunks(r.Target, 255)}
	case "CAA":
		return &dns.CAA{Hdr: hdr(dns.TypeCAA), Flag: 0, Tag: r.Tag, Value: r.Target}
	}
	return nil
}

// absolute makes a record's host target absolute as the API's zone file does: a name with
// a dot is complete, one without is in the zone.
func absolute(target, origin string) string {
	t := strings.ToLower(strings.TrimSuffix(target, "."))
	if !strings.Contains(t, ".") {
		return t + "." + origin
	}
	return t + "."
}

// chunks splits a TXT value into the 255-byte strings a TXT record is made of.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func parent(name string) string {
	if i, end := dns.NextLabel(name, 0); !end {
		return name[i:]
	}
	return "."
}

// answer adds to m what the zone says about qname and qtype, following in-zone CNAMEs.
func (z *zone) answer(m *dns.Msg, qname string, qtype uint16, seen map[string]bool) {
	seen[qname] = true
	if cut := z.delegation(qname); cut != "" && (qname != cut || qtype != dns.TypeDS) {
		if len(m.Answer) == 0 {
			m.Authoritative = false // a referral: the child zone's servers answer
		}
		for _, rr := range z.rrs[cut] {
			ns, ok := rr.(*dns.NS)
			if !ok {
				continue
			}
			m.Ns = append(m.Ns, rr)
			if dns.IsSubDomain(cut, ns.Ns) { // glue
				for _, g := range z.rrs[ns.Ns] {
					if t := g.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
						m.Extra = append(m.Extra, g)
					}
				}
			}
		}
		return
	}
	rrs, ok := z.rrs[qname]
	if !ok && !z.names[qname] {
		rrs, ok = z.wildcard(qname)
	}
	if !ok {
		if !z.names[qname] {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = append(m.Ns, z.soa)
		return
	}
	for _, rr := range rrs {
		if c, isCNAME := rr.(*dns.CNAME); isCNAME && qtype != dns.TypeCNAME {
			m.Answer = append(m.Answer, rr)
			target := strings.ToLower(c.Target)
			if dns.IsSubDomain(z.origin, target) && !seen[target] && len(seen) < maxChain {
				z.answer(m, target, qtype, seen)
			}
			return
		}
	}
	n := len(m.Answer)
	for _, rr := range rrs {
		if qtype == dns.TypeANY || rr.Header().Rrtype == qtype {
			m.Answer = append(m.Answer, rr)
		}
	}
	if len(m.Answer) == n {
		m.Ns = append(m.Ns, z.soa) // NODATA
	}
}

// delegation is the highest name between qname and the origin (qname included, the origin
// not) that holds NS records: there the zone hands over to another.
func (z *zone) delegation(qname string) string {
	cut := ""
	for n := qname; n != z.origin && n != "."; n = parent(n) {
		for _, rr := range z.rrs[n] {
			if rr.Header().Rrtype == dns.TypeNS {
				cut = n
				break
			}
		}
	}
	return cut
}

// wildcard is the records of the wildcard at qname's closest encloser, renamed to qname.
func (z *zone) wildcard(qname string) ([]dns.RR, bool) {
	ce := parent(qname)
	for ce != z.origin && !z.names[ce] {
		ce = parent(ce)
	}
	src, ok := z.rrs["*."+ce]
	if !ok {
		return nil, false
	}
	out := make([]dns.RR, len(src))
	for i, rr := range src {
		out[i] = dns.Copy(rr)
		out[i].Header().Name = qname
	}
	return out, true
}
