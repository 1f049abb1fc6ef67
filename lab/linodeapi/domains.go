package linodeapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DNS Manager: domains (zones) and their records, as api.linode.com serves them under
// /domains, and a snapshot of the zones (Zones) for a DNS server to answer from.

type domain struct {
	id          int
	name        string // lower case, no trailing dot
	typ         string // master | slave
	status      string
	group       string
	description string
	soaEmail    string
	retry       int
	expire      int
	refresh     int
	ttl         int
	masterIPs   []string
	axfrIPs     []string
	tags        []string
	serial      uint32 // bumped on every change of the zone or its records
	records     []*record
}

type record struct {
	id       int
	typ      string
	name     string // relative to the zone, "" for the apex
	target   string
	priority int
	weight   int
	port     int
	service  *string
	protocol *string
	ttl      int
	tag      *string
	created  time.Time
	updated  time.Time
}

// Wire shapes.

type domainJSON struct {
	ID          int      `json:"id"`
	Domain      string   `json:"domain"`
	Type        string   `json:"type"`
	Group       string   `json:"group"`
	Status      string   `json:"status"`
	Description string   `json:"description"`
	SOAEmail    string   `json:"soa_email"`
	RetrySec    int      `json:"retry_sec"`
	MasterIPs   []string `json:"master_ips"`
	AXfrIPs     []string `json:"axfr_ips"`
	Tags        []string `json:"tags"`
	ExpireSec   int      `json:"expire_sec"`
	RefreshSec  int      `json:"refresh_sec"`
	TTLSec      int      `json:"ttl_sec"`
}

type recordJSON struct {
	ID       int     `json:"id"`
	Type     string  `json:"type"`
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Priority int     `json:"priority"`
	Weight   int     `json:"weight"`
	Port     int     `json:"port"`
	Service  *string `json:"service"`
	Protocol *string `json:"protocol"`
	TTLSec   int     `json:"ttl_sec"`
	Tag      *string `json:"tag"`
	Created  string  `json:"created"`
	Updated  string  `json:"updated"`
}

// Request bodies: every field linodego v1.69.1 sends, create and update alike (an
// update sends only what changes; master_ips, axfr_ips and tags are always sent, null
// when unset, and null leaves them unchanged).

type domainOptions struct {
	Domain      *string   `json:"domain"`
	Type        *string   `json:"type"`
	Group       *string   `json:"group"`
	Status      *string   `json:"status"`
	Description *string   `json:"description"`
	SOAEmail    *string   `json:"soa_email"`
	RetrySec    *int      `json:"retry_sec"`
	MasterIPs   *[]string `json:"master_ips"`
	AXfrIPs     *[]string `json:"axfr_ips"`
	Tags        *[]string `json:"tags"`
	ExpireSec   *int      `json:"expire_sec"`
	RefreshSec  *int      `json:"refresh_sec"`
	TTLSec      *int      `json:"ttl_sec"`
}

type recordOptions struct {
	Type     *string `json:"type"`
	Name     *string `json:"name"`
	Target   *string `json:"target"`
	Priority *int    `json:"priority"`
	Weight   *int    `json:"weight"`
	Port     *int    `json:"port"`
	Service  *string `json:"service"`
	Protocol *string `json:"protocol"`
	TTLSec   *int    `json:"ttl_sec"`
	Tag      *string `json:"tag"`
}

var domainFields = map[string]bool{"id": true, "domain": true, "type": true, "status": true, "group": true, "tags": true, "soa_email": true}
var recordFields = map[string]bool{"id": true, "name": true, "type": true, "target": true, "ttl_sec": true, "tag": true, "priority": true}

// validTTLs are the TTLs the API keeps; 0 means the default (the zone's, else a day).
// Any other value is rounded to the nearest of them (linodego's field comments), ties
// upward. 30 and 120 joined the list later (linode/linode-api-docs#927); linodego's
// comments predate that.
var validTTLs = []int{30, 120, 300, 3600, 7200, 14400, 28800, 57600, 86400, 172800, 345600, 604800, 1209600, 2419200}

// snapTTL rounds a TTL to the nearest valid one; 0 (and below) stays the default.
func snapTTL(v int) int {
	if v <= 0 {
		return 0
	}
	best := validTTLs[0]
	for _, t := range validTTLs {
		if abs(t-v) <= abs(best-v) {
			best = t
		}
	}
	return best
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// recordTypes are the record types the API accepts.
var recordTypes = []string{"A", "AAAA", "NS", "MX", "CNAME", "TXT", "SRV", "PTR", "CAA"}

var (
	dnsLabelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	recordLabelRE = regexp.MustCompile(`^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$`)
	emailRE       = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// validDomainName: at least two labels of letters, digits and inner hyphens, 253
// characters at most.
func validDomainName(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// validHostname is a record target naming a host (CNAME, MX, NS, PTR, SRV): labels
// as a domain's, a trailing dot allowed, one label allowed (relative to the zone).
func validHostname(h string) bool {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if !recordLabelRE.MatchString(l) || l == "*" {
			return false
		}
	}
	return true
}

// routeDomains serves domains/... ; path[0] == "domains".
func (s *Server) routeDomains(w http.ResponseWriter, r *http.Request, path []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(path) == 1 {
		switch r.Method {
		case http.MethodGet:
			var items []any
			for _, d := range s.sortedDomainsLocked() {
				items = append(items, d.json())
			}
			writeList(w, r, items, domainFields)
		case http.MethodPost:
			s.createDomainLocked(w, r)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
		return
	}
	if len(path) == 2 && path[1] == "import" {
		// Importing needs a zone transfer from the remote name server, which the lab
		// does not do; say so rather than answer 404 for a real endpoint.
		writeError(w, http.StatusBadRequest, apiErr("Importing a domain is not available in the lab", "remote_nameserver"))
		return
	}
	id, err := strconv.Atoi(path[1])
	d := s.domains[id]
	if err != nil || d == nil {
		writeError(w, http.StatusNotFound, notFound())
		return
	}
	rest := path[2:]
	switch {
	case len(rest) == 0:
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, d.json())
		case http.MethodPut:
			s.updateDomainLocked(w, r, d)
		case http.MethodDelete:
			delete(s.domains, d.id)
			writeJSON(w, http.StatusOK, struct{}{})
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPut, http.MethodDelete)
		}
	case rest[0] == "clone" && len(rest) == 1:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		s.cloneDomainLocked(w, r, d)
	case rest[0] == "zone-file" && len(rest) == 1:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, map[string][]string{"zone_file": d.zoneFile()})
	case rest[0] == "records" && len(rest) == 1:
		switch r.Method {
		case http.MethodGet:
			var items []any
			for _, rec := range d.records {
				items = append(items, rec.json())
			}
			writeList(w, r, items, recordFields)
		case http.MethodPost:
			s.createRecordLocked(w, r, d)
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
	case rest[0] == "records" && len(rest) == 2:
		rid, err := strconv.Atoi(rest[1])
		i := slices.IndexFunc(d.records, func(x *record) bool { return x.id == rid })
		if err != nil || i < 0 {
			writeError(w, http.StatusNotFound, notFound())
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, d.records[i].json())
		case http.MethodPut:
			s.updateRecordLocked(w, r, d, d.records[i])
		case http.MethodDelete:
			d.records = slices.Delete(d.records, i, i+1)
			d.serial++
			writeJSON(w, http.StatusOK, struct{}{})
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPut, http.MethodDelete)
		}
	default:
		writeError(w, http.StatusNotFound, notFound())
	}
}

func (s *Server) sortedDomainsLocked() []*domain {
	out := make([]*domain, 0, len(s.domains))
	for _, d := range s.domains {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *domain) int { return a.id - b.id })
	return out
}

func (d *domain) json() domainJSON {
	return domainJSON{
		ID: d.id, Domain: d.name, Type: d.typ, Group: d.group, Status: d.status, Description: d.description,
		SOAEmail: d.soaEmail, RetrySec: d.retry, MasterIPs: nonNil(d.masterIPs), AXfrIPs: nonNil(d.axfrIPs),
		Tags: nonNil(d.tags), ExpireSec: d.expire, RefreshSec: d.refresh, TTLSec: d.ttl,
	}
}

func (rec *record) json() recordJSON {
	return recordJSON{
		ID: rec.id, Type: rec.typ, Name: rec.name, Target: rec.target, Priority: rec.priority,
		Weight: rec.weight, Port: rec.port, Service: rec.service, Protocol: rec.protocol, TTLSec: rec.ttl,
		Tag: rec.tag, Created: stamp(rec.created), Updated: stamp(rec.updated),
	}
}

func (s *Server) createDomainLocked(w http.ResponseWriter, r *http.Request) {
	var o domainOptions
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	var errs []errorReason
	if o.Domain == nil || *o.Domain == "" {
		errs = append(errs, errorReason{"domain is required", "domain"})
	}
	if o.Type == nil || *o.Type == "" {
		errs = append(errs, errorReason{"type is required", "type"})
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, &apiError{Errors: errs})
		return
	}
	s.nextDomain++
	// Serials read like the real ones (2021000066): the year, then a counter.
	d := &domain{id: s.nextDomain, status: "active", serial: uint32(s.now().Year())*1000000 + 1}
	if e := s.applyDomainLocked(d, o); e != nil {
		s.nextDomain--
		writeError(w, http.StatusBadRequest, e)
		return
	}
	s.domains[d.id] = d
	writeJSON(w, http.StatusOK, d.json())
}

// cloneDomainLocked copies a domain and its records under a new name.
func (s *Server) cloneDomainLocked(w http.ResponseWriter, r *http.Request, src *domain) {
	var o struct {
		Domain *string `json:"domain"`
	}
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if o.Domain == nil || *o.Domain == "" {
		writeError(w, http.StatusBadRequest, apiErr("domain is required", "domain"))
		return
	}
	d := &domain{}
	*d = *src
	d.id, d.serial, d.records = s.nextDomain+1, uint32(s.now().Year())*1000000+1, nil
	d.masterIPs, d.axfrIPs, d.tags = slices.Clone(src.masterIPs), slices.Clone(src.axfrIPs), slices.Clone(src.tags)
	if e := s.applyDomainLocked(d, domainOptions{Domain: o.Domain}); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	s.nextDomain++
	now := s.now()
	for _, rec := range src.records {
		c := *rec
		s.nextRecord++
		c.id, c.created, c.updated = s.nextRecord, now, now
		d.records = append(d.records, &c)
	}
	s.domains[d.id] = d
	writeJSON(w, http.StatusOK, d.json())
}

func (s *Server) updateDomainLocked(w http.ResponseWriter, r *http.Request, d *domain) {
	var o domainOptions
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if e := s.applyDomainLocked(d, o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	d.serial++
	writeJSON(w, http.StatusOK, d.json())
}

// applyDomainLocked validates o against d (changed in place only when all is valid)
// and applies it; every error is reported at once, each naming its field.
func (s *Server) applyDomainLocked(d *domain, o domainOptions) *apiError {
	n := *d
	var errs []errorReason
	add := func(reason, field string) { errs = append(errs, errorReason{reason, field}) }
	if o.Domain != nil {
		name := strings.TrimSuffix(strings.ToLower(*o.Domain), ".")
		switch {
		case !validDomainName(name):
			add("Domain is not valid", "domain")
		case slices.ContainsFunc(s.sortedDomainsLocked(), func(x *domain) bool { return x.name == name && x.id != d.id }):
			add("Domain "+name+" already exists", "domain")
		}
		n.name = name
	}
	if o.Type != nil {
		if *o.Type != "master" && *o.Type != "slave" {
			add("type must be master or slave", "type")
		}
		n.typ = *o.Type
	}
	if o.Status != nil {
		switch *o.Status {
		case "active", "disabled":
		default: // edit_mode and has_errors are set by the system, not by clients
			add("status must be active or disabled", "status")
		}
		n.status = *o.Status
	}
	if o.Group != nil {
		if len(*o.Group) > 50 {
			add("Length must be 0-50 characters", "group")
		}
		n.group = *o.Group
	}
	if o.Description != nil {
		if len(*o.Description) > 253 {
			add("Length must be 0-253 characters", "description")
		}
		n.description = *o.Description
	}
	if o.SOAEmail != nil {
		if *o.SOAEmail != "" && !emailRE.MatchString(*o.SOAEmail) {
			add("soa_email must be a valid email address", "soa_email")
		}
		n.soaEmail = *o.SOAEmail
	}
	if o.MasterIPs != nil {
		for i, ip := range *o.MasterIPs {
			if _, err := netip.ParseAddr(ip); err != nil {
				add("Must be a valid IP address", fmt.Sprintf("master_ips[%d]", i))
			}
		}
		n.masterIPs = slices.Clone(*o.MasterIPs)
	}
	if o.AXfrIPs != nil {
		for i, ip := range *o.AXfrIPs {
			if _, err := netip.ParseAddr(ip); err != nil {
				add("Must be a valid IP address", fmt.Sprintf("axfr_ips[%d]", i))
			}
		}
		n.axfrIPs = slices.Clone(*o.AXfrIPs)
	}
	if o.Tags != nil {
		n.tags = normTags(*o.Tags)
	}
	for _, f := range []struct {
		v   *int
		dst *int
	}{{o.RetrySec, &n.retry}, {o.ExpireSec, &n.expire}, {o.RefreshSec, &n.refresh}, {o.TTLSec, &n.ttl}} {
		if f.v != nil {
			*f.dst = snapTTL(*f.v)
		}
	}
	if n.typ == "master" && n.soaEmail == "" {
		add("soa_email required when type=master", "soa_email")
	}
	if n.typ == "slave" && len(n.masterIPs) == 0 {
		add("master_ips required when type=slave", "master_ips")
	}
	if len(errs) > 0 {
		return &apiError{Errors: errs}
	}
	*d = n
	return nil
}

func (s *Server) createRecordLocked(w http.ResponseWriter, r *http.Request, d *domain) {
	var o recordOptions
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if o.Type == nil || *o.Type == "" {
		writeError(w, http.StatusBadRequest, apiErr("type is required", "type"))
		return
	}
	now := s.now()
	rec := &record{typ: *o.Type, created: now, updated: now}
	if e := applyRecord(d, rec, o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	s.nextRecord++
	rec.id = s.nextRecord
	d.records = append(d.records, rec)
	d.serial++
	writeJSON(w, http.StatusOK, rec.json())
}

func (s *Server) updateRecordLocked(w http.ResponseWriter, r *http.Request, d *domain, rec *record) {
	var o recordOptions
	if e := decodeStrict(r, &o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	if e := applyRecord(d, rec, o); e != nil {
		writeError(w, http.StatusBadRequest, e)
		return
	}
	rec.updated = s.now()
	d.serial++
	writeJSON(w, http.StatusOK, rec.json())
}

// applyRecord validates o against rec (changed only when all is valid) and applies it.
func applyRecord(d *domain, rec *record, o recordOptions) *apiError {
	n := *rec
	var errs []errorReason
	add := func(reason, field string) { errs = append(errs, errorReason{reason, field}) }
	if o.Type != nil {
		n.typ = *o.Type
	}
	if !slices.Contains(recordTypes, n.typ) {
		add("type must be one of "+strings.Join(recordTypes, ", "), "type")
	}
	if o.Name != nil {
		name, ok := relativeName(*o.Name, d.name)
		if !ok {
			add(fmt.Sprintf("Name %q is not within the zone %s", *o.Name, d.name), "name")
		}
		n.name = name
	}
	if o.Target != nil {
		n.target = *o.Target
	}
	if o.Priority != nil {
		if *o.Priority < 0 || *o.Priority > 255 {
			add("Must be between 0 and 255", "priority")
		}
		n.priority = *o.Priority
	}
	if o.Weight != nil {
		if *o.Weight < 0 || *o.Weight > 65535 {
			add("Must be between 0 and 65535", "weight")
		}
		n.weight = *o.Weight
	}
	if o.Port != nil {
		if *o.Port < 0 || *o.Port > 65535 {
			add("Must be between 0 and 65535", "port")
		}
		n.port = *o.Port
	}
	// The API prepends the underscore to service and protocol when it is missing.
	if o.Service != nil {
		n.service = underscored(*o.Service)
	}
	if o.Protocol != nil {
		n.protocol = underscored(*o.Protocol)
	}
	if o.Tag != nil {
		n.tag = o.Tag
	}
	if o.TTLSec != nil {
		n.ttl = snapTTL(*o.TTLSec)
	}
	if e := validateRecordData(n); e != nil {
		errs = append(errs, *e)
	}
	if e := cnameConflict(d, n); e != nil {
		errs = append(errs, *e)
	}
	if len(errs) > 0 {
		return &apiError{Errors: errs}
	}
	*rec = n
	return nil
}

func underscored(v string) *string {
	if v != "" && !strings.HasPrefix(v, "_") {
		v = "_" + v
	}
	return &v
}

// relativeName turns a record name into the zone-relative form the API stores: a name
// ending in the zone ("www.example.com", with or without the final dot) loses it, the
// zone itself becomes "" (the apex). Any other name ending in a dot is absolute and
// outside the zone; a name without one is relative to the zone already.
func relativeName(name, zone string) (string, bool) {
	n := strings.ToLower(name)
	absolute := strings.HasSuffix(n, ".")
	n = strings.TrimSuffix(n, ".")
	switch {
	case n == zone:
		return "", true
	case strings.HasSuffix(n, "."+zone):
		n = strings.TrimSuffix(n, "."+zone)
	case absolute:
		return n, false
	}
	if n == "" {
		return "", true
	}
	if len(n) > 100 {
		return n, false
	}
	for _, l := range strings.Split(n, ".") {
		if !recordLabelRE.MatchString(l) {
			return n, false
		}
	}
	return n, true
}

// cnameConflict refuses a CNAME beside any other record of its name, and any record
// beside a CNAME (RFC 1034 3.6.2), as a DNS server could not serve both.
func cnameConflict(d *domain, n record) *errorReason {
	for _, o := range d.records {
		if o.id == n.id || o.name != n.name {
			continue
		}
		if n.typ == "CNAME" || o.typ == "CNAME" {
			return &errorReason{fmt.Sprintf("Record conflict - a CNAME cannot share the name %q with another record", n.name), "name"}
		}
	}
	return nil
}

// validateRecordData checks the target (and type-specific fields) of a record.
func validateRecordData(rec record) *errorReason {
	bad := func(reason string) *errorReason { return &errorReason{reason, "target"} }
	switch rec.typ {
	case "A":
		if a, err := netip.ParseAddr(rec.target); err != nil || !a.Is4() {
			return bad("Must be a valid IPv4 address")
		}
	case "AAAA":
		if a, err := netip.ParseAddr(rec.target); err != nil || !a.Is6() || a.Is4In6() {
			return bad("Must be a valid IPv6 address")
		}
	case "CNAME", "NS", "MX", "PTR":
		if !validHostname(rec.target) {
			return bad("Must be a valid hostname")
		}
	case "SRV":
		if !validHostname(rec.target) {
			return bad("Must be a valid hostname")
		}
		if rec.service == nil || *rec.service == "" {
			return &errorReason{"service is required for SRV records", "service"}
		}
		if rec.protocol == nil || *rec.protocol == "" {
			return &errorReason{"protocol is required for SRV records", "protocol"}
		}
	case "TXT":
		if rec.target == "" || len(rec.target) > 65535 {
			return bad("Length must be 1-65535 characters")
		}
	case "CAA":
		if rec.tag == nil || !slices.Contains([]string{"issue", "issuewild", "iodef"}, *rec.tag) {
			return &errorReason{"tag must be one of issue, issuewild, iodef", "tag"}
		}
		if rec.target == "" {
			return bad("target is required")
		}
	}
	return nil
}

// Zone is a domain's contents at one moment, for a DNS server to answer from.
type Zone struct {
	ID       int
	Domain   string // no trailing dot
	Type     string // master | slave
	Status   string // active | disabled
	SOAEmail string
	TTL      int // 0: the default
	Refresh  int
	Retry    int
	Expire   int
	Serial   uint32 // grows with every change of the zone or its records
	Records  []ZoneRecord
}

// ZoneRecord is one record of a Zone. Name is relative to the zone, "" for the apex;
// an SRV record's owner is Service.Protocol.Name (e.g. _sip._tcp.voice), as in the zone
// file.
type ZoneRecord struct {
	ID       int
	Type     string
	Name     string
	Target   string
	TTL      int // 0: the zone's
	Priority int
	Weight   int
	Port     int
	Service  string
	Protocol string
	Tag      string
}

// Zones returns a snapshot of every domain and its records, in id order; later
// changes through the API do not show in it.
func (s *Server) Zones() []Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Zone
	for _, d := range s.sortedDomainsLocked() {
		z := Zone{
			ID: d.id, Domain: d.name, Type: d.typ, Status: d.status, SOAEmail: d.soaEmail, TTL: d.ttl,
			Refresh: d.refresh, Retry: d.retry, Expire: d.expire, Serial: d.serial,
		}
		for _, r := range d.records {
			z.Records = append(z.Records, ZoneRecord{
				ID: r.id, Type: r.typ, Name: r.name, Target: r.target, TTL: r.ttl, Priority: r.priority,
				Weight: r.weight, Port: r.port, Service: deref(r.service), Protocol: deref(r.protocol), Tag: deref(r.tag),
			})
		}
		out = append(out, z)
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Defaults of the SOA record when a domain leaves a field at 0, as the zone files the
// API renders show them.
const (
	defaultZoneTTL     = 86400
	defaultZoneRefresh = 14400
	defaultZoneRetry   = 14400
	defaultZoneExpire  = 1209600
)

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// zoneFile renders the zone as GET domains/{id}/zone-file answers it: a comment, $TTL,
// the SOA, Linode's five name servers, then the records.
func (d *domain) zoneFile() []string {
	ttl := orDefault(d.ttl, defaultZoneTTL)
	lines := []string{
		fmt.Sprintf("; %s [%d]", d.name, d.id),
		fmt.Sprintf("$TTL %d", ttl),
		fmt.Sprintf("@  IN  SOA  ns1.linode.com. %s. %d %d %d %d %d", strings.Replace(d.soaEmail, "@", ".", 1), d.serial,
			orDefault(d.refresh, defaultZoneRefresh), orDefault(d.retry, defaultZoneRetry), orDefault(d.expire, defaultZoneExpire), ttl),
	}
	for i := 1; i <= 5; i++ {
		lines = append(lines, fmt.Sprintf("@    NS  ns%d.linode.com.", i))
	}
	for _, r := range d.records {
		name := r.name
		if name == "" {
			name = "@"
		}
		data := r.target
		switch r.typ {
		case "CNAME", "NS", "PTR":
			data = fqdn(r.target, d.name)
		case "MX":
			data = fmt.Sprintf("%d %s", r.priority, fqdn(r.target, d.name))
		case "SRV":
			name = strings.TrimSuffix(fmt.Sprintf("%s.%s.%s", deref(r.service), deref(r.protocol), r.name), ".")
			data = fmt.Sprintf("%d %d %d %s", r.priority, r.weight, r.port, fqdn(r.target, d.name))
		case "TXT":
			data = strconv.Quote(r.target)
		case "CAA":
			data = fmt.Sprintf("0 %s %s", deref(r.tag), strconv.Quote(r.target))
		}
		ttlField := ""
		if r.ttl != 0 {
			ttlField = strconv.Itoa(r.ttl)
		}
		lines = append(lines, fmt.Sprintf("%s  %s  %s  %s", name, ttlField, r.typ, data))
	}
	return lines
}

// fqdn makes a record's host target absolute: a name with a dot is taken as complete,
// one without is in the zone.
func fqdn(target, zone string) string {
	t := strings.TrimSuffix(target, ".")
	if !strings.Contains(t, ".") {
		t += "." + zone
	}
	return t + "."
}
