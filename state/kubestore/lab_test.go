package kubestore

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
)

// This package's lab cluster address (127.0.3.0/24 is reserved for state/kubestore tests).
const labAddress = "127.0.3.1"

// Bearer tokens the lab API server accepts (--token-auth-file): a user with no RBAC rights at
// all, and one that tests grant rights to in their own namespaces.
const (
	nobodyToken = "kubestore-nobody-token"
	nobodyUser  = "nobody"
	writerToken = "kubestore-writer-token"
	writerUser  = "state-writer"
)

var (
	sharedEtcd = labtest.Etcd{Prefix: "reconcile-kubestore-lab-"}
	lab        struct {
		once    sync.Once
		cluster *cluster.Cluster
		err     error
	}
	namespaces atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if lab.cluster != nil {
		_ = lab.cluster.Stop()
	}
	_ = sharedEtcd.Stop()
	os.Exit(code)
}

// labCluster starts (once per package) an etcd and a kube-apiserver that also accepts the
// test tokens; it skips when the lab binaries are not built, unless RECONCILE_LAB_REQUIRED is
// set.
func labCluster(tb testing.TB) *cluster.Cluster {
	tb.Helper()
	etcd, bins, _ := sharedEtcd.Start(tb)
	lab.once.Do(func() {
		dir := filepath.Join(sharedEtcd.Dir(), "state")
		if lab.err = os.MkdirAll(dir, 0o700); lab.err != nil {
			return
		}
		tokens := filepath.Join(dir, "tokens.csv")
		csv := fmt.Sprintf("%s,%s,1001\n%s,%s,1002\n", nobodyToken, nobodyUser, writerToken, writerUser)
		if lab.err = os.WriteFile(tokens, []byte(csv), 0o600); lab.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		lab.cluster, lab.err = cluster.StartCluster(ctx, cluster.ClusterOptions{
			Name: "state", Dir: dir, Address: labAddress, Etcd: etcd, Bins: bins,
			ExtraAPIServerArgs: []string{"--token-auth-file", tokens},
		})
	})
	if lab.err != nil {
		tb.Fatalf("lab cluster: %v", lab.err)
	}
	return lab.cluster
}

// admin is a client with every right, for setting up and inspecting.
func admin(tb testing.TB) kubernetes.Interface {
	tb.Helper()
	c, err := kubernetes.NewForConfig(labCluster(tb).RESTConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// tokenConfig is a client configuration for the lab cluster authenticating with token.
func tokenConfig(tb testing.TB, token string) *rest.Config {
	c := labCluster(tb)
	return &rest.Config{Host: c.Endpoint(), BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: c.CACert()}}
}

// newNamespace creates a namespace of the test's own.
func newNamespace(tb testing.TB) string {
	tb.Helper()
	ns := fmt.Sprintf("state-%d-%s", namespaces.Add(1), randomHex(3))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin(tb).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
	return ns
}

// open opens the state of fleet in ns as the lab admin; change adjusts the Config.
func open(tb testing.TB, ns, fleet string, change ...func(*Config)) *Store {
	tb.Helper()
	c := labCluster(tb)
	cfg := Config{Fleet: fleet, Namespace: ns, REST: c.RESTConfig(), Where: "lab-state.kubeconfig"}
	for _, f := range change {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// counted counts the requests of the Store's client that write.
func counted(wc *labtest.WriteCounter) func(*Config) {
	return func(cfg *Config) {
		cfg.REST = rest.CopyConfig(cfg.REST)
		wc.Ignore = func(r *http.Request) bool { return r.Method == http.MethodOptions }
		cfg.REST.Wrap(wc.Wrap)
	}
}

// fleetSecrets are the Secrets of fleet in ns, by state kind ("file", "chunk").
func fleetSecrets(tb testing.TB, ns, fleet, kind string) []corev1.Secret {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := admin(tb).CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{
		LabelSelector: LabelFleet + "=" + fleet + "," + LabelState + "=" + kind,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return list.Items
}

// eventually waits up to timeout for cond, checking every 50ms.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// closedWithin says whether ch closes within timeout.
func closedWithin(ch <-chan struct{}, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// grant lets user do in ns what a Store does: get, list, create, update and delete Secrets,
// get, create and update Leases.
func grant(tb testing.TB, ns, user string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := admin(tb)
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "reconcile-state", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
		},
	}
	if _, err := c.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reconcile-state", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}
	if _, err := c.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
}
