package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	workv1alpha2 "github.com/karmada-io/karmada/pkg/apis/work/v1alpha2"
	karmadaclient "github.com/karmada-io/karmada/pkg/generated/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconcile-dev/reconcile/planner"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/weights"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Exit codes of `reconcile status`: 0 healthy, 3 degraded, 1 when status itself failed.
const (
	statusExitHealthy  = 0
	statusExitError    = 1
	statusExitDegraded = 3
)

// statusTimeout bounds the whole of `reconcile status`: a member whose API server hangs
// (stopped, not gone) is reported as unreachable, never waited for. Each read is bounded
// more tightly by the observers (5s for a cluster's probe, 15s for Karmada) and statusRead.
const (
	statusTimeout = 2 * time.Minute
	statusRead    = 10 * time.Second
)

// runStatus is `reconcile status`: it observes every layer as a dry run does (the same
// observers, the state behind an Overlay, no lock), builds the Status and prints it.
func runStatus(ctx context.Context, f *spec.Fleet, o options, stdout, stderr io.Writer, log *slog.Logger) int {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	st, err := observeStatus(ctx, f, o.stateDir, log)
	if err != nil {
		fmt.Fprintf(stderr, "reconcile: status: %v\n", err)
		return statusExitError
	}
	if o.output == "json" {
		err = writeStatusJSON(stdout, st)
	} else {
		err = writeStatusText(stdout, st)
	}
	if err != nil {
		fmt.Fprintf(stderr, "reconcile: status: %v\n", err)
		return statusExitError
	}
	return statusExit(st)
}

func statusExit(st *Status) int {
	if st.Health != Healthy {
		return statusExitDegraded
	}
	return statusExitHealthy
}

// observeStatus reads the world, the plan it yields and the pass log. Nothing is written:
// whatever the observers cache goes to an Overlay, and no lock is taken.
func observeStatus(ctx context.Context, f *spec.Fleet, stateDir string, log *slog.Logger) (*Status, error) {
	store, err := openBackend(ctx, f, stateDir)
	if err != nil {
		return nil, err
	}
	files := state.NewOverlay(store)
	observers, _, err := wire(f, files, log, wireOptions{dryRun: true})
	if err != nil {
		return nil, err
	}
	w, err := (&Reconciler{Log: log}).Observe(ctx, f, observers)
	if err != nil {
		return nil, err
	}
	in := statusInput{Fleet: f, World: w}
	in.Plan, in.PlanErr = planner.Compute(f, w, planner.Options{})
	if in.Passes, err = store.Passes(); err != nil {
		return nil, fmt.Errorf("the pass log: %w", err)
	}
	if w.Karmada != nil && w.Karmada.APIServiceAvailable {
		r, err := newKarmadaReader(kube.Access{Store: files}.For(f))
		if err == nil {
			in.ReadySince, err = r.readySince(ctx)
		}
		if err == nil {
			in.Reports, err = r.reports(ctx, f, w)
		}
		if err != nil {
			in.ReportsErr = err.Error()
		}
	}
	return buildStatus(in), nil
}

// karmadaReader reads what status shows of Karmada beyond the World: when each member's Ready
// condition last changed, and what the members report of each workload through the status of
// its ResourceBinding. It only reads.
type karmadaReader struct {
	client karmadaclient.Interface
}

func newKarmadaReader(access kube.Access) (*karmadaReader, error) {
	cfg, err := access.KarmadaRESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = statusRead
	c, err := karmadaclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("karmada: %w", err)
	}
	return &karmadaReader{client: c}, nil
}

func (r *karmadaReader) readySince(ctx context.Context) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, statusRead)
	defer cancel()
	list, err := r.client.ClusterV1alpha1().Clusters().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("karmada: list clusters: %w", err)
	}
	out := map[string]time.Time{}
	for _, c := range list.Items {
		if cond := meta.FindStatusCondition(c.Status.Conditions, "Ready"); cond != nil {
			out[c.Name] = cond.LastTransitionTime.UTC()
		}
	}
	return out, nil
}

// reports reads the binding of every named resource of the fleet's workloads that Karmada
// holds (the keys of World.Karmada.Workloads, as the planner's split uses them).
func (r *karmadaReader) reports(ctx context.Context, f *spec.Fleet, w *world.World) (map[string]BindingReporting, error) {
	out := map[string]BindingReporting{}
	for i := range f.Workloads {
		want := planner.DesiredPolicy(f, &f.Workloads[i])
		for _, res := range f.Workloads[i].Resources {
			key := want.Namespace + "/" + res.Kind + "/" + res.Name
			if res.Name == "" || w.Karmada.Workloads[key] == nil {
				continue
			}
			items, err := r.aggregated(ctx, want.Namespace, weights.BindingName(res.Kind, res.Name))
			if err != nil {
				return nil, fmt.Errorf("karmada: binding of %s %s: %w", res.Kind, res.Name, err)
			}
			out[key] = bindingReporting(items)
		}
	}
	return out, nil
}

func (r *karmadaReader) aggregated(ctx context.Context, namespace, name string) ([]workv1alpha2.AggregatedStatusItem, error) {
	ctx, cancel := context.WithTimeout(ctx, statusRead)
	defer cancel()
	if namespace == "" {
		b, err := r.client.WorkV1alpha2().ClusterResourceBindings().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return b.Status.AggregatedStatus, nil
	}
	b, err := r.client.WorkV1alpha2().ResourceBindings(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return b.Status.AggregatedStatus, nil
}

// bindingReporting turns a binding's status.aggregatedStatus into reports by member. The
// replica counts come from the status Karmada collected from the member's resource.
func bindingReporting(items []workv1alpha2.AggregatedStatusItem) BindingReporting {
	out := BindingReporting{}
	for _, it := range items {
		rep := MemberReport{Applied: it.Applied, Health: string(it.Health)}
		if it.Status != nil && len(it.Status.Raw) > 0 {
			var counts struct {
				Replicas      int64 `json:"replicas"`
				ReadyReplicas int64 `json:"readyReplicas"`
			}
			if json.Unmarshal(it.Status.Raw, &counts) == nil {
				rep.Replicas, rep.ReadyReplicas = counts.Replicas, counts.ReadyReplicas
			}
		}
		out[it.ClusterName] = rep
	}
	return out
}

func writeStatusJSON(w io.Writer, st *Status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// errNoStatus is returned for a nil Status (a bug: observeStatus always makes one).
var errNoStatus = errors.New("no status")

// joinNonEmpty joins the non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}
