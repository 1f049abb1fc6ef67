package mesh

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// The steps below are written by hand as the planner writes them: the driver takes nothing
// but the step.

// Mesh release names and charts of the three components, as the planner names them.
var testReleases = map[string]struct{ name, chart string }{
	"base":     {"istio-base", "base"},
	"istiod":   {"istiod", "istiod"},
	"eastwest": {"istio-eastwestgateway", "gateway"},
}

const testRootAddr = "mesh/root-ca"

func meshAddr(member, part string) string { return "member/" + member + "/mesh/" + part }

func remoteAddr(in, peer string) string { return "member/" + in + "/mesh/remote-secret/" + peer }

func dur(d time.Duration) spec.Duration { return spec.Duration{Duration: d} }

func rootCAStep(keyType string, validity time.Duration) plan.Step {
	return plan.Step{Address: testRootAddr, Layer: plan.Mesh, Kind: plan.KindRootCA, Action: plan.Create,
		Payload: plan.Payload{RootCA: &plan.RootCA{KeyType: keyType, Validity: dur(validity)}}}
}

func namespaceStep(member, network string) plan.Step {
	return plan.Step{Address: meshAddr(member, "namespace"), Layer: plan.Mesh, Kind: plan.KindMeshNamespace,
		Action: plan.Create, Cluster: member,
		Payload: plan.Payload{Namespace: &plan.Namespace{Name: MeshNamespace, Labels: map[string]string{NetworkLabel: network}}}}
}

// caCertsStep is a create when replaces is nil, else a replace of that certificate.
func caCertsStep(member string, validity time.Duration, replaces *plan.Cert) plan.Step {
	action := plan.Create
	if replaces != nil {
		action = plan.Replace
	}
	return plan.Step{Address: meshAddr(member, "cacerts"), Layer: plan.Mesh, Kind: plan.KindCACerts,
		Action: action, Cluster: member,
		Payload: plan.Payload{CACerts: &plan.CACerts{Namespace: MeshNamespace, KeyType: KeyECDSAP256,
			Validity: dur(validity), Replaces: replaces}}}
}

// releaseValues are the planner's values of a component's chart in member.
func releaseValues(component, member, network, meshID string) map[string]any {
	switch component {
	case "base":
		return map[string]any{"global": map[string]any{"istioNamespace": MeshNamespace}}
	case "istiod":
		return map[string]any{"global": map[string]any{"meshID": meshID,
			"multiCluster": map[string]any{"clusterName": member}, "network": network}}
	}
	return map[string]any{"name": "istio-eastwestgateway", "networkGateway": network,
		"labels": map[string]any{"istio": "eastwestgateway", "app": "istio-eastwestgateway", NetworkLabel: network}}
}

func releaseStep(member, network, component string, chart spec.ChartSource) plan.Step {
	r := testReleases[component]
	return plan.Step{Address: meshAddr(member, component), Layer: plan.Mesh, Kind: plan.KindMeshRelease,
		Action: plan.Create, Cluster: member, Component: component,
		Payload: plan.Payload{Release: &plan.Release{Name: r.name, Namespace: MeshNamespace, Chart: chart,
			ChartName: r.chart, Values: releaseValues(component, member, network, "lab-mesh"), Timeout: dur(2 * time.Minute)}}}
}

func exposeStep(member string) plan.Step {
	return plan.Step{Address: meshAddr(member, "expose"), Layer: plan.Mesh, Kind: plan.KindExpose,
		Action: plan.Create, Cluster: member,
		Payload: plan.Payload{Gateway: &plan.Gateway{Namespace: MeshNamespace, Name: GatewayName}}}
}

func readerTokenStep(member string) plan.Step {
	return plan.Step{Address: meshAddr(member, "reader-token"), Layer: plan.Mesh, Kind: plan.KindReaderToken,
		Action: plan.Create, Cluster: member,
		Payload: plan.Payload{ReaderToken: &plan.ReaderToken{Namespace: MeshNamespace,
			ServiceAccount: ReaderServiceAcct, Secret: ReaderTokenSecret}}}
}

func remoteSecretStep(in, peer, endpoint string) plan.Step {
	return plan.Step{Address: remoteAddr(in, peer), Layer: plan.Mesh, Kind: plan.KindRemoteSecret,
		Action: plan.Create, Cluster: in, Peer: peer,
		Payload: plan.Payload{RemoteSecret: &plan.RemoteSecret{Namespace: MeshNamespace, Endpoint: plan.Known(endpoint)}}}
}

// remoteSecretDeleteStep has no payload, as a delete may.
func remoteSecretDeleteStep(in, peer string) plan.Step {
	return plan.Step{Address: remoteAddr(in, peer), Layer: plan.Mesh, Kind: plan.KindRemoteSecret,
		Action: plan.Delete, Cluster: in, Peer: peer}
}

func teardownStep(member string) plan.Step {
	return plan.Step{Address: meshAddr(member, "teardown"), Layer: plan.Mesh, Kind: plan.KindMeshTeardown,
		Action: plan.Delete, Cluster: member,
		Payload: plan.Payload{Teardown: &plan.Teardown{Namespace: MeshNamespace,
			Releases: []string{"istio-eastwestgateway", "istiod", "istio-base"}}}}
}

// testMember is what the mesh plan of a test needs of a member.
type testMember struct {
	name, network string
	// endpoint is where the other members reach its API.
	endpoint string
}

// meshPlan is the mesh layer of a plan for members that have no mesh yet, with the
// dependencies the planner gives it.
func meshPlan(members []testMember, chart spec.ChartSource, intermediateValidity time.Duration) *plan.Plan {
	p := &plan.Plan{Fleet: "meshlab"}
	add := func(s plan.Step, deps ...string) {
		s.DependsOn = deps
		p.Steps = append(p.Steps, s)
	}
	add(rootCAStep(KeyECDSAP256, 87600*time.Hour))
	for _, m := range members {
		n := m.name
		add(namespaceStep(n, m.network))
		add(caCertsStep(n, intermediateValidity, nil), meshAddr(n, "namespace"), testRootAddr)
		add(releaseStep(n, m.network, "base", chart), meshAddr(n, "cacerts"))
		add(readerTokenStep(n), meshAddr(n, "base"))
		add(releaseStep(n, m.network, "istiod", chart), meshAddr(n, "base"))
		add(releaseStep(n, m.network, "eastwest", chart), meshAddr(n, "istiod"))
		add(exposeStep(n), meshAddr(n, "eastwest"))
	}
	for _, in := range members {
		for _, peer := range members {
			if in.name != peer.name {
				add(remoteSecretStep(in.name, peer.name, peer.endpoint), meshAddr(peer.name, "reader-token"), meshAddr(in.name, "istiod"))
			}
		}
	}
	return p
}

// TestApplyRefusesMalformedSteps: what is wrong with a step is said before anything is read
// or written.
func TestApplyRefusesMalformedSteps(t *testing.T) {
	t.Parallel()
	store := &memFiles{}
	d := New(Config{Access: kube.Access{Store: store}, Store: store})
	withReplaces := caCertsStep("eu", time.Hour, &plan.Cert{RootFingerprint: "ab", NotAfter: "2026-01-01T00:00:00Z"})
	withReplaces.Action = plan.Create
	replaceWithout := caCertsStep("eu", time.Hour, nil)
	replaceWithout.Action = plan.Replace
	noPayload := namespaceStep("eu", "net-eu")
	noPayload.Payload = plan.Payload{}
	self := remoteSecretStep("eu", "eu", "https://eu:6443")
	unresolved := remoteSecretStep("eu", "ap", "")
	unresolved.Payload.RemoteSecret.Endpoint = plan.Value{From: &plan.Ref{Step: "member/ap/kubeconfig", Output: plan.OutputAPIEndpoint}}
	deleteNS := namespaceStep("eu", "net-eu")
	deleteNS.Action = plan.Delete
	noCluster := exposeStep("")
	teardownCreate := teardownStep("eu")
	teardownCreate.Action = plan.Create
	foreignKind := plan.Step{Address: "member/eu/join", Kind: plan.KindJoin, Action: plan.Create, Cluster: "eu"}
	cases := map[string]struct {
		step plan.Step
		want string
	}{
		"create with replaces":   {withReplaces, "names a certificate it replaces"},
		"replace without":        {replaceWithout, "names no certificate it replaces"},
		"no payload":             {noPayload, "carries no payload"},
		"remote secret for self": {self, "for itself"},
		"unresolved endpoint":    {unresolved, "not known"},
		"delete of a namespace":  {deleteNS, `action "delete"`},
		"no cluster":             {noCluster, "names no cluster"},
		"teardown as a create":   {teardownCreate, `action "create"`},
		"kind of another driver": {foreignKind, "does not apply join steps"},
		"root without payload":   {plan.Step{Address: testRootAddr, Kind: plan.KindRootCA, Action: plan.Create}, "carries no payload"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := d.Apply(context.Background(), tc.step)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one saying %q", err, tc.want)
			}
			if out != nil {
				t.Errorf("outputs %v", out)
			}
		})
	}
	if len(store.files) != 0 {
		t.Errorf("malformed steps wrote %d files to the store", len(store.files))
	}
}

func TestSameCert(t *testing.T) {
	t.Parallel()
	notAfter := time.Date(2027, 3, 1, 10, 30, 0, 0, time.UTC)
	cases := []struct {
		name string
		want plan.Cert
		same bool
	}{
		{"same", plan.Cert{RootFingerprint: "r1", NotAfter: "2027-03-01T10:30:00Z"}, true},
		{"same instant in another zone", plan.Cert{RootFingerprint: "r1", NotAfter: "2027-03-01T11:30:00+01:00"}, true},
		{"other expiry", plan.Cert{RootFingerprint: "r1", NotAfter: "2027-03-01T10:31:00Z"}, false},
		{"other root", plan.Cert{RootFingerprint: "r2", NotAfter: "2027-03-01T10:30:00Z"}, false},
		{"not RFC 3339", plan.Cert{RootFingerprint: "r1", NotAfter: "soon"}, false},
	}
	for _, tc := range cases {
		if got := sameCert(&tc.want, "r1", notAfter); got != tc.same {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.same)
		}
	}
}
