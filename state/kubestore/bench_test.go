package kubestore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reconcile-dev/reconcile/state"
)

// BenchmarkNoopPassState replays what a no-op pass asks of its state: (for the kubernetes
// store, one Refresh,) an Exists and a ReadFile of each cached kubeconfig, pool cache and root
// file, and one RecordPass.
func BenchmarkNoopPassState(b *testing.B) {
	names := []string{
		"kubeconfigs/manager", "kubeconfigs/us", "kubeconfigs/eu", "kubeconfigs/ap",
		"pool-cache/us", "pool-cache/eu", "pool-cache/ap",
		"mesh-root.pem", "mesh-root.key", "karmada-credentials",
	}
	seed := func(b *testing.B, s state.Backend) {
		for _, n := range names {
			if err := s.WriteFile(n, fmt.Appendf(nil, "%s %0500d", n, 0)); err != nil {
				b.Fatal(err)
			}
		}
	}
	pass := func(b *testing.B, s state.Backend, refresh func() error) {
		if refresh != nil {
			if err := refresh(); err != nil {
				b.Fatal(err)
			}
		}
		for _, n := range names {
			if !s.Exists(n) {
				b.Fatalf("%s is missing", n)
			}
			if _, err := s.ReadFile(n); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.RecordPass(state.PassRecord{Time: time.Now(), Duration: time.Second}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("local", func(b *testing.B) {
		s, err := state.OpenStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		seed(b, s)
		b.ResetTimer()
		for range b.N {
			pass(b, s, nil)
		}
	})
	b.Run("kubernetes", func(b *testing.B) {
		s := open(b, newNamespace(b), "bench")
		seed(b, s)
		b.ResetTimer()
		for range b.N {
			pass(b, s, func() error { return s.Refresh(context.Background()) })
		}
	})
}
