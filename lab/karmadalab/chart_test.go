package karmadalab

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/reconcile-dev/reconcile/lab/cluster"
)

// renderedChart is the Karmada chart rendered with Helm's engine, as an install would.
type renderedChart struct {
	jobs    []*batchv1.Job
	deploys []*appsv1.Deployment
}

func renderKarmada(t *testing.T, release, namespace string, values map[string]any) renderedChart {
	t.Helper()
	ch := karmadaChart(t)
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
	inst.ReleaseName, inst.Namespace = release, namespace
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.36.3", Major: "1", Minor: "36"}
	rel, err := inst.Run(ch, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	docs := releaseutil.SplitManifests(rel.Manifest)
	var texts []string
	for _, d := range docs {
		texts = append(texts, d)
	}
	for _, h := range rel.Hooks {
		texts = append(texts, h.Manifest)
	}
	var out renderedChart
	for _, text := range texts {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(text), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Job":
			var j batchv1.Job
			if err := yaml.Unmarshal([]byte(text), &j); err != nil {
				t.Fatal(err)
			}
			out.jobs = append(out.jobs, &j)
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.Unmarshal([]byte(text), &d); err != nil {
				t.Fatal(err)
			}
			out.deploys = append(out.deploys, &d)
		}
	}
	return out
}

func TestChartHostMode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, release, namespace string
		extra                    []string
		wantHosts                []string
	}{
		{
			name: "default release with node IP", release: "karmada", namespace: "karmada-system", extra: []string{"127.0.0.36"},
			wantHosts: []string{"kubernetes.default.svc", "*.etcd.karmada-system.svc.cluster.local", "*.karmada-system.svc.cluster.local",
				"*.karmada-system.svc", "localhost", "127.0.0.1", "127.0.0.36"},
		},
		{
			// The chart adds the system namespace's names when the release lives elsewhere.
			name: "other namespace", release: "kd", namespace: "kd-ns",
			wantHosts: []string{"kubernetes.default.svc", "*.etcd.kd-ns.svc.cluster.local", "*.kd-ns.svc.cluster.local",
				"*.kd-ns.svc", "localhost", "127.0.0.1", "*.karmada-system.svc.cluster.local", "*.karmada-system.svc"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := renderKarmada(t, tc.release, tc.namespace, hostValues(tc.extra...))
			var suffixes []string
			for _, j := range r.jobs {
				release, suffix, ok := chartJob(j)
				if !ok || release != tc.release {
					t.Errorf("job %s: not recognized as the chart's (release %q, ok %v)", j.Name, release, ok)
					continue
				}
				suffixes = append(suffixes, suffix)
				if suffix == "-pre-install" {
					hosts, err := CertHosts(j)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(hosts, tc.wantHosts) {
						t.Errorf("CertHosts = %q, want %q", hosts, tc.wantHosts)
					}
				}
			}
			sort.Strings(suffixes)
			if want := []string{"-post-delete", "-pre-install", "-pre-upgrade", "-static-resource"}; !slices.Equal(suffixes, want) {
				t.Errorf("chart jobs %q, want %q", suffixes, want)
			}
			var apiservers []string
			for _, d := range r.deploys {
				if release, ok := chartAPIServer(d); ok {
					apiservers = append(apiservers, release+" from "+d.Name)
				}
				if _, ok := agentArgs(d); ok {
					t.Errorf("host mode deployment %s taken for an agent", d.Name)
				}
			}
			if want := []string{tc.release + " from " + tc.release + "-apiserver"}; !slices.Equal(apiservers, want) {
				t.Errorf("apiserver deployments %q, want %q", apiservers, want)
			}
		})
	}
}

func TestChartAgentMode(t *testing.T) {
	t.Parallel()
	r := renderKarmada(t, "karmada-agent", "karmada-system", map[string]any{
		"installMode": "agent",
		"agent": map[string]any{"clusterName": "eu", "clusterEndpoint": "https://127.0.0.37:6443",
			"kubeconfig": map[string]any{"caCrt": "ca", "crt": "crt", "key": "key", "server": "https://127.0.0.36:32443"}},
	})
	if len(r.jobs) != 0 {
		t.Errorf("agent mode renders %d jobs", len(r.jobs))
	}
	var found int
	for _, d := range r.deploys {
		if _, ok := chartAPIServer(d); ok {
			t.Errorf("agent mode deployment %s taken for an apiserver", d.Name)
		}
		flags, ok := agentArgs(d)
		if !ok {
			continue
		}
		found++
		if flags["cluster-name"] != "eu" || flags["cluster-api-endpoint"] != "https://127.0.0.37:6443" {
			t.Errorf("agent flags %v", flags)
		}
		secret, key, err := agentKubeconfigSecret(d, flags["karmada-kubeconfig"])
		if err != nil {
			t.Fatal(err)
		}
		if secret != "karmada-agent-kubeconfig" || key != "kubeconfig" {
			t.Errorf("agent kubeconfig from secret %q key %q, want karmada-agent-kubeconfig/kubeconfig", secret, key)
		}
	}
	if found != 1 {
		t.Errorf("%d agent deployments, want 1", found)
	}
}

func TestGenerateCerts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		hosts    []string
		wantDNS  []string
		wantIPs  []string
		verifyAs string
		rejectAs string
	}{
		{"node IP present", []string{"localhost", "127.0.0.1", "*.karmada-system.svc", "127.0.0.36"},
			[]string{"localhost", "*.karmada-system.svc"}, []string{"127.0.0.1", "127.0.0.36"}, "127.0.0.36", "127.0.0.37"},
		{"node IP missing", []string{"localhost", "127.0.0.1"},
			[]string{"localhost"}, []string{"127.0.0.1"}, "localhost", "127.0.0.36"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := GenerateCerts(tc.hosts)
			if err != nil {
				t.Fatal(err)
			}
			cert := parseCert(t, c.ServerCert)
			if cert.Subject.CommonName != "system:admin" || !slices.Equal(cert.Subject.Organization, []string{"system:masters"}) {
				t.Errorf("subject %v", cert.Subject)
			}
			if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
				t.Errorf("ext key usage %v, want client and server auth", cert.ExtKeyUsage)
			}
			if !slices.Equal(cert.DNSNames, tc.wantDNS) {
				t.Errorf("DNS SANs %q, want %q", cert.DNSNames, tc.wantDNS)
			}
			var ips []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tc.wantIPs) {
				t.Errorf("IP SANs %q, want %q", ips, tc.wantIPs)
			}
			roots := x509.NewCertPool()
			roots.AddCert(parseCert(t, c.CACert))
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.verifyAs}); err != nil {
				t.Errorf("verify as %s: %v", tc.verifyAs, err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.rejectAs}); err == nil {
				t.Errorf("certificate verifies for %s, which is not among its hosts", tc.rejectAs)
			}
			proxy := parseCert(t, c.FrontProxyClientCert)
			fp := x509.NewCertPool()
			fp.AddCert(parseCert(t, c.FrontProxyCA))
			if _, err := proxy.Verify(x509.VerifyOptions{Roots: fp, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || proxy.Subject.CommonName != "front-proxy-client" {
				t.Errorf("front proxy client %s: %v", proxy.Subject.CommonName, err)
			}
			if _, err := cluster.LoadCA(c.CACert, c.CAKey); err != nil {
				t.Errorf("CA key does not load: %v", err)
			}
		})
	}
}

func parseCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWebhooksMatchChart checks the lab's webhook table against the chart's webhook
// configuration template, so a Karmada upgrade that adds or moves a webhook fails here.
func TestWebhooksMatchChart(t *testing.T) {
	t.Parallel()
	dir, err := ChartDir()
	if err != nil {
		t.Skip(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "templates", "_karmada_webhook_configuration.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	mutating, validating, ok := strings.Cut(string(data), "kind: ValidatingWebhookConfiguration")
	if !ok {
		t.Fatal("no ValidatingWebhookConfiguration in the chart's template")
	}
	entry := regexp.MustCompile(`(?s)- name: (\S+)\s+rules:.*?operations: \[([^\]]*)\].*?resources: \["([^"]+)"\].*?url: https://[^\n]*?:443(/\S+)`)
	chartPairs := func(s string) []string {
		var out []string
		for _, m := range entry.FindAllStringSubmatch(s, -1) {
			ops := strings.ReplaceAll(strings.ReplaceAll(m[2], `"`, ""), " ", "")
			out = append(out, m[1]+" "+m[4]+" "+m[3]+" "+ops)
		}
		return out
	}
	ourPairs := func(ws []webhook) []string {
		var out []string
		for _, w := range ws {
			var ops []string
			for _, o := range w.ops {
				ops = append(ops, string(o))
			}
			out = append(out, w.name+" "+w.path+" "+w.res+" "+strings.Join(ops, ","))
		}
		return out
	}
	for _, tc := range []struct {
		kind       string
		chart, lab []string
	}{
		{"mutating", chartPairs(mutating), ourPairs(mutatingWebhooks)},
		{"validating", chartPairs(validating), ourPairs(validatingWebhooks)},
	} {
		if len(tc.chart) == 0 || !slices.Equal(tc.chart, tc.lab) {
			t.Errorf("%s webhooks differ from the chart's:\nchart %q\nlab   %q", tc.kind, tc.chart, tc.lab)
		}
	}
	m, v := webhookConfigurations("https://127.0.0.1:1", []byte("ca"))
	if len(m.Webhooks) != len(mutatingWebhooks) || len(v.Webhooks) != len(validatingWebhooks) {
		t.Fatalf("configurations have %d/%d webhooks", len(m.Webhooks), len(v.Webhooks))
	}
	if u := *v.Webhooks[0].ClientConfig.URL; u != "https://127.0.0.1:1/validate-propagationpolicy" {
		t.Errorf("first validating url %q", u)
	}
}
