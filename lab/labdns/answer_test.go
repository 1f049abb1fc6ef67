package labdns

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

var testZones = []linodeapi.Zone{
	{ID: 1, Domain: "example.com", Type: "master", Status: "active", SOAEmail: "admin@example.com", Serial: 2026000001,
		Records: []linodeapi.ZoneRecord{
			{Type: "NS", Name: "child", Target: "ns.child.example.com"},
			{Type: "A", Name: "ns.child", Target: "192.0.2.53"},
			{Type: "CNAME", Name: "out", Target: "elsewhere.example.net"},
			{Type: "CNAME", Name: "loop1", Target: "loop2"},
			{Type: "CNAME", Name: "loop2", Target: "loop1"},
			{Type: "CNAME", Name: "dangling", Target: "gone"},
			{Type: "A", Name: "sub", Target: "192.0.2.1"},
		}},
	// A zone below another: its names are answered from it, not from example.com.
	{ID: 2, Domain: "sub.example.com", Type: "master", Status: "active", SOAEmail: "admin@example.com", Serial: 7,
		Records: []linodeapi.ZoneRecord{{Type: "A", Name: "www", Target: "192.0.2.2"}}},
}

func ask(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return Answer(testZones, m)
}

func TestAnswer(t *testing.T) {
	t.Parallel()
	// A referral below a delegation: not authoritative, the NS and their glue.
	r := ask("host.child.example.com.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || r.Authoritative || len(r.Answer) != 0 || len(r.Ns) != 1 || len(r.Extra) != 1 ||
		r.Ns[0].(*dns.NS).Ns != "ns.child.example.com." || r.Extra[0].(*dns.A).A.String() != "192.0.2.53" {
		t.Errorf("referral: %v", r)
	}
	// A CNAME out of the lab's zones is answered alone; a loop ends.
	if r := ask("out.example.com.", dns.TypeA); len(r.Answer) != 1 || !r.Authoritative || r.Rcode != dns.RcodeSuccess {
		t.Errorf("CNAME out of zone: %v", r)
	}
	if r := ask("loop1.example.com.", dns.TypeA); len(r.Answer) != 2 || r.Rcode != dns.RcodeSuccess {
		t.Errorf("CNAME loop: %v", r)
	}
	// A CNAME to a name that does not exist: NXDOMAIN with the CNAME (RFC 6604).
	if r := ask("dangling.example.com.", dns.TypeA); len(r.Answer) != 1 || r.Rcode != dns.RcodeNameError {
		t.Errorf("dangling CNAME: %v", r)
	}
	// The longest zone answers.
	if r := ask("www.sub.example.com.", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.2" {
		t.Errorf("www.sub: %v", r)
	}
	if r := ask("sub.example.com.", dns.TypeSOA); len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 7 {
		t.Errorf("SOA of sub: %v", r)
	}
	// Zone transfers, other classes and other opcodes are not served.
	if r := ask("example.com.", dns.TypeAXFR); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR: %v", r)
	}
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	if r := Answer(testZones, m); r.Rcode != dns.RcodeRefused {
		t.Errorf("CHAOS: %v", r)
	}
	m = new(dns.Msg)
	m.SetNotify("example.com.")
	if r := Answer(testZones, m); r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %v", r)
	}
}

type staticZones []linodeapi.Zone

func (z staticZones) Zones() []linodeapi.Zone { return z }

// TestTruncation: an answer too large for UDP comes truncated (TC set), whole over TCP.
func TestTruncation(t *testing.T) {
	t.Parallel()
	big := staticZones{{Domain: "big.example", Status: "active", SOAEmail: "a@big.example"}}
	for i := range 30 {
		big[0].Records = append(big[0].Records, linodeapi.ZoneRecord{Type: "TXT", Name: "t",
			Target: fmt.Sprintf("%02d-%s", i, strings.Repeat("x", 40))})
	}
	s, err := Start("127.0.0.1:0", big, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := query(t, s, "tcp", "t.big.example", dns.TypeTXT); r.Truncated || len(r.Answer) != 30 {
		t.Errorf("TCP: truncated %v, %d answers; want all 30", r.Truncated, len(r.Answer))
	}
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion("t.big.example.", dns.TypeTXT)
	r, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	r.Compress = true // as it was sent
	if !r.Truncated || len(r.Answer) >= 30 || r.Len() > dns.MinMsgSize {
		t.Errorf("UDP: truncated %v, %d answers in %d bytes; want TC within 512 bytes", r.Truncated, len(r.Answer), r.Len())
	}
}
