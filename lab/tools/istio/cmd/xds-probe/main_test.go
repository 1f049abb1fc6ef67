package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	statuspb "github.com/envoyproxy/go-control-plane/envoy/service/status/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The bootstrap has the shape of Istio's grpcxds one and the node istiod parses for a Pod.
func TestBootstrap(t *testing.T) {
	o := options{xds: "127.0.0.2:15010", target: "xds:///h:1", clusterID: "ap", network: "network2", namespace: "default",
		pod: "p", ip: "10.2.255.254", meshID: "mesh1", istioVersion: "1.31.0", serviceAcc: "default", labels: labelFlag{"app": "x"}, timeout: time.Second, poll: time.Millisecond}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	data, err := bootstrap(o)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		XDSServers []struct {
			ServerURI      string              `json:"server_uri"`
			ChannelCreds   []map[string]string `json:"channel_creds"`
			ServerFeatures []string            `json:"server_features"`
		} `json:"xds_servers"`
		Node struct {
			ID       string         `json:"id"`
			Metadata map[string]any `json:"metadata"`
		} `json:"node"`
		Template string `json:"server_listener_resource_name_template"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	if len(b.XDSServers) != 1 || b.XDSServers[0].ServerURI != o.xds || b.XDSServers[0].ChannelCreds[0]["type"] != "insecure" ||
		!reflect.DeepEqual(b.XDSServers[0].ServerFeatures, []string{"xds_v3"}) {
		t.Errorf("xds_servers %+v", b.XDSServers)
	}
	if b.Node.ID != "sidecar~10.2.255.254~p.default~default.svc.cluster.local" {
		t.Errorf("node id %s", b.Node.ID)
	}
	for k, v := range map[string]any{"GENERATOR": "grpc", "CLUSTER_ID": "ap", "NETWORK": "network2", "NAMESPACE": "default",
		"INSTANCE_IPS": "10.2.255.254", "MESH_ID": "mesh1", "ISTIO_VERSION": "1.31.0", "LABELS": map[string]any{"app": "x"}} {
		if !reflect.DeepEqual(b.Node.Metadata[k], v) {
			t.Errorf("metadata %s = %v, want %v", k, b.Node.Metadata[k], v)
		}
	}
	if b.Template != "xds.istio.io/grpc/lds/inbound/%s" {
		t.Errorf("listener template %q", b.Template)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing -xds, -target, -cluster-id, -ip"},
		{[]string{"-xds", "nohost", "-target", "xds:///a:1", "-cluster-id", "c", "-ip", "10.0.0.1"}, "-xds \"nohost\""},
		{[]string{"-xds", "h:1", "-target", "dns:///a:1", "-cluster-id", "c", "-ip", "10.0.0.1"}, "want xds:///"},
		{[]string{"-xds", "h:1", "-target", "xds:///a:1", "-cluster-id", "c", "-ip", "ten"}, "not an IP"},
		{[]string{"-xds", "h:1", "-target", "xds:///a:1", "-cluster-id", "c", "-ip", "10.0.0.1", "-timeout", "0s"}, "must be positive"},
		{[]string{"-label", "novalue"}, "want key=value"},
		{[]string{"-xds", "h:1", "extra"}, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q, want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

func xdsConfig(t *testing.T, typeURL, name string, status adminpb.ClientResourceStatus, m proto.Message) *statuspb.ClientConfig_GenericXdsConfig {
	t.Helper()
	x := &statuspb.ClientConfig_GenericXdsConfig{TypeUrl: typeURL, Name: name, ClientStatus: status, VersionInfo: "v1"}
	if m != nil {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		x.XdsConfig = a
	}
	return x
}

// fill and progress on CSDS answers made here: the chain from the listener to the endpoints,
// and what is missing at each stage.
func TestFillAndProgress(t *testing.T) {
	const (
		lds     = "hello.default.svc.cluster.local:5000"
		cluster = "outbound|5000||hello.default.svc.cluster.local"
	)
	hcm, err := anypb.New(&hcmpb.HttpConnectionManager{RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{RouteConfigName: cluster}}})
	if err != nil {
		t.Fatal(err)
	}
	listener := &listenerpb.Listener{Name: lds, ApiListener: &listenerpb.ApiListener{ApiListener: hcm}}
	route := &routepb.RouteConfiguration{Name: cluster, VirtualHosts: []*routepb.VirtualHost{{Routes: []*routepb.Route{{
		Action: &routepb.Route_Route{Route: &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: cluster}}}}}}}}
	cds := &clusterpb.Cluster{Name: cluster, ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_EDS},
		EdsClusterConfig: &clusterpb.Cluster_EdsClusterConfig{ServiceName: cluster}}
	meta := func(workload string) *corepb.Metadata {
		s, _ := structpb.NewStruct(map[string]any{"workload": workload})
		tls, _ := structpb.NewStruct(map[string]any{"tlsMode": "istio"})
		return &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": s, "envoy.transport_socket_match": tls}}
	}
	ep := func(addr string, port uint32, w uint32, health corepb.HealthStatus, workload string) *endpointpb.LbEndpoint {
		return &endpointpb.LbEndpoint{HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: &corepb.Address{
			Address: &corepb.Address_SocketAddress{SocketAddress: &corepb.SocketAddress{Address: addr, PortSpecifier: &corepb.SocketAddress_PortValue{PortValue: port}}}}}},
			HealthStatus: health, LoadBalancingWeight: wrapperspb.UInt32(w), Metadata: meta(workload)}
	}
	cla := &endpointpb.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpointpb.LocalityLbEndpoints{
		{Locality: &corepb.Locality{Region: "ap-south"}, LoadBalancingWeight: wrapperspb.UInt32(2), LbEndpoints: []*endpointpb.LbEndpoint{
			ep("10.2.1.3", 5000, 1, corepb.HealthStatus_HEALTHY, "hello;default;hello;;ap"), ep("10.2.1.2", 5000, 1, corepb.HealthStatus_HEALTHY, "hello;default;hello;;ap")}},
		{Locality: &corepb.Locality{Region: "eu-west"}, LoadBalancingWeight: wrapperspb.UInt32(2), LbEndpoints: []*endpointpb.LbEndpoint{
			ep("127.0.0.9", 15443, 2, corepb.HealthStatus_UNKNOWN, ";;;;eu")}},
	}}
	answer := func(xs ...*statuspb.ClientConfig_GenericXdsConfig) *statuspb.ClientStatusResponse {
		return &statuspb.ClientStatusResponse{Config: []*statuspb.ClientConfig{{GenericXdsConfigs: xs}}}
	}
	acked := adminpb.ClientResourceStatus_ACKED
	steps := []struct {
		resp    *statuspb.ClientStatusResponse
		min     int
		eds     bool
		missing string
	}{
		{answer(), 0, false, "no Listener requested yet"},
		{answer(xdsConfig(t, typeListener, lds, adminpb.ClientResourceStatus_REQUESTED, nil)), 0, false, "Listener " + lds + " REQUESTED"},
		{answer(xdsConfig(t, typeListener, lds, acked, listener)), 0, false, "no Cluster requested yet"},
		{answer(xdsConfig(t, typeListener, lds, acked, listener), xdsConfig(t, typeRoute, cluster, acked, route),
			xdsConfig(t, typeCluster, cluster, acked, cds)), 0, false, "ClusterLoadAssignment " + cluster + " not requested yet"},
		{answer(xdsConfig(t, typeListener, lds, acked, listener), xdsConfig(t, typeRoute, cluster, acked, route),
			xdsConfig(t, typeCluster, cluster, acked, cds), xdsConfig(t, typeEndpoint, cluster, adminpb.ClientResourceStatus_NACKED, nil)),
			0, false, "ClusterLoadAssignment " + cluster + " NACKED: bad"},
		{answer(xdsConfig(t, typeListener, lds, acked, listener), xdsConfig(t, typeRoute, cluster, acked, route),
			xdsConfig(t, typeCluster, cluster, acked, cds), xdsConfig(t, typeEndpoint, cluster, acked, cla)), 4, true, "3 endpoints, want at least 4"},
		{answer(xdsConfig(t, typeListener, lds, acked, listener), xdsConfig(t, typeRoute, cluster, acked, route),
			xdsConfig(t, typeCluster, cluster, acked, cds), xdsConfig(t, typeEndpoint, cluster, acked, cla)), 3, true, ""},
	}
	steps[4].resp.Config[0].GenericXdsConfigs[3].ErrorState = &adminpb.UpdateFailureState{Details: "bad"}
	for k, s := range steps {
		r := &Report{}
		fill(r, s.resp)
		eds, missing := r.progress(s.min)
		if eds != s.eds || missing != s.missing {
			t.Errorf("step %d: EDS acked %v, missing %q; want %v, %q", k, eds, missing, s.eds, s.missing)
		}
	}

	r := &Report{}
	fill(r, steps[6].resp)
	if r.Listeners[0].RouteConfig != cluster || !reflect.DeepEqual(r.Routes[0].Clusters, []string{cluster}) ||
		r.Clusters[0].Type != "EDS" || r.Clusters[0].EDSServiceName != cluster || r.Clusters[0].LBPolicy != "ROUND_ROBIN" || r.Clusters[0].TLS {
		t.Errorf("chain: %+v %+v %+v", r.Listeners, r.Routes, r.Clusters)
	}
	locs := r.Endpoints[0].Localities
	if len(locs) != 2 || locs[0].Region != "ap-south" || locs[0].Weight != 2 || len(locs[0].Endpoints) != 2 ||
		locs[0].Endpoints[0].Address != "10.2.1.2:5000" || locs[0].Endpoints[0].Health != "HEALTHY" ||
		locs[1].Endpoints[0].Address != "127.0.0.9:15443" || locs[1].Endpoints[0].Weight != 2 || locs[1].Endpoints[0].Health != "UNKNOWN" {
		t.Errorf("localities %+v", locs)
	}
	if w := locs[1].Endpoints[0].Metadata["istio"].(map[string]any)["workload"]; w != ";;;;eu" {
		t.Errorf("gateway workload metadata %v", w)
	}
	if got := r.endpointAddresses(); !reflect.DeepEqual(got, []string{"10.2.1.2:5000", "10.2.1.3:5000", "127.0.0.9:15443"}) {
		t.Errorf("endpointAddresses %v", got)
	}

	d := &dialRecorder{seen: map[string]bool{}}
	if _, all := d.covers(r.endpointAddresses()); all {
		t.Error("nothing dialed covers the endpoints")
	}
	for _, a := range []string{"127.0.0.9:15443", "10.2.1.2:5000", "10.2.1.3:5000", "10.2.1.3:5000"} {
		if c, err := d.dial(t.Context(), a); c != nil || err != errNoConnect {
			t.Fatalf("dial %s: %v %v", a, c, err)
		}
	}
	if dialed, all := d.covers(r.endpointAddresses()); !all || len(dialed) != 3 || dialed[0] != "10.2.1.2:5000" {
		t.Errorf("dialed %v, all %v", dialed, all)
	}
	if _, all := d.covers(nil); all {
		t.Error("no endpoints read as all dialed")
	}
}
