package labworld

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// XDSProbeOptions says how to run xds-probe (lab/tools/istio/cmd/xds-probe, built by build.sh
// istio; cluster.FindXDSProbe finds it): a proxyless gRPC client, gRPC's own xDS resolver, that
// resolves Target through istiod's plain-text xDS port as a workload Pod with these node
// metadata would, and reports what gRPC's xDS client received.
type XDSProbeOptions struct {
	// Bin is xds-probe.
	Bin string
	// XDS is istiod's plain-text xDS address (IstiodInfo.GRPC); ProbeClusterXDS fills it.
	XDS string
	// Target is xds:///<host>:<port>, e.g. xds:///hello.default.svc.cluster.local:5000.
	Target string
	// ClusterID (CLUSTER_ID) and Network (NETWORK) are the mesh cluster and network of the
	// workload; Namespace (default "default"), Pod (default "xds-probe") and IP (its pod IP;
	// ProbeClusterXDS defaults it to ProbeIP of the cluster) make its node id
	// sidecar~<IP>~<Pod>.<Namespace>~<Namespace>.svc.cluster.local.
	ClusterID, Network, Namespace, Pod, IP string
	MeshID, IstioVersion                   string
	Labels                                 map[string]string
	// Timeout bounds the probe's wait for the target's EDS resources (default 1 min); the
	// process is killed if it runs 15 s past it or ctx ends.
	Timeout time.Duration
	// MinEndpoints, when > 0, makes the probe also wait until the target's EDS resources hold
	// at least that many endpoints.
	MinEndpoints int
}

// Args are xds-probe's arguments for o.
func (o XDSProbeOptions) Args() []string {
	args := []string{"-xds", o.XDS, "-target", o.Target, "-cluster-id", o.ClusterID, "-ip", o.IP,
		"-timeout", o.timeout().String()}
	for _, f := range []struct{ flag, v string }{{"network", o.Network}, {"namespace", o.Namespace}, {"pod", o.Pod},
		{"mesh-id", o.MeshID}, {"istio-version", o.IstioVersion}} {
		if f.v != "" {
			args = append(args, "-"+f.flag, f.v)
		}
	}
	keys := make([]string, 0, len(o.Labels))
	for k := range o.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-label", k+"="+o.Labels[k])
	}
	if o.MinEndpoints > 0 {
		args = append(args, "-min-endpoints", strconv.Itoa(o.MinEndpoints))
	}
	return args
}

func (o XDSProbeOptions) timeout() time.Duration {
	if o.Timeout <= 0 {
		return time.Minute
	}
	return o.Timeout
}

// XDSReport is what xds-probe reports: the resources gRPC's xDS client holds for the target,
// read through gRPC's CSDS.
type XDSReport struct {
	Target    string `json:"target"`
	XDSServer string `json:"xdsServer"`
	Node      string `json:"node"`
	// Complete: every cluster of the target had its EDS resource acknowledged (and MinEndpoints
	// endpoints) when the probe stopped; Missing says what was missing otherwise.
	Complete bool   `json:"complete"`
	Missing  string `json:"missing,omitempty"`
	// Milliseconds from the dial to the first acknowledged Listener and EDS resource, and to
	// the end of the probe's wait.
	FirstLDSMillis *int64 `json:"firstLDSMillis,omitempty"`
	FirstEDSMillis *int64 `json:"firstEDSMillis,omitempty"`
	ElapsedMillis  int64  `json:"elapsedMillis"`
	// ChannelState is the gRPC channel's state at the end: the probe's dialer refuses every
	// connection (nothing is sent to an endpoint), so CONNECTING or TRANSIENT_FAILURE.
	ChannelState string `json:"channelState"`
	// Dialed are the endpoint addresses gRPC's load balancer tried to connect to, sorted;
	// DialedAll: every endpoint of the EDS resources was among them.
	Dialed    []string        `json:"dialed"`
	DialedAll bool            `json:"dialedAll"`
	Listeners []XDSResource   `json:"listeners"`
	Routes    []XDSResource   `json:"routes"`
	Clusters  []XDSCluster    `json:"clusters"`
	Endpoints []XDSAssignment `json:"endpoints"`
}

// XDSResource is one resource of gRPC's xDS client.
type XDSResource struct {
	Name string `json:"name"`
	// Status: REQUESTED, DOES_NOT_EXIST, ACKED, NACKED, ...
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
	// Error is why the last update was rejected (NACKED).
	Error       string   `json:"error,omitempty"`
	RouteConfig string   `json:"routeConfig,omitempty"`
	Clusters    []string `json:"clusters,omitempty"`
}

// XDSCluster is a CDS resource.
type XDSCluster struct {
	XDSResource
	Type           string `json:"type,omitempty"`
	EDSServiceName string `json:"edsServiceName,omitempty"`
	LBPolicy       string `json:"lbPolicy,omitempty"`
	TLS            bool   `json:"tls,omitempty"`
}

// XDSAssignment is an EDS resource (ClusterLoadAssignment).
type XDSAssignment struct {
	XDSResource
	Localities []XDSLocality `json:"localities"`
}

// XDSLocality is one locality of an assignment.
type XDSLocality struct {
	Region    string        `json:"region,omitempty"`
	Zone      string        `json:"zone,omitempty"`
	SubZone   string        `json:"subZone,omitempty"`
	Weight    uint32        `json:"weight,omitempty"`
	Priority  uint32        `json:"priority"`
	Endpoints []XDSEndpoint `json:"endpoints"`
}

// XDSEndpoint is one endpoint of a locality.
type XDSEndpoint struct {
	// Address is host:port.
	Address string `json:"address"`
	// Health: HEALTHY, UNHEALTHY, UNKNOWN (Istio's for a gateway), ...
	Health string `json:"health"`
	Weight uint32 `json:"weight,omitempty"`
	// Metadata by filter: Istio's "istio" (workload) and "envoy.transport_socket_match"
	// (tlsMode).
	Metadata map[string]map[string]any `json:"metadata,omitempty"`
}

// ParseXDSReport parses xds-probe's output.
func ParseXDSReport(data []byte) (*XDSReport, error) {
	var r XDSReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("xds-probe report: %w", err)
	}
	if r.Target == "" {
		return nil, errors.New("xds-probe report: no target")
	}
	return &r, nil
}

// Assignment is the EDS resource of the target's cluster named cluster (its EDS service
// name), or nil.
func (r *XDSReport) Assignment(cluster string) *XDSAssignment {
	for _, c := range r.Clusters {
		if c.Name != cluster {
			continue
		}
		name := c.EDSServiceName
		if name == "" {
			name = c.Name
		}
		for k := range r.Endpoints {
			if r.Endpoints[k].Name == name {
				return &r.Endpoints[k]
			}
		}
	}
	return nil
}

// AllEndpoints are the endpoints of every EDS resource the probe holds.
func (r *XDSReport) AllEndpoints() []XDSEndpoint {
	var out []XDSEndpoint
	for _, a := range r.Endpoints {
		for _, l := range a.Localities {
			out = append(out, l.Endpoints...)
		}
	}
	return out
}

// Host is the endpoint's address without its port.
func (e XDSEndpoint) Host() string {
	h, _, err := net.SplitHostPort(e.Address)
	if err != nil {
		return e.Address
	}
	return h
}

// Port is the endpoint's port (0 if it has none).
func (e XDSEndpoint) Port() int {
	_, p, err := net.SplitHostPort(e.Address)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// Cluster is the mesh cluster istiod says the endpoint is in: the last field of Istio's
// workload metadata (name;namespace;canonical name;revision;cluster), also set on the
// endpoints istiod makes for another network's east-west gateway (";;;;<cluster>").
func (e XDSEndpoint) Cluster() string {
	w, _ := e.Metadata["istio"]["workload"].(string)
	f := strings.Split(w, ";")
	if len(f) < 5 {
		return ""
	}
	return f[4]
}

// Workload is the name in Istio's workload metadata ("" for a gateway endpoint).
func (e XDSEndpoint) Workload() string {
	w, _ := e.Metadata["istio"]["workload"].(string)
	name, _, _ := strings.Cut(w, ";")
	return name
}

// TLSMode is the endpoint's tlsMode ("istio" for a workload with a sidecar and for a gateway;
// "" when none).
func (e XDSEndpoint) TLSMode() string {
	m, _ := e.Metadata["envoy.transport_socket_match"]["tlsMode"].(string)
	return m
}

// XDSProbeError is a probe that did not complete: Report holds what arrived (nil when the
// probe printed nothing), Stderr what it said.
type XDSProbeError struct {
	Report *XDSReport
	Stderr string
	Err    error
}

func (e *XDSProbeError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "(no output on stderr)"
	}
	return fmt.Sprintf("xds-probe: %v: %s", e.Err, msg)
}

func (e *XDSProbeError) Unwrap() error { return e.Err }

// ProbeXDS runs xds-probe with o and parses its report. A probe that exits non-zero (its wait
// timed out, bad flags) returns an *XDSProbeError, with the report of what did arrive when
// it printed one.
func ProbeXDS(ctx context.Context, o XDSProbeOptions) (*XDSReport, error) {
	if o.Bin == "" {
		return nil, errors.New("xds-probe: no binary (build.sh istio; cluster.FindXDSProbe)")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout()+15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.Bin, o.Args()...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{} // nothing of this process's environment (GRPC_*) leaks in
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	var rep *XDSReport
	if stdout.Len() > 0 {
		r, err := ParseXDSReport(stdout.Bytes())
		if err != nil && runErr == nil {
			return nil, &XDSProbeError{Stderr: stderr.String(), Err: err}
		}
		rep = r
	}
	if runErr != nil {
		return rep, &XDSProbeError{Report: rep, Stderr: stderr.String(), Err: runErr}
	}
	if rep == nil {
		return nil, &XDSProbeError{Stderr: stderr.String(), Err: errors.New("no report on stdout")}
	}
	return rep, nil
}

// ProbeClusterXDS runs xds-probe against the istiod of lab cluster c (its istiod.json's
// plain-text xDS address), as a workload Pod of c: IP defaults to ProbeIP(c.Address).
func ProbeClusterXDS(ctx context.Context, c LabCluster, o XDSProbeOptions) (*XDSReport, error) {
	info, err := ReadIstiod(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("istiod of %s: %w", c.Name, err)
	}
	o.XDS = info.GRPC
	if o.IP == "" {
		o.IP = ProbeIP(c.Address)
	}
	return ProbeXDS(ctx, o)
}

// ProbeIP is the pod IP a probe plays in the cluster on address: the last usable address of
// its pod range (PodRangeOf), which the Kubelet stand-in, handing IPs out lowest first, gives
// no Pod before some 65,000 others.
func ProbeIP(address string) string {
	r := PodRangeOf(address)
	ip := make(net.IP, len(r.IP.To4()))
	copy(ip, r.IP.To4())
	for k := range ip {
		ip[k] |= ^r.Mask[k]
	}
	ip[len(ip)-1]--
	return ip.String()
}
