package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// scraped is one scrape of /metrics, parsed with the Prometheus text parser.
type scraped map[string]*dto.MetricFamily

func parseMetrics(t *testing.T, body io.Reader) scraped {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func scrapeHandler(t *testing.T, h http.Handler) scraped {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return parseMetrics(t, rec.Body)
}

// value is the sample of name whose labels include labels (a counter's or gauge's value, a
// histogram's count); ok is false when there is none.
func (s scraped) value(name string, labels ...string) (float64, bool) {
	fam := s[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// sum adds every sample of name (counters and gauges).
func (s scraped) sum(name string) float64 {
	total := 0.0
	if fam := s[name]; fam != nil {
		for _, m := range fam.Metric {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

func hasLabels(m *dto.Metric, kv []string) bool {
	have := map[string]string{}
	for _, l := range m.Label {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if have[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

func (s scraped) want(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := s.value(name, labels...)
	if !ok {
		t.Errorf("%s%v: no such sample", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func step(addr string, kind plan.Kind, a plan.Action) plan.Step {
	return plan.Step{Address: addr, Kind: kind, Action: a}
}

// The pass counters, pending changes and drift corrections follow a sequence of passes: only
// the changes of a pass after a converged one on the same spec count as drift.
func TestMetricsFromPasses(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	m := NewMetrics(func() time.Time { return now })
	pass := func(spec string, steps []plan.Step, ok, failed []string, err error) {
		res := &PassResult{Plan: &plan.Plan{SpecFingerprint: spec, Steps: steps}}
		if len(steps) > 0 {
			res.Result = &executor.Result{Succeeded: ok, Failed: failed}
		}
		m.passed(res, err, false, 3*time.Second, now)
	}
	create := step("cluster/eu", plan.KindCluster, plan.Create)
	ready := step("member/eu/ready", plan.KindMemberReady, plan.Wait)
	update := step("cluster/eu", plan.KindCluster, plan.Update)
	policy := step("workload/web/policy", plan.KindPolicy, plan.Update)

	pass("a", []plan.Step{create, ready}, []string{"cluster/eu", "member/eu/ready"}, nil, nil)
	s := scrapeHandler(t, m.Handler())
	s.want(t, 1, "reconcile_passes_total", "outcome", "succeeded")
	s.want(t, 0, "reconcile_passes_total", "outcome", "failed")
	s.want(t, 1, "reconcile_steps_total", "action", "create", "outcome", "succeeded")
	s.want(t, 1, "reconcile_steps_total", "action", "wait", "outcome", "succeeded")
	s.want(t, 0, "reconcile_plan_pending_changes")
	s.want(t, float64(now.Unix()), "reconcile_last_successful_pass_timestamp_seconds")
	s.want(t, 1, "reconcile_pass_duration_seconds")
	if got := s.sum("reconcile_drift_corrections_total"); got != 0 {
		t.Errorf("drift after the first pass: %v, want 0 (nothing to compare with)", got)
	}

	pass("a", nil, nil, nil, nil) // converged
	pass("a", []plan.Step{update, policy}, []string{"cluster/eu"}, []string{"workload/web/policy"}, errors.New("a step failed"))
	s = scrapeHandler(t, m.Handler())
	s.want(t, 1, "reconcile_drift_corrections_total", "kind", "cluster")
	s.want(t, 1, "reconcile_plan_pending_changes")
	s.want(t, 1, "reconcile_passes_total", "outcome", "failed")
	s.want(t, 1, "reconcile_steps_total", "action", "update", "outcome", "failed")

	// After a failed pass, its remaining changes are not drift.
	pass("a", []plan.Step{policy}, []string{"workload/web/policy"}, nil, nil)
	// A changed fleet.yaml's changes are not drift either.
	pass("b", []plan.Step{update}, []string{"cluster/eu"}, nil, nil)
	m.passed(nil, errors.New("lock held"), true, 0, now)
	s = scrapeHandler(t, m.Handler())
	if got := s.sum("reconcile_drift_corrections_total"); got != 1 {
		t.Errorf("drift corrections: %v, want 1", got)
	}
	s.want(t, 0, "reconcile_plan_pending_changes")
	s.want(t, 4, "reconcile_passes_total", "outcome", "succeeded")
	s.want(t, 1, "reconcile_passes_total", "outcome", "skipped")
	s.want(t, 5, "reconcile_pass_duration_seconds") // a skipped pass took no time
}

// Members Ready and the credentials' deadlines come from the observed world; the seconds left
// are counted at scrape time.
func TestMetricsFromWorld(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := now
	m := NewMetrics(func() time.Time { return clock })
	f := &spec.Fleet{
		Members:     []spec.Member{{Name: "eu"}, {Name: "ap"}, {Name: "us"}},
		Credentials: spec.Credentials{TokenRotation: spec.Duration{Duration: 720 * time.Hour}},
	}
	w := &world.World{
		Now:    now,
		RootCA: &world.CertInfo{NotAfter: now.Add(48 * time.Hour)},
		Karmada: &world.Karmada{Members: map[string]*world.KarmadaMember{
			"eu": {Name: "eu", Ready: "True"}, "ap": {Name: "ap", Ready: "False"},
			"gone": {Name: "gone", Ready: "True"}, // not the fleet's member any more
		}},
		Mesh: map[string]*world.MeshMember{
			"eu": {CACerts: &world.CertInfo{NotAfter: now.Add(24 * time.Hour)}, ReaderTokenCreated: now.Add(-700 * time.Hour)},
			"us": {}, // nothing known: no sample
		},
		Clusters: map[string]*world.Cluster{
			"eu": {PushJoin: &world.PushJoin{TokenCreated: now.Add(-730 * time.Hour)}},
			"ap": {Agent: &world.AgentCredential{NotAfter: now.Add(10 * time.Hour)}, PushJoin: &world.PushJoin{}},
		},
	}
	m.observed(f, w)
	s := scrapeHandler(t, m.Handler())
	s.want(t, 1, "reconcile_member_ready", "member", "eu")
	s.want(t, 0, "reconcile_member_ready", "member", "ap")
	s.want(t, 0, "reconcile_member_ready", "member", "us")
	if _, ok := s.value("reconcile_member_ready", "member", "gone"); ok {
		t.Error("a Cluster that is not the fleet's member has a reconcile_member_ready sample")
	}
	s.want(t, 48*3600, "reconcile_certificate_expiry_seconds", "kind", "mesh-root", "member", "")
	s.want(t, 24*3600, "reconcile_certificate_expiry_seconds", "kind", "mesh-intermediate", "member", "eu")
	s.want(t, 10*3600, "reconcile_certificate_expiry_seconds", "kind", "karmada-agent", "member", "ap")
	s.want(t, 20*3600, "reconcile_token_rotation_due_seconds", "kind", "istio-reader", "member", "eu")
	s.want(t, -10*3600, "reconcile_token_rotation_due_seconds", "kind", "karmada", "member", "eu")
	if n := len(s["reconcile_token_rotation_due_seconds"].GetMetric()); n != 2 {
		t.Errorf("%d token samples, want 2 (a token of unknown age has none)", n)
	}

	clock = now.Add(time.Hour) // a scrape an hour later, no pass in between
	s = scrapeHandler(t, m.Handler())
	s.want(t, 47*3600, "reconcile_certificate_expiry_seconds", "kind", "mesh-root", "member", "")

	// A member that left the fleet loses its samples at the next observation.
	f.Members = f.Members[:1]
	m.observed(f, w)
	s = scrapeHandler(t, m.Handler())
	var members []string
	for _, mt := range s["reconcile_member_ready"].GetMetric() {
		members = append(members, mt.GetLabel()[0].GetValue())
	}
	sort.Strings(members)
	if strings.Join(members, ",") != "eu" {
		t.Errorf("reconcile_member_ready for %v, want eu only", members)
	}
}

// The rollout gauges: the stage a rollout applied last, and whether it halted; a workload
// without a rollout, or whose rollout ended, has no sample.
func TestMetricsRollouts(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil)
	f := &spec.Fleet{Workloads: []spec.Workload{{Name: "hello", Rollout: &spec.Rollout{}}, {Name: "web", Rollout: &spec.Rollout{}}, {Name: "plain"}}}
	w := &world.World{Rollouts: map[string]*world.Rollout{
		"hello": {Workload: "hello", Stage: 2, Stages: 3},
		"web":   {Workload: "web", Stage: 0, Stages: 2, Halted: "the gate of stage 1/2 did not hold within 10m0s"},
		"plain": {Workload: "plain", Stage: 1, Stages: 1}, // no rollout in fleet.yaml (any more)
	}}
	m.observed(f, w)
	s := scrapeHandler(t, m.Handler())
	s.want(t, 2, "reconcile_rollout_stage", "workload", "hello")
	s.want(t, 0, "reconcile_rollout_halted", "workload", "hello")
	s.want(t, 0, "reconcile_rollout_stage", "workload", "web")
	s.want(t, 1, "reconcile_rollout_halted", "workload", "web")
	if _, ok := s.value("reconcile_rollout_stage", "workload", "plain"); ok {
		t.Error("a workload without rollout has a reconcile_rollout_stage sample")
	}
	delete(w.Rollouts, "hello") // complete
	m.rollouts(f, w)
	if _, ok := scrapeHandler(t, m.Handler()).value("reconcile_rollout_stage", "workload", "hello"); ok {
		t.Error("a completed rollout keeps its sample")
	}
}

// Every metric of ours follows the naming conventions: the reconcile_ prefix, counters end
// in _total, and each has help.
func TestMetricNames(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil)
	m.linodeRequest("lke-clusters", 429)
	m.observed(&spec.Fleet{Members: []spec.Member{{Name: "eu"}}}, &world.World{RootCA: &world.CertInfo{NotAfter: time.Now()}})
	m.passed(&PassResult{Plan: &plan.Plan{Steps: []plan.Step{step("cluster/eu", plan.KindCluster, plan.Create)}},
		Result: &executor.Result{Succeeded: []string{"cluster/eu"}}}, nil, false, time.Second, time.Now())
	s := scrapeHandler(t, m.Handler())
	s.want(t, 1, "reconcile_linode_api_requests_total", "endpoint", "lke-clusters", "code", "429")
	ours := 0
	for name, fam := range s {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") {
			continue
		}
		ours++
		if !strings.HasPrefix(name, "reconcile_") {
			t.Errorf("%s: not reconcile_", name)
		}
		if (fam.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: a counter's name, and only a counter's, ends in _total", name)
		}
		if fam.GetHelp() == "" {
			t.Errorf("%s: no help", name)
		}
	}
	if ours != 8 { // all but the drift corrections and token rotations, which have no sample here
		t.Errorf("%d metrics of ours, want 8", ours)
	}
}
