package labworld

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeIstiodInfo writes istiod.json into a lab cluster directory, as the Istiod player does.
func writeIstiodInfo(t *testing.T, clusterDir string, info IstiodInfo) {
	t.Helper()
	data, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(clusterDir, IstiodDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clusterDir, IstiodDirName, "istiod.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// show's Mesh section, with httptest servers standing in for istiod's /debug/clusterz: one
// row per (member, remote) with istiod's own word, a foreign remote shown as such, a member
// istiod does not list shown missing, a member whose istiod does not run, does not answer or
// has no lab cluster on one row saying so; sorted, whatever the order of the fleet and of
// istiod's answer.
func TestShowMesh(t *testing.T) {
	t.Parallel()
	clusterz := func(entries string) *httptest.Server {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/clusterz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(entries))
		})
		s := httptest.NewServer(mux)
		t.Cleanup(s.Close)
		return s
	}
	eu := clusterz(`[{"id":"eu","syncStatus":"synced"},
		{"id":"us","secretName":"istio-system/istio-remote-secret-us","syncStatus":"syncing"},
		{"id":"old","secretName":"istio-system/istio-remote-secret-old","syncStatus":"timeout"},
		{"id":"ap","secretName":"istio-system/istio-remote-secret-ap","syncStatus":"synced"}]`)
	sa := clusterz(`[{"id":"sa","syncStatus":"synced"},{"id":"eu","secretName":"istio-system/istio-remote-secret-eu","syncStatus":"synced"}]`)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	root := t.TempDir()
	dir := func(name string) string { return filepath.Join(root, name) }
	started := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	writeIstiodInfo(t, dir("eu"), IstiodInfo{PID: 101, Pod: "istiod-aaa-lab", Template: "aaa", Monitoring: host(eu), Started: started})
	writeIstiodInfo(t, dir("sa"), IstiodInfo{PID: 104, Pod: "istiod-ddd-lab", Template: "ddd", Monitoring: host(sa), Started: started})
	writeIstiodInfo(t, dir("ap"), IstiodInfo{PID: 102, Pod: "istiod-bbb-lab", Template: "bbb", Monitoring: host(broken)})
	if err := os.MkdirAll(dir("us"), 0o700); err != nil { // a lab cluster whose istiod does not run
		t.Fatal(err)
	}

	ctx := context.Background()
	c := &http.Client{Timeout: 5 * time.Second}
	members := []string{"us", "eu", "sa", "ap", "zz"} // the fleet's order
	var views []meshView
	for _, m := range members {
		d := dir(m)
		if m == "zz" {
			d = ""
		}
		views = append(views, readMeshView(ctx, c, m, d, nil))
	}
	var out strings.Builder
	printMesh(&out, "mesh1", members, views, started.Add(90*time.Second))
	got := out.String()
	// istiod's answer for ap is an HTTP error: its text is whatever http.Error writes.
	want := `
Mesh mesh1 (each member's istiod, its /debug/clusterz):
  ap: istiod pod istiod-bbb-lab, pid 102, template bbb, monitoring ` + host(broken) + `
  eu: istiod pod istiod-aaa-lab, pid 101, template aaa, monitoring ` + host(eu) + `, up 1m30s; own cluster eu synced
  sa: istiod pod istiod-ddd-lab, pid 104, template ddd, monitoring ` + host(sa) + `, up 1m30s; own cluster sa synced
  MEMBER  REMOTE  SECRET                                STATUS
  ap      -       -                                     istiod does not answer /debug/clusterz: HTTP 503: not ready
  eu      ap      istio-system/istio-remote-secret-ap   synced
  eu      old     istio-system/istio-remote-secret-old  timeout (foreign: not a fleet member)
  eu      sa      -                                     missing
  eu      us      istio-system/istio-remote-secret-us   syncing
  eu      zz      -                                     missing
  sa      ap      -                                     missing
  sa      eu      istio-system/istio-remote-secret-eu   synced
  sa      us      -                                     missing
  sa      zz      -                                     missing
  us      -       -                                     no istiod runs
  zz      -       -                                     no lab cluster found for it
`
	if got != want {
		t.Errorf("Mesh section:\n%s\nwant:\n%s", got, want)
	}
	// Deterministic: the views in another order print the same.
	for i, j := 0, len(views)-1; i < j; i, j = i+1, j-1 {
		views[i], views[j] = views[j], views[i]
	}
	out.Reset()
	printMesh(&out, "mesh1", members, views, started.Add(90*time.Second))
	if out.String() != got {
		t.Errorf("the views in reverse order print:\n%s\nnot:\n%s", out.String(), got)
	}

	// An istiod that is gone (its port closed) is one row too, never an error.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := host(closed)
	closed.Close()
	writeIstiodInfo(t, dir("gone"), IstiodInfo{PID: 9, Pod: "istiod-eee-lab", Monitoring: closedHost})
	v := readMeshView(ctx, c, "gone", dir("gone"), nil)
	if rows := meshRows([]string{"gone", "eu"}, []meshView{v}); len(rows) != 1 || rows[0].Remote != "-" ||
		!strings.HasPrefix(rows[0].Status, "istiod does not answer /debug/clusterz: ") {
		t.Errorf("rows for an istiod whose port is closed: %+v", rows)
	}
}

// A member is mapped to the lab cluster whose admin kubeconfig names its API server.
func TestShowMeshLabClusterDirs(t *testing.T) {
	t.Parallel()
	lab := t.TempDir()
	for name, server := range map[string]string{"lke1": "https://127.0.23.10:6443", "lke2": "https://127.0.23.11:6443/"} {
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server}
		d := filepath.Join(lab, "clusters", name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := clientcmd.WriteToFile(*cfg, filepath.Join(d, "admin.kubeconfig")); err != nil {
			t.Fatal(err)
		}
	}
	dirs := labClusterDirs(lab)
	for host, want := range map[string]string{"127.0.23.10:6443": "lke1", "127.0.23.11:6443": "lke2"} {
		if got := dirs[hostOf("https://"+host)]; got != filepath.Join(lab, "clusters", want) {
			t.Errorf("%s: dir %q, want clusters/%s", host, got, want)
		}
	}
	if len(dirs) != 2 {
		t.Errorf("dirs %v, want 2", dirs)
	}
}
