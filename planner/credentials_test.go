package planner

import (
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Tokens younger than credentials.tokenRotation, or of unknown age, are left alone: the pass
// after a rotation plans nothing.
func TestRecentTokensPlanNothing(t *testing.T) {
	t.Parallel()
	f, w := loadCase(t, "rotate-credentials")
	p, err := Compute(f, w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 0 || len(p.Notes) != 0 {
		t.Errorf("recent tokens: want no steps, got %v, notes %q", addresses(p), p.Notes)
	}
}

func TestTokenAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	f := &spec.Fleet{Credentials: spec.Credentials{TokenRotation: spec.Duration{Duration: 720 * time.Hour}}}
	b := &builder{f: f, w: &world.World{Now: now}}
	tests := []struct {
		created time.Time
		age     string
		rotates bool
	}{
		{time.Time{}, "unknown", false},
		{now.Add(-30 * time.Second), "0m", false},
		{now.Add(-90 * time.Minute), "1h", false},
		{now.Add(-719 * time.Hour), "29d", false},
		{now.Add(-720 * time.Hour), "30d", true},
		{now.Add(-31 * 24 * time.Hour), "31d", true},
		{now.Add(time.Hour), "0m", false}, // a clock ahead of the cluster's: not old
	}
	for _, tc := range tests {
		if got := b.tokenAge(tc.created); got != tc.age {
			t.Errorf("tokenAge(%v) = %q, want %q", tc.created, got, tc.age)
		}
		if got := b.rotates(tc.created); got != tc.rotates {
			t.Errorf("rotates(%v) = %v, want %v", tc.created, got, tc.rotates)
		}
	}
	b.opts.RotateCredentials = true
	if !b.rotates(time.Time{}) {
		t.Error("--rotate-credentials rotates a token of unknown age too")
	}
	for d, want := range map[time.Duration]string{720 * time.Hour: "720h", 90 * time.Minute: "1h30m", time.Hour: "1h", 45 * time.Second: "45s"} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v) = %q, want %q", d, got, want)
		}
	}
}
