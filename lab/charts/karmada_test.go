package charts

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
)

func labFleet(karmadaVersion string) *spec.Fleet {
	f := &spec.Fleet{
		Metadata: spec.Metadata{Name: "lab"},
		Manager: spec.Manager{
			Name:    "cluster-manager",
			Karmada: spec.Karmada{Chart: spec.ChartSource{Name: ChartKarmada, Version: karmadaVersion}},
		},
		Members: []spec.Member{
			{Name: "eu", Network: "network-eu"},
			{Name: "ap", Network: "network-ap"},
		},
		Mesh: &spec.Mesh{Version: DefaultIstioVersion, MeshID: "mesh-lab"},
	}
	spec.ApplyDefaults(f)
	return f
}

// goModVersion reads the karmada requirement from the repository's go.mod.
func goModVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/karmada-io/karmada\s+(v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod does not require github.com/karmada-io/karmada")
	}
	return string(m[1])
}

func TestRepoVersionsDefault(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	if want := goModVersion(t); r.KarmadaVersion != want {
		t.Errorf("KarmadaVersion = %q, want go.mod's %q", r.KarmadaVersion, want)
	}
	if r.IstioVersion != DefaultIstioVersion {
		t.Errorf("IstioVersion = %q, want %q", r.IstioVersion, DefaultIstioVersion)
	}
	for _, name := range []string{ChartKarmada, ChartBase, ChartIstiod, ChartGateway} {
		if _, err := os.Stat(r.ChartPath(name)); err != nil {
			t.Errorf("chart %s: %v", name, err)
		}
	}
}

func TestKarmadaHostMode(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	const nodeIP = "127.0.0.10"
	values := planner.KarmadaValues(labFleet(r.KarmadaVersion), plan.Known(nodeIP))
	objs, err := render(t, r.ChartPath(ChartKarmada), spec.DefaultKarmadaNamespace, spec.DefaultKarmadaRelease, values)
	if err != nil {
		t.Fatalf("render host mode: %v", err)
	}

	kinds := objs.kinds()
	for _, k := range []string{"Deployment", "StatefulSet", "Service", "ConfigMap", "Job", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} {
		if kinds[k] == 0 {
			t.Errorf("no %s rendered", k)
		}
	}
	if r.KarmadaVersion == "v1.18.2" {
		// What v1.18.2 creates against a v1.36 API server (its post-install Job is for < 1.23 only).
		want := map[string]int{
			"Deployment": 6, "StatefulSet": 1, "Service": 5, "ConfigMap": 12, "Job": 4,
			"ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
		}
		for k, n := range want {
			if kinds[k] != n {
				t.Errorf("%d %s, want %d", kinds[k], k, n)
			}
		}
		if len(objs) != 31 {
			t.Errorf("%d objects, want 31:\n%s", len(objs), objs)
		}
	}

	pre, ok := objs.find("Job", "karmada-pre-install")
	if !ok || pre.Hook != "pre-install" {
		t.Errorf("pre-install Job: found %v, hook %q\n%s", ok, pre.Hook, objs)
	}
	for _, name := range []string{"karmada-apiserver", "karmada-controller-manager", "karmada-scheduler", "karmada-webhook", "karmada-aggregated-apiserver", "karmada-kube-controller-manager"} {
		if _, ok := objs.find("Deployment", name); !ok {
			t.Errorf("Deployment %s missing", name)
		}
	}

	svc, ok := objs.find("Service", "karmada-apiserver")
	if !ok {
		t.Fatalf("Service karmada-apiserver missing:\n%s", objs)
	}
	if typ := str(svc.Doc, "spec", "type"); typ != "NodePort" {
		t.Errorf("karmada-apiserver type %q, want NodePort", typ)
	}
	if np := field(svc.Doc, "spec", "ports", 0, "nodePort"); np != float64(spec.DefaultAPINodePort) {
		t.Errorf("karmada-apiserver nodePort %v, want %d", np, spec.DefaultAPINodePort)
	}

	// The node IP reaches the certificate hosts the pre-install Job signs for.
	if !strings.Contains(pre.Text, `"`+nodeIP+`"`) {
		t.Errorf("the pre-install Job's certificate hosts lack the node IP %s", nodeIP)
	}

	karmadaImage := regexp.MustCompile(`^docker\.io/karmada/karmada-[a-z-]+:(.+)$`)
	seenKarmada := 0
	for _, o := range objs {
		for _, img := range images(o.Doc) {
			if strings.HasSuffix(img, ":latest") || !strings.Contains(img, ":") {
				t.Errorf("%s %s: floating image %q", o.Kind, o.Name, img)
			}
			if m := karmadaImage.FindStringSubmatch(img); m != nil {
				seenKarmada++
				if m[1] != r.KarmadaVersion {
					t.Errorf("%s %s: image %q, want tag %s", o.Kind, o.Name, img, r.KarmadaVersion)
				}
			}
		}
	}
	if seenKarmada < 4 {
		t.Errorf("%d Karmada images, want one per Karmada component", seenKarmada)
	}
}

func TestKarmadaAgentMode(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	const endpoint = "https://127.0.0.2:6443"
	values := planner.AgentValues(labFleet(r.KarmadaVersion), "eu", plan.Known(endpoint), plan.Known("127.0.0.10"))
	// The driver fills the credentials at apply time; the plan shows placeholders.
	kc := values["agent"].(map[string]any)["kubeconfig"].(map[string]any)
	kc["caCrt"], kc["crt"], kc["key"] = "CA-PEM", "CERT-PEM", "KEY-PEM"

	objs, err := render(t, r.ChartPath(ChartKarmada), planner.AgentNamespace, planner.AgentRelease, values)
	if err != nil {
		t.Fatalf("render agent mode: %v", err)
	}
	dep, ok := objs.find("Deployment", planner.AgentRelease)
	if !ok {
		t.Fatalf("Deployment %s missing:\n%s", planner.AgentRelease, objs)
	}
	if _, ok := objs.find("Deployment", "karmada-apiserver"); ok {
		t.Errorf("agent mode renders the control plane:\n%s", objs)
	}
	cmd := strings.Join(stringsOf(field(dep.Doc, "spec", "template", "spec", "containers", 0, "command")), " ")
	for _, want := range []string{"--cluster-name=eu", "--cluster-api-endpoint=" + endpoint} {
		if !strings.Contains(cmd, want) {
			t.Errorf("agent command %q lacks %q", cmd, want)
		}
	}
	for _, img := range images(dep.Doc) {
		if want := "karmada-agent:" + r.KarmadaVersion; !strings.HasSuffix(img, want) {
			t.Errorf("agent image %q, want …%s", img, want)
		}
	}
	sec, ok := objs.find("Secret", planner.AgentRelease+"-kubeconfig")
	if !ok {
		t.Fatalf("Secret %s-kubeconfig missing:\n%s", planner.AgentRelease, objs)
	}
	if !strings.Contains(sec.Text, "https://127.0.0.10:32443") {
		t.Errorf("agent kubeconfig does not point at the Karmada API:\n%s", sec.Text)
	}
}

func stringsOf(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func TestPinImages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      string
		want    []string // lines expected in the output
		wantErr string
	}{
		{
			name: "anchor and helpers",
			in: "karmadaImageVersion: &karmadaImageVersion latest\n" +
				"cfssl:\n  image:\n    tag: latest\n" +
				"kubectl:\n  image:\n    tag: \"latest\"\n" +
				"scheduler:\n  image:\n    tag: *karmadaImageVersion\n",
			want: []string{
				"karmadaImageVersion: &karmadaImageVersion v9.8.7",
				"    tag: " + helperImageTags["cfssl"],
				"    tag: " + helperImageTags["kubectl"],
				"    tag: *karmadaImageVersion",
			},
		},
		{name: "no anchor", in: "scheduler:\n  image:\n    tag: v1\n", wantErr: "no karmadaImageVersion anchor"},
		{
			name:    "unknown floating tag",
			in:      "karmadaImageVersion: &karmadaImageVersion latest\nsearch:\n  image:\n    tag: latest\n",
			wantErr: "search.image.tag is latest",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := pinImages([]byte(tc.in), "v9.8.7")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(out), "\n")
			for _, w := range tc.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "latest") {
				t.Errorf("latest remains:\n%s", out)
			}
		})
	}
}

func TestCheckNoLatest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		values map[string]any
		bad    string
	}{
		{"pinned", map[string]any{"a": map[string]any{"image": map[string]any{"tag": "v1"}}}, ""},
		{"latest", map[string]any{"a": map[string]any{"image": map[string]any{"tag": "latest"}}}, "a.image.tag"},
		{"empty", map[string]any{"b": map[string]any{"tag": ""}}, "b.tag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkNoLatest(tc.values, "")
			if (err != nil) != (tc.bad != "") || (err != nil && !strings.Contains(err.Error(), tc.bad)) {
				t.Errorf("checkNoLatest = %v, want error naming %q", err, tc.bad)
			}
		})
	}
}
