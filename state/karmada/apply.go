package karmada

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/reconcile-dev/reconcile/plan"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// classify is the one place errors of Apply pass through, to be marked retryable or not.
func classify(err error) error { return kube.Classify(err) }

// terminalError is an error no retry can fix: a step the planner should never have made.
// Its Retryable() false wins over whatever it wraps (see executor.Retryable).
type terminalError struct{ err error }

func (e *terminalError) Error() string   { return e.err.Error() }
func (e *terminalError) Unwrap() error   { return e.err }
func (e *terminalError) Retryable() bool { return false }

func terminalf(format string, a ...any) error {
	return &terminalError{err: fmt.Errorf(format, a...)}
}

// Apply applies one Karmada step exactly as its payload says; called when the world already
// matches, it writes nothing. The kinds, by action:
//
//   - node-address (wait): waits, bounded by ReadyTimeout, for a Ready node of Cluster with an
//     address; its output plan.OutputNodeIP is the first of the sorted Ready nodes' ExternalIP
//     (InternalIP when a node has none). A timeout is retryable.
//   - karmada-release (create, update, replace): the payload's Release on Cluster, as it says.
//   - karmada-kubeconfig (create, update, replace): <Release>-kubeconfig of Cluster pointed
//     at Server, checked to answer with TLS verified, stored, and copied to CopyTo when set.
//   - karmada-ready (wait): the Karmada API's /readyz and its cluster APIService Available.
//   - join (create, update, replace): Cluster becomes a member, Push or Pull as the payload says.
//   - member-ready (wait): Karmada's Cluster named Cluster is Ready=True.
//   - unjoin (delete): Cluster leaves Karmada; Force strips finalizers of an unreachable one.
//
// A payload that cannot have come from a correct planner (missing, with an unresolved
// reference or a plan placeholder in its values) is refused with an error no retry changes.
func (d *Driver) Apply(ctx context.Context, s plan.Step) (plan.Outputs, error) {
	out, err := d.apply(ctx, s)
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

func (d *Driver) apply(ctx context.Context, s plan.Step) (plan.Outputs, error) {
	if s.Cluster == "" && s.Kind != plan.KindKarmadaReady {
		return nil, terminalf("%s: a %s step names no cluster", s.Address, s.Kind)
	}
	p := s.Payload
	switch s.Kind {
	case plan.KindNodeAddress:
		if err := takes(s, plan.Wait); err != nil {
			return nil, err
		}
		ip, err := d.nodeAddress(ctx, s.Cluster)
		if err != nil {
			return nil, err
		}
		return plan.Outputs{plan.OutputNodeIP: ip}, nil
	case plan.KindKarmadaRelease:
		if err := takes(s, plan.Create, plan.Update, plan.Replace); err != nil {
			return nil, err
		}
		if p.Release == nil {
			return nil, noPayload(s)
		}
		return nil, d.installControlPlane(ctx, s.Cluster, *p.Release)
	case plan.KindKarmadaKubeconfig:
		if err := takes(s, plan.Create, plan.Update, plan.Replace); err != nil {
			return nil, err
		}
		if p.KarmadaKubeconfig == nil {
			return nil, noPayload(s)
		}
		return nil, d.storeKarmadaKubeconfig(ctx, s.Cluster, *p.KarmadaKubeconfig)
	case plan.KindKarmadaReady:
		if err := takes(s, plan.Wait); err != nil {
			return nil, err
		}
		return nil, d.waitControlPlaneReady(ctx)
	case plan.KindJoin:
		if err := takes(s, plan.Create, plan.Update, plan.Replace); err != nil {
			return nil, err
		}
		if p.Join == nil {
			return nil, noPayload(s)
		}
		return nil, d.join(ctx, s.Cluster, *p.Join)
	case plan.KindMemberReady:
		if err := takes(s, plan.Wait); err != nil {
			return nil, err
		}
		return nil, d.waitMemberReady(ctx, s.Cluster)
	case plan.KindUnjoin:
		if err := takes(s, plan.Delete); err != nil {
			return nil, err
		}
		if p.Unjoin == nil {
			return nil, noPayload(s)
		}
		return nil, d.unjoin(ctx, s.Cluster, *p.Unjoin)
	}
	return nil, terminalf("%s: the Karmada driver does not apply %s steps", s.Address, s.Kind)
}

// takes refuses an action the step's kind does not take.
func takes(s plan.Step, actions ...plan.Action) error {
	for _, a := range actions {
		if s.Action == a {
			return nil
		}
	}
	return terminalf("%s: action %q is not one a %s step takes", s.Address, s.Action, s.Kind)
}

func noPayload(s plan.Step) error {
	return terminalf("%s: the %s step carries no payload", s.Address, s.Kind)
}

// known is the value of v, refusing a reference the walker did not resolve or an empty value.
func known(what string, v plan.Value) (string, error) {
	switch {
	case v.From != nil:
		return "", terminalf("%s is an unresolved reference to %s", what, v.From)
	case v.Value == "":
		return "", terminalf("%s is empty", what)
	}
	return v.Value, nil
}

// checkRelease refuses a release payload that is not ready to install: references left
// unresolved, or values holding what a plan only shows (plan.KnownAfterApply, plan.Sensitive)
// or an unresolved reference. Installing such values would write a placeholder into a cluster;
// only a planner bug makes them, so the error is terminal. Values are never put in the error.
func checkRelease(what string, r *plan.Release) error {
	if len(r.Refs) > 0 {
		return terminalf("%s: %d value references were not resolved before apply", what, len(r.Refs))
	}
	if r.Name == "" || r.Namespace == "" {
		return terminalf("%s: the release needs a name and a namespace", what)
	}
	var bad []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				walk(e, path+"."+k)
			}
		case []any:
			for i, e := range t {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		case string:
			if strings.Contains(t, plan.KnownAfterApply) || strings.Contains(t, plan.Sensitive) {
				bad = append(bad, path)
			}
		case plan.Value, *plan.Value, plan.Ref, *plan.Ref, plan.ValueRef, *plan.ValueRef:
			bad = append(bad, path)
		}
	}
	for k, v := range r.Values {
		walk(v, k)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return terminalf("%s: values %s hold a placeholder of the plan (%s or %s) or an unresolved reference, "+
			"not a value: refusing to install them", what, strings.Join(bad, ", "), plan.KnownAfterApply, plan.Sensitive)
	}
	return nil
}

// releaseKey is how a release is named in messages: "namespace/name".
func releaseKey(namespace, name string) string { return namespace + "/" + name }
