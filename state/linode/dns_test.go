package linode

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/lab/linodeapi"
	"github.com/reconcile-dev/reconcile/state/world"
)

const testOwner = "heritage=reconcile,fleet=demo"

func targets(rs []world.DNSRecord) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Target)
	}
	return out
}

// The entry's records through the real API shape: the zone made once, the registry record
// with the addresses, nothing written by a second identical call, a changed set made
// without a moment of no answer, and a removal that leaves others' records alone.
func TestDNSRecordsConvergeAndLeaveOthersAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, newStore(t))
	wanted := func(n string) bool { return n == "app" || n == "www" }
	owned := func(txt string) bool { return txt == testOwner }

	zone, _, err := d.Zone(ctx, "example.com", wanted, owned)
	if err != nil || zone != nil {
		t.Fatalf("before: zone %+v, err %v", zone, err)
	}
	for range 2 {
		if err := d.CreateZone(ctx, "example.com", "hostmaster@example.com", []string{"reconcile.fleet:demo"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.writes()); n != 1 {
		t.Errorf("two CreateZone calls wrote %d times, want 1", n)
	}
	// Someone else's records: www's A, an MX at app.
	plain := l.plainClient(t)
	zone, _, err = d.Zone(ctx, "example.com", wanted, owned)
	if err != nil || zone == nil {
		t.Fatalf("zone %+v, err %v", zone, err)
	}
	if _, err := plain.CreateDomainRecord(ctx, zone.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeA, Name: "www", Target: "192.0.2.9", TTLSec: 300}); err != nil {
		t.Fatal(err)
	}
	prio := 10
	if _, err := plain.CreateDomainRecord(ctx, zone.ID, linodego.DomainRecordCreateOptions{Type: linodego.RecordTypeMX, Name: "app", Target: "mail.example.com", Priority: &prio, TTLSec: 300}); err != nil {
		t.Fatal(err)
	}

	if err := d.SetRecords(ctx, "example.com", "app", 30, []string{"192.0.2.1", "2001:db8::1"}, testOwner, false); err != nil {
		t.Fatal(err)
	}
	_, names, err := d.Zone(ctx, "example.com", wanted, owned)
	if err != nil {
		t.Fatal(err)
	}
	app := names["app"]
	if app == nil || !slices.Equal(targets(app.A), []string{"192.0.2.1"}) || !slices.Equal(targets(app.AAAA), []string{"2001:db8::1"}) ||
		!slices.Equal(targets(app.TXT), []string{testOwner}) || !slices.Equal(app.Other, []string{"MX"}) || app.A[0].TTL != 30 {
		t.Fatalf("app = %+v", app)
	}
	before := len(l.writes())
	if err := d.SetRecords(ctx, "example.com", "app", 30, []string{"192.0.2.1", "2001:db8::1"}, testOwner, false); err != nil {
		t.Fatal(err)
	}
	if n := len(l.writes()) - before; n != 0 {
		t.Errorf("an identical SetRecords wrote %d times", n)
	}

	// A new set: the new address is created before the old one goes.
	before = len(l.writes())
	if err := d.SetRecords(ctx, "example.com", "app", 30, []string{"192.0.2.2"}, testOwner, false); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range l.writes()[before:] {
		order = append(order, r.Method)
	}
	if !slices.Equal(order, []string{"POST", "DELETE", "DELETE"}) {
		t.Errorf("writes %v: want the new record created before the two old ones are deleted", order)
	}

	// www is someone else's: refused, untouched.
	before = len(l.writes())
	var notOwned *ErrNotOwned
	if err := d.SetRecords(ctx, "example.com", "www", 30, []string{"192.0.2.3"}, testOwner, false); !errors.As(err, &notOwned) {
		t.Errorf("SetRecords on someone else's name: %v, want ErrNotOwned", err)
	}
	if err := d.SetRecords(ctx, "example.com", "www", 0, nil, testOwner, true); !errors.As(err, &notOwned) {
		t.Errorf("removing someone else's name: %v, want ErrNotOwned", err)
	}
	if n := len(l.writes()) - before; n != 0 {
		t.Errorf("someone else's name: %d writes", n)
	}

	// Removal: our address and registry records go, the MX stays.
	if err := d.SetRecords(ctx, "example.com", "app", 0, nil, testOwner, true); err != nil {
		t.Fatal(err)
	}
	_, names, err = d.Zone(ctx, "example.com", wanted, owned)
	if err != nil {
		t.Fatal(err)
	}
	if app := names["app"]; app == nil || len(app.A)+len(app.AAAA)+len(app.TXT) != 0 || !slices.Equal(app.Other, []string{"MX"}) {
		t.Errorf("after removal app = %+v, want the MX alone", app)
	}
	if www := names["www"]; www == nil || !slices.Equal(targets(www.A), []string{"192.0.2.9"}) {
		t.Errorf("www = %+v", www)
	}
}

// A name the fleet does not want is still read when it holds the fleet's registry record
// (so the planner can remove it), and not otherwise.
func TestZoneReadsOwnedNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLab(t, linodeapi.Options{})
	d := newDriver(t, l, newStore(t))
	if err := d.CreateZone(ctx, "example.com", "hostmaster@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"old", "app"} {
		if err := d.SetRecords(ctx, "example.com", n, 30, []string{"192.0.2.1"}, testOwner, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetRecords(ctx, "example.com", "theirs", 30, []string{"192.0.2.5"}, "heritage=reconcile,fleet=other", false); err != nil {
		t.Fatal(err)
	}
	_, names, err := d.Zone(ctx, "example.com", func(n string) bool { return n == "app" }, func(txt string) bool { return txt == testOwner })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for n := range names {
		got = append(got, n)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"app", "old"}) {
		t.Errorf("names read: %v, want app (wanted) and old (owned)", got)
	}
}
