package labworld

import (
	"fmt"
	"sort"
	"time"

	"github.com/miekg/dns"
)

// DNSEnv names the lab DNS server's address in `reconcile-lab env`.
const DNSEnv = "RECONCILE_LAB_DNS"

// dnsAnswers checks that the lab DNS server at addr answers over UDP and TCP: a name outside
// every lab zone is REFUSED, which proves the server reads its zones and is authoritative only
// for them.
func dnsAnswers(addr string) error {
	if addr == "" {
		return fmt.Errorf("no DNS address in lab.json (a lab from before the DNS server)")
	}
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("reconcile-lab-status.invalid.", dns.TypeSOA)
		r, _, err := (&dns.Client{Net: network, Timeout: 3 * time.Second}).Exchange(m, addr)
		if err != nil {
			return fmt.Errorf("%s %s: %w", network, addr, err)
		}
		if r.Rcode != dns.RcodeRefused {
			return fmt.Errorf("%s %s: %s for a name outside the lab's zones, want REFUSED", network, addr, dns.RcodeToString[r.Rcode])
		}
	}
	return nil
}

// Resolve asks the DNS server at addr (UDP) for name's A and AAAA records, as any resolver
// would, and returns the addresses sorted; an empty answer (NOERROR without records, or
// NXDOMAIN) is no addresses and no error.
func Resolve(addr, name string) ([]string, error) {
	var out []string
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qt)
		r, _, err := (&dns.Client{Net: "udp", Timeout: 3 * time.Second}).Exchange(m, addr)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[qt], name, err)
		}
		switch r.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
		default:
			return nil, fmt.Errorf("%s %s: %s", dns.TypeToString[qt], name, dns.RcodeToString[r.Rcode])
		}
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.A:
				out = append(out, v.A.String())
			case *dns.AAAA:
				out = append(out, v.AAAA.String())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
