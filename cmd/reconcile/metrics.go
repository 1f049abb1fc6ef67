package main

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/entry"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Metrics are the daemon's Prometheus metrics, on a registry of their own: client-go and
// Helm register theirs on the global one, and those are not ours to publish.
type Metrics struct {
	reg *prometheus.Registry

	passDuration prometheus.Histogram
	passes       *prometheus.CounterVec
	steps        *prometheus.CounterVec
	lastSuccess  prometheus.Gauge
	pending      prometheus.Gauge
	drift        *prometheus.CounterVec
	requests     *prometheus.CounterVec
	memberReady  *prometheus.GaugeVec
	rolloutStage *prometheus.GaugeVec
	rolloutHalt  *prometheus.GaugeVec
	entryHealthy *prometheus.GaugeVec
	entryChanges *prometheus.CounterVec
	expiry       *expiryCollector

	mu sync.Mutex
	// prevSpec is the spec fingerprint of the last pass that planned, prevConverged whether
	// it left nothing to do: the changes of a pass after a converged one on the same spec
	// are drift corrections (someone or something changed the world, not fleet.yaml).
	prevSpec      string
	prevConverged bool
}

// Pass outcomes, the outcome label of reconcile_passes_total.
const (
	passSucceeded = "succeeded"
	passFailed    = "failed"
	passSkipped   = "skipped" // the fleet's lock was held by another runner
)

// NewMetrics registers every metric; now is the clock of the expiry gauges (nil: time.Now).
func NewMetrics(now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "reconcile_pass_duration_seconds",
			Help:    "How long a pass took: observe, plan and execute.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600},
		}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconcile_passes_total",
			Help: "Passes by outcome: succeeded, failed, or skipped (the fleet's lock was held by another runner).",
		}, []string{"outcome"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconcile_steps_total",
			Help: "Steps executed, by action (create, update, delete, replace, wait, noop) and outcome (succeeded, failed, skipped).",
		}, []string{"action", "outcome"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconcile_last_successful_pass_timestamp_seconds",
			Help: "When the last pass without an error ended, in seconds since the epoch.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reconcile_plan_pending_changes",
			Help: "Changes (steps that create, update, delete or replace) of the last plan that are not applied: 0 when the fleet is converged.",
		}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconcile_drift_corrections_total",
			Help: "Changes applied by a pass that followed a converged pass on the same fleet.yaml: the world had drifted. By step kind.",
		}, []string{"kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconcile_linode_api_requests_total",
			Help: "Requests sent to the Linode API, retries included, by endpoint class and HTTP status code (0: no answer).",
		}, []string{"endpoint", "code"}),
		memberReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconcile_member_ready",
			Help: "1 when Karmada reports the member's Cluster Ready, else 0, as of the last observation.",
		}, []string{"member"}),
		rolloutStage: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconcile_rollout_stage",
			Help: "The stage a workload's gated rollout of weights last applied (0: back at the weights before its first stage); no series when no rollout is under way or halted.",
		}, []string{"workload"}),
		rolloutHalt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconcile_rollout_halted",
			Help: "1 when a workload's rollout halted (a stage's gate did not hold within its timeout) and went back to its last good stage, else 0.",
		}, []string{"workload"}),
		entryHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reconcile_entry_member_healthy",
			Help: "1 when the entry's health checks find the member healthy (it is published in the shared name), else 0.",
		}, []string{"member"}),
		entryChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reconcile_entry_health_transitions_total",
			Help: "Times a member's health changed, by member and the health it changed to (healthy, unhealthy).",
		}, []string{"member", "to"}),
		expiry: &expiryCollector{now: now},
	}
	m.reg.MustRegister(m.passDuration, m.passes, m.steps, m.lastSuccess, m.pending, m.drift, m.requests,
		m.memberReady, m.rolloutStage, m.rolloutHalt, m.entryHealthy, m.entryChanges, m.expiry,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{passSucceeded, passFailed, passSkipped} {
		m.passes.WithLabelValues(o)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format (or OpenMetrics, when asked).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// linodeRequest counts one request to the Linode API (linode.Config.Requests).
func (m *Metrics) linodeRequest(endpoint string, status int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
}

// passed records a pass that ended: res is nil when it stopped before planning, skipped when
// it did not run at all, took its duration.
func (m *Metrics) passed(res *PassResult, err error, skipped bool, took time.Duration, end time.Time) {
	if m == nil {
		return
	}
	switch {
	case skipped:
		m.passes.WithLabelValues(passSkipped).Inc()
		return
	case err != nil:
		m.passes.WithLabelValues(passFailed).Inc()
	default:
		m.passes.WithLabelValues(passSucceeded).Inc()
		m.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	}
	m.passDuration.Observe(took.Seconds())
	if res == nil || res.Plan == nil {
		return
	}
	outcome := map[string]string{}
	if r := res.Result; r != nil {
		for _, list := range []struct {
			addrs   []string
			outcome string
		}{{r.Succeeded, "succeeded"}, {r.Failed, "failed"}, {r.Skipped, "skipped"}} {
			for _, a := range list.addrs {
				outcome[a] = list.outcome
			}
		}
	}
	pending := 0
	corrected := map[plan.Kind]int{}
	for _, s := range res.Plan.Steps {
		o, ran := outcome[s.Address]
		if ran {
			m.steps.WithLabelValues(actionLabel(s.Action), o).Inc()
		}
		if !changes(s.Action) {
			continue
		}
		if o != "succeeded" {
			pending++
		} else {
			corrected[s.Kind]++
		}
	}
	m.pending.Set(float64(pending))

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prevConverged && m.prevSpec == res.Plan.SpecFingerprint {
		for k, n := range corrected {
			m.drift.WithLabelValues(string(k)).Add(float64(n))
		}
	}
	m.prevSpec, m.prevConverged = res.Plan.SpecFingerprint, err == nil && pending == 0
}

// changes reports whether a step of this action writes something.
func changes(a plan.Action) bool {
	return a == plan.Create || a == plan.Update || a == plan.Delete || a == plan.Replace
}

func actionLabel(a plan.Action) string {
	if a == plan.NoOp {
		return "noop"
	}
	return string(a)
}

// observed takes the gauges that describe the world from a pass's observation.
func (m *Metrics) observed(f *spec.Fleet, w *world.World) {
	if m == nil {
		return
	}
	m.memberReady.Reset()
	for _, mem := range f.Members {
		ready := 0.0
		if w.Karmada != nil {
			if km := w.Karmada.Members[mem.Name]; km != nil && km.Ready == "True" {
				ready = 1
			}
		}
		m.memberReady.WithLabelValues(mem.Name).Set(ready)
	}
	m.expiry.set(credentialDeadlines(f, w))
	m.rollouts(f, w)
}

// rollouts takes the rollout gauges from the progress the state store keeps (World.Rollouts).
func (m *Metrics) rollouts(f *spec.Fleet, w *world.World) {
	if m == nil || f == nil || w == nil {
		return
	}
	m.rolloutStage.Reset()
	m.rolloutHalt.Reset()
	for i := range f.Workloads {
		rec := w.Rollouts[f.Workloads[i].Name]
		if f.Workloads[i].Rollout == nil || rec == nil {
			continue
		}
		halted := 0.0
		if rec.Halted != "" {
			halted = 1
		}
		m.rolloutStage.WithLabelValues(rec.Workload).Set(float64(rec.Stage))
		m.rolloutHalt.WithLabelValues(rec.Workload).Set(halted)
	}
}

// deadline is when a credential expires (a certificate) or is due for rotation (a token).
type deadline struct {
	metric string // expiryMetric or rotationMetric
	kind   string
	member string
	at     time.Time
}

const (
	expiryMetric   = "reconcile_certificate_expiry_seconds"
	rotationMetric = "reconcile_token_rotation_due_seconds"
)

var (
	expiryDesc = prometheus.NewDesc(expiryMetric,
		"Seconds until a certificate reconcile made expires (negative: expired), as of the last observation: "+
			"kind mesh-root (member empty), mesh-intermediate, karmada-agent.",
		[]string{"kind", "member"}, nil)
	rotationDesc = prometheus.NewDesc(rotationMetric,
		"Seconds until a token reconcile made is credentials.tokenRotation old and due for rotation (negative: overdue; "+
			"the next pass rotates it): kind karmada (a Push member's Karmada tokens), istio-reader.",
		[]string{"kind", "member"}, nil)
)

// credentialDeadlines lists the certificates' expiries and the tokens' rotation times in w.
// A token whose age is not known is left out: it is never rotated for its age.
func credentialDeadlines(f *spec.Fleet, w *world.World) []deadline {
	var out []deadline
	if w.RootCA != nil {
		out = append(out, deadline{expiryMetric, "mesh-root", "", w.RootCA.NotAfter})
	}
	rotation := f.Credentials.TokenRotation.Duration
	for _, mem := range f.Members {
		name := mem.Name
		if mm := w.Mesh[name]; mm != nil {
			if mm.CACerts != nil {
				out = append(out, deadline{expiryMetric, "mesh-intermediate", name, mm.CACerts.NotAfter})
			}
			if !mm.ReaderTokenCreated.IsZero() && rotation > 0 {
				out = append(out, deadline{rotationMetric, "istio-reader", name, mm.ReaderTokenCreated.Add(rotation)})
			}
		}
		c := w.Clusters[name]
		if c == nil {
			continue
		}
		if c.Agent != nil {
			out = append(out, deadline{expiryMetric, "karmada-agent", name, c.Agent.NotAfter})
		}
		if c.PushJoin != nil && !c.PushJoin.TokenCreated.IsZero() && rotation > 0 {
			out = append(out, deadline{rotationMetric, "karmada", name, c.PushJoin.TokenCreated.Add(rotation)})
		}
	}
	return out
}

// expiryCollector reports seconds left until each deadline at scrape time, so the gauges
// keep counting down between passes.
type expiryCollector struct {
	now func() time.Time

	mu        sync.Mutex
	deadlines []deadline
}

func (c *expiryCollector) set(ds []deadline) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadlines = slices.Clone(ds)
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- expiryDesc
	ch <- rotationDesc
}

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, d := range c.deadlines {
		desc := expiryDesc
		if d.metric == rotationMetric {
			desc = rotationDesc
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, d.at.Sub(now).Seconds(), d.kind, d.member)
	}
}

// serveProbes serves the probes on --health-addr and the metrics with the probes on
// --metrics-addr; the same address given to both is one listener.
func serveProbes(ctx context.Context, healthAddr, metricsAddr string, h *Health, m *Metrics, log *slog.Logger) error {
	if metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		mux.Handle("/", h.Handler())
		if err := serveHTTP(ctx, "--metrics-addr", metricsAddr, mux, log); err != nil {
			return err
		}
	}
	if healthAddr != "" && healthAddr != metricsAddr {
		return serveHTTP(ctx, "--health-addr", healthAddr, h.Handler(), log)
	}
	return nil
}

// entryHealth records the members' health after a round of checks, and a transition.
func (m *Metrics) entryHealth(statuses []entry.Status, transitions []entry.Transition) {
	if m == nil {
		return
	}
	m.entryHealthy.Reset()
	for _, s := range statuses {
		v := 0.0
		if s.Healthy {
			v = 1
		}
		m.entryHealthy.WithLabelValues(s.Member).Set(v)
	}
	for _, t := range transitions {
		to := "unhealthy"
		if t.Healthy {
			to = "healthy"
		}
		m.entryChanges.WithLabelValues(t.Member, to).Inc()
	}
}
