package labworld

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// ClusterzEntry is one cluster of istiod's /debug/clusterz (what `istioctl remote-clusters`
// reads): istiod's own cluster (no SecretName) and every remote cluster it was given by a
// remote secret, with istiod's own word for its state (synced, syncing, timeout, closed).
type ClusterzEntry struct {
	ID         string `json:"id"`
	SecretName string `json:"secretName,omitempty"`
	SyncStatus string `json:"syncStatus"`
}

// ReadClusterz GETs /debug/clusterz of the istiod whose monitoring server is at monitoring
// (IstiodInfo.Monitoring, host:port).
func ReadClusterz(ctx context.Context, c *http.Client, monitoring string) ([]ClusterzEntry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+monitoring+"/debug/clusterz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, firstLine(string(body)))
	}
	var entries []ClusterzEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, fmt.Errorf("not clusterz JSON (%w): %s", err, firstLine(string(body)))
	}
	return entries, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// meshView is one fleet member's istiod as show sees it: its IstiodInfo and /debug/clusterz,
// or why there are none (Problem).
type meshView struct {
	Member   string
	Istiod   *IstiodInfo
	Clusterz []ClusterzEntry
	Problem  string
	// Chain says which root the chain istiod serves on its TLS xDS port leads to.
	Chain string
}

// readMeshView reads the istiod of member, whose lab cluster's directory is clusterDir
// ("" when the member is no lab cluster that show can find).
func readMeshView(ctx context.Context, c *http.Client, member, clusterDir string, root *x509.Certificate) meshView {
	v := meshView{Member: member}
	if clusterDir == "" {
		v.Problem = "no lab cluster found for it"
		return v
	}
	info, err := ReadIstiod(clusterDir)
	if err != nil {
		if os.IsNotExist(err) {
			v.Problem = "no istiod runs"
		} else {
			v.Problem = "no istiod: " + err.Error()
		}
		return v
	}
	v.Istiod = &info
	if info.SecureGRPC != "" {
		v.Chain = chainText(ctx, info.SecureGRPC, root)
	}
	entries, err := ReadClusterz(ctx, c, info.Monitoring)
	if err != nil {
		v.Problem = "istiod does not answer /debug/clusterz: " + err.Error()
		return v
	}
	v.Clusterz = entries
	return v
}

// meshRow is a row of show's Mesh table: what member's istiod says of remote.
type meshRow struct {
	Member, Remote, Secret, Status string
}

// meshRows are the rows of show's Mesh table, sorted by member, remote and secret: for each
// member, one row per remote cluster its istiod lists (a cluster that is not a fleet member
// marked foreign), one row "missing" per other member its istiod does not list, or a single
// row saying why its istiod could not be asked.
func meshRows(members []string, views []meshView) []meshRow {
	isMember := map[string]bool{}
	for _, m := range members {
		isMember[m] = true
	}
	var rows []meshRow
	for _, v := range views {
		if v.Problem != "" {
			rows = append(rows, meshRow{Member: v.Member, Remote: "-", Secret: "-", Status: v.Problem})
			continue
		}
		listed := map[string]bool{}
		for _, e := range v.Clusterz {
			if e.SecretName == "" {
				continue // istiod's own (config) cluster: on the member's line
			}
			listed[e.ID] = true
			status := e.SyncStatus
			if status == "" {
				status = "(no status)"
			}
			if !isMember[e.ID] {
				status += " (foreign: not a fleet member)"
			} else if e.ID == v.Member {
				status += " (the member itself)"
			}
			rows = append(rows, meshRow{Member: v.Member, Remote: e.ID, Secret: e.SecretName, Status: status})
		}
		for _, m := range members {
			if m != v.Member && !listed[m] {
				rows = append(rows, meshRow{Member: v.Member, Remote: m, Secret: "-", Status: "missing"})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Member != b.Member {
			return a.Member < b.Member
		}
		if a.Remote != b.Remote {
			return a.Remote < b.Remote
		}
		return a.Secret < b.Secret
	})
	return rows
}

// printMesh writes show's Mesh section: a line per member whose istiod runs (its pod, PID,
// pod template, its own cluster's status), then the table of meshRows.
func printMesh(out io.Writer, meshID string, members []string, views []meshView, now time.Time) {
	views = append([]meshView(nil), views...)
	sort.Slice(views, func(i, j int) bool { return views[i].Member < views[j].Member })
	fmt.Fprintf(out, "\nMesh %s (each member's istiod, its /debug/clusterz):\n", meshID)
	for _, v := range views {
		if v.Istiod == nil {
			continue
		}
		i := v.Istiod
		line := fmt.Sprintf("  %s: istiod pod %s, pid %d, template %s, monitoring %s", v.Member, i.Pod, i.PID, i.Template, i.Monitoring)
		if !i.Started.IsZero() && !now.IsZero() {
			line += ", up " + now.Sub(i.Started).Round(time.Second).String()
		}
		for _, e := range v.Clusterz {
			if e.SecretName == "" {
				line += fmt.Sprintf("; own cluster %s %s", e.ID, e.SyncStatus)
			}
		}
		if v.Chain != "" {
			line += "; " + v.Chain
		}
		fmt.Fprintln(out, line)
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  MEMBER\tREMOTE\tSECRET\tSTATUS")
	for _, r := range meshRows(members, views) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.Member, r.Remote, r.Secret, r.Status)
	}
	tw.Flush()
}

// ShowMesh writes show's Mesh section for fleet f, whose members access reaches, in the lab
// whose directory is labDir: each fleet member is reached as reconcile reaches it (its
// kubeconfig in reconcile's state, or the existing cluster's), that is mapped to the lab
// cluster serving that API server (clusters/<name>/admin.kubeconfig under the lab's
// directory), and that cluster's istiod (istiod.json) is asked for /debug/clusterz.
func ShowMesh(ctx context.Context, f *spec.Fleet, access kube.Access, labDir string, out io.Writer) {
	dirs := labClusterDirs(labDir)
	httpc := &http.Client{Timeout: 5 * time.Second}
	members := make([]string, 0, len(f.Members))
	for _, m := range f.Members {
		members = append(members, m.Name)
	}
	var root *x509.Certificate
	if r, err := mesh.LoadRoot(access.Store); err == nil && r != nil {
		root = r.Cert
	}
	views := make([]meshView, 0, len(members))
	for _, m := range members {
		cfg, err := access.For(f).RESTConfig(m)
		if err != nil {
			views = append(views, meshView{Member: m, Problem: "unreachable: " + err.Error()})
			continue
		}
		views = append(views, readMeshView(ctx, httpc, m, dirs[hostOf(cfg.Host)], root))
	}
	printMesh(out, f.Mesh.MeshID, members, views, time.Now())
}

// labClusterDirs maps the API server (host:port) of every lab cluster under labDir to the
// cluster's directory.
func labClusterDirs(labDir string) map[string]string {
	out := map[string]string{}
	paths, _ := filepath.Glob(filepath.Join(labDir, "clusters", "*", "admin.kubeconfig"))
	for _, p := range paths {
		cfg, err := clientcmd.LoadFromFile(p)
		if err != nil {
			continue
		}
		for _, c := range cfg.Clusters {
			out[hostOf(c.Server)] = filepath.Dir(p)
		}
	}
	return out
}

// hostOf is the host:port of an API server URL (the URL itself if it does not parse).
func hostOf(server string) string {
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		return u.Host
	}
	return server
}
