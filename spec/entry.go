package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Health check protocols.
const (
	CheckHTTP  = "HTTP"
	CheckHTTPS = "HTTPS"
	CheckTCP   = "TCP"
)

// Defaults of the entry layer.
const (
	// DefaultEntryService is Istio's ingress gateway, installed by mesh.ingressGateway.
	DefaultEntryService = "istio-system/istio-ingressgateway"
	DefaultEntryTTL     = 30
	// DefaultHealthPort and DefaultHealthPath are the Istio gateway's status port and its
	// readiness path, which Istio documents for external load balancers' health checks.
	DefaultHealthPort           = 15021
	DefaultHealthPath           = "/healthz/ready"
	DefaultHealthInterval       = 10 * time.Second
	DefaultHealthTimeout        = 3 * time.Second
	DefaultHealthUnhealthyAfter = 3
	DefaultHealthHealthyAfter   = 2
)

// LinodeTTLs are the TTLs Linode's DNS Manager keeps as they are; any other value it rounds
// to the nearest of these, which would show as drift on every pass.
var LinodeTTLs = []int{30, 120, 300, 3600, 7200, 14400, 28800, 57600, 86400, 172800, 345600, 604800, 1209600, 2419200}

// Entry is the fleet's front door: one name in a Linode DNS Manager zone answering with the
// ingress address of every healthy member, and optionally a name per member.
type Entry struct {
	// Domain is the DNS Manager zone (created when absent; an existing one is used as it is).
	Domain string `json:"domain"`
	// Hostname is the name in the zone that answers with every healthy member ("app" gives
	// app.<domain>).
	Hostname string `json:"hostname"`
	// PerMemberNames also publishes <member>.<hostname>.<domain> with that member's address.
	PerMemberNames bool `json:"perMemberNames,omitempty"`
	// TTL of the records in seconds (default 30; one of the TTLs Linode keeps, LinodeTTLs).
	TTL int `json:"ttl,omitempty"`
	// Service is "namespace/name" of the LoadBalancer Service in each member whose address is
	// published (default istio-system/istio-ingressgateway).
	Service string `json:"service,omitempty"`
	// SOAEmail is the zone's SOA email when reconcile creates the zone (default hostmaster@<domain>).
	SOAEmail string `json:"soaEmail,omitempty"`
	// HealthCheck is how the daemon checks each member's address.
	HealthCheck HealthCheck `json:"healthCheck,omitempty"`
	// ShiftReplicas also takes an unhealthy member out of the workloads' policies until it is
	// healthy again.
	ShiftReplicas bool `json:"shiftReplicas,omitempty"`
}

// HealthCheck says how a member's ingress address is checked: a request every Interval, a
// member withdrawn after UnhealthyAfter failures in a row and back after HealthyAfter
// successes in a row.
type HealthCheck struct {
	// Protocol is HTTP (default), HTTPS (certificate not verified, as cloud health checks do)
	// or TCP (a connection is enough).
	Protocol string `json:"protocol,omitempty"`
	// Port (default 15021, the Istio gateway's status port).
	Port int `json:"port,omitempty"`
	// Path of an HTTP(S) check (default /healthz/ready); any 2xx or 3xx answer passes.
	Path           string   `json:"path,omitempty"`
	Interval       Duration `json:"interval,omitempty"`       // default 10s
	Timeout        Duration `json:"timeout,omitempty"`        // default 3s
	UnhealthyAfter int      `json:"unhealthyAfter,omitempty"` // default 3
	HealthyAfter   int      `json:"healthyAfter,omitempty"`   // default 2
}

// FQDN is the shared name, without the trailing dot.
func (e *Entry) FQDN() string { return e.Hostname + "." + e.Domain }

// MemberName is a member's own name relative to the zone ("eu.app").
func (e *Entry) MemberName(member string) string { return member + "." + e.Hostname }

// ServiceRef splits Service into namespace and name.
func (e *Entry) ServiceRef() (namespace, name string) {
	namespace, name, _ = strings.Cut(e.Service, "/")
	return namespace, name
}

// IngressGatewayOn reports whether the mesh installs Istio's gateway chart as the members'
// north-south ingress (mesh.ingressGateway; default on when entry is set).
func (f *Fleet) IngressGatewayOn() bool {
	return f.MeshOn() && f.Mesh.IngressGateway != nil && *f.Mesh.IngressGateway
}

func defaultEntry(f *Fleet) {
	// Left unset without an entry (off): fleets without one keep their fingerprint.
	if m := f.Mesh; m != nil && m.IngressGateway == nil && f.Entry != nil {
		on := true
		m.IngressGateway = &on
	}
	e := f.Entry
	if e == nil {
		return
	}
	e.Domain = strings.TrimSuffix(strings.ToLower(e.Domain), ".")
	if e.TTL == 0 {
		e.TTL = DefaultEntryTTL
	}
	if e.Service == "" {
		e.Service = DefaultEntryService
	}
	if e.SOAEmail == "" && e.Domain != "" {
		e.SOAEmail = "hostmaster@" + e.Domain
	}
	h := &e.HealthCheck
	if h.Protocol == "" {
		h.Protocol = CheckHTTP
	}
	if h.Port == 0 {
		h.Port = DefaultHealthPort
	}
	if h.Path == "" && h.Protocol != CheckTCP {
		h.Path = DefaultHealthPath
	}
	defaultDuration(&h.Interval, DefaultHealthInterval)
	defaultDuration(&h.Timeout, DefaultHealthTimeout)
	if h.UnhealthyAfter == 0 {
		h.UnhealthyAfter = DefaultHealthUnhealthyAfter
	}
	if h.HealthyAfter == 0 {
		h.HealthyAfter = DefaultHealthHealthyAfter
	}
}

var dnsName = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]([-a-z0-9]*[a-z0-9])?$`)

func (v *validator) entry() {
	f := v.fleet
	e := f.Entry
	if e == nil {
		if f.Mesh != nil && f.Mesh.IngressGateway != nil && *f.Mesh.IngressGateway && !f.MeshOn() {
			v.errorf("mesh.ingressGateway", "ingressGateway is on but the mesh is off")
		}
		return
	}
	switch {
	case e.Domain == "":
		v.errorf("entry.domain", "domain is required: the Linode DNS Manager zone, e.g. example.com")
	case len(e.Domain) > 253 || !dnsName.MatchString(e.Domain):
		v.errorf("entry.domain", "%q is not a domain name: want lowercase labels separated by dots, e.g. example.com", e.Domain)
	}
	if e.Hostname == "" {
		v.errorf("entry.hostname", "hostname is required: the name in the zone that answers for the fleet, e.g. app")
	} else {
		for _, label := range strings.Split(e.Hostname, ".") {
			if !v.checkLabel("entry.hostname", "hostname label", label, 63) {
				break
			}
		}
		if len(e.Hostname)+len(e.Domain) > 200 {
			v.errorf("entry.hostname", "%s.%s is too long for a DNS name with member names under it", e.Hostname, e.Domain)
		}
	}
	if !slices.Contains(LinodeTTLs, e.TTL) {
		v.errorf("entry.ttl", "ttl %d is not one Linode's DNS Manager keeps (it rounds others to the nearest it keeps, which would show as a change on every pass): want one of %s", e.TTL, intList(LinodeTTLs))
	}
	if ns, name := e.ServiceRef(); !strings.Contains(e.Service, "/") || ns == "" || name == "" {
		v.errorf("entry.service", "%q is not namespace/name of a Service, e.g. %s", e.Service, DefaultEntryService)
	} else {
		v.checkLabel("entry.service", "namespace name", ns, 63)
		v.checkLabel("entry.service", "service name", name, 63)
		if e.Service == DefaultEntryService && !f.IngressGatewayOn() && f.MeshOn() {
			// The user installs the gateway: nothing to say.
		} else if e.Service == DefaultEntryService && !f.MeshOn() {
			v.errorf("entry.service", "the entry's Service defaults to Istio's ingress gateway (%s), which needs the mesh: turn the mesh on or name the LoadBalancer Service of your own ingress", DefaultEntryService)
		}
	}
	if !strings.Contains(e.SOAEmail, "@") {
		v.errorf("entry.soaEmail", "%q is not an email address", e.SOAEmail)
	}
	h := e.HealthCheck
	switch h.Protocol {
	case CheckHTTP, CheckHTTPS:
		if !strings.HasPrefix(h.Path, "/") {
			v.errorf("entry.healthCheck.path", "path %q must start with /", h.Path)
		}
	case CheckTCP:
		if h.Path != "" {
			v.errorf("entry.healthCheck.path", "a TCP check has no path: drop it, or use protocol HTTP or HTTPS")
		}
	default:
		v.errorf("entry.healthCheck.protocol", "unknown protocol %q: want HTTP, HTTPS or TCP", h.Protocol)
	}
	if h.Port < 1 || h.Port > 65535 {
		v.errorf("entry.healthCheck.port", "port %d is out of range: want 1-65535", h.Port)
	}
	v.positive("entry.healthCheck.interval", h.Interval)
	v.positive("entry.healthCheck.timeout", h.Timeout)
	if h.Interval.Duration > 0 && h.Interval.Duration < 500*time.Millisecond {
		v.errorf("entry.healthCheck.interval", "interval %s is too short: give at least 500ms", h.Interval.Duration)
	}
	if h.Timeout.Duration > h.Interval.Duration && h.Interval.Duration > 0 {
		v.errorf("entry.healthCheck.timeout", "timeout %s is longer than the interval %s: a check must end before the next starts", h.Timeout.Duration, h.Interval.Duration)
	}
	if h.UnhealthyAfter < 1 || h.UnhealthyAfter > 10 {
		v.errorf("entry.healthCheck.unhealthyAfter", "%d is out of range: want 1-10 failed checks in a row", h.UnhealthyAfter)
	}
	if h.HealthyAfter < 1 || h.HealthyAfter > 10 {
		v.errorf("entry.healthCheck.healthyAfter", "%d is out of range: want 1-10 passed checks in a row", h.HealthyAfter)
	}
	if e.ShiftReplicas && len(f.Workloads) == 0 {
		v.errorf("entry.shiftReplicas", "shiftReplicas moves workloads' replicas away from unhealthy members, but the fleet has no workloads")
	}
}

func intList(in []int) string {
	s := make([]string, len(in))
	for i, n := range in {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// MemberNames are the members' names, in fleet order.
func (f *Fleet) MemberNames() []string {
	out := make([]string, len(f.Members))
	for i, m := range f.Members {
		out[i] = m.Name
	}
	return out
}
