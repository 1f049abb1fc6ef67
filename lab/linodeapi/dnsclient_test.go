package linodeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
)

// wantField checks that err is linodego's 400 naming field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var e *linodego.Error
	if !errors.As(err, &e) || e.Code != http.StatusBadRequest {
		t.Errorf("%s: err = %v, want 400", what, err)
		return
	}
	if !strings.Contains(e.Message, "["+field+"]") {
		t.Errorf("%s: message %q does not name field %q", what, e.Message, field)
	}
}

// TestEveryDomainFunction calls every Domain and DomainRecord method of linodego's
// Client that the server serves and checks the answers; the reflection check at the
// end names the one it does not serve (import), so a linodego
// upgrade that adds one fails here until it is served or listed.
func TestEveryDomainFunction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, srv, c := newTestAPI(t, Options{Clock: clock.Now})
	once := newClient(srv.URL, testToken)
	once.SetRetryCount(0)
	called := map[string]bool{}
	call := func(name string, err error) {
		t.Helper()
		called[name] = true
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	d, err := c.CreateDomain(ctx, linodego.DomainCreateOptions{
		Domain: "Example.COM", Type: linodego.DomainTypeMaster, SOAEmail: "admin@example.com",
		Tags: []string{"fleet:lab"}, TTLSec: 45, Description: "the fleet's zone",
	})
	call("CreateDomain", err)
	if d.Domain != "example.com" || d.Type != linodego.DomainTypeMaster || d.Status != linodego.DomainStatusActive ||
		d.SOAEmail != "admin@example.com" || d.TTLSec != 30 || !slices.Equal(d.Tags, []string{"fleet:lab"}) ||
		d.MasterIPs == nil || d.AXfrIPs == nil || d.Description != "the fleet's zone" {
		t.Errorf("CreateDomain = %+v; want example.com, master, active, ttl 45 snapped to 30, empty ip lists", d)
	}
	got, err := c.GetDomain(ctx, d.ID)
	call("GetDomain", err)
	if !reflect.DeepEqual(got, d) {
		t.Errorf("GetDomain = %+v, want %+v", got, d)
	}
	// A rename and a TTL through the client's own GetUpdateOptions round trip.
	uo := got.GetUpdateOptions()
	uo.Domain, uo.TTLSec, uo.RefreshSec = "example.org", 100000, 1
	upd, err := c.UpdateDomain(ctx, d.ID, uo)
	call("UpdateDomain", err)
	if upd.Domain != "example.org" || upd.TTLSec != 86400 || upd.RefreshSec != 30 || upd.SOAEmail != "admin@example.com" {
		t.Errorf("UpdateDomain = %+v; want example.org, ttl 86400, refresh 30, soa kept", upd)
	}
	// Only what is sent changes: tags null is unchanged.
	upd, err = c.UpdateDomain(ctx, d.ID, linodego.DomainUpdateOptions{Description: "renamed"})
	if err != nil || upd.Description != "renamed" || !slices.Equal(upd.Tags, []string{"fleet:lab"}) || upd.Domain != "example.org" {
		t.Errorf("partial UpdateDomain = %+v, %v", upd, err)
	}
	other, err := c.CreateDomain(ctx, linodego.DomainCreateOptions{Domain: "other.example", Type: linodego.DomainTypeSlave, MasterIPs: []string{"192.0.2.1"}})
	if err != nil || other.Type != linodego.DomainTypeSlave || !slices.Equal(other.MasterIPs, []string{"192.0.2.1"}) {
		t.Fatalf("slave CreateDomain = %+v, %v", other, err)
	}
	list, err := c.ListDomains(ctx, nil)
	call("ListDomains", err)
	if len(list) != 2 || list[0].ID != d.ID || list[1].ID != other.ID {
		t.Errorf("ListDomains = %+v", list)
	}
	list, err = c.ListDomains(ctx, linodego.NewListOptions(0, `{"domain": "other.example"}`))
	if err != nil || len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("filtered ListDomains = %+v, %v", list, err)
	}

	// Records: A, AAAA, CNAME, TXT, MX, SRV, CAA; names relative, or absolute within the zone.
	ten, prio := 10, 5
	svc, proto, tag := "_sip", "tcp", "issue"
	recs := []linodego.DomainRecordCreateOptions{
		{Type: linodego.RecordTypeA, Name: "app", Target: "198.51.100.7", TTLSec: 30},
		{Type: linodego.RecordTypeA, Name: "app.example.org.", Target: "198.51.100.8", TTLSec: 31},
		{Type: linodego.RecordTypeAAAA, Name: "app.example.org", Target: "2001:db8::7"},
		{Type: linodego.RecordTypeCNAME, Name: "www", Target: "app.example.org"},
		{Type: linodego.RecordTypeTXT, Name: "app", Target: "heritage=reconcile,fleet=lab", TTLSec: 200},
		{Type: linodego.RecordTypeMX, Name: "", Target: "mail.example.org", Priority: &ten},
		{Type: linodego.RecordTypeSRV, Name: "sip", Target: "app.example.org", Priority: &prio, Weight: &ten, Port: &ten, Service: &svc, Protocol: &proto},
		{Type: linodego.RecordTypeCAA, Name: "", Target: "letsencrypt.org", Tag: &tag},
	}
	var ids []int
	for _, o := range recs {
		r, err := c.CreateDomainRecord(ctx, d.ID, o)
		call("CreateDomainRecord", err)
		ids = append(ids, r.ID)
	}
	r0, err := c.GetDomainRecord(ctx, d.ID, ids[0])
	call("GetDomainRecord", err)
	if r0.Type != linodego.RecordTypeA || r0.Name != "app" || r0.Target != "198.51.100.7" || r0.TTLSec != 30 ||
		r0.Created == nil || !r0.Created.Equal(clock.Now()) || r0.Service != nil || r0.Tag != nil {
		t.Errorf("GetDomainRecord = %+v", r0)
	}
	if r, _ := c.GetDomainRecord(ctx, d.ID, ids[1]); r == nil || r.Name != "app" || r.TTLSec != 30 {
		t.Errorf("absolute name in the zone = %+v, want name app, ttl 31 snapped to 30", r)
	}
	if r, _ := c.GetDomainRecord(ctx, d.ID, ids[4]); r == nil || r.TTLSec != 120 || r.Target != "heritage=reconcile,fleet=lab" {
		t.Errorf("TXT record = %+v, want ttl 200 snapped to 120", r)
	}
	records, err := c.ListDomainRecords(ctx, d.ID, nil)
	call("ListDomainRecords", err)
	if len(records) != len(recs) {
		t.Errorf("ListDomainRecords = %d records, want %d", len(records), len(recs))
	}
	apps, err := c.ListDomainRecords(ctx, d.ID, linodego.NewListOptions(0, `{"name": "app", "type": "A"}`))
	if err != nil || len(apps) != 2 {
		t.Errorf("filtered ListDomainRecords = %+v, %v; want the two A records of app", apps, err)
	}
	clock.Advance(time.Minute)
	ru := r0.GetUpdateOptions()
	ru.Target, ru.TTLSec = "198.51.100.9", 300
	r, err := c.UpdateDomainRecord(ctx, d.ID, ids[0], ru)
	call("UpdateDomainRecord", err)
	if r.Target != "198.51.100.9" || r.TTLSec != 300 || r.Name != "app" || r.Updated == nil || !r.Updated.Equal(clock.Now()) ||
		r.Created == nil || !r.Created.Equal(clock.Now().Add(-time.Minute)) {
		t.Errorf("UpdateDomainRecord = %+v", r)
	}
	call("DeleteDomainRecord", c.DeleteDomainRecord(ctx, d.ID, ids[3]))
	if _, err := once.GetDomainRecord(ctx, d.ID, ids[3]); !linodego.ErrHasStatus(err, http.StatusNotFound) {
		t.Errorf("deleted record: err = %v, want 404", err)
	}

	zf, err := c.GetDomainZoneFile(ctx, d.ID)
	call("GetDomainZoneFile", err)
	for _, want := range []string{
		fmt.Sprintf("; example.org [%d]", d.ID),
		"$TTL 86400",
		"@    NS  ns1.linode.com.",
		"app  300  A  198.51.100.9",
		"app    AAAA  2001:db8::7",
		`app  120  TXT  "heritage=reconcile,fleet=lab"`,
		"@    MX  10 mail.example.org.",
		"_sip._tcp.sip    SRV  5 10 10 app.example.org.",
		`@    CAA  0 issue "letsencrypt.org"`,
	} {
		if !slices.Contains(zf.ZoneFile, want) {
			t.Errorf("zone file lacks %q:\n%s", want, strings.Join(zf.ZoneFile, "\n"))
		}
	}
	if soa := zf.ZoneFile[2]; !strings.HasPrefix(soa, "@  IN  SOA  ns1.linode.com. admin.example.com. 2026") || !strings.HasSuffix(soa, " 30 14400 1209600 86400") {
		t.Errorf("SOA line = %q", soa)
	}

	// The zone snapshot for a DNS server.
	zones := s.Zones()
	if len(zones) != 2 || zones[0].Domain != "example.org" || zones[0].SOAEmail != "admin@example.com" || len(zones[0].Records) != len(recs)-1 {
		t.Fatalf("Zones = %+v", zones)
	}
	z := zones[0]
	if a := z.Records[0]; a.Type != "A" || a.Name != "app" || a.Target != "198.51.100.9" || a.TTL != 300 {
		t.Errorf("Zones record 0 = %+v", a)
	}
	if srv := z.Records[5]; srv.Type != "SRV" || srv.Service != "_sip" || srv.Protocol != "_tcp" || srv.Port != 10 || srv.Priority != 5 {
		t.Errorf("Zones SRV = %+v", srv)
	}
	serial := z.Serial
	if _, err := c.CreateDomainRecord(ctx, d.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "eu.app", Target: "198.51.100.10"}); err != nil {
		t.Fatal(err)
	}
	if z2 := s.Zones()[0]; z2.Serial <= serial || len(z2.Records) != len(z.Records)+1 || len(z.Records) != len(recs)-1 {
		t.Errorf("after a change: serial %d -> %d, records %d -> %d; the old snapshot must not change", serial, z2.Serial, len(z.Records), len(z2.Records))
	}

	clone, err := c.CloneDomain(ctx, d.ID, linodego.DomainCloneOptions{Domain: "example.net"})
	call("CloneDomain", err)
	if clone.Domain != "example.net" || clone.ID == d.ID || clone.SOAEmail != "admin@example.com" {
		t.Errorf("CloneDomain = %+v", clone)
	}
	if cr, err := c.ListDomainRecords(ctx, clone.ID, nil); err != nil || len(cr) != len(recs) || cr[0].Name != "app" || cr[0].ID == ids[0] {
		t.Errorf("records of the clone = %+v, %v; want copies with ids of their own", cr, err)
	}
	_, err = c.CloneDomain(ctx, d.ID, linodego.DomainCloneOptions{Domain: "example.net"})
	wantField(t, "clone to a taken name", err, "domain")
	call("DeleteDomain", c.DeleteDomain(ctx, clone.ID))

	call("DeleteDomain", c.DeleteDomain(ctx, d.ID))
	if _, err := once.GetDomain(ctx, d.ID); !linodego.ErrHasStatus(err, http.StatusNotFound) {
		t.Errorf("deleted domain: err = %v, want 404", err)
	}
	if _, err := once.ListDomainRecords(ctx, d.ID, nil); !linodego.ErrHasStatus(err, http.StatusNotFound) {
		t.Errorf("records of a deleted domain: err = %v, want 404", err)
	}
	if zones := s.Zones(); len(zones) != 1 || zones[0].ID != other.ID {
		t.Errorf("Zones after delete = %+v", zones)
	}

	// Import would need the zone transferred from a remote name server: refused.
	_, err = c.ImportDomain(ctx, linodego.DomainImportOptions{Domain: "example.com", RemoteNameserver: "192.0.2.53"})
	if !linodego.ErrHasStatus(err, http.StatusBadRequest) {
		t.Errorf("ImportDomain: err = %v, want 400", err)
	}
	notServed := map[string]bool{"ImportDomain": true}
	ct := reflect.TypeOf(c)
	for i := range ct.NumMethod() {
		name := ct.Method(i).Name
		if strings.Contains(name, "Domain") && !called[name] && !notServed[name] {
			t.Errorf("linodego's %s is not exercised", name)
		}
	}
}

// TestDomainValidation: bad input is a 400 naming the field, and nothing is kept.
func TestDomainValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, c := newTestAPI(t, Options{})
	d, err := c.CreateDomain(ctx, linodego.DomainCreateOptions{Domain: "example.com", Type: linodego.DomainTypeMaster, SOAEmail: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		opts  linodego.DomainCreateOptions
		field string
	}{
		{"no soa_email for a master", linodego.DomainCreateOptions{Domain: "a.example", Type: linodego.DomainTypeMaster}, "soa_email"},
		{"bad soa_email", linodego.DomainCreateOptions{Domain: "a.example", Type: linodego.DomainTypeMaster, SOAEmail: "nobody"}, "soa_email"},
		{"slave without master_ips", linodego.DomainCreateOptions{Domain: "a.example", Type: linodego.DomainTypeSlave}, "master_ips"},
		{"single label", linodego.DomainCreateOptions{Domain: "localhost", Type: linodego.DomainTypeMaster, SOAEmail: "a@b.example"}, "domain"},
		{"underscore", linodego.DomainCreateOptions{Domain: "a_b.example", Type: linodego.DomainTypeMaster, SOAEmail: "a@b.example"}, "domain"},
		{"hyphen at the end of a label", linodego.DomainCreateOptions{Domain: "a-.example", Type: linodego.DomainTypeMaster, SOAEmail: "a@b.example"}, "domain"},
		{"taken", linodego.DomainCreateOptions{Domain: "EXAMPLE.com.", Type: linodego.DomainTypeMaster, SOAEmail: "a@b.example"}, "domain"},
		{"no domain", linodego.DomainCreateOptions{Type: linodego.DomainTypeMaster, SOAEmail: "a@b.example"}, "domain"},
		{"no type", linodego.DomainCreateOptions{Domain: "a.example", SOAEmail: "a@b.example"}, "type"},
		{"bad type", linodego.DomainCreateOptions{Domain: "a.example", Type: "primary", SOAEmail: "a@b.example"}, "type"},
		{"bad status", linodego.DomainCreateOptions{Domain: "a.example", Type: linodego.DomainTypeMaster, SOAEmail: "a@b.example", Status: linodego.DomainStatusHasErrors}, "status"},
		{"bad axfr ip", linodego.DomainCreateOptions{Domain: "a.example", Type: linodego.DomainTypeMaster, SOAEmail: "a@b.example", AXfrIPs: []string{"nope"}}, "axfr_ips[0]"},
	} {
		_, err := c.CreateDomain(ctx, tc.opts)
		wantField(t, tc.name, err, tc.field)
	}
	// An update that would leave a master without soa_email is refused and changes nothing.
	_, err = c.UpdateDomain(ctx, d.ID, linodego.DomainUpdateOptions{Domain: "b.example", Type: linodego.DomainTypeSlave})
	wantField(t, "update to slave without master_ips", err, "master_ips")
	if got, _ := c.GetDomain(ctx, d.ID); got == nil || got.Domain != "example.com" || got.Type != linodego.DomainTypeMaster {
		t.Errorf("refused update changed the domain: %+v", got)
	}

	one := 1
	bad := "bogus"
	for _, tc := range []struct {
		name  string
		opts  linodego.DomainRecordCreateOptions
		field string
	}{
		{"unknown type", linodego.DomainRecordCreateOptions{Type: "SPF", Name: "a", Target: "v=spf1 -all"}, "type"},
		{"no type", linodego.DomainRecordCreateOptions{Name: "a", Target: "192.0.2.1"}, "type"},
		{"A with an IPv6 target", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "a", Target: "2001:db8::1"}, "target"},
		{"A with a name as target", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "a", Target: "host.example.com"}, "target"},
		{"AAAA with an IPv4 target", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeAAAA, Name: "a", Target: "192.0.2.1"}, "target"},
		{"CNAME to an address with a space", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeCNAME, Name: "a", Target: "not a host"}, "target"},
		{"empty TXT", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeTXT, Name: "a"}, "target"},
		{"name outside the zone", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "app.example.net.", Target: "192.0.2.1"}, "name"},
		{"name of a sibling zone", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "app.notexample.com.", Target: "192.0.2.1"}, "name"},
		{"bad characters in the name", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "a b", Target: "192.0.2.1"}, "name"},
		{"priority out of range", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeMX, Name: "", Target: "mx.example.com", Priority: func() *int { p := 256; return &p }()}, "priority"},
		{"SRV without service", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeSRV, Name: "x", Target: "a.example.com", Port: &one}, "service"},
		{"CAA with a bad tag", linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeCAA, Name: "", Target: "ca.example", Tag: &bad}, "tag"},
	} {
		_, err := c.CreateDomainRecord(ctx, d.ID, tc.opts)
		wantField(t, tc.name, err, tc.field)
	}
	if _, err := c.CreateDomainRecord(ctx, d.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeCNAME, Name: "alias", Target: "a.example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateDomainRecord(ctx, d.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeTXT, Name: "alias", Target: "x"})
	wantField(t, "a record beside a CNAME", err, "name")
	_, err = c.CreateDomainRecord(ctx, d.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeCNAME, Name: "alias.example.com", Target: "b.example.com"})
	wantField(t, "a second CNAME of a name", err, "name")
	if _, err := c.CreateDomainRecord(ctx, 999, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "a", Target: "192.0.2.1"}); !linodego.ErrHasStatus(err, http.StatusNotFound) {
		t.Errorf("record in a missing domain: err = %v, want 404", err)
	}
	r, err := c.CreateDomainRecord(ctx, d.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "a", Target: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateDomainRecord(ctx, d.ID, r.ID, linodego.DomainRecordUpdateOptions{Target: "192.0.2.256"})
	wantField(t, "update to a bad address", err, "target")
	if got, _ := c.GetDomainRecord(ctx, d.ID, r.ID); got == nil || got.Target != "192.0.2.1" {
		t.Errorf("refused record update changed it: %+v", got)
	}
	if z := s.Zones(); len(z) != 1 || len(z[0].Records) != 2 {
		t.Errorf("refused creates left records behind: %+v", z)
	}
}

// TestSnapTTL: valid values stay, others go to the nearest (ties up), 0 is the default.
func TestSnapTTL(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]int{0: 0, -5: 0, 1: 30, 30: 30, 75: 120, 74: 30, 120: 120, 121: 120, 211: 300, 300: 300,
		1950: 3600, 1949: 300, 86400: 86400, 5000000: 2419200} {
		if got := snapTTL(in); got != want {
			t.Errorf("snapTTL(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestDomainPagination: linodego walks every page of records; a page past the end is
// empty and says how many there are; page_size is bounded.
func TestDomainPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, srv, c := newTestAPI(t, Options{})
	d, err := c.CreateDomain(ctx, linodego.DomainCreateOptions{Domain: "example.com", Type: linodego.DomainTypeMaster, SOAEmail: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 130 {
		if _, err := c.CreateDomainRecord(ctx, d.ID, linodego.DomainRecordCreateOptions{
			Type: linodego.RecordTypeA, Name: fmt.Sprintf("n%03d", i), Target: fmt.Sprintf("192.0.2.%d", i+1),
		}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.ListDomainRecords(ctx, d.ID, nil)
	if err != nil || len(all) != 130 || all[129].Name != "n129" {
		t.Fatalf("ListDomainRecords over two pages = %d records, %v", len(all), err)
	}
	opts := linodego.NewListOptions(2, "")
	opts.PageSize = 50
	page2, err := c.ListDomainRecords(ctx, d.ID, opts)
	if err != nil || len(page2) != 50 || page2[0].Name != "n050" || opts.Pages != 3 || opts.Results != 130 {
		t.Errorf("page 2 of 50 = %d records (first %v), pages %d, results %d, %v", len(page2), page2, opts.Pages, opts.Results, err)
	}
	desc, err := c.ListDomainRecords(ctx, d.ID, linodego.NewListOptions(0, `{"+order_by": "name", "+order": "desc"}`))
	if err != nil || len(desc) != 130 || desc[0].Name != "n129" {
		t.Errorf("ordered by name desc: first %v, %v", desc[:1], err)
	}
	get := func(path, filter string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if filter != "" {
			req.Header.Set("X-Filter", filter)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	path := fmt.Sprintf("/v4/domains/%d/records", d.ID)
	if code, m := get(path+"?page=9", ""); code != 200 || len(m["data"].([]any)) != 0 || m["results"] != 130.0 || m["pages"] != 2.0 {
		t.Errorf("page past the end = %d %v", code, m)
	}
	if code, _ := get(path+"?page_size=501", ""); code != 400 {
		t.Errorf("page_size 501 = %d, want 400", code)
	}
	if code, _ := get(path, `{"colour": "red"}`); code != 400 {
		t.Errorf("filter on an unknown field = %d, want 400", code)
	}
	if code, m := get("/v4/domains", `{"+order_by": "domain"}`); code != 200 || m["results"] != 1.0 {
		t.Errorf("domains ordered by domain = %d %v", code, m)
	}
}

// TestEveryNodeBalancerFunction: a NodeBalancer the lab makes (as LKE's CCM would)
// is listed, read, updated and deleted through linodego; the price list answers; the
// v4beta-only "locks" is absent under v4. The reflection check names what is not
// served (configs' contents, nodes, stats, firewalls, VPC configs).
func TestEveryNodeBalancerFunction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, srv, c := newTestAPI(t, Options{})
	once := newClient(srv.URL, testToken)
	once.SetRetryCount(0)
	called := map[string]bool{}
	call := func(name string, err error) {
		t.Helper()
		called[name] = true
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	nb, err := s.CreateNodeBalancer(NodeBalancerSpec{Region: "eu-west", Label: "ccm-0f3a9e", Tags: []string{"lke433101", "kubernetes"}})
	if err != nil {
		t.Fatal(err)
	}
	if nb.IPv4 != "198.18.7.1" || nb.Hostname != "nb-198-18-7-1.london.nodebalancer.linode.com" || nb.IPv6 == "" {
		t.Errorf("CreateNodeBalancer = %+v; want the first address of eu-west's pool and its hostname", nb)
	}
	nb2, err := s.CreateNodeBalancer(NodeBalancerSpec{Region: "eu-west", IPv4: "127.0.0.101"})
	if err != nil || nb2.IPv4 != "127.0.0.101" || nb2.Label != fmt.Sprintf("nodebalancer%d", nb2.ID) || nb2.IPv6 == nb.IPv6 {
		t.Errorf("second NodeBalancer = %+v, %v; want the given address, a default label, its own IPv6", nb2, err)
	}
	for _, bad := range []NodeBalancerSpec{
		{Region: "mars-1"}, {Region: "eu-west", Label: "ccm-0f3a9e"}, {Region: "eu-west", Label: "a"},
		{Region: "eu-west", IPv4: "127.0.0.101"}, {Region: "eu-west", IPv4: "2001:db8::1"},
	} {
		if _, err := s.CreateNodeBalancer(bad); err == nil {
			t.Errorf("CreateNodeBalancer(%+v) succeeded, want an error", bad)
		}
	}

	got, err := c.GetNodeBalancer(ctx, nb.ID)
	call("GetNodeBalancer", err)
	if *got.Label != "ccm-0f3a9e" || got.Region != "eu-west" || *got.IPv4 != nb.IPv4 || *got.IPv6 != nb.IPv6 ||
		*got.Hostname != nb.Hostname || got.Type != linodego.NBTypeCommon || !slices.Equal(got.Tags, []string{"kubernetes", "lke433101"}) ||
		got.Created == nil || got.Locks != nil {
		t.Errorf("GetNodeBalancer = %+v", got)
	}
	beta := newClient(srv.URL, testToken)
	beta.SetAPIVersion("v4beta")
	if b, err := beta.GetNodeBalancer(ctx, nb.ID); err != nil || b.Locks == nil {
		t.Errorf("v4beta GetNodeBalancer locks = %v, %v; want an empty list", b, err)
	}
	list, err := c.ListNodeBalancers(ctx, nil)
	call("ListNodeBalancers", err)
	if len(list) != 2 || list[0].ID != nb.ID || list[1].ID != nb2.ID {
		t.Errorf("ListNodeBalancers = %+v", list)
	}
	if list, err := c.ListNodeBalancers(ctx, linodego.NewListOptions(0, `{"tags": "lke433101"}`)); err != nil || len(list) != 1 || list[0].ID != nb.ID {
		t.Errorf("ListNodeBalancers by tag = %+v, %v", list, err)
	}
	three := 3
	label := "renamed"
	upd, err := c.UpdateNodeBalancer(ctx, nb.ID, linodego.NodeBalancerUpdateOptions{Label: &label, ClientConnThrottle: &three})
	call("UpdateNodeBalancer", err)
	if *upd.Label != "renamed" || upd.ClientConnThrottle != 3 || len(upd.Tags) != 2 {
		t.Errorf("UpdateNodeBalancer = %+v", upd)
	}
	_, err = c.UpdateNodeBalancer(ctx, nb.ID, linodego.NodeBalancerUpdateOptions{Label: ptr(fmt.Sprintf("nodebalancer%d", nb2.ID))})
	wantField(t, "rename to a taken label", err, "label")
	configs, err := c.ListNodeBalancerConfigs(ctx, nb.ID, nil)
	call("ListNodeBalancerConfigs", err)
	if len(configs) != 0 {
		t.Errorf("ListNodeBalancerConfigs = %+v, want none", configs)
	}
	types, err := c.ListNodeBalancerTypes(ctx, nil)
	call("ListNodeBalancerTypes", err)
	if len(types) != 1 || types[0].ID != "common" || types[0].Price.Monthly != 10 || types[0].Price.Hourly != 0.015 {
		t.Errorf("ListNodeBalancerTypes = %+v, want common at 10/month, 0.015/hour", types)
	}

	// Through the API as well: created in a region's pool, refused where the lab models nothing.
	created, err := c.CreateNodeBalancer(ctx, linodego.NodeBalancerCreateOptions{Region: "us-east", Label: ptr("api-made"), Tags: []string{"x"}})
	call("CreateNodeBalancer", err)
	if *created.IPv4 != "198.18.6.1" || *created.Hostname != "nb-198-18-6-1.newark.nodebalancer.linode.com" {
		t.Errorf("API CreateNodeBalancer = %+v", created)
	}
	_, err = c.CreateNodeBalancer(ctx, linodego.NodeBalancerCreateOptions{Region: "us-east", Configs: []*linodego.NodeBalancerConfigCreateOptions{{Port: 80}}})
	wantField(t, "create with configs", err, "configs")
	_, err = c.CreateNodeBalancer(ctx, linodego.NodeBalancerCreateOptions{Region: "nowhere"})
	wantField(t, "create in an unknown region", err, "region")
	_, err = c.CreateNodeBalancer(ctx, linodego.NodeBalancerCreateOptions{Region: "us-east", ClientConnThrottle: ptr(21)})
	wantField(t, "throttle out of range", err, "client_conn_throttle")

	call("DeleteNodeBalancer", c.DeleteNodeBalancer(ctx, nb.ID))
	if _, err := once.GetNodeBalancer(ctx, nb.ID); !linodego.ErrHasStatus(err, http.StatusNotFound) {
		t.Errorf("deleted NodeBalancer: err = %v, want 404", err)
	}
	if _, err := once.ListNodeBalancerConfigs(ctx, nb.ID, nil); !linodego.ErrHasStatus(err, http.StatusNotFound) {
		t.Errorf("configs of a deleted NodeBalancer: err = %v, want 404", err)
	}
	if left := s.NodeBalancers(); len(left) != 2 || left[0].ID != nb2.ID {
		t.Errorf("NodeBalancers after delete = %+v", left)
	}
	if !s.DeleteNodeBalancer(nb2.ID) || s.DeleteNodeBalancer(nb2.ID) {
		t.Errorf("DeleteNodeBalancer: want true once, then false")
	}
	if _, err := once.GetNodeBalancer(ctx, nb2.ID); !linodego.ErrHasStatus(err, http.StatusNotFound) {
		t.Errorf("NodeBalancer deleted by the lab: err = %v, want 404", err)
	}
	// The next one in eu-west takes the pool's next address, not a freed one again.
	if nb3, err := s.CreateNodeBalancer(NodeBalancerSpec{Region: "eu-west"}); err != nil || nb3.IPv4 != "198.18.7.3" {
		t.Errorf("third eu-west NodeBalancer = %+v, %v", nb3, err)
	}

	served := map[string]bool{}
	for n := range called {
		served[n] = true
	}
	ct := reflect.TypeOf(c)
	for i := range ct.NumMethod() {
		name := ct.Method(i).Name
		if !strings.HasPrefix(name, "Get") && !strings.HasPrefix(name, "List") && !strings.HasPrefix(name, "Create") &&
			!strings.HasPrefix(name, "Update") && !strings.HasPrefix(name, "Delete") {
			continue
		}
		if strings.Contains(name, "NodeBalancer") && !served[name] && !nodeBalancerNotServed[name] {
			t.Errorf("linodego's %s is neither exercised nor listed as not served", name)
		}
	}
}

// nodeBalancerNotServed are linodego's NodeBalancer methods the lab does not serve
// (it models no configs, backends, stats or firewalls); the Instance one lists a
// Linode's NodeBalancers, which an LKE node never has here.
var nodeBalancerNotServed = map[string]bool{
	"GetNodeBalancerConfig": true, "CreateNodeBalancerConfig": true, "UpdateNodeBalancerConfig": true,
	"DeleteNodeBalancerConfig": true, "ListNodeBalancerNodes": true, "GetNodeBalancerNode": true,
	"CreateNodeBalancerNode": true, "UpdateNodeBalancerNode": true, "DeleteNodeBalancerNode": true,
	"ListNodeBalancerVPCConfigs": true, "GetNodeBalancerVPCConfig": true, "ListNodeBalancerFirewalls": true,
	"GetNodeBalancerStats": true, "ListInstanceNodeBalancers": true, "UpdateNodeBalancerFirewalls": true,
}

func ptr[T any](v T) *T { return &v }

// TestBetaOnlyClusterFields: "tier", "apl_enabled" and "control_plane.audit_logs_enabled"
// are in the answers under /v4beta only, as linodego v1.69.1 documents them; a create
// asking for APL is refused (the lab has none).
func TestBetaOnlyClusterFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, srv, _ := newTestAPI(t, Options{})
	beta := newClient(srv.URL, testToken)
	beta.SetAPIVersion("v4beta")
	opts := createOpts("audited", "eu-west", 1)
	opts.ControlPlane = &linodego.LKEClusterControlPlaneOptions{AuditLogsEnabled: ptr(true)}
	cl, err := beta.CreateLKECluster(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !cl.ControlPlane.AuditLogsEnabled || cl.Tier != "standard" {
		t.Errorf("v4beta create = %+v, want audit logs on and tier standard", cl)
	}
	raw := func(version, path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/"+version+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	path := fmt.Sprintf("/lke/clusters/%d", cl.ID)
	v4, v4beta := raw("v4", path), raw("v4beta", path)
	for _, k := range []string{"tier", "apl_enabled"} {
		if _, ok := v4[k]; ok {
			t.Errorf("v4 cluster has %q", k)
		}
		if _, ok := v4beta[k]; !ok {
			t.Errorf("v4beta cluster lacks %q", k)
		}
	}
	if _, ok := v4["control_plane"].(map[string]any)["audit_logs_enabled"]; ok {
		t.Errorf("v4 control_plane has audit_logs_enabled: %v", v4["control_plane"])
	}
	if v := v4beta["control_plane"].(map[string]any)["audit_logs_enabled"]; v != true {
		t.Errorf("v4beta control_plane.audit_logs_enabled = %v, want true", v)
	}
	// Off is still said under v4beta.
	if _, err := beta.UpdateLKECluster(ctx, cl.ID, linodego.LKEClusterUpdateOptions{
		ControlPlane: &linodego.LKEClusterControlPlaneOptions{AuditLogsEnabled: ptr(false)},
	}); err != nil {
		t.Fatal(err)
	}
	if v := raw("v4beta", path)["control_plane"].(map[string]any)["audit_logs_enabled"]; v != false {
		t.Errorf("v4beta audit_logs_enabled after turning it off = %v, want false", v)
	}
	if list := raw("v4", "/lke/clusters")["data"].([]any); len(list) != 1 || list[0].(map[string]any)["apl_enabled"] != nil {
		t.Errorf("v4 list = %v, want one cluster without apl_enabled", list)
	}
	apl := createOpts("apl", "eu-west", 1)
	apl.APLEnabled = true
	_, err = beta.CreateLKECluster(ctx, apl)
	wantField(t, "create with APL", err, "apl_enabled")
}

// TestDNSAndNodeBalancerAuth: the NodeBalancer price list is public like the rest of
// the catalogue; domains and NodeBalancers need the token.
func TestDNSAndNodeBalancerAuth(t *testing.T) {
	t.Parallel()
	_, srv, _ := newTestAPI(t, Options{})
	for path, want := range map[string]int{
		"/v4/nodebalancers/types": http.StatusOK, "/v4/nodebalancers": http.StatusUnauthorized,
		"/v4/domains": http.StatusUnauthorized, "/v4beta/domains": http.StatusUnauthorized,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("anonymous GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}
