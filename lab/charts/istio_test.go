package charts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// TestIstioModuleVersion: the module version the charts come from is the one
// lab/tools/istio/go.mod requires (what build.sh downloads), and the version stamped on the
// charts is the one that snapshot stands for.
func TestIstioModuleVersion(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "tools", "istio", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(?:require\s+|\s+)istio\.io/istio\s+(v\S+)`).FindSubmatch(data)
	if m == nil || string(m[1]) != IstioModuleVersion {
		t.Errorf("lab/tools/istio/go.mod requires istio.io/istio %q, want IstioModuleVersion %s", m, IstioModuleVersion)
	}
	dir, err := IstioModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	v, err := istioChartVersion(dir, IstioModuleVersion)
	if err != nil {
		t.Fatal(err)
	}
	if v != DefaultIstioVersion {
		t.Errorf("the snapshot stands for %s, DefaultIstioVersion is %s", v, DefaultIstioVersion)
	}
	if _, err := istioChartVersion(dir, "v1.31.0"); err == nil {
		t.Error("a release version taken for a snapshot")
	}
}

// TestIstioCharts: the repository's Istio charts are Istio's own (the module's Chart.yaml and
// templates), with only the version stamped.
func TestIstioCharts(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	dir, err := IstioModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	for name, sub := range istioChartDirs {
		c := loadChart(t, r.ChartPath(name))
		if c.Metadata.Version != r.IstioVersion || c.Metadata.AppVersion != r.IstioVersion {
			t.Errorf("%s version %s appVersion %s, want %s", name, c.Metadata.Version, c.Metadata.AppVersion, r.IstioVersion)
		}
		for _, tpl := range c.Templates {
			want, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(sub), filepath.FromSlash(tpl.Name)))
			if err != nil {
				t.Errorf("%s: %s is not in the module: %v", name, tpl.Name, err)
				continue
			}
			if string(want) != string(tpl.Data) {
				t.Errorf("%s: %s differs from the module's", name, tpl.Name)
			}
		}
	}
}

func TestIstioBase(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	f := labFleet(r.KarmadaVersion)
	objs, err := render(t, r.ChartPath(ChartBase), planner.MeshNamespace, planner.MeshReleaseName(planner.ComponentBase), planner.IstioBaseValues(f, "eu"))
	if err != nil {
		t.Fatalf("render base: %v", err)
	}
	// The account the reader token (and so every remote secret) is of comes from the base chart:
	// the planner's payload names it, the driver's observer looks for it.
	if planner.ReaderServiceAccount != mesh.ReaderServiceAcct {
		t.Errorf("planner's reader account %q, the driver's %q", planner.ReaderServiceAccount, mesh.ReaderServiceAcct)
	}
	sa, ok := objs.find("ServiceAccount", planner.ReaderServiceAccount)
	if !ok || sa.Namespace != planner.MeshNamespace {
		t.Errorf("%s in %q (found %v)\n%s", planner.ReaderServiceAccount, sa.Namespace, ok, objs)
	}
	if n := objs.kinds()["CustomResourceDefinition"]; n < 10 {
		t.Errorf("%d CRDs, want Istio's (15 or so)", n)
	}
	for _, kind := range []string{"Gateway", "VirtualService", "DestinationRule", "ServiceEntry"} {
		plural := strings.ToLower(kind) + "s"
		if kind == "ServiceEntry" {
			plural = "serviceentries"
		}
		crd, ok := objs.find("CustomResourceDefinition", plural+".networking.istio.io")
		if !ok {
			t.Errorf("CRD %s.networking.istio.io missing", plural)
			continue
		}
		if got := str(crd.Doc, "spec", "names", "kind"); got != kind {
			t.Errorf("kind %q, want %q", got, kind)
		}
		// The driver writes the cross-network Gateway as networking.istio.io/v1.
		versions, _ := field(crd.Doc, "spec", "versions").([]any)
		v1 := false
		for _, v := range versions {
			v1 = v1 || (str(v, "name") == "v1" && field(v, "served") == true)
		}
		if !v1 {
			t.Errorf("%s: v1 not served", crd.Name)
		}
	}
	// Validation fails open until istiod answers (no istiod runs in the lab): upstream's chart
	// installs it with failurePolicy Ignore, and istiod sets Fail once its webhook is ready.
	vwc, ok := objs.find("ValidatingWebhookConfiguration", "istiod-default-validator")
	if !ok {
		t.Fatalf("ValidatingWebhookConfiguration istiod-default-validator missing:\n%s", objs)
	}
	for _, h := range field(vwc.Doc, "webhooks").([]any) {
		if str(h, "failurePolicy") != "Ignore" {
			t.Errorf("webhook %s failurePolicy %q on install, want Ignore", str(h, "name"), str(h, "failurePolicy"))
		}
	}
}

func TestIstiod(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	f := labFleet(r.KarmadaVersion)
	ns := planner.MeshNamespace
	objs, err := render(t, r.ChartPath(ChartIstiod), ns, planner.MeshReleaseName(planner.ComponentIstiod), planner.IstiodValues(f, "eu"))
	if err != nil {
		t.Fatalf("render istiod: %v", err)
	}

	// What the driver waits for after the istiod release.
	dep, ok := objs.find("Deployment", mesh.IstiodDeployment)
	if !ok {
		t.Fatalf("Deployment istiod missing:\n%s", objs)
	}
	if env := containerEnv(dep.Doc); env["CLUSTER_ID"] != "eu" {
		t.Errorf("istiod env CLUSTER_ID=%q, want eu", env["CLUSTER_ID"])
	}
	wh, ok := objs.find("MutatingWebhookConfiguration", mesh.InjectorWebhook)
	if !ok {
		t.Fatalf("MutatingWebhookConfiguration %s missing:\n%s", mesh.InjectorWebhook, objs)
	}
	for _, h := range field(wh.Doc, "webhooks").([]any) {
		svc := field(h, "clientConfig", "service")
		if str(svc, "name") != "istiod" || str(svc, "namespace") != ns {
			t.Errorf("webhook %s calls %v, want istiod.%s", str(h, "name"), svc, ns)
		}
	}
	vwc, ok := objs.find("ValidatingWebhookConfiguration", "istio-validator-"+ns)
	if !ok {
		t.Fatalf("ValidatingWebhookConfiguration istio-validator-%s missing:\n%s", ns, objs)
	}
	for _, h := range field(vwc.Doc, "webhooks").([]any) {
		if str(h, "failurePolicy") != "Ignore" {
			t.Errorf("webhook %s failurePolicy %q on install, want Ignore", str(h, "name"), str(h, "failurePolicy"))
		}
	}

	// The mesh, cluster and network of the member, as istiod and the injector read them.
	cm, ok := objs.find("ConfigMap", "istio")
	if !ok || !strings.Contains(str(cm.Doc, "data", "mesh"), "meshId: mesh-lab") {
		t.Errorf("ConfigMap istio lacks the mesh ID (found %v):\n%s", ok, cm.Text)
	}
	inj, ok := objs.find("ConfigMap", "istio-sidecar-injector")
	if !ok {
		t.Fatalf("ConfigMap istio-sidecar-injector missing:\n%s", objs)
	}
	var injected struct {
		Global struct {
			MeshID, Network string
			MultiCluster    struct{ ClusterName string }
		}
	}
	if err := json.Unmarshal([]byte(str(inj.Doc, "data", "values")), &injected); err != nil {
		t.Fatalf("injector values: %v", err)
	}
	if g := injected.Global; g.MeshID != "mesh-lab" || g.Network != "network-eu" || g.MultiCluster.ClusterName != "eu" {
		t.Errorf("injector values global %+v, want mesh-lab, network-eu, eu", g)
	}

	// The reader role is Istio's: what another member's istiod may do here through a remote
	// secret is the chart's decision, bound to the account the reader token is of.
	name := "istio-reader-clusterrole-" + ns
	role, ok := objs.find("ClusterRole", name)
	if !ok {
		t.Fatalf("ClusterRole %s missing:\n%s", name, objs)
	}
	readable := map[string]bool{}
	for _, rule := range field(role.Doc, "rules").([]any) {
		if strings.Join(stringsOf(field(rule, "verbs")), ",") == "get,list,watch" {
			for _, res := range stringsOf(field(rule, "resources")) {
				readable[res] = true
			}
		}
	}
	for _, res := range []string{"services", "endpoints", "pods", "nodes", "namespaces", "secrets", "endpointslices"} {
		if !readable[res] {
			t.Errorf("reader role cannot get/list/watch %s", res)
		}
	}
	binding, ok := objs.find("ClusterRoleBinding", name)
	if !ok {
		t.Fatalf("ClusterRoleBinding %s missing", name)
	}
	if str(binding.Doc, "roleRef", "name") != name ||
		str(binding.Doc, "subjects", 0, "name") != mesh.ReaderServiceAcct ||
		str(binding.Doc, "subjects", 0, "namespace") != ns {
		t.Errorf("binding does not bind %s to %s/%s:\n%s", name, ns, mesh.ReaderServiceAcct, binding.Text)
	}
	// No revision tag objects: the release is the default revision, untagged.
	for _, o := range objs {
		if strings.HasPrefix(o.Name, "istio-revision-tag-") {
			t.Errorf("%s %s: no revision tag is asked for", o.Kind, o.Name)
		}
	}
}

func TestIstioGateway(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	f := labFleet(r.KarmadaVersion)
	eastWest := planner.EastWestValues(f, "ap")
	nodePort := planner.EastWestValues(f, "ap")
	nodePort["service"] = map[string]any{
		"type":        "NodePort",
		"annotations": map[string]any{"traffic.istio.io/nodeSelector": "{}"},
	}
	cases := []struct {
		name, release string
		values        map[string]any
		wantName      string
		wantType      string
		wantLabels    map[string]string
		wantPorts     map[string]float64
	}{
		{
			name: "east-west", release: planner.MeshReleaseName(planner.ComponentEastWest), values: eastWest,
			wantName: "istio-eastwestgateway", wantType: "LoadBalancer",
			wantLabels: map[string]string{"app": "istio-eastwestgateway", "istio": "eastwestgateway", "topology.istio.io/network": "network-ap"},
			wantPorts:  map[string]float64{"status-port": 15021, "tls": 15443, "tls-istiod": 15012, "tls-webhook": 15017},
		},
		{
			name: "east-west on node ports", release: "eastwest", values: nodePort,
			wantName: "istio-eastwestgateway", wantType: "NodePort",
			wantLabels: map[string]string{"app": "istio-eastwestgateway", "istio": "eastwestgateway", "topology.istio.io/network": "network-ap"},
			wantPorts:  map[string]float64{"status-port": 15021, "tls": 15443, "tls-istiod": 15012, "tls-webhook": 15017},
		},
		{
			name: "ingress", release: planner.MeshReleaseName(planner.ComponentIngress), values: planner.IngressValues(f, "ap"),
			wantName: "istio-ingressgateway", wantType: "LoadBalancer",
			wantLabels: map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"},
			wantPorts:  map[string]float64{"status-port": 15021, "http2": 80, "https": 443},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs, err := render(t, r.ChartPath(ChartGateway), planner.MeshNamespace, tc.release, tc.values)
			if err != nil {
				t.Fatalf("render gateway: %v", err)
			}
			svc, ok := objs.find("Service", tc.wantName)
			if !ok {
				t.Fatalf("Service %s missing:\n%s", tc.wantName, objs)
			}
			dep, ok := objs.find("Deployment", tc.wantName)
			if !ok {
				t.Fatalf("Deployment %s missing:\n%s", tc.wantName, objs)
			}
			if got := str(svc.Doc, "spec", "type"); got != tc.wantType {
				t.Errorf("service type %q, want %q", got, tc.wantType)
			}
			for k, v := range tc.wantLabels {
				if got := str(svc.Doc, "metadata", "labels", k); got != v {
					t.Errorf("service label %s=%q, want %q", k, got, v)
				}
				if got := str(dep.Doc, "spec", "template", "metadata", "labels", k); got != v {
					t.Errorf("pod label %s=%q, want %q", k, got, v)
				}
			}
			if _, network := tc.wantLabels["topology.istio.io/network"]; !network {
				if got := str(svc.Doc, "metadata", "labels", "topology.istio.io/network"); got != "" {
					t.Errorf("non-network gateway labelled with network %q", got)
				}
			}
			// The selector picks the gateway's own pods.
			sel, _ := field(svc.Doc, "spec", "selector").(map[string]any)
			for k, v := range sel {
				if str(dep.Doc, "spec", "template", "metadata", "labels", k) != v {
					t.Errorf("service selector %s=%v does not match the pods", k, v)
				}
			}
			got := map[string]float64{}
			list, _ := field(svc.Doc, "spec", "ports").([]any)
			for _, p := range list {
				got[str(p, "name")], _ = field(p, "port").(float64)
			}
			if len(got) != len(tc.wantPorts) {
				t.Errorf("ports %v, want %v", got, tc.wantPorts)
			}
			for n, p := range tc.wantPorts {
				if got[n] != p {
					t.Errorf("port %s = %v, want %v", n, got[n], p)
				}
			}
			if tc.wantType == "NodePort" && str(svc.Doc, "metadata", "annotations", "traffic.istio.io/nodeSelector") != "{}" {
				t.Errorf("service annotations not passed through:\n%s", svc.Text)
			}
		})
	}
}

// TestIstioGatewaySchema: the gateway chart's values.schema.json (the only one of the three
// charts with a schema) rejects keys it does not know, so the product's values are checked.
func TestIstioGatewaySchema(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	_, err := render(t, r.ChartPath(ChartGateway), planner.MeshNamespace, "x", map[string]any{"networkGateways": "typo"})
	if err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("err = %v, want a schema error", err)
	}
}

func loadChart(t *testing.T, p string) *chart.Chart {
	t.Helper()
	c, err := loader.Load(p)
	if err != nil {
		t.Fatalf("load %s: %v", p, err)
	}
	return c
}
