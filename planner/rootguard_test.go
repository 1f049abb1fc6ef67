package planner

import (
	"errors"
	"strings"
	"testing"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/world"
)

const otherRoot = "sha256:9d3e7a41c0b85f26e1d4a7c3b9f0e2d6a8c5b1f4e7d0a3c6b9f2e5d8a1c4b7e0"

// The refusal names the members, the members' root and the store's, and both ways out.
func TestRootGuardRefuses(t *testing.T) {
	t.Parallel()
	f, w := converged(t)
	storeRoot := w.RootCA.RootFingerprint
	w.Mesh["ap"].CACerts.RootFingerprint = otherRoot
	_, err := Compute(f, w, Options{})
	var e *RootGuardError
	if !errors.As(err, &e) {
		t.Fatalf("want *RootGuardError, got %v", err)
	}
	if e.StoreRoot != storeRoot || len(e.Members) != 1 || e.Members[0] != (ForeignRoot{Member: "ap", Root: otherRoot}) {
		t.Errorf("error = %+v", e)
	}
	for _, want := range []string{"ap: cacerts chains to root sha256:9d3e7a41c0b85f26", "the state store's mesh root is sha256:5c1f0e0d9b7a2f4c",
		"--state-dir", "state:", "reconcile state migrate", "--replace-mesh-root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message lacks %q:\n%s", want, err)
		}
	}
	if strings.Contains(err.Error(), "eu") || strings.Contains(err.Error(), "us:") {
		t.Errorf("only ap holds another root:\n%s", err)
	}
}

func TestRootGuardCases(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(w *world.World)
		opts Options
		// refused: Compute returns *RootGuardError naming these members.
		refused []string
		// errText: Compute returns another error containing this.
		errText string
		check   func(t *testing.T, p *plan.Plan)
	}{
		// A member that is new to the mesh has no cacerts: it gets an intermediate from the
		// store's root, as before.
		{name: "new member without cacerts", edit: func(w *world.World) { w.Mesh["ap"].CACerts = nil },
			check: func(t *testing.T, p *plan.Plan) {
				s := stepOf(p, "member/ap/mesh/cacerts")
				if s == nil || s.Action != plan.Create || stepOf(p, AddrRootCA) != nil {
					t.Errorf("want + member/ap/mesh/cacerts from the store's root, got %v", addresses(p))
				}
			}},
		{name: "cacerts not readable", edit: func(w *world.World) {
			w.Mesh["eu"].CACerts = nil
			w.Mesh["eu"].CACertsInvalid = "cacerts lacks ca-key.pem"
		}, refused: []string{"eu"}},
		{name: "cacerts not readable, replaced on purpose", opts: Options{ReplaceMeshRoot: true}, edit: func(w *world.World) {
			w.Mesh["eu"].CACerts = nil
			w.Mesh["eu"].CACertsInvalid = "cacerts lacks ca-key.pem"
		}, check: func(t *testing.T, p *plan.Plan) {
			s := stepOf(p, "member/eu/mesh/cacerts")
			if s == nil || s.Action != plan.Replace || s.Payload.CACerts.Replaces == nil {
				t.Errorf("want -/+ member/eu/mesh/cacerts, got %+v", s)
			}
		}},
		{name: "store empty, one member holds a root", edit: func(w *world.World) {
			w.RootCA = nil
			w.Mesh["eu"].CACerts, w.Mesh["us"].CACerts = nil, nil
		}, refused: []string{"ap"}},
		// Replacing with an empty store: a new root, nothing of the store's to keep.
		{name: "store empty, replaced on purpose", opts: Options{ReplaceMeshRoot: true}, edit: func(w *world.World) { w.RootCA = nil },
			check: func(t *testing.T, p *plan.Plan) {
				s := stepOf(p, AddrRootCA)
				if s == nil || s.Action != plan.Replace || s.Payload.RootCA.Replaces != nil {
					t.Fatalf("want -/+ %s replacing no store root, got %+v", AddrRootCA, s)
				}
				if c := changeOf(*s, "root"); c == nil || c.Before != "none in the state store" {
					t.Errorf("root change %+v", c)
				}
			}},
		// Nothing to replace: the flag changes nothing of a cold start.
		{name: "cold start with the flag", opts: Options{ReplaceMeshRoot: true}, edit: func(w *world.World) {
			w.RootCA = nil
			w.Mesh = nil
		}, check: func(t *testing.T, p *plan.Plan) {
			if s := stepOf(p, AddrRootCA); s == nil || s.Action != plan.Create {
				t.Errorf("want + %s, got %+v", AddrRootCA, s)
			}
		}},
		// The store has no root and eu was not read: eu may hold a root, so none is invented.
		{name: "store empty, a member not read", edit: func(w *world.World) {
			w.RootCA = nil
			w.Mesh = nil
			w.Clusters["eu"].Reachable = false
		}, check: func(t *testing.T, p *plan.Plan) {
			for _, s := range p.Steps {
				if s.Address == AddrRootCA || s.Kind == plan.KindCACerts || s.Kind == plan.KindMeshRelease || s.Kind == plan.KindRemoteSecret {
					t.Errorf("planned %s without a root", s.Address)
				}
			}
			if !strings.Contains(strings.Join(p.Notes, "\n"), "mesh/root-ca is held") {
				t.Errorf("notes = %q", p.Notes)
			}
		}},
		// ap exists in Linode but its kubeconfig could not be fetched (LKE answered 503): its
		// kubeconfig step is planned, and no root is invented before it is read.
		{name: "store empty, a member's kubeconfig not served", edit: func(w *world.World) {
			w.RootCA = nil
			w.Mesh = nil
			w.Clusters["ap"].KubeconfigStored = false
			w.Clusters["ap"].Reachable = false
		}, check: func(t *testing.T, p *plan.Plan) {
			if stepOf(p, "cluster/ap/kubeconfig") == nil {
				t.Errorf("want the kubeconfig step planned, got %v", addresses(p))
			}
			if s := stepOf(p, AddrRootCA); s != nil {
				t.Errorf("planned %s while ap was not read", s.Address)
			}
		}},
		{name: "replace while a member is not read", opts: Options{ReplaceMeshRoot: true}, edit: func(w *world.World) {
			w.Clusters["eu"].Reachable = false
			delete(w.Mesh, "eu")
		}, errText: "the mesh of eu could not be read"},
		{name: "root lost, even with the flag", opts: Options{ReplaceMeshRoot: true}, edit: func(w *world.World) {
			w.RootCA = nil
			w.RootCALost = true
		}, errText: ErrRootCALost.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, w := converged(t)
			tc.edit(w)
			p, err := Compute(f, w, tc.opts)
			var e *RootGuardError
			switch {
			case tc.refused != nil:
				if !errors.As(err, &e) {
					t.Fatalf("want *RootGuardError, got %v", err)
				}
				var got []string
				for _, m := range e.Members {
					got = append(got, m.Member)
				}
				if strings.Join(got, ",") != strings.Join(tc.refused, ",") {
					t.Errorf("members %v, want %v", got, tc.refused)
				}
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("want an error with %q, got %v", tc.errText, err)
				}
			case err != nil:
				t.Fatal(err)
			default:
				tc.check(t, p)
				for _, s := range p.Steps {
					if s.Kind == plan.KindCACerts && s.Action == plan.Create && w.Mesh[s.Cluster] != nil &&
						(w.Mesh[s.Cluster].CACerts != nil || w.Mesh[s.Cluster].CACertsInvalid != "") {
						t.Errorf("%s says %q but a cacerts exists", s.Address, s.Reason)
					}
				}
			}
		})
	}
}
