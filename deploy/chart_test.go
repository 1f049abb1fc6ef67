package deploy

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "charts/reconcile"

// labKubeVersion is the kube-apiserver the lab runs.
var labKubeVersion = chartutil.KubeVersion{Version: "v1.36.3", Major: "1", Minor: "36"}

// fleetYAML is a fleet whose state lives in the cluster the chart is installed in.
const fleetYAML = `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: prod
state:
  backend: kubernetes
  kubernetes:
    namespace: reconcile-system
`

// configMapValues are the overrides of a typical install with an embedded fleet.yaml.
func configMapValues() map[string]any {
	return map[string]any{
		"fleet":  map[string]any{"configMap": map[string]any{"create": true, "content": fleetYAML}},
		"linode": map[string]any{"tokenSecret": map[string]any{"name": "linode"}},
	}
}

// gitSyncValues are the overrides of an install that syncs fleet.yaml from git.
func gitSyncValues() map[string]any {
	return map[string]any{
		"fleet": map[string]any{"gitSync": map[string]any{
			"enabled": true, "repo": "https://git.example.com/ops/fleets.git", "ref": "prod",
			"period": "30s", "path": "fleets/prod/fleet.yaml",
		}},
		"linode": map[string]any{"tokenSecret": map[string]any{"name": "linode", "key": "api-token"}},
	}
}

// object is one rendered manifest.
type object struct {
	Kind, Name, Namespace string
	Doc                   map[string]any
}

// render renders the chart as a client-only install of release "reconcile" in namespace, with
// the chart's schema checked, and returns its objects sorted by kind and name.
func render(t *testing.T, namespace string, values map[string]any) ([]object, error) {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun = true
	inst.ClientOnly = true
	inst.ReleaseName = "reconcile"
	inst.Namespace = namespace
	kv := labKubeVersion
	inst.KubeVersion = &kv
	rel, err := inst.Run(c, values)
	if err != nil {
		return nil, err
	}
	var out []object
	for name, text := range releaseutil.SplitManifests(rel.Manifest) {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			t.Fatalf("%s does not parse: %v\n%s", name, err, text)
		}
		if doc == nil {
			continue
		}
		md, _ := doc["metadata"].(map[string]any)
		n, _ := md["name"].(string)
		ns, _ := md["namespace"].(string)
		k, _ := doc["kind"].(string)
		out = append(out, object{Kind: k, Name: n, Namespace: ns, Doc: doc})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// mustRender is render that fails the test on error.
func mustRender(t *testing.T, namespace string, values map[string]any) []object {
	t.Helper()
	objs, err := render(t, namespace, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return objs
}

func find(t *testing.T, objs []object, kind string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind {
			return o
		}
	}
	t.Fatalf("no %s rendered; have %v", kind, kinds(objs))
	return object{}
}

func kinds(objs []object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Kind+"/"+o.Name)
	}
	return out
}

// get walks doc along path; a number in path indexes a list.
func get(doc any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := doc.(map[string]any)
			if !ok {
				return nil
			}
			doc = m[k]
		case int:
			l, ok := doc.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			doc = l[k]
		}
	}
	return doc
}

// container returns the named container (or init container, with init) of a Deployment.
func container(t *testing.T, deploy object, name string, init bool) map[string]any {
	t.Helper()
	field := "containers"
	if init {
		field = "initContainers"
	}
	list, _ := get(deploy.Doc, "spec", "template", "spec", field).([]any)
	for _, c := range list {
		if m, _ := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("no %s %q in the Deployment", field, name)
	return nil
}

func stringsOf(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = fmt.Sprint(s)
	}
	return out
}

func TestChartLints(t *testing.T) {
	t.Parallel()
	for name, values := range map[string]map[string]any{
		"configMap": configMapValues(),
		"gitSync":   gitSyncValues(),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := action.NewLint()
			l.Namespace = "reconcile-system"
			l.Strict = true
			kv := labKubeVersion
			l.KubeVersion = &kv
			res := l.Run([]string{chartDir}, values)
			for _, m := range res.Messages {
				// INFO is only "icon is recommended": a chart of an internal daemon has none.
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("lint error: %v", err)
			}
			if res.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
			}
		})
	}
}

func TestRenderConfigMapFleet(t *testing.T) {
	t.Parallel()
	objs := mustRender(t, "reconcile-system", configMapValues())
	want := []string{"ConfigMap/reconcile-fleet", "Deployment/reconcile", "PodDisruptionBudget/reconcile", "Role/reconcile", "RoleBinding/reconcile", "ServiceAccount/reconcile"}
	if got := kinds(objs); !reflect.DeepEqual(got, want) {
		t.Fatalf("rendered %v, want %v", got, want)
	}
	for _, o := range objs {
		if o.Namespace != "reconcile-system" {
			t.Errorf("%s/%s in namespace %q, want reconcile-system", o.Kind, o.Name, o.Namespace)
		}
	}
	if got := get(find(t, objs, "ConfigMap").Doc, "data", "fleet.yaml"); strings.TrimSpace(fmt.Sprint(got)) != strings.TrimSpace(fleetYAML) {
		t.Errorf("ConfigMap data fleet.yaml = %q, want the fleet given", got)
	}

	d := find(t, objs, "Deployment")
	if got := get(d.Doc, "spec", "replicas"); got != float64(2) && got != int64(2) {
		t.Errorf("replicas = %v (%T), want 2", got, got)
	}
	c := container(t, d, "reconcile", false)
	wantArgs := []string{"--file", "/fleet/fleet.yaml", "--leader-elect", "--health-addr", ":8081", "--metrics-addr", ":9464", "--log-format", "json", "--log-level", "info"}
	if got := stringsOf(c["args"]); !reflect.DeepEqual(got, wantArgs) {
		t.Errorf("args = %q, want %q", got, wantArgs)
	}
	if got := get(c, "image"); got != "ghcr.io/reconcile-dev/reconcile:0.1.0" {
		t.Errorf("image = %v, want the repository at the chart's appVersion", got)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := get(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %v, want %s", probe, got, path)
		}
		if got := get(c, probe, "httpGet", "port"); got != "health" {
			t.Errorf("%s port = %v, want the named port health", probe, got)
		}
	}
	if got := get(c, "ports", 0, "containerPort"); fmt.Sprint(got) != "8081" {
		t.Errorf("health containerPort = %v, want 8081", got)
	}
	checkSecurity(t, d, c)
	checkToken(t, c, "linode", "token")
	mounts := mountsOf(c)
	if mounts["/fleet"] != "fleet" || mounts["/tmp"] != "tmp" || mounts["/var/cache/reconcile"] != "cache" {
		t.Errorf("mounts = %v, want fleet at /fleet, tmp at /tmp, cache at /var/cache/reconcile", mounts)
	}
	if env := envOf(c); env["XDG_CACHE_HOME"] != "/var/cache/reconcile" {
		t.Errorf("XDG_CACHE_HOME = %q, want the cache emptyDir", env["XDG_CACHE_HOME"])
	}
	vols := volumesOf(d)
	if got := get(vols["fleet"], "configMap", "name"); got != "reconcile-fleet" {
		t.Errorf("fleet volume = %v, want ConfigMap reconcile-fleet", vols["fleet"])
	}
	for _, v := range []string{"tmp", "cache"} {
		if _, ok := get(vols[v], "emptyDir").(map[string]any); !ok {
			t.Errorf("volume %s = %v, want an emptyDir", v, vols[v])
		}
	}
	if _, ok := vols["git"]; ok {
		t.Error("a git volume without git-sync")
	}
	if got := get(d.Doc, "spec", "template", "spec", "initContainers"); got != nil {
		t.Errorf("init containers without git-sync: %v", got)
	}
	if n := len(get(d.Doc, "spec", "template", "spec", "containers").([]any)); n != 1 {
		t.Errorf("%d containers, want only reconcile", n)
	}
	anti := get(d.Doc, "spec", "template", "spec", "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", 0, "podAffinityTerm")
	if get(anti, "topologyKey") != "kubernetes.io/hostname" || get(anti, "labelSelector", "matchLabels", "app.kubernetes.io/instance") != "reconcile" {
		t.Errorf("pod anti-affinity term = %v, want a preferred spread by hostname over this release's pods", anti)
	}
	if got := get(d.Doc, "spec", "template", "spec", "serviceAccountName"); got != "reconcile" {
		t.Errorf("serviceAccountName = %v", got)
	}

	role := find(t, objs, "Role")
	rules, _ := get(role.Doc, "rules").([]any)
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	want2 := map[string][]string{"/secrets": all, "coordination.k8s.io/leases": all}
	got2 := map[string][]string{}
	for _, r := range rules {
		for _, g := range stringsOf(get(r, "apiGroups")) {
			for _, res := range stringsOf(get(r, "resources")) {
				got2[g+"/"+res] = stringsOf(get(r, "verbs"))
			}
		}
	}
	if !reflect.DeepEqual(got2, want2) {
		t.Errorf("Role rules = %v, want %v", got2, want2)
	}
	if got := get(find(t, objs, "RoleBinding").Doc, "subjects", 0); get(got, "name") != "reconcile" || get(got, "namespace") != "reconcile-system" {
		t.Errorf("RoleBinding subject = %v", got)
	}
	pdb := find(t, objs, "PodDisruptionBudget")
	if got := fmt.Sprint(get(pdb.Doc, "spec", "maxUnavailable")); got != "1" || get(pdb.Doc, "spec", "selector", "matchLabels", "app.kubernetes.io/instance") != "reconcile" {
		t.Errorf("PodDisruptionBudget spec = %v, want maxUnavailable 1 over this release's pods", get(pdb.Doc, "spec"))
	}
}

func TestRenderOneReplicaHasNoDisruptionBudget(t *testing.T) {
	t.Parallel()
	// A budget of one unavailable over a single replica would block nothing and mean nothing.
	objs := mustRender(t, "reconcile-system", merge(configMapValues(), map[string]any{"replicaCount": 1}))
	for _, o := range objs {
		if o.Kind == "PodDisruptionBudget" {
			t.Errorf("a PodDisruptionBudget with one replica")
		}
	}
}

func TestRenderGitSyncFleet(t *testing.T) {
	t.Parallel()
	objs := mustRender(t, "ops", gitSyncValues())
	want := []string{"Deployment/reconcile", "PodDisruptionBudget/reconcile", "Role/reconcile", "RoleBinding/reconcile", "ServiceAccount/reconcile"}
	if got := kinds(objs); !reflect.DeepEqual(got, want) {
		t.Fatalf("rendered %v, want %v (no ConfigMap)", got, want)
	}
	d := find(t, objs, "Deployment")
	c := container(t, d, "reconcile", false)
	if args := stringsOf(c["args"]); len(args) < 2 || args[0] != "--file" || args[1] != "/git/current/fleets/prod/fleet.yaml" {
		t.Errorf("args = %q, want --file at the synced link path /git/current/fleets/prod/fleet.yaml", args)
	}
	if m := mountsOf(c); m["/git"] != "git" || m["/fleet"] != "" {
		t.Errorf("reconcile mounts = %v, want the git emptyDir at /git and no /fleet", m)
	}
	checkToken(t, c, "linode", "api-token")
	checkSecurity(t, d, c)

	for _, tc := range []struct {
		name string
		init bool
		arg  string
	}{{"git-sync-init", true, "--one-time"}, {"git-sync", false, "--period=30s"}} {
		gs := container(t, d, tc.name, tc.init)
		args := stringsOf(gs["args"])
		for _, a := range []string{"--repo=https://git.example.com/ops/fleets.git", "--ref=prod", "--root=/git", "--link=current", tc.arg} {
			if !contains(args, a) {
				t.Errorf("%s args = %q, lack %q", tc.name, args, a)
			}
		}
		if got := gs["image"]; got != "registry.k8s.io/git-sync/git-sync:v4.4.0" {
			t.Errorf("%s image = %v", tc.name, got)
		}
		if m := mountsOf(gs); m["/git"] != "git" || m["/tmp"] != "git-tmp" {
			t.Errorf("%s mounts = %v, want git at /git and git-tmp at /tmp", tc.name, m)
		}
		checkContainerSecurity(t, tc.name, gs)
		if u := fmt.Sprint(get(gs, "securityContext", "runAsUser")); u != "65533" {
			t.Errorf("%s runs as %s, want the image's user 65533", tc.name, u)
		}
	}
	vols := volumesOf(d)
	if _, ok := get(vols["git"], "emptyDir").(map[string]any); !ok {
		t.Errorf("git volume = %v, want a shared emptyDir", vols["git"])
	}
	if _, ok := vols["fleet"]; ok {
		t.Error("a fleet ConfigMap volume with git-sync")
	}
}

func TestRenderOptions(t *testing.T) {
	t.Parallel()
	values := configMapValues()
	values["replicaCount"] = 3
	values["image"] = map[string]any{"repository": "registry.example.com/reconcile", "tag": "v1.2.3", "pullPolicy": "Always"}
	values["state"] = map[string]any{"namespace": "reconcile-state"}
	values["fleet"] = map[string]any{"configMap": map[string]any{"name": "my-fleet", "key": "prod.yaml"}}
	values["extraEnv"] = []any{map[string]any{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}}
	values["podAnnotations"] = map[string]any{"example.com/team": "platform"}
	values["nodeSelector"] = map[string]any{"pool": "system"}
	values["tolerations"] = []any{map[string]any{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}}
	values["resources"] = map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "64Mi"}}
	objs := mustRender(t, "reconcile-system", values)

	if got := kinds(objs); contains(got, "ConfigMap/my-fleet") || contains(got, "ConfigMap/reconcile-fleet") {
		t.Errorf("rendered %v: an existing ConfigMap must not be created", got)
	}
	d := find(t, objs, "Deployment")
	c := container(t, d, "reconcile", false)
	if got := fmt.Sprint(get(d.Doc, "spec", "replicas")); got != "3" {
		t.Errorf("replicas = %s, want 3", got)
	}
	if c["image"] != "registry.example.com/reconcile:v1.2.3" || c["imagePullPolicy"] != "Always" {
		t.Errorf("image = %v %v", c["image"], c["imagePullPolicy"])
	}
	if args := stringsOf(c["args"]); args[1] != "/fleet/prod.yaml" {
		t.Errorf("--file %s, want /fleet/prod.yaml", args[1])
	}
	if got := get(volumesOf(d)["fleet"], "configMap", "name"); got != "my-fleet" {
		t.Errorf("fleet volume ConfigMap = %v, want my-fleet", got)
	}
	if env := envOf(c); env["HTTPS_PROXY"] != "http://proxy:3128" {
		t.Errorf("extra env missing: %v", env)
	}
	pod := get(d.Doc, "spec", "template")
	if get(pod, "metadata", "annotations", "example.com/team") != "platform" || get(pod, "spec", "nodeSelector", "pool") != "system" ||
		get(pod, "spec", "tolerations", 0, "key") != "dedicated" {
		t.Errorf("pod annotations, nodeSelector or tolerations missing: %v", pod)
	}
	if got := get(c, "resources", "requests", "cpu"); got != "100m" {
		t.Errorf("resources = %v", c["resources"])
	}
	// Metrics are on by default: their flag, a named port and the scrape annotations.
	if args := strings.Join(stringsOf(c["args"]), " "); !strings.Contains(args, "--metrics-addr :9464") {
		t.Errorf("args %q: want --metrics-addr :9464", args)
	}
	if get(c, "ports", 1, "name") != "metrics" || fmt.Sprint(get(c, "ports", 1, "containerPort")) != "9464" {
		t.Errorf("ports = %v, want a metrics port 9464", c["ports"])
	}
	if get(pod, "metadata", "annotations", "prometheus.io/scrape") != "true" || get(pod, "metadata", "annotations", "prometheus.io/port") != "9464" {
		t.Errorf("pod annotations %v: want the prometheus.io scrape annotations", get(pod, "metadata", "annotations"))
	}
	values["metrics"] = map[string]any{"enabled": false}
	c = container(t, find(t, mustRender(t, "reconcile-system", values), "Deployment"), "reconcile", false)
	if args := strings.Join(stringsOf(c["args"]), " "); strings.Contains(args, "--metrics-addr") {
		t.Errorf("metrics disabled, args %q", args)
	}
	for _, kind := range []string{"Role", "RoleBinding"} {
		if o := find(t, objs, kind); o.Namespace != "reconcile-state" {
			t.Errorf("%s in %q, want the state namespace reconcile-state", kind, o.Namespace)
		}
	}
	if sub := get(find(t, objs, "RoleBinding").Doc, "subjects", 0, "namespace"); sub != "reconcile-system" {
		t.Errorf("RoleBinding subject namespace = %v, want the release namespace", sub)
	}
	if o := find(t, objs, "Deployment"); o.Namespace != "reconcile-system" {
		t.Errorf("Deployment in %q", o.Namespace)
	}
}

func TestRenderRefusesBadValues(t *testing.T) {
	t.Parallel()
	token := map[string]any{"tokenSecret": map[string]any{"name": "linode"}}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no fleet source", map[string]any{"linode": token},
			"fleet: configure exactly one fleet source: fleet.configMap.create=true"},
		{"both fleet sources", map[string]any{"linode": token, "fleet": map[string]any{
			"configMap": map[string]any{"create": true, "content": fleetYAML},
			"gitSync":   map[string]any{"enabled": true, "repo": "https://git.example.com/f.git"},
		}}, "fleet: configure exactly one fleet source, not both"},
		{"existing ConfigMap and git-sync", map[string]any{"linode": token, "fleet": map[string]any{
			"configMap": map[string]any{"name": "fleet"},
			"gitSync":   map[string]any{"enabled": true, "repo": "https://git.example.com/f.git"},
		}}, "not both"},
		{"ConfigMap without content", map[string]any{"linode": token, "fleet": map[string]any{
			"configMap": map[string]any{"create": true}}}, "fleet.configMap.content: set the fleet.yaml to embed"},
		{"git-sync without repo", map[string]any{"linode": token, "fleet": map[string]any{
			"gitSync": map[string]any{"enabled": true}}}, "fleet.gitSync.repo: set the git repository"},
		{"git-sync path outside the repo", map[string]any{"linode": token, "fleet": map[string]any{
			"gitSync": map[string]any{"enabled": true, "repo": "https://git.example.com/f.git", "path": "../etc/passwd"}}},
			"fleet.gitSync.path: set fleet.yaml's path relative"},
		{"no token Secret", map[string]any{"fleet": map[string]any{"configMap": map[string]any{"name": "fleet"}}},
			"linode.tokenSecret.name: name an existing Secret"},
		{"replicas as a word", merge(configMapValues(), map[string]any{"replicaCount": "two"}),
			"at '/replicaCount': got string, want integer"},
		{"the token in clear", merge(configMapValues(), map[string]any{"linode": map[string]any{
			"token": "secret", "tokenSecret": map[string]any{"name": "linode"}}}), "at '/linode': additional properties 'token' not allowed"},
		{"a bad pull policy", merge(configMapValues(), map[string]any{"image": map[string]any{
			"repository": "r", "pullPolicy": "Sometimes"}}), "at '/image/pullPolicy'"},
		{"a bad git-sync period", map[string]any{"linode": token, "fleet": map[string]any{
			"gitSync": map[string]any{"enabled": true, "repo": "https://git.example.com/f.git", "period": "often"}}}, "at '/fleet/gitSync/period'"},
		{"an unknown value", merge(configMapValues(), map[string]any{"replicas": 2}), "additional properties 'replicas' not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, "reconcile-system", tc.values)
			if err == nil {
				t.Fatalf("rendered; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// checkSecurity checks the pod's and the reconcile container's security context.
func checkSecurity(t *testing.T, d object, c map[string]any) {
	t.Helper()
	pod := get(d.Doc, "spec", "template", "spec", "securityContext")
	if get(pod, "runAsNonRoot") != true || get(pod, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext = %v, want runAsNonRoot and seccomp RuntimeDefault", pod)
	}
	checkContainerSecurity(t, "reconcile", c)
}

func checkContainerSecurity(t *testing.T, name string, c map[string]any) {
	t.Helper()
	sc := c["securityContext"]
	if get(sc, "runAsNonRoot") != true || get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false ||
		!reflect.DeepEqual(stringsOf(get(sc, "capabilities", "drop")), []string{"ALL"}) || get(sc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("%s securityContext = %v, want non-root, read-only root, no escalation, ALL dropped, seccomp RuntimeDefault", name, sc)
	}
}

// checkToken checks that LINODE_TOKEN comes from the Secret and nowhere else.
func checkToken(t *testing.T, c map[string]any, secret, key string) {
	t.Helper()
	env, _ := c["env"].([]any)
	for _, e := range env {
		if get(e, "name") != "LINODE_TOKEN" {
			continue
		}
		if get(e, "value") != nil {
			t.Errorf("LINODE_TOKEN has a value in clear")
		}
		ref := get(e, "valueFrom", "secretKeyRef")
		if get(ref, "name") != secret || get(ref, "key") != key {
			t.Errorf("LINODE_TOKEN secretKeyRef = %v, want %s/%s", ref, secret, key)
		}
		return
	}
	t.Errorf("no LINODE_TOKEN env")
}

func mountsOf(c map[string]any) map[string]string {
	out := map[string]string{}
	l, _ := c["volumeMounts"].([]any)
	for _, m := range l {
		out[fmt.Sprint(get(m, "mountPath"))] = fmt.Sprint(get(m, "name"))
	}
	return out
}

func envOf(c map[string]any) map[string]string {
	out := map[string]string{}
	l, _ := c["env"].([]any)
	for _, e := range l {
		if v, ok := get(e, "value").(string); ok {
			out[fmt.Sprint(get(e, "name"))] = v
		}
	}
	return out
}

func volumesOf(d object) map[string]any {
	out := map[string]any{}
	l, _ := get(d.Doc, "spec", "template", "spec", "volumes").([]any)
	for _, v := range l {
		out[fmt.Sprint(get(v, "name"))] = v
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// merge returns base with over's top-level keys set.
func merge(base, over map[string]any) map[string]any {
	for k, v := range over {
		base[k] = v
	}
	return base
}
