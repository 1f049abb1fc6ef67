package labdns

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
	"github.com/miekg/dns"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
)

const testToken = "labdns-test-token"

// startLab runs the lab's Linode API in process and the DNS server in front of it.
func startLab(t *testing.T) (*linodego.Client, *Server) {
	t.Helper()
	api := linodeapi.New(linodeapi.Options{Token: testToken})
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		hs.Close()
		api.Close()
	})
	c := linodego.NewClient(&http.Client{Timeout: 10 * time.Second})
	c.SetBaseURL(hs.URL)
	c.SetToken(testToken)
	c.SetRetryCount(0)
	s, err := Start("127.0.0.1:0", api, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &c, s
}

func query(t *testing.T, s *Server, net, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("%s %s %s: %v", net, name, dns.TypeToString[qtype], err)
	}
	return r
}

// answers renders the answer section as "type data" lines, sorted.
func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		s := rr.String()
		f := strings.SplitN(s, "\t", 5)
		out = append(out, f[0]+" "+f[3]+" "+f[4])
	}
	slices.Sort(out)
	return out
}

func TestServerAnswersFromTheLabAPI(t *testing.T) {
	t.Parallel()
	c, s := startLab(t)
	ctx := context.Background()
	d, err := c.CreateDomain(ctx, linodego.DomainCreateOptions{
		Domain: "fleet.example", Type: linodego.DomainTypeMaster, SOAEmail: "ops@fleet.example", TTLSec: 300,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(o linodego.DomainRecordCreateOptions) *linodego.DomainRecord {
		t.Helper()
		r, err := c.CreateDomainRecord(ctx, d.ID, o)
		if err != nil {
			t.Fatalf("create %+v: %v", o, err)
		}
		return r
	}
	ttl30 := 30
	prio, weight, port := 10, 5, 443
	svc, proto, tag := "https", "tcp", "issue"
	appA := rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "app", Target: "198.18.7.1", TTLSec: ttl30})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "app", Target: "198.18.3.1", TTLSec: ttl30})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeAAAA, Name: "app", Target: "2001:db8::1"})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeCNAME, Name: "www", Target: "app"})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeTXT, Name: "app", Target: "heritage=reconcile,fleet=lab"})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeMX, Name: "", Target: "mail.fleet.example", Priority: &prio})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeSRV, Target: "app", Service: &svc, Protocol: &proto,
		Priority: &prio, Weight: &weight, Port: &port})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeCAA, Name: "", Target: "letsencrypt.org", Tag: &tag})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "deep.eu.app", Target: "198.18.0.9"})
	rec(linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "*.wild", Target: "198.18.0.10"})

	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			tests := []struct {
				name  string
				qtype uint16
				rcode int
				want  []string // answer section; nil: empty
				soa   bool     // the SOA in the authority section
			}{
				{"app.fleet.example", dns.TypeA, dns.RcodeSuccess, []string{"app.fleet.example. A 198.18.3.1", "app.fleet.example. A 198.18.7.1"}, false},
				{"APP.Fleet.Example", dns.TypeAAAA, dns.RcodeSuccess, []string{"app.fleet.example. AAAA 2001:db8::1"}, false},
				{"app.fleet.example", dns.TypeTXT, dns.RcodeSuccess, []string{`app.fleet.example. TXT "heritage=reconcile,fleet=lab"`}, false},
				{"www.fleet.example", dns.TypeA, dns.RcodeSuccess, []string{"app.fleet.example. A 198.18.3.1", "app.fleet.example. A 198.18.7.1",
					"www.fleet.example. CNAME app.fleet.example."}, false},
				{"www.fleet.example", dns.TypeCNAME, dns.RcodeSuccess, []string{"www.fleet.example. CNAME app.fleet.example."}, false},
				{"fleet.example", dns.TypeMX, dns.RcodeSuccess, []string{"fleet.example. MX 10 mail.fleet.example."}, false},
				{"fleet.example", dns.TypeCAA, dns.RcodeSuccess, []string{`fleet.example. CAA 0 issue "letsencrypt.org"`}, false},
				{"_https._tcp.fleet.example", dns.TypeSRV, dns.RcodeSuccess, []string{"_https._tcp.fleet.example. SRV 10 5 443 app.fleet.example."}, false},
				{"fleet.example", dns.TypeSOA, dns.RcodeSuccess, []string{"fleet.example. SOA ns1.linode.com. ops.fleet.example. " +
					strconv.FormatUint(uint64(zoneSerial(t, s, "fleet.example")), 10) + " 14400 14400 1209600 300"}, false},
				{"fleet.example", dns.TypeNS, dns.RcodeSuccess, []string{"fleet.example. NS ns1.linode.com.", "fleet.example. NS ns2.linode.com.",
					"fleet.example. NS ns3.linode.com.", "fleet.example. NS ns4.linode.com.", "fleet.example. NS ns5.linode.com."}, false},
				{"x.wild.fleet.example", dns.TypeA, dns.RcodeSuccess, []string{"x.wild.fleet.example. A 198.18.0.10"}, false},
				// NODATA: the name exists, the type does not.
				{"app.fleet.example", dns.TypeMX, dns.RcodeSuccess, nil, true},
				// An empty non-terminal exists too.
				{"eu.app.fleet.example", dns.TypeA, dns.RcodeSuccess, nil, true},
				{"nothing.fleet.example", dns.TypeA, dns.RcodeNameError, nil, true},
				{"example.org", dns.TypeA, dns.RcodeRefused, nil, false},
				{"example", dns.TypeSOA, dns.RcodeRefused, nil, false},
			}
			for _, tt := range tests {
				r := query(t, s, proto, tt.name, tt.qtype)
				what := tt.name + " " + dns.TypeToString[tt.qtype]
				if r.Rcode != tt.rcode {
					t.Errorf("%s: rcode %s, want %s", what, dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
				}
				if got := answers(r); !slices.Equal(got, tt.want) {
					t.Errorf("%s: answer\n  %q\nwant\n  %q", what, got, tt.want)
				}
				if wantAA := tt.rcode != dns.RcodeRefused; r.Authoritative != wantAA {
					t.Errorf("%s: AA = %v, want %v", what, r.Authoritative, wantAA)
				}
				hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA
				if hasSOA != tt.soa {
					t.Errorf("%s: authority %v, want SOA %v", what, r.Ns, tt.soa)
				}
				if r.RecursionAvailable {
					t.Errorf("%s: RA set", what)
				}
			}
		})
	}

	// A change through the API is in the next answer: the serial grows, the record moves.
	serial := zoneSerial(t, s, "fleet.example")
	if _, err := c.UpdateDomainRecord(ctx, d.ID, appA.ID, linodego.DomainRecordUpdateOptions{Target: "198.18.7.2"}); err != nil {
		t.Fatal(err)
	}
	if got, want := answers(query(t, s, "udp", "app.fleet.example", dns.TypeA)),
		[]string{"app.fleet.example. A 198.18.3.1", "app.fleet.example. A 198.18.7.2"}; !slices.Equal(got, want) {
		t.Errorf("after the update: %q, want %q", got, want)
	}
	if got := zoneSerial(t, s, "fleet.example"); got <= serial {
		t.Errorf("serial %d after an update, was %d", got, serial)
	}
	if err := c.DeleteDomainRecord(ctx, d.ID, appA.ID); err != nil {
		t.Fatal(err)
	}
	if got, want := answers(query(t, s, "tcp", "app.fleet.example", dns.TypeA)), []string{"app.fleet.example. A 198.18.3.1"}; !slices.Equal(got, want) {
		t.Errorf("after the delete: %q, want %q", got, want)
	}
	// A disabled zone is not served; a deleted one neither.
	if _, err := c.UpdateDomain(ctx, d.ID, linodego.DomainUpdateOptions{Status: linodego.DomainStatusDisabled}); err != nil {
		t.Fatal(err)
	}
	if r := query(t, s, "udp", "app.fleet.example", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("disabled zone: rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if err := c.DeleteDomain(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if r := query(t, s, "udp", "fleet.example", dns.TypeSOA); r.Rcode != dns.RcodeRefused {
		t.Errorf("deleted zone: rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}

func zoneSerial(t *testing.T, s *Server, zone string) uint32 {
	t.Helper()
	r := query(t, s, "tcp", zone, dns.TypeSOA)
	if len(r.Answer) != 1 {
		t.Fatalf("SOA of %s: %v", zone, r)
	}
	return r.Answer[0].(*dns.SOA).Serial
}
