package charts

import (
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/planner"
)

func TestIstioBase(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	f := labFleet(r.KarmadaVersion)
	objs, err := render(t, r.ChartPath(ChartBase), planner.MeshNamespace, planner.MeshReleaseName(planner.ComponentBase), planner.IstioBaseValues(f, "eu"))
	if err != nil {
		t.Fatalf("render base: %v", err)
	}
	sa, ok := objs.find("ServiceAccount", "istio-reader-service-account")
	if !ok || sa.Namespace != planner.MeshNamespace {
		t.Errorf("istio-reader-service-account in %q (found %v)\n%s", sa.Namespace, ok, objs)
	}
	for _, kind := range []string{"Gateway", "VirtualService", "DestinationRule", "ServiceEntry"} {
		t.Run(kind, func(t *testing.T) {
			plural := strings.ToLower(kind) + "s"
			if kind == "ServiceEntry" {
				plural = "serviceentries"
			}
			crd, ok := objs.find("CustomResourceDefinition", plural+".networking.istio.io")
			if !ok {
				t.Fatalf("CRD %s.networking.istio.io missing", plural)
			}
			if got := str(crd.Doc, "spec", "names", "kind"); got != kind {
				t.Errorf("kind %q, want %q", got, kind)
			}
			versions, _ := field(crd.Doc, "spec", "versions").([]any)
			served, storage := map[string]bool{}, 0
			for _, v := range versions {
				if field(v, "served") == true {
					served[str(v, "name")] = true
				}
				if field(v, "storage") == true {
					storage++
					if str(v, "name") != "v1" {
						t.Errorf("storage version %s, want v1", str(v, "name"))
					}
				}
				if field(v, "schema", "openAPIV3Schema", "x-kubernetes-preserve-unknown-fields") != true {
					t.Errorf("version %s does not preserve unknown fields", str(v, "name"))
				}
			}
			for _, v := range []string{"v1", "v1alpha3", "v1beta1"} {
				if !served[v] {
					t.Errorf("%s not served", v)
				}
			}
			if storage != 1 {
				t.Errorf("%d storage versions, want 1", storage)
			}
		})
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

	dep, ok := objs.find("Deployment", "istiod")
	if !ok {
		t.Fatalf("Deployment istiod missing:\n%s", objs)
	}
	env := containerEnv(dep.Doc)
	if env["CLUSTER_ID"] != "eu" || env["NETWORK"] != "network-eu" {
		t.Errorf("istiod env CLUSTER_ID=%q NETWORK=%q, want eu, network-eu", env["CLUSTER_ID"], env["NETWORK"])
	}
	if img := images(dep.Doc); len(img) != 1 || !strings.HasSuffix(img[0], ":"+r.IstioVersion) {
		t.Errorf("istiod images %v, want one tagged %s", img, r.IstioVersion)
	}

	svc, ok := objs.find("Service", "istiod")
	if !ok {
		t.Fatalf("Service istiod missing:\n%s", objs)
	}
	ports := map[float64]any{}
	list, _ := field(svc.Doc, "spec", "ports").([]any)
	for _, p := range list {
		port, _ := field(p, "port").(float64)
		target := field(p, "targetPort")
		if target == nil {
			target = port
		}
		ports[port] = target
	}
	for port, target := range map[float64]float64{15010: 15010, 15012: 15012, 443: 15017} {
		if ports[port] != target {
			t.Errorf("istiod port %v -> %v, want -> %v", port, ports[port], target)
		}
	}

	cm, ok := objs.find("ConfigMap", "istio")
	if !ok || !strings.Contains(str(cm.Doc, "data", "mesh"), `meshId: "mesh-lab"`) {
		t.Errorf("ConfigMap istio lacks the mesh ID (found %v):\n%s", ok, cm.Text)
	}

	wh, ok := objs.find("MutatingWebhookConfiguration", "istio-sidecar-injector")
	if !ok {
		t.Fatalf("MutatingWebhookConfiguration istio-sidecar-injector missing:\n%s", objs)
	}
	hooks, _ := field(wh.Doc, "webhooks").([]any)
	if len(hooks) == 0 {
		t.Fatal("no webhooks")
	}
	for _, h := range hooks {
		svc := field(h, "clientConfig", "service")
		if str(svc, "name") != "istiod" || str(svc, "namespace") != ns || field(svc, "port") != float64(443) {
			t.Errorf("webhook %s calls %v, want istiod.%s:443", str(h, "name"), svc, ns)
		}
		if str(h, "failurePolicy") != "Ignore" {
			t.Errorf("webhook %s failurePolicy %q", str(h, "name"), str(h, "failurePolicy"))
		}
	}

	name := "istio-reader-clusterrole-" + ns
	role, ok := objs.find("ClusterRole", name)
	if !ok {
		t.Fatalf("ClusterRole %s missing:\n%s", name, objs)
	}
	readable := map[string]bool{}
	rules, _ := field(role.Doc, "rules").([]any)
	for _, rule := range rules {
		verbs := stringsOf(field(rule, "verbs"))
		resources := stringsOf(field(rule, "resources"))
		reviews := len(resources) > 0
		for _, res := range resources {
			reviews = reviews && strings.HasSuffix(res, "reviews")
		}
		for _, v := range verbs {
			switch {
			case v == "get" || v == "list" || v == "watch":
			case v == "create" && reviews: // token and access reviews store nothing
			default:
				t.Errorf("reader role grants %q on %v", v, resources)
			}
		}
		if strings.Join(verbs, ",") == "get,list,watch" {
			for _, res := range resources {
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
		str(binding.Doc, "subjects", 0, "name") != "istio-reader-service-account" ||
		str(binding.Doc, "subjects", 0, "namespace") != ns {
		t.Errorf("binding does not bind %s to %s/istio-reader-service-account:\n%s", name, ns, binding.Text)
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
			name: "ingress defaults", release: "istio-ingressgateway", values: nil,
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

func TestIstioSchemaRejectsUnknownKeys(t *testing.T) {
	t.Parallel()
	r := testRepo(t)
	cases := []struct {
		chart  string
		values map[string]any
	}{
		{ChartBase, map[string]any{"defaultRevision": "x"}},
		{ChartBase, map[string]any{"global": map[string]any{"hub": "x"}}},
		{ChartIstiod, map[string]any{"pilot": map[string]any{"replicas": 2}}},
		{ChartIstiod, map[string]any{"global": map[string]any{"meshId": "typo"}}},
		{ChartIstiod, map[string]any{"global": map[string]any{"multiCluster": map[string]any{"clustername": "typo"}}}},
		{ChartGateway, map[string]any{"networkGateways": "typo"}},
		{ChartGateway, map[string]any{"service": map[string]any{"typ": "NodePort"}}},
		{ChartGateway, map[string]any{"service": map[string]any{"ports": []any{map[string]any{"port": 1, "nodeport": 2}}}}},
		{ChartGateway, map[string]any{"service": map[string]any{"type": "ExternalName"}}},
	}
	for _, tc := range cases {
		t.Run(tc.chart, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, r.ChartPath(tc.chart), planner.MeshNamespace, "x", tc.values)
			if err == nil || !strings.Contains(err.Error(), "schema") {
				t.Errorf("values %v: err = %v, want a schema error", tc.values, err)
			}
		})
	}
}
