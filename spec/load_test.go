package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// typoFleet has a misspelled field in one workload and a weight for an unknown member in
// another; line and column of both are asserted below.
const typoFleet = `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: typos
manager:
  name: manager
  kubeconfig: {path: kubeconfig}
  karmada:
    chart: {repo: https://example.com/charts, version: v1.18.2}
members:
  - name: eu
    kubeconfig: {path: kubeconfig}
workloads:
  - name: web
    resources: [{apiVersion: apps/v1, kind: Deployment}]
    wieghts:
      eu: 1
  - name: api
    resources: [{apiVersion: apps/v1, kind: Deployment}]
    weights:
      eu: 1
      xx: 2
`

func TestAllProblemsAtOnceWithPositions(t *testing.T) {
	t.Parallel()
	path := writeFleet(t, typoFleet, nil)
	list := loadErrors(t, path)
	want := []FieldError{
		{File: path, Line: 16, Col: 5, Path: "workloads[0].wieghts", Msg: "unknown field `wieghts`, did you mean `weights`?"},
		{File: path, Line: 22, Col: 7, Path: "workloads[1].weights.xx", Msg: `"xx" is not a member of this fleet: want one of eu`},
	}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("errors:\n%v\nwant:\n%v", (&Errors{List: list}).Error(), (&Errors{List: want}).Error())
	}
	wantText := path + ":16:5: workloads[0].wieghts: unknown field `wieghts`, did you mean `weights`?\n" +
		path + `:22:7: workloads[1].weights.xx: "xx" is not a member of this fleet: want one of eu`
	if got := (&Errors{List: list}).Error(); got != wantText {
		t.Errorf("Error() =\n%s\nwant\n%s", got, wantText)
	}
}

func TestErrorsSortedByPosition(t *testing.T) {
	t.Parallel()
	doc := baseFleet()
	set(t, doc, "safety.maxDeleteShare", 2)
	set(t, doc, "apiVersion", "v1")
	set(t, doc, "members[1].joinMode", "Sideways")
	list := loadErrors(t, writeFleet(t, doc, nil))
	if len(list) != 3 {
		t.Fatalf("got %d errors, want 3:\n%v", len(list), (&Errors{List: list}).Error())
	}
	for i := 1; i < len(list); i++ {
		a, b := list[i-1], list[i]
		if a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col) {
			t.Errorf("errors out of order: %v before %v", a, b)
		}
	}
}

func TestDecodingPositions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		want      FieldError // File is filled in
	}{
		{"syntax error", "apiVersion: reconcile.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: [a\n", FieldError{Line: 4, Msg: "invalid YAML: did not find expected ',' or ']'"}},
		{"block mapping", "apiVersion: x\nkind: Fleet\nmetadata:\n  name: a\n b: c\n", FieldError{Line: 5, Msg: "invalid YAML: did not find expected key"}},
		{"unterminated quote", "apiVersion: x\nkind: Fleet\nmetadata:\n  name: \"a\n", FieldError{Line: 4, Msg: "invalid YAML: found unexpected end of stream"}},
		{"empty file", "# nothing\n", FieldError{Line: 1, Col: 1, Msg: "the file is empty: want a fleet document starting with apiVersion: reconcile.dev/v1alpha1 and kind: Fleet"}},
		{"not a mapping", "- a\n- b\n", FieldError{Line: 1, Col: 1, Msg: "want a fleet document (a mapping starting with apiVersion: reconcile.dev/v1alpha1 and kind: Fleet), got a list"}},
		{"two documents", "kind: Fleet\n---\nkind: Fleet\n", FieldError{Line: 2, Col: 1, Msg: "the file holds 2 YAML documents: want exactly one fleet document"}},
		{"duplicate key", baseYAML(t) + "kind: Fleet\n", FieldError{Line: strings.Count(baseYAML(t), "\n") + 1, Col: 1, Path: "kind", Msg: `duplicate key "kind" (first set on line ` + lineOf(t, baseYAML(t), "kind:") + ")"}},
		{"wrong type in a nested list", strings.Replace(baseYAML(t), "count: 3", "count: three", 1), FieldError{Line: 0, Col: 0, Path: "manager.pools[0].count", Msg: `want a whole number, got the string "three"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFleet(t, tc.doc, nil)
			list := loadErrors(t, path)
			want := tc.want
			want.File = path
			if want.Path == "manager.pools[0].count" { // position of the value "three"
				line := lineOf(t, tc.doc, "count: three")
				want.Line, _ = strconv.Atoi(line)
				want.Col = strings.Index(strings.Split(tc.doc, "\n")[want.Line-1], "three") + 1
			}
			if len(list) != 1 || list[0] != want {
				t.Errorf("errors:\n%v\nwant:\n%v", (&Errors{List: list}).Error(), want.Error())
			}
		})
	}
}

func baseYAML(t *testing.T) string {
	data, err := os.ReadFile(writeFleet(t, baseFleet(), nil))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// lineOf is the 1-based line of the first line starting (after indentation) with prefix.
func lineOf(t *testing.T, doc, prefix string) string {
	for i, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " -"), prefix) {
			return strconv.Itoa(i + 1)
		}
	}
	t.Fatalf("no line starts with %q", prefix)
	return ""
}

func TestMisspelledRequiredFieldIsReportedOnce(t *testing.T) {
	t.Parallel()
	doc := baseFleet()
	w := doc["workloads"].([]any)[0].(map[string]any)
	w["weigths"] = w["weights"]
	delete(w, "weights")
	list := loadErrors(t, writeFleet(t, doc, nil))
	if len(list) != 1 || list[0].Msg != "unknown field `weigths`, did you mean `weights`?" {
		t.Errorf("got:\n%v\nwant only the unknown field, not also a missing weights", (&Errors{List: list}).Error())
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	f := mustLoad(t, writeFleet(t, baseFleet(), nil))
	l := f.Provider.Linode
	if l == nil {
		t.Fatal("Provider.Linode is nil with LKE clusters; want it defaulted")
	}
	share := 0.34
	checks := []struct {
		name      string
		got, want any
	}{
		{"provider.linode.tokenEnv", l.TokenEnv, "LINODE_TOKEN"},
		{"provider.linode.requestsPerSecond", l.RequestsPerSecond, 10.0},
		{"provider.linode.waitTimeout", l.WaitTimeout.Duration, 20 * time.Minute},
		{"joinMode", f.JoinMode, Push},
		{"manager.karmada.release", f.Manager.Karmada.Release, "karmada"},
		{"manager.karmada.namespace", f.Manager.Karmada.Namespace, "karmada-system"},
		{"manager.karmada.apiNodePort", f.Manager.Karmada.APINodePort, 32443},
		{"manager.karmada.timeout", f.Manager.Karmada.Timeout.Duration, 10 * time.Minute},
		{"manager.karmada.chart.name", f.Manager.Karmada.Chart.Name, "karmada"},
		{"workloads[0].namespace", f.Workloads[0].Namespace, "default"},
		{"mesh.enabled", *f.Mesh.Enabled, true},
		{"mesh.eastWestGateway", *f.Mesh.EastWestGateway, true},
		{"mesh.ca.keyType", f.Mesh.CA.KeyType, "rsa-4096"},
		{"mesh.ca.rootValidity", f.Mesh.CA.RootValidity.Duration, 87600 * time.Hour},
		{"mesh.ca.intermediateValidity", f.Mesh.CA.IntermediateValidity.Duration, 87600 * time.Hour},
		{"mesh.ca.renewBefore", f.Mesh.CA.RenewBefore.Duration, 720 * time.Hour},
		{"mesh.timeout", f.Mesh.Timeout.Duration, 5 * time.Minute},
		{"mesh.chart.repo", f.Mesh.Chart.Repo, "https://istio-release.storage.googleapis.com/charts"},
		{"mesh.chart.version", f.Mesh.Chart.Version, "1.30.3"},
		{"safety.maxDeleteShare", *f.Safety.MaxDeleteShare, share},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if f.Source == "" || !strings.HasSuffix(f.Source, "fleet.yaml") {
		t.Errorf("Source = %q, want the file path", f.Source)
	}
}

func TestExplicitValuesWinOverDefaults(t *testing.T) {
	t.Parallel()
	doc := baseFleet()
	set(t, doc, "provider.linode", map[string]any{"tokenEnv": "MY_TOKEN", "requestsPerSecond": 2.5, "waitTimeout": "1h"})
	set(t, doc, "manager.karmada.release", "k")
	set(t, doc, "manager.karmada.apiNodePort", 30001)
	set(t, doc, "joinMode", "Pull")
	set(t, doc, "mesh.eastWestGateway", false)
	f := mustLoad(t, writeFleet(t, doc, nil))
	if l := f.Provider.Linode; l.TokenEnv != "MY_TOKEN" || l.RequestsPerSecond != 2.5 || l.WaitTimeout.Duration != time.Hour {
		t.Errorf("linode = %+v", l)
	}
	if k := f.Manager.Karmada; k.Release != "k" || k.APINodePort != 30001 {
		t.Errorf("karmada = %+v", k)
	}
	if f.JoinMode != Pull || *f.Mesh.EastWestGateway {
		t.Errorf("joinMode = %s, eastWestGateway = %v", f.JoinMode, *f.Mesh.EastWestGateway)
	}
}

func TestPathsResolved(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	doc := baseFleet()
	set(t, doc, "provider.linode.tokenFile", "secrets/token")
	set(t, doc, "kubeconfigDir", "~/kubeconfigs")
	del(t, doc, "members[0].region")
	del(t, doc, "members[0].k8sVersion")
	del(t, doc, "members[0].pools")
	set(t, doc, "members[0].kubeconfig", map[string]any{"path": "~/.kube/config"})
	path := writeFleet(t, doc, nil)
	dir := filepath.Dir(path)
	f := mustLoad(t, path)
	for _, c := range []struct{ name, got, want string }{
		{"tokenFile", f.Provider.Linode.TokenFile, filepath.Join(dir, "secrets/token")},
		{"kubeconfigDir", f.KubeconfigDir, filepath.Join(home, "kubeconfigs")},
		{"kubeconfig.path", f.Members[0].Kubeconfig.Path, filepath.Join(home, ".kube/config")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	t.Parallel()
	doc := `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata: {name: anchors}
manager:
  name: manager
  <<: &lke {region: eu-west, k8sVersion: "1.33", pools: [{type: g6-standard-2, count: 3}]}
  karmada: {chart: {path: chart}}
members:
  - {name: eu, <<: *lke}
  - {name: us, <<: *lke, region: us-west}
`
	f := mustLoad(t, writeFleet(t, doc, map[string]string{"chart/Chart.yaml": "name: karmada\n"}))
	if f.Members[1].Region != "us-west" || f.Members[0].Region != "eu-west" || f.Members[1].Pools[0].Count != 3 {
		t.Errorf("members = %+v", f.Members)
	}
}

const helloManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 10
---
# an empty document is skipped
---
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: Service
metadata: {name: hello, namespace: other}
`

func TestManifests(t *testing.T) {
	t.Parallel()
	doc := baseFleet()
	set(t, doc, "workloads[0].namespace", "web")
	set(t, doc, "workloads[0].manifests", []any{"hello.yaml", "more"})
	path := writeFleet(t, doc, map[string]string{
		"hello.yaml":           helloManifests,
		"more/b.yml":           "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n",
		"more/a.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n",
		"more/ignored.txt":     "not: a manifest",
		"more/nested/c.yaml":   "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
		"unreferenced.yaml":    "not loaded",
		"more/nested/empty.md": "",
	})
	f := mustLoad(t, path)
	w := f.Workloads[0]
	type brief struct{ kind, ns, name string }
	var got []brief
	for _, o := range w.Objects {
		got = append(got, brief{o.Kind, o.Namespace, o.Name})
	}
	want := []brief{
		{"Deployment", "web", "hello"}, {"Namespace", "", "team"}, {"Service", "other", "hello"},
		{"ConfigMap", "web", "cfg"}, {"ClusterRole", "", "reader"}, {"Secret", "web", "s"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("objects = %v, want %v", got, want)
	}
	if r := w.Objects[0].Replicas; r == nil || *r != 10 {
		t.Errorf("deployment replicas = %v, want 10", r)
	}
	if w.Objects[1].Replicas != nil {
		t.Errorf("namespace replicas = %v, want nil", *w.Objects[1].Replicas)
	}
	var deploy map[string]any
	if err := json.Unmarshal(w.Objects[0].Raw, &deploy); err != nil {
		t.Fatal(err)
	}
	if ns := deploy["metadata"].(map[string]any)["namespace"]; ns != "web" {
		t.Errorf("Raw namespace = %v, want the defaulted web", ns)
	}
	raws := make([]json.RawMessage, len(w.Objects))
	for i, o := range w.Objects {
		raws[i] = o.Raw
	}
	all, _ := json.Marshal(raws)
	sum := sha256.Sum256(all)
	if w.ManifestDigest != hex.EncodeToString(sum[:]) {
		t.Errorf("ManifestDigest = %s, want sha256 of the objects' JSON", w.ManifestDigest)
	}

	// The digest follows the content.
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "hello.yaml"), []byte(strings.Replace(helloManifests, "replicas: 10", "replicas: 11", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	f2 := mustLoad(t, path)
	if f2.Workloads[0].ManifestDigest == w.ManifestDigest {
		t.Error("ManifestDigest did not change with the manifests")
	}
	if f3 := mustLoad(t, path); f3.Workloads[0].ManifestDigest != f2.Workloads[0].ManifestDigest {
		t.Error("ManifestDigest differs between two loads of the same files")
	}
}

func TestManifestProblemsCarryTheManifestPosition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content string
		line, col     int
		msg           string
	}{
		{"syntax", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n", 4, 0, "invalid YAML: did not find expected ',' or ']'"},
		{"missing kind", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n", 5, 1, "kind is missing (e.g. Deployment)"},
		{"not an object", "- a\n- b\n", 1, 1, "want a Kubernetes object (a mapping with apiVersion, kind and metadata), got a list (is this a manifest?)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := baseFleet()
			set(t, doc, "workloads[0].manifests", []any{"m.yaml"})
			path := writeFleet(t, doc, map[string]string{"m.yaml": tc.content})
			list := loadErrors(t, path)
			want := FieldError{File: filepath.Join(filepath.Dir(path), "m.yaml"), Line: tc.line, Col: tc.col, Msg: tc.msg}
			if len(list) != 1 || list[0] != want {
				t.Errorf("errors:\n%v\nwant:\n%v", (&Errors{List: list}).Error(), want.Error())
			}
		})
	}
}

func TestFleetHelpers(t *testing.T) {
	t.Parallel()
	doc := baseFleet()
	set(t, doc, "members[1].joinMode", "Pull")
	f := mustLoad(t, writeFleet(t, doc, nil))
	if got := f.ClusterNames(); !reflect.DeepEqual(got, []string{"cluster-manager", "eu", "ap"}) {
		t.Errorf("ClusterNames() = %v", got)
	}
	if got := f.MemberJoinMode(f.Members[0]); got != Push {
		t.Errorf("MemberJoinMode(eu) = %s, want the fleet default Push", got)
	}
	if got := f.MemberJoinMode(f.Members[1]); got != Pull {
		t.Errorf("MemberJoinMode(ap) = %s, want its own Pull", got)
	}
	if m, ok := f.Member("ap"); !ok || m.Region != "ap-south" {
		t.Errorf("Member(ap) = %v, %v", m, ok)
	}
	if _, ok := f.Member("cluster-manager"); ok {
		t.Error("Member(cluster-manager) found the manager")
	}
	if !f.MeshOn() {
		t.Error("MeshOn() = false with a mesh")
	}
	if (&Fleet{}).MeshOn() {
		t.Error("MeshOn() = true without a mesh")
	}
}
