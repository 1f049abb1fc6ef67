package linode

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/state/world"
)

// Zone reads the DNS Manager domain named domain and, of its records, the names wanted
// reports true for and every name holding a TXT record for which owned reports true
// (a registry record). It returns a nil zone when the domain does not exist.
func (d *Driver) Zone(ctx context.Context, domain string, wanted, owned func(string) bool) (*world.DNSZone, map[string]*world.DNSName, error) {
	dom, err := d.domain(ctx, domain)
	if err != nil || dom == nil {
		return nil, nil, err
	}
	zone := &world.DNSZone{ID: dom.ID, Domain: dom.Domain, Tags: slices.Clone(dom.Tags)}
	var records []linodego.DomainRecord
	err = d.cfg.ReadRetry.Do(ctx, func(ctx context.Context) error {
		var err error
		records, err = d.api.ListDomainRecords(ctx, dom.ID, &linodego.ListOptions{PageSize: listPageSize})
		return classify(ctx, "list records of "+domain, err)
	})
	if err != nil {
		return nil, nil, err
	}
	all := map[string]*world.DNSName{}
	for _, r := range records {
		name := strings.ToLower(r.Name)
		nm := all[name]
		if nm == nil {
			nm = &world.DNSName{}
			all[name] = nm
		}
		rec := world.DNSRecord{ID: r.ID, Target: r.Target, TTL: r.TTLSec}
		switch r.Type {
		case linodego.RecordTypeA:
			nm.A = append(nm.A, rec)
		case linodego.RecordTypeAAAA:
			nm.AAAA = append(nm.AAAA, rec)
		case linodego.RecordTypeTXT:
			rec.Target = strings.Trim(rec.Target, `"`)
			nm.TXT = append(nm.TXT, rec)
		default:
			if !slices.Contains(nm.Other, string(r.Type)) {
				nm.Other = append(nm.Other, string(r.Type))
			}
		}
	}
	names := map[string]*world.DNSName{}
	for name, nm := range all {
		keep := wanted(name)
		for _, t := range nm.TXT {
			keep = keep || owned(t.Target)
		}
		if !keep {
			continue
		}
		for _, l := range [][]world.DNSRecord{nm.A, nm.AAAA, nm.TXT} {
			sort.Slice(l, func(i, j int) bool {
				return l[i].Target < l[j].Target || l[i].Target == l[j].Target && l[i].ID < l[j].ID
			})
		}
		sort.Strings(nm.Other)
		names[name] = nm
	}
	return zone, names, nil
}

func (d *Driver) domain(ctx context.Context, domain string) (*linodego.Domain, error) {
	filter, err := json.Marshal(map[string]string{"domain": domain})
	if err != nil {
		return nil, err
	}
	var found []linodego.Domain
	err = d.cfg.ReadRetry.Do(ctx, func(ctx context.Context) error {
		var err error
		found, err = d.api.ListDomains(ctx, &linodego.ListOptions{PageSize: listPageSize, Filter: string(filter)})
		return classify(ctx, "list domains", err)
	})
	if err != nil {
		return nil, err
	}
	for i := range found {
		if strings.EqualFold(found[i].Domain, domain) {
			return &found[i], nil
		}
	}
	return nil, nil
}

// CreateZone creates domain as a master zone with tags; a domain that exists already is
// left as it is (a retried step, or a zone made by someone else in between).
func (d *Driver) CreateZone(ctx context.Context, domain, soaEmail string, tags []string) error {
	if dom, err := d.domain(ctx, domain); err != nil || dom != nil {
		return err
	}
	_, err := d.api.CreateDomain(ctx, linodego.DomainCreateOptions{Domain: domain, Type: linodego.DomainTypeMaster,
		SOAEmail: soaEmail, Tags: tags})
	if err != nil {
		return classify(ctx, "create domain "+domain, err)
	}
	d.log.Info("DNS zone created", "domain", domain)
	return nil
}

// ErrNotOwned is returned when a name holds records without the fleet's registry record.
type ErrNotOwned struct{ Name string }

func (e *ErrNotOwned) Error() string {
	return "linode: " + e.Name + " holds records that are not the fleet's (no registry TXT record of the fleet): left alone"
}

// SetRecords makes the A and AAAA records at name in domain exactly addrs, with ttl, and
// keeps the registry TXT record owner there; with remove, it deletes them and the registry
// record. Records of other types are never touched, and a name that holds address records
// but not owner is refused (*ErrNotOwned): they are someone else's. Records are created
// before the ones they replace are deleted, so the name never answers with nothing.
func (d *Driver) SetRecords(ctx context.Context, domain, name string, ttl int, addrs []string, owner string, remove bool) error {
	dom, err := d.domain(ctx, domain)
	if err != nil {
		return err
	}
	if dom == nil {
		if remove {
			return nil
		}
		return fmt.Errorf("linode: no DNS zone %s", domain)
	}
	var records []linodego.DomainRecord
	records, err = d.api.ListDomainRecords(ctx, dom.ID, &linodego.ListOptions{PageSize: listPageSize})
	if err != nil {
		return classify(ctx, "list records of "+domain, err)
	}
	var addrRecs, ownerRecs []linodego.DomainRecord
	foreignCNAME := false
	for _, r := range records {
		if !strings.EqualFold(r.Name, name) {
			continue
		}
		switch r.Type {
		case linodego.RecordTypeA, linodego.RecordTypeAAAA:
			addrRecs = append(addrRecs, r)
		case linodego.RecordTypeTXT:
			if strings.Trim(r.Target, `"`) == owner {
				ownerRecs = append(ownerRecs, r)
			}
		case linodego.RecordTypeCNAME:
			foreignCNAME = true
		}
	}
	fqdn := name + "." + domain
	if len(ownerRecs) == 0 && (len(addrRecs) > 0 || foreignCNAME) {
		return &ErrNotOwned{Name: fqdn}
	}
	if remove {
		for _, r := range append(addrRecs, ownerRecs...) {
			if err := d.api.DeleteDomainRecord(ctx, dom.ID, r.ID); err != nil && !linodego.IsNotFound(err) {
				return classify(ctx, "delete record "+fqdn, err)
			}
		}
		d.log.Info("DNS records removed", "name", fqdn)
		return nil
	}
	if len(ownerRecs) == 0 {
		// The mark first: a step that fails after it leaves a name the next pass recognises.
		if _, err := d.api.CreateDomainRecord(ctx, dom.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeTXT,
			Name: name, Target: owner, TTLSec: ttl}); err != nil {
			return classify(ctx, "create registry record "+fqdn, err)
		}
	}
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	have := map[string]bool{}
	var stale []linodego.DomainRecord
	for _, r := range addrRecs {
		switch {
		case want[r.Target] && !have[r.Target]:
			have[r.Target] = true
			if r.TTLSec != ttl {
				if _, err := d.api.UpdateDomainRecord(ctx, dom.ID, r.ID, linodego.DomainRecordUpdateOptions{TTLSec: ttl}); err != nil {
					return classify(ctx, "update record "+fqdn, err)
				}
			}
		default:
			stale = append(stale, r)
		}
	}
	for _, a := range addrs {
		if have[a] {
			continue
		}
		typ := linodego.RecordTypeA
		if ip := net.ParseIP(a); ip == nil {
			return fmt.Errorf("linode: %s: %q is not an IP address", fqdn, a)
		} else if ip.To4() == nil {
			typ = linodego.RecordTypeAAAA
		}
		if _, err := d.api.CreateDomainRecord(ctx, dom.ID, linodego.DomainRecordCreateOptions{Type: typ, Name: name, Target: a, TTLSec: ttl}); err != nil {
			return classify(ctx, "create record "+fqdn, err)
		}
		have[a] = true
	}
	for _, r := range stale {
		if err := d.api.DeleteDomainRecord(ctx, dom.ID, r.ID); err != nil && !linodego.IsNotFound(err) {
			return classify(ctx, "delete record "+fqdn, err)
		}
	}
	for _, r := range ownerRecs[min(1, len(ownerRecs)):] {
		if err := d.api.DeleteDomainRecord(ctx, dom.ID, r.ID); err != nil && !linodego.IsNotFound(err) {
			return classify(ctx, "delete duplicate registry record "+fqdn, err)
		}
	}
	d.log.Info("DNS records set", "name", fqdn, "addresses", strings.Join(addrs, ","), "ttl", ttl)
	return nil
}
