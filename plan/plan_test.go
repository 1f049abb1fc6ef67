package plan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	s := Step{Address: "manager/karmada/release", DependsOn: []string{"cluster/m/node-address"},
		Payload: Payload{Release: &Release{
			Values: map[string]any{"certs": map[string]any{"hosts": []any{"localhost", ""}}},
			Refs:   []ValueRef{{Path: []string{"certs", "hosts", "1"}, From: Ref{Step: "cluster/m/node-address", Output: OutputNodeIP}}},
		}}}
	outputs := map[string]Outputs{"cluster/m/node-address": {OutputNodeIP: "192.0.2.7"}}
	lookup := func(step, out string) (string, bool) { v, ok := outputs[step][out]; return v, ok }
	got, err := s.Resolve(lookup)
	if err != nil {
		t.Fatal(err)
	}
	hosts := got.Payload.Release.Values["certs"].(map[string]any)["hosts"].([]any)
	if !reflect.DeepEqual(hosts, []any{"localhost", "192.0.2.7"}) || got.Payload.Release.Refs != nil {
		t.Errorf("resolved = %+v", got.Payload.Release)
	}
	if orig := s.Payload.Release.Values["certs"].(map[string]any)["hosts"].([]any); orig[1] != "" {
		t.Errorf("Resolve wrote into the plan's step: %v", orig)
	}

	k := Step{Address: "manager/karmada/kubeconfig", Payload: Payload{KarmadaKubeconfig: &KarmadaKubeconfig{
		Server: Value{From: &Ref{Step: "cluster/m/node-address", Output: OutputNodeIP, Format: "https://%s:32443"}}}}}
	got, err = k.Resolve(lookup)
	if err != nil || got.Payload.KarmadaKubeconfig.Server != Known("https://192.0.2.7:32443") {
		t.Errorf("server = %+v, %v", got.Payload.KarmadaKubeconfig, err)
	}
	if k.Payload.KarmadaKubeconfig.Server.From == nil {
		t.Error("Resolve wrote into the plan's step")
	}

	missing := Step{Address: "member/eu/join", Payload: Payload{Join: &Join{
		APIEndpoint: Value{From: &Ref{Step: "cluster/eu/kubeconfig", Output: OutputAPIEndpoint}}}}}
	if _, err := missing.Resolve(lookup); err == nil || !strings.Contains(err.Error(), "cluster/eu/kubeconfig") {
		t.Errorf("an output nobody produced is an error naming the step, got %v", err)
	}
}

func TestValidateReferences(t *testing.T) {
	t.Parallel()
	ref := &Ref{Step: "cluster/eu/kubeconfig", Output: OutputAPIEndpoint}
	p := &Plan{Steps: []Step{
		{Address: "cluster/eu/kubeconfig"},
		{Address: "x"},
		{Address: "member/eu/join", DependsOn: []string{"x"}, Payload: Payload{Join: &Join{APIEndpoint: Value{From: ref}}}},
	}}
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), "member/eu/join -> cluster/eu/kubeconfig (referenced for apiEndpoint, not a dependency)") {
		t.Fatalf("a reference to a step that is not a dependency is invalid, got %v", err)
	}
	p.Steps[1].DependsOn = []string{"cluster/eu/kubeconfig"} // transitively is enough
	if err := p.Validate(); err != nil {
		t.Fatalf("a transitive dependency is enough: %v", err)
	}
}

func TestTarget(t *testing.T) {
	t.Parallel()
	p := &Plan{Steps: []Step{{Address: "cluster/eu"}, {Address: "cluster/eu/kubeconfig", DependsOn: []string{"cluster/eu"}},
		{Address: "member/eu/join", DependsOn: []string{"cluster/eu/kubeconfig"}}, {Address: "member/ap/join"}}}
	var got []string
	for _, s := range p.Target([]string{"member/eu"}).Steps {
		got = append(got, s.Address)
	}
	if !reflect.DeepEqual(got, []string{"cluster/eu", "cluster/eu/kubeconfig", "member/eu/join"}) {
		t.Errorf("target = %v", got)
	}
}

// A saved plan is JSON: every payload survives the round trip (the manifests' objects aside,
// which are pinned by their digest and never written).
func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	tags := []string{"team-a"}
	s := Step{Address: "cluster/eu", Kind: KindCluster, Action: Update, Payload: Payload{Cluster: &ClusterChange{
		Label: "eu", LinodeID: 7, Tags: &tags,
		UpdatePools: []PoolUpdate{{ID: 1, Type: "g6", Count: 2, Autoscaler: &Autoscaler{Enabled: false, Min: 1, Max: 3}}},
		CreatePools: []Pool{{Type: "g6", Count: 1}}, DeletePools: []PoolRef{{ID: 2, Type: "g7"}}}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Step
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("round trip:\n%+v\n%+v", back.Payload.Cluster, s.Payload.Cluster)
	}
	m := Step{Payload: Payload{Manifests: &Manifests{Digest: "sha256:x", Objects: []json.RawMessage{[]byte(`{"kind":"Secret"}`)}}}}
	if b, _ := json.Marshal(m); strings.Contains(string(b), "Secret") {
		t.Errorf("manifests' objects never reach a plan file: %s", b)
	}
}
