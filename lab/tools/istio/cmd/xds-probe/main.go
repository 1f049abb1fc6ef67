// Command xds-probe is a proxyless gRPC client of an Istio mesh that reports what istiod served
// it: it resolves an xds:/// target with gRPC's own xDS resolver (google.golang.org/grpc/xds),
// as an application Istio runs in proxyless gRPC mode does, and prints, as JSON on stdout, the
// resources gRPC's xDS client received (listeners, routes, clusters and, per locality, the EDS
// endpoints with their health and weights), read back through gRPC's Client Status Discovery
// Service (CSDS) served in process on a loopback port.
//
// Usage:
//
//	xds-probe -xds 127.0.0.2:15010 -target xds:///hello.default.svc.cluster.local:5000 \
//	  -cluster-id ap -network network2 -namespace default -pod xds-probe -ip 10.2.255.254 \
//	  [-mesh-id mesh1] [-istio-version 1.31.0] [-label app=xds-probe ...] [-timeout 60s]
//
// The xDS bootstrap is the one Istio's agent writes for a proxyless gRPC workload
// (istio.io/istio/pkg/istio-agent/grpcxds): one xDS server over plain text (here istiod's
// plain-text xDS port itself, where the agent would proxy it), server feature xds_v3, and a node
// whose id is sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local and whose metadata
// is what istiod reads for a pod: GENERATOR=grpc (istiod's generator for proxyless gRPC),
// CLUSTER_ID, NETWORK, NAMESPACE, INSTANCE_IPS, LABELS, ... gRPC reads its bootstrap from the
// environment when it starts, so xds-probe passes it in GRPC_XDS_BOOTSTRAP_CONFIG and runs
// itself again (-bootstrap-out also writes it to a file).
//
// The channel connects to no endpoint: its dialer records the addresses gRPC's load balancer
// dials (the endpoints it took from EDS) and refuses each, so nothing is sent to an endpoint and
// no call is made.
//
// xds-probe waits, polling CSDS, until every cluster the target routes to has its EDS resource
// acknowledged (ACKED), and with -min-endpoints until they hold at least that many endpoints
// together, then up to -dial-wait for gRPC to have dialed every one of them; then it prints the
// report and exits 0. If that does not happen within -timeout, it
// prints the report of what did arrive, says on stderr what is missing (a resource istiod
// did not send, one gRPC rejected and why) and exits 1. Bad flags exit 2.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	statuspb "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/grpclog"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver and the xDS balancers
	"google.golang.org/grpc/xds/csds"
	"google.golang.org/protobuf/types/known/structpb"
)

// Resource type URLs (xDS v3).
const (
	typeListener = "type.googleapis.com/envoy.config.listener.v3.Listener"
	typeRoute    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	typeCluster  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	typeEndpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// bootstrapEnv carries the bootstrap (JSON) to the run of xds-probe that dials.
const bootstrapEnv = "GRPC_XDS_BOOTSTRAP_CONFIG"

// Report is what xds-probe prints.
type Report struct {
	Target string `json:"target"`
	// XDSServer is the xDS server's address; Node the node id it was given.
	XDSServer string `json:"xdsServer"`
	Node      string `json:"node"`
	// Complete says the wait ended as asked (every cluster's EDS acknowledged, with at least
	// -min-endpoints endpoints); Missing says what was still missing otherwise.
	Complete bool   `json:"complete"`
	Missing  string `json:"missing,omitempty"`
	// Elapsed times, in milliseconds from the dial: the first acknowledged Listener, the first
	// acknowledged EDS resource of the target's clusters, the end of the wait.
	FirstLDSMillis *int64 `json:"firstLDSMillis,omitempty"`
	FirstEDSMillis *int64 `json:"firstEDSMillis,omitempty"`
	ElapsedMillis  int64  `json:"elapsedMillis"`
	// ChannelState is the gRPC channel's connectivity state at the end: xds-probe connects to
	// no endpoint (its dialer refuses every connection, so no packet is sent to one), so it is
	// CONNECTING or TRANSIENT_FAILURE once the balancer has endpoints.
	ChannelState string `json:"channelState"`
	// Dialed are the endpoint addresses gRPC's load balancer tried to connect to (the
	// endpoints it took from EDS), sorted; DialedAll says it tried every endpoint of the target's
	// EDS resources (xds-probe waits up to -dial-wait for that once the answer is complete).
	Dialed    []string   `json:"dialed"`
	DialedAll bool       `json:"dialedAll"`
	Listeners []Resource `json:"listeners"`
	Routes    []Resource `json:"routes"`
	Clusters  []Cluster  `json:"clusters"`
	Endpoints []EDS      `json:"endpoints"`
}

// Resource is one xDS resource as gRPC's xDS client holds it.
type Resource struct {
	Name string `json:"name"`
	// Status is gRPC's client status: REQUESTED, DOES_NOT_EXIST, ACKED, NACKED, ...
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
	// Error is the last rejected update's reason (NACKED).
	Error string `json:"error,omitempty"`
	// RouteConfig is a Listener's RDS route configuration name; Clusters a RouteConfiguration's
	// route clusters.
	RouteConfig string   `json:"routeConfig,omitempty"`
	Clusters    []string `json:"clusters,omitempty"`
}

// Cluster is a CDS resource.
type Cluster struct {
	Resource
	// Type is the discovery type (EDS, ...); EDSServiceName the EDS resource it reads
	// (the cluster's name when empty).
	Type           string `json:"type,omitempty"`
	EDSServiceName string `json:"edsServiceName,omitempty"`
	LBPolicy       string `json:"lbPolicy,omitempty"`
	// TLS says the cluster has a transport socket (mTLS).
	TLS bool `json:"tls,omitempty"`
}

// EDS is a ClusterLoadAssignment.
type EDS struct {
	Resource
	Localities []Locality `json:"localities"`
}

// Locality is one LocalityLbEndpoints.
type Locality struct {
	Region    string     `json:"region,omitempty"`
	Zone      string     `json:"zone,omitempty"`
	SubZone   string     `json:"subZone,omitempty"`
	Weight    uint32     `json:"weight,omitempty"`
	Priority  uint32     `json:"priority"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one LbEndpoint.
type Endpoint struct {
	// Address is host:port.
	Address string `json:"address"`
	Health  string `json:"health"`
	Weight  uint32 `json:"weight,omitempty"`
	// Metadata is its filter metadata (Istio's: istio.workload, the tlsMode of
	// envoy.transport_socket_match, ...), by filter.
	Metadata map[string]any `json:"metadata,omitempty"`
}

type options struct {
	xds, target                          string
	clusterID, network, namespace, pod   string
	ip, meshID, istioVersion, serviceAcc string
	dnsDomain, bootstrapOut              string
	labels                               labelFlag
	timeout, poll, dialWait              time.Duration
	minEndpoints                         int
	verbose                              bool
}

type labelFlag map[string]string

func (l labelFlag) String() string {
	keys := make([]string, 0, len(l))
	for k, v := range l {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (l labelFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("label %q: want key=value", s)
	}
	l[k] = v
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o := options{labels: labelFlag{}}
	fs := flag.NewFlagSet("xds-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.xds, "xds", "", "istiod's plain-text xDS address, host:port (required)")
	fs.StringVar(&o.target, "target", "", "the gRPC target, xds:///<host>:<port> (required)")
	fs.StringVar(&o.clusterID, "cluster-id", "", "CLUSTER_ID: the mesh cluster the workload runs in (required)")
	fs.StringVar(&o.network, "network", "", "NETWORK: the workload's network (topology.istio.io/network)")
	fs.StringVar(&o.namespace, "namespace", "default", "the workload's namespace (NAMESPACE)")
	fs.StringVar(&o.pod, "pod", "xds-probe", "the workload's pod name")
	fs.StringVar(&o.ip, "ip", "", "the workload's pod IP (node id, INSTANCE_IPS) (required)")
	fs.StringVar(&o.meshID, "mesh-id", "", "MESH_ID")
	fs.StringVar(&o.istioVersion, "istio-version", "", "ISTIO_VERSION the workload's agent would report")
	fs.StringVar(&o.serviceAcc, "service-account", "default", "SERVICE_ACCOUNT")
	fs.StringVar(&o.dnsDomain, "dns-domain", "", "the node id's DNS domain (default <namespace>.svc.cluster.local)")
	fs.Var(o.labels, "label", "a pod label key=value (LABELS), repeatable")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "how long to wait for the EDS resources")
	fs.DurationVar(&o.poll, "poll", 50*time.Millisecond, "how often to read CSDS while waiting")
	fs.DurationVar(&o.dialWait, "dial-wait", 5*time.Second, "once the answer is complete, how long to wait for gRPC to try every endpoint")
	fs.IntVar(&o.minEndpoints, "min-endpoints", 0, "also wait until the target's EDS resources hold at least this many endpoints")
	fs.StringVar(&o.bootstrapOut, "bootstrap-out", "", "also write the xDS bootstrap to this file")
	fs.BoolVar(&o.verbose, "v", false, "gRPC's own logs on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "xds-probe: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(stderr, "xds-probe: %v\n", err)
		return 2
	}

	boot, err := bootstrap(o)
	if err != nil {
		fmt.Fprintf(stderr, "xds-probe: bootstrap: %v\n", err)
		return 2
	}
	if os.Getenv(bootstrapEnv) != string(boot) {
		// gRPC reads its bootstrap from the environment once, at start: run again with it.
		if o.bootstrapOut != "" {
			var pretty bytes.Buffer
			_ = json.Indent(&pretty, boot, "", "  ")
			pretty.WriteByte('\n')
			if err := os.WriteFile(o.bootstrapOut, pretty.Bytes(), 0o600); err != nil {
				fmt.Fprintf(stderr, "xds-probe: %v\n", err)
				return 2
			}
		}
		if err := reexec(string(boot), stdout, stderr); err != nil {
			var exit *exitError
			if errors.As(err, &exit) {
				return exit.code
			}
			fmt.Fprintf(stderr, "xds-probe: %v\n", err)
			return 1
		}
		return 0
	}

	if o.verbose {
		grpclog.SetLoggerV2(grpclog.NewLoggerV2WithVerbosity(stderr, stderr, stderr, 2))
	} else {
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, stderr))
	}
	rep, err := probe(o)
	data, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Fprintf(stdout, "%s\n", data)
	if err != nil {
		fmt.Fprintf(stderr, "xds-probe: %v\n", err)
		return 1
	}
	return 0
}

// exitError is the exit status of a run of xds-probe that reexec waited for.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// probeEnv is this process's environment with boot as gRPC's bootstrap, and no other
// bootstrap (GRPC_XDS_BOOTSTRAP, a file, would win over it).
func probeEnv(boot string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GRPC_XDS_BOOTSTRAP=") && !strings.HasPrefix(e, bootstrapEnv+"=") {
			env = append(env, e)
		}
	}
	return append(env, bootstrapEnv+"="+boot)
}

func (o *options) check() error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"xds", o.xds}, {"target", o.target}, {"cluster-id", o.clusterID}, {"ip", o.ip}} {
		if f.v == "" {
			missing = append(missing, "-"+f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if _, _, err := net.SplitHostPort(o.xds); err != nil {
		return fmt.Errorf("-xds %q: %v", o.xds, err)
	}
	if !strings.HasPrefix(o.target, "xds:///") {
		return fmt.Errorf("-target %q: want xds:///<host>:<port>", o.target)
	}
	if net.ParseIP(o.ip) == nil {
		return fmt.Errorf("-ip %q: not an IP address", o.ip)
	}
	if o.timeout <= 0 || o.poll <= 0 || o.dialWait < 0 {
		return errors.New("-timeout and -poll must be positive, -dial-wait not negative")
	}
	if o.dnsDomain == "" {
		o.dnsDomain = o.namespace + ".svc.cluster.local"
	}
	return nil
}

// nodeID is Istio's id of a sidecar-type node: type~ip~id~domain, the id being pod.namespace.
func (o *options) nodeID() string {
	return fmt.Sprintf("sidecar~%s~%s.%s~%s", o.ip, o.pod, o.namespace, o.dnsDomain)
}

// bootstrap is gRPC's xDS bootstrap, in the shape istio-agent's grpcxds writes: node metadata
// with the keys of Istio's NodeMetadata (pkg/model) that istiod reads for a proxyless pod.
func bootstrap(o options) ([]byte, error) {
	meta := map[string]any{
		"GENERATOR":       "grpc",
		"CLUSTER_ID":      o.clusterID,
		"NAMESPACE":       o.namespace,
		"INSTANCE_IPS":    o.ip,
		"NAME":            o.pod,
		"POD_NAME":        o.pod,
		"SERVICE_ACCOUNT": o.serviceAcc,
		"WORKLOAD_NAME":   o.pod,
	}
	if o.network != "" {
		meta["NETWORK"] = o.network
	}
	if o.meshID != "" {
		meta["MESH_ID"] = o.meshID
	}
	if o.istioVersion != "" {
		meta["ISTIO_VERSION"] = o.istioVersion
	}
	if len(o.labels) > 0 {
		l := map[string]any{}
		for k, v := range o.labels {
			l[k] = v
		}
		meta["LABELS"] = l
	}
	if _, err := structpb.NewStruct(meta); err != nil { // what the server will parse
		return nil, err
	}
	b := map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      o.xds,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{
			"id":       o.nodeID(),
			"metadata": meta,
		},
		"server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
	}
	return json.Marshal(b)
}

// probe dials the target and waits until the report is complete or the time is up.
func probe(o options) (*Report, error) {
	rep := &Report{Target: o.target, XDSServer: o.xds, Node: o.nodeID(),
		Listeners: []Resource{}, Routes: []Resource{}, Clusters: []Cluster{}, Endpoints: []EDS{}, Dialed: []string{}}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	// CSDS, in process on a loopback port: what gRPC's xDS client holds.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, fmt.Errorf("CSDS listener: %w", err)
	}
	srv := grpc.NewServer()
	cs, err := csds.NewClientStatusDiscoveryServer()
	if err != nil {
		return rep, err
	}
	statuspb.RegisterClientStatusDiscoveryServiceServer(srv, cs)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	csdsConn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return rep, err
	}
	defer csdsConn.Close()
	csdsClient := statuspb.NewClientStatusDiscoveryServiceClient(csdsConn)

	start := time.Now()
	dials := &dialRecorder{seen: map[string]bool{}}
	conn, err := grpc.NewClient(o.target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dials.dial))
	if err != nil {
		return rep, fmt.Errorf("dial %s: %w", o.target, err)
	}
	defer conn.Close()
	conn.Connect() // leave idle: the resolver and the balancers subscribe

	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	var dialDeadline <-chan time.Time
	for {
		resp, err := csdsClient.FetchClientStatus(ctx, &statuspb.ClientStatusRequest{})
		elapsed := time.Since(start).Milliseconds()
		if err == nil {
			fill(rep, resp)
			if rep.FirstLDSMillis == nil && anyAcked(rep.Listeners) {
				rep.FirstLDSMillis = &elapsed
			}
			edsAcked, missing := rep.progress(o.minEndpoints)
			if rep.FirstEDSMillis == nil && edsAcked {
				rep.FirstEDSMillis = &elapsed
			}
			rep.Missing = missing
			rep.Complete = missing == ""
		} else if ctx.Err() == nil {
			rep.Missing = "CSDS: " + err.Error()
		}
		rep.ElapsedMillis = elapsed
		rep.ChannelState = conn.GetState().String()
		rep.Dialed, rep.DialedAll = dials.covers(rep.endpointAddresses())
		if rep.Complete {
			if rep.DialedAll {
				return rep, nil
			}
			if dialDeadline == nil {
				dialDeadline = time.After(o.dialWait)
			}
		}
		select {
		case <-ctx.Done():
			if rep.Complete {
				return rep, nil
			}
			return rep, fmt.Errorf("%s: no complete answer for %s from %s within %s: %s", o.clusterID, o.target, o.xds, o.timeout, rep.Missing)
		case <-dialDeadline:
			return rep, nil
		case <-tick.C:
		}
	}
}

// dialRecorder is the data channel's dialer: it records each address gRPC's balancer dials and
// refuses the connection, so the probe sends nothing to an endpoint (a Pod IP is outside
// loopback) and makes no call.
type dialRecorder struct {
	mu   sync.Mutex
	seen map[string]bool
}

var errNoConnect = errors.New("xds-probe connects to no endpoint")

func (d *dialRecorder) dial(_ context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.seen[addr] = true
	d.mu.Unlock()
	return nil, errNoConnect
}

// covers is every address dialed, sorted, and whether want are all among them (false for none).
func (d *dialRecorder) covers(want []string) ([]string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.seen))
	for a := range d.seen {
		out = append(out, a)
	}
	sort.Strings(out)
	all := len(want) > 0
	for _, w := range want {
		all = all && d.seen[w]
	}
	return out, all
}

// endpointAddresses are the addresses of every endpoint of the report's EDS resources.
func (r *Report) endpointAddresses() []string {
	var out []string
	for _, e := range r.Endpoints {
		for _, l := range e.Localities {
			for _, ep := range l.Endpoints {
				out = append(out, ep.Address)
			}
		}
	}
	return out
}

// progress says whether some EDS resource of the target's clusters is acknowledged, and what
// is still missing for the report to be complete ("" when nothing).
func (r *Report) progress(minEndpoints int) (bool, string) {
	if len(r.Listeners) == 0 {
		return false, "no Listener requested yet"
	}
	for _, l := range r.Listeners {
		if l.Status != "ACKED" {
			return false, fmt.Sprintf("Listener %s %s%s", l.Name, l.Status, reason(l))
		}
	}
	for _, rt := range r.Routes {
		if rt.Status != "ACKED" {
			return false, fmt.Sprintf("RouteConfiguration %s %s%s", rt.Name, rt.Status, reason(rt))
		}
	}
	if len(r.Clusters) == 0 {
		return false, "no Cluster requested yet"
	}
	eds := map[string]EDS{}
	for _, e := range r.Endpoints {
		eds[e.Name] = e
	}
	acked, endpoints := false, 0
	var missing []string
	for _, c := range r.Clusters {
		if c.Status != "ACKED" {
			missing = append(missing, fmt.Sprintf("Cluster %s %s%s", c.Name, c.Status, reason(c.Resource)))
			continue
		}
		if c.Type != "EDS" {
			continue
		}
		name := c.EDSServiceName
		if name == "" {
			name = c.Name
		}
		e, ok := eds[name]
		switch {
		case !ok:
			missing = append(missing, "ClusterLoadAssignment "+name+" not requested yet")
		case e.Status != "ACKED":
			missing = append(missing, fmt.Sprintf("ClusterLoadAssignment %s %s%s", name, e.Status, reason(e.Resource)))
		default:
			acked = true
			for _, l := range e.Localities {
				endpoints += len(l.Endpoints)
			}
		}
	}
	if len(missing) > 0 {
		return acked, strings.Join(missing, "; ")
	}
	if endpoints < minEndpoints {
		return acked, fmt.Sprintf("%d endpoints, want at least %d", endpoints, minEndpoints)
	}
	return acked, ""
}

func reason(r Resource) string {
	if r.Error != "" {
		return ": " + r.Error
	}
	return ""
}

func anyAcked(rs []Resource) bool {
	for _, r := range rs {
		if r.Status == "ACKED" {
			return true
		}
	}
	return false
}

// fill replaces the report's resources with those of a CSDS answer.
func fill(rep *Report, resp *statuspb.ClientStatusResponse) {
	rep.Listeners, rep.Routes, rep.Clusters, rep.Endpoints = []Resource{}, []Resource{}, []Cluster{}, []EDS{}
	for _, cfg := range resp.GetConfig() {
		for _, x := range cfg.GetGenericXdsConfigs() {
			res := Resource{Name: x.GetName(), Status: statusName(x.GetClientStatus()), Version: x.GetVersionInfo()}
			if es := x.GetErrorState(); es != nil {
				res.Error = es.GetDetails()
			}
			raw := x.GetXdsConfig()
			switch x.GetTypeUrl() {
			case typeListener:
				if raw != nil {
					var l listenerpb.Listener
					if raw.UnmarshalTo(&l) == nil {
						res.RouteConfig = routeConfigName(&l)
					}
				}
				rep.Listeners = append(rep.Listeners, res)
			case typeRoute:
				if raw != nil {
					var rc routepb.RouteConfiguration
					if raw.UnmarshalTo(&rc) == nil {
						res.Clusters = routeClusters(&rc)
					}
				}
				rep.Routes = append(rep.Routes, res)
			case typeCluster:
				c := Cluster{Resource: res}
				if raw != nil {
					var cl clusterpb.Cluster
					if raw.UnmarshalTo(&cl) == nil {
						c.Type = strings.TrimPrefix(cl.GetType().String(), "Cluster_")
						if cl.GetClusterDiscoveryType() == nil {
							c.Type = ""
						}
						c.EDSServiceName = cl.GetEdsClusterConfig().GetServiceName()
						c.LBPolicy = cl.GetLbPolicy().String()
						c.TLS = cl.GetTransportSocket() != nil
					}
				}
				rep.Clusters = append(rep.Clusters, c)
			case typeEndpoint:
				e := EDS{Resource: res, Localities: []Locality{}}
				if raw != nil {
					var cla endpointpb.ClusterLoadAssignment
					if raw.UnmarshalTo(&cla) == nil {
						e.Localities = localities(&cla)
					}
				}
				rep.Endpoints = append(rep.Endpoints, e)
			}
		}
	}
	sort.Slice(rep.Listeners, func(i, j int) bool { return rep.Listeners[i].Name < rep.Listeners[j].Name })
	sort.Slice(rep.Routes, func(i, j int) bool { return rep.Routes[i].Name < rep.Routes[j].Name })
	sort.Slice(rep.Clusters, func(i, j int) bool { return rep.Clusters[i].Name < rep.Clusters[j].Name })
	sort.Slice(rep.Endpoints, func(i, j int) bool { return rep.Endpoints[i].Name < rep.Endpoints[j].Name })
}

func statusName(s adminpb.ClientResourceStatus) string { return s.String() }

// routeConfigName is the RDS name of a Listener's API listener (HTTP connection manager).
func routeConfigName(l *listenerpb.Listener) string {
	api := l.GetApiListener().GetApiListener()
	if api == nil {
		return ""
	}
	var hcm hcmpb.HttpConnectionManager
	if api.UnmarshalTo(&hcm) != nil {
		return ""
	}
	if rds := hcm.GetRds(); rds != nil {
		return rds.GetRouteConfigName()
	}
	return hcm.GetRouteConfig().GetName()
}

// routeClusters are the clusters a RouteConfiguration's routes name, sorted.
func routeClusters(rc *routepb.RouteConfiguration) []string {
	seen := map[string]bool{}
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			a := r.GetRoute()
			if a == nil {
				continue
			}
			if c := a.GetCluster(); c != "" {
				seen[c] = true
			}
			for _, wc := range a.GetWeightedClusters().GetClusters() {
				seen[wc.GetName()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func localities(cla *endpointpb.ClusterLoadAssignment) []Locality {
	out := []Locality{}
	for _, le := range cla.GetEndpoints() {
		loc := Locality{
			Region: le.GetLocality().GetRegion(), Zone: le.GetLocality().GetZone(), SubZone: le.GetLocality().GetSubZone(),
			Weight: le.GetLoadBalancingWeight().GetValue(), Priority: le.GetPriority(), Endpoints: []Endpoint{},
		}
		for _, lb := range le.GetLbEndpoints() {
			ep := Endpoint{Address: socketAddress(lb.GetEndpoint().GetAddress()), Health: lb.GetHealthStatus().String(),
				Weight: lb.GetLoadBalancingWeight().GetValue()}
			for filter, s := range lb.GetMetadata().GetFilterMetadata() {
				if ep.Metadata == nil {
					ep.Metadata = map[string]any{}
				}
				ep.Metadata[filter] = s.AsMap()
			}
			loc.Endpoints = append(loc.Endpoints, ep)
		}
		sort.Slice(loc.Endpoints, func(i, j int) bool { return loc.Endpoints[i].Address < loc.Endpoints[j].Address })
		out = append(out, loc)
	}
	return out
}

func socketAddress(a *corepb.Address) string {
	sa := a.GetSocketAddress()
	if sa == nil {
		return a.String()
	}
	return net.JoinHostPort(sa.GetAddress(), fmt.Sprint(sa.GetPortValue()))
}
