package helm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state/world"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/reconcile-dev/reconcile/lab/cluster"
	"github.com/reconcile-dev/reconcile/lab/labtest"
)

// This package's lab cluster address (127.0.0.20-29 are reserved for state/helm tests).
const labAddress = "127.0.0.20"

var (
	sharedEtcd = labtest.Etcd{Prefix: "reconcile-helm-lab-"}
	lab        struct {
		once    sync.Once
		cluster *cluster.Cluster
		err     error
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if lab.cluster != nil {
		_ = lab.cluster.Stop()
	}
	_ = sharedEtcd.Stop()
	os.Exit(code)
}

// labConfig starts (once per package) an etcd and a kube-apiserver with kube-controller-manager
// and returns an admin config for it; it skips the test when the binaries are not built, unless
// RECONCILE_LAB_REQUIRED is set.
func labConfig(t *testing.T) *rest.Config {
	t.Helper()
	etcd, bins, _ := sharedEtcd.Start(t)
	lab.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		lab.cluster, lab.err = cluster.StartCluster(ctx, cluster.ClusterOptions{
			Name: "helm", Dir: filepath.Join(sharedEtcd.Dir(), "helm"), Address: labAddress, Etcd: etcd, Bins: bins,
		})
	})
	if lab.err != nil {
		t.Fatalf("lab cluster: %v", lab.err)
	}
	return lab.cluster.RESTConfig()
}

// countedConfig is cfg with its writes counted (anything but GET, HEAD and OPTIONS).
func countedConfig(cfg *rest.Config) (*rest.Config, *labtest.WriteCounter) {
	cfg = rest.CopyConfig(cfg)
	wc := &labtest.WriteCounter{Ignore: func(r *http.Request) bool { return r.Method == http.MethodOptions }}
	cfg.Wrap(wc.Wrap)
	return cfg, wc
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func clientset(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// jobCompleter plays the kubelet for hook Jobs in one namespace: while running, it marks every
// Job it sees succeeded through the status subresource.
type jobCompleter struct {
	cs     kubernetes.Interface
	ns     string
	cancel context.CancelFunc
	done   chan struct{}
	count  atomic.Int64
}

func startJobCompleter(t *testing.T, cs kubernetes.Interface, ns string) *jobCompleter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	j := &jobCompleter{cs: cs, ns: ns, cancel: cancel, done: make(chan struct{})}
	w, err := cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(j.done)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				job, isJob := ev.Object.(*batchv1.Job)
				if !isJob || (ev.Type != watch.Added && ev.Type != watch.Modified) || complete(job) {
					continue
				}
				if err := j.complete(ctx, job.Name); err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
					t.Errorf("complete job %s/%s: %v", ns, job.Name, err)
				}
			}
		}
	}()
	t.Cleanup(j.stop)
	return j
}

func (j *jobCompleter) stop() {
	j.cancel()
	<-j.done
}

func complete(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// complete marks a Job succeeded: kube-apiserver wants startTime, completionTime, succeeded and
// both SuccessCriteriaMet and Complete.
func (j *jobCompleter) complete(ctx context.Context, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		job, err := j.cs.BatchV1().Jobs(j.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if complete(job) {
			return nil
		}
		now := metav1.Now()
		if job.Status.StartTime == nil {
			job.Status.StartTime = &now
		}
		job.Status.CompletionTime = &now
		job.Status.Active, job.Status.Succeeded = 0, 1
		zero := int32(0)
		job.Status.Ready = &zero
		job.Status.Terminating = &zero
		job.Status.Conditions = append(job.Status.Conditions,
			batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached",
				LastProbeTime: now, LastTransitionTime: now},
			batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached",
				LastProbeTime: now, LastTransitionTime: now})
		if _, err := j.cs.BatchV1().Jobs(j.ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
			return err
		}
		j.count.Add(1)
		return nil
	})
}

// createNamespace makes a namespace for one test and removes it afterwards.
func createNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func configMapData(t *testing.T, cs kubernetes.Interface, ns, name string) map[string]string {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("configmap %s/%s: %v", ns, name, err)
	}
	return cm.Data
}

// getRelease is Client.Get, failing the test on error.
func getRelease(t *testing.T, c *Client, ns, name string) *world.Release {
	t.Helper()
	r, err := c.Get(context.Background(), name, ns)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func describe(v any) string { return fmt.Sprintf("%+v", v) }
