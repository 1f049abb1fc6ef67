package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite examples/regions/fleet.schema.json from Schema()")

var examples = []string{"../examples/regions/fleet.yaml", "../examples/existing/fleet.yaml"}

func TestExamplesLoad(t *testing.T) {
	t.Parallel()
	regions := mustLoad(t, examples[0])
	if regions.Metadata.Name != "regions" {
		t.Errorf("name = %q", regions.Metadata.Name)
	}
	if got := regions.ClusterNames(); !reflect.DeepEqual(got, []string{"cluster-manager", "eu", "ap", "us"}) {
		t.Errorf("clusters = %v", got)
	}
	wantRegion := map[string]string{"cluster-manager": "eu-west", "eu": "eu-west", "ap": "ap-south", "us": "us-west"}
	wantNetwork := map[string]string{"eu": "network3", "ap": "network1", "us": "network2"}
	clusters := map[string]Cluster{"cluster-manager": regions.Manager.Cluster}
	for _, m := range regions.Members {
		clusters[m.Name] = m.Cluster
		if m.Network != wantNetwork[m.Name] {
			t.Errorf("%s network = %q, want %q", m.Name, m.Network, wantNetwork[m.Name])
		}
	}
	for name, c := range clusters {
		if c.Region != wantRegion[name] || c.K8sVersion != "1.33" || len(c.Pools) != 1 || c.Pools[0].Type != "g6-standard-2" || c.Pools[0].Count != 3 {
			t.Errorf("%s = %+v", name, c)
		}
	}
	if ch := regions.Manager.Karmada.Chart; ch.Repo != "https://raw.githubusercontent.com/karmada-io/karmada/master/charts" || ch.Name != "karmada" || ch.Version != "v1.18.2" {
		t.Errorf("karmada chart = %+v", ch)
	}
	if regions.Mesh.Version != "1.30.3" || regions.Mesh.MeshID != "mesh1" {
		t.Errorf("mesh = %+v", regions.Mesh)
	}
	w := regions.Workloads[0]
	if w.Name != "hello" || !reflect.DeepEqual(w.Weights, map[string]int64{"us": 2, "ap": 1, "eu": 2}) {
		t.Errorf("workload = %+v", w)
	}
	if len(w.Objects) != 2 || w.Objects[0].Kind != "Deployment" || w.Objects[1].Kind != "Service" ||
		w.Objects[0].Replicas == nil || *w.Objects[0].Replicas != 10 {
		t.Errorf("hello objects = %+v", w.Objects)
	}

	existing := mustLoad(t, examples[1])
	if existing.Provider.Linode != nil {
		t.Error("existing: a Linode provider was defaulted without LKE clusters")
	}
	home, _ := os.UserHomeDir()
	for _, c := range existing.clusters() {
		if c.Kubeconfig == nil || c.Kubeconfig.Path != filepath.Join(home, ".kube/config") || !strings.HasPrefix(c.Kubeconfig.Context, "k3d-") {
			t.Errorf("existing cluster = %+v", c)
		}
	}
	if len(existing.Members) != 3 || existing.JoinMode != Push || !existing.MeshOn() || len(existing.Workloads) != 1 {
		t.Errorf("existing = %+v", existing)
	}
}

func TestSchemaIsValidJSON(t *testing.T) {
	t.Parallel()
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatalf("Schema() is not JSON: %v", err)
	}
	if s["$schema"] != SchemaID || s["additionalProperties"] != false {
		t.Errorf("schema root = %v / additionalProperties %v", s["$schema"], s["additionalProperties"])
	}
	// Every object that lists properties forbids others.
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["properties"]; ok && x["additionalProperties"] != false {
				t.Errorf("%s allows additional properties", path)
			}
			for k, c := range x {
				walk(path+"/"+k, c)
			}
		case []any:
			for _, c := range x {
				walk(path+"/[]", c)
			}
		}
	}
	walk("#", s)
}

// TestSchemaCoversExamples walks every key of the example files through the schema.
func TestSchemaCoversExamples(t *testing.T) {
	t.Parallel()
	var schema map[string]any
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		for {
			if all, ok := s["allOf"].([]any); ok {
				s = all[0].(map[string]any)
				continue
			}
			if ref, ok := s["$ref"].(string); ok {
				s = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
				continue
			}
			return s
		}
	}
	for _, file := range examples {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		seen := 0
		var walk func(n *yaml.Node, s map[string]any, path string)
		walk = func(n *yaml.Node, s map[string]any, path string) {
			s = resolve(s)
			switch n.Kind {
			case yaml.MappingNode:
				props, _ := s["properties"].(map[string]any)
				extra, _ := s["additionalProperties"].(map[string]any)
				for i := 0; i+1 < len(n.Content); i += 2 {
					k := n.Content[i].Value
					seen++
					sub, ok := props[k].(map[string]any)
					if !ok {
						sub = extra
					}
					if sub == nil {
						t.Errorf("%s: %s.%s is not in the schema", file, path, k)
						continue
					}
					walk(n.Content[i+1], sub, path+"."+k)
				}
			case yaml.SequenceNode:
				items, _ := s["items"].(map[string]any)
				if items == nil {
					t.Errorf("%s: %s is a list, the schema says %v", file, path, s["type"])
					return
				}
				for _, c := range n.Content {
					walk(c, items, path+"[]")
				}
			}
		}
		walk(doc.Content[0], schema, "")
		if seen < 20 {
			t.Errorf("%s: only %d keys walked", file, seen)
		}
	}
}

// TestSchemaFileIsCurrent keeps the schema the examples point editors at in step with Schema().
func TestSchemaFileIsCurrent(t *testing.T) {
	t.Parallel()
	const file = "../examples/regions/fleet.schema.json"
	if *update {
		if err := os.WriteFile(file, Schema(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Schema()) {
		t.Errorf("%s is stale: run go test ./spec -run TestSchemaFileIsCurrent -update", file)
	}
}

// TestSchemaDescriptionsNameRealFields keeps the description and constraint tables honest.
func TestSchemaDescriptionsNameRealFields(t *testing.T) {
	t.Parallel()
	fields := map[string]bool{}
	var visit func(t reflect.Type)
	seenTypes := map[reflect.Type]bool{}
	visit = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || ty == durationType || seenTypes[ty] {
			return
		}
		seenTypes[ty] = true
		for _, f := range fieldsOf(ty).list {
			fields[ty.Name()+"."+f.name] = true
			fields[f.owner.Name()+"."+f.name] = true
			visit(f.typ)
		}
	}
	visit(reflect.TypeOf(Fleet{}))
	var keys []string
	for k := range descriptions {
		keys = append(keys, k)
	}
	for k := range constraints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fields[k] {
			t.Errorf("schema table key %q names no field", k)
		}
	}
	for _, main := range []string{"Fleet.manager", "Fleet.members", "Member.network", "Workload.weights"} {
		if descriptions[main] == "" {
			t.Errorf("%s has no description", main)
		}
	}
}
