package world

import "time"

// Entry is the fleet's front door as observed: the DNS zone and the names in it the fleet
// publishes or owns, each member's ingress address, and the members' health as the daemon's
// checks last decided it.
type Entry struct {
	// Zone is the DNS Manager domain; nil when it does not exist.
	Zone *DNSZone `json:"zone,omitempty"`
	// Unobserved says why the zone and its records could not be read this pass ("" when they
	// were): the planner holds the record steps then, and never takes them for absent.
	Unobserved string `json:"unobserved,omitempty"`
	// Names are the records of the names the fleet wants or owns, by name relative to the zone
	// ("app", "eu.app"); a name with no records is absent.
	Names map[string]*DNSName `json:"names,omitempty"`
	// Ingress are the addresses of each member's entry Service (status.loadBalancer), sorted;
	// a member that has the Service without an address yet maps to an empty list, one without
	// the Service is absent. Only members observed this pass are here.
	Ingress map[string][]string `json:"ingress,omitempty"`
	// Health is each member's health as the daemon's checks last decided it, from the state
	// store; a member absent from it has not been judged (and counts as healthy).
	Health map[string]*MemberHealth `json:"health,omitempty"`
}

// DNSZone is a Linode DNS Manager domain.
type DNSZone struct {
	ID     int      `json:"id"`
	Domain string   `json:"domain"`
	Tags   []string `json:"tags,omitempty"`
}

// DNSName is the records at one name of the zone.
type DNSName struct {
	// A and AAAA are the address records, sorted by target.
	A    []DNSRecord `json:"a,omitempty"`
	AAAA []DNSRecord `json:"aaaa,omitempty"`
	// TXT are the name's TXT records; the fleet owns the name when one of them is its
	// registry record (heritage=reconcile,fleet=<name>).
	TXT []DNSRecord `json:"txt,omitempty"`
	// Other are the types of other records at the name (CNAME, MX, ...), sorted.
	Other []string `json:"other,omitempty"`
}

// DNSRecord is one record.
type DNSRecord struct {
	ID     int    `json:"id"`
	Target string `json:"target"`
	TTL    int    `json:"ttl"`
}

// MemberHealth is a member's health as the daemon's checks decided it.
type MemberHealth struct {
	Healthy bool `json:"healthy"`
	// Since is when it became what it is; Reason is the last failed check's error (unhealthy).
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
	// Addresses are what was checked.
	Addresses []string `json:"addresses,omitempty"`
}
