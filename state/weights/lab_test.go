package weights

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// The lab: one etcd, and one kube-apiserver on 127.0.0.200 with Karmada's policy and work
// CRDs standing in for the Karmada API. Each is started on first use; TestMain stops them.
var (
	sharedEtcd = labtest.Etcd{Prefix: "weights-lab-"}
	lab        struct {
		standinOnce sync.Once
		standinErr  error
		standin     *cluster.Cluster
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if lab.standin != nil {
		_ = lab.standin.Stop()
	}
	_ = sharedEtcd.Stop()
	os.Exit(code)
}

// labEtcd returns the shared etcd and the lab binaries, skipping the test when they are not
// built (failing it when RECONCILE_LAB_REQUIRED is set).
func labEtcd(t *testing.T) (*cluster.Etcd, cluster.Binaries) {
	t.Helper()
	etcd, bins, _ := sharedEtcd.Start(t)
	return etcd, bins
}

// karmadaLab returns the shared stand-in Karmada API.
func karmadaLab(t *testing.T) *cluster.Cluster {
	t.Helper()
	etcd, bins := labEtcd(t)
	lab.standinOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		lab.standin, lab.standinErr = cluster.StartCluster(ctx, cluster.ClusterOptions{
			Name: "karmada", Dir: filepath.Join(sharedEtcd.Dir(), "karmada"), Address: "127.0.0.200",
			Etcd: etcd, Bins: bins,
		})
		if lab.standinErr == nil {
			lab.standinErr = applyKarmadaCRDs(ctx, lab.standin)
		}
	})
	if lab.standinErr != nil {
		t.Fatalf("lab: %v", lab.standinErr)
	}
	return lab.standin
}

// applyKarmadaCRDs applies the policy and work CRDs of the karmada module's chart by
// server-side apply and waits until they are served.
func applyKarmadaCRDs(ctx context.Context, c *cluster.Cluster) error {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/karmada-io/karmada").Output()
	if err != nil {
		return fmt.Errorf("find the karmada module: %w", err)
	}
	bases := filepath.Join(strings.TrimSpace(string(out)), "charts", "karmada", "_crds", "bases")
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		return err
	}
	var names []string
	for _, sub := range []string{"policy", "work"} {
		files, err := filepath.Glob(filepath.Join(bases, sub, "*.yaml"))
		if err != nil || len(files) == 0 {
			return fmt.Errorf("no CRDs in %s/%s", bases, sub)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			js, err := yaml.YAMLToJSON(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(js); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if _, err := dyn.Resource(crdGVR).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "weights-test", Force: true}); err != nil {
				return fmt.Errorf("apply %s: %w", file, err)
			}
			names = append(names, u.GetName())
		}
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, cond := range conds {
				if m, _ := cond.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", name, err)
		}
	}
	return nil
}

type harness struct {
	driver *Driver
	writes *labtest.WriteCounter
	log    *labtest.SyncBuffer
	store  *state.Store
	dyn    dynamic.Interface
}

// karmadaAPI is a Karmada API of the lab: the stand-in or a real control plane.
type karmadaAPI interface {
	Kubeconfig() []byte
	RESTConfig() *rest.Config
}

// newHarness is a driver whose state store holds the lab Karmada's kubeconfig.
func newHarness(t *testing.T, c karmadaAPI) *harness {
	t.Helper()
	store, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.WriteFile(kube.KarmadaKubeconfig, c.Kubeconfig()); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{writes: &labtest.WriteCounter{Ignore: isDryRun}, log: &labtest.SyncBuffer{}, store: store, dyn: dyn}
	h.driver = New(Config{
		Fleet:         "lab",
		Access:        kube.Access{Store: store},
		Log:           slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		WrapTransport: h.writes.Wrap,
		DeleteTimeout: 30 * time.Second,
		Store:         store,
	})
	return h
}

// loadFleet writes fleet.yaml (members eu, ap, us reached by kubeconfig) with the given
// workloads section and manifest files, and loads it.
func loadFleet(t *testing.T, workloads string, files map[string]string) *spec.Fleet {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := `apiVersion: reconcile.dev/v1alpha1
kind: Fleet
metadata:
  name: weights-test
manager:
  name: manager
  kubeconfig: {path: ./manager.kubeconfig}
  karmada:
    chart: {repo: https://example.invalid/charts, name: karmada, version: v1.18.2}
members:
  - {name: eu, kubeconfig: {path: ./eu.kubeconfig}, network: n-eu}
  - {name: ap, kubeconfig: {path: ./ap.kubeconfig}, network: n-ap}
  - {name: us, kubeconfig: {path: ./us.kubeconfig}, network: n-us}
` + workloads
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := spec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// isDryRun leaves dry runs out of the writes: they change nothing.
func isDryRun(r *http.Request) bool { return strings.Contains(r.URL.RawQuery, "dryRun") }
