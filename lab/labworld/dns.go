package labworld

import (
	"fmt"
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
