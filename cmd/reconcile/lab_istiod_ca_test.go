package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/reconcile-dev/reconcile/lab/labworld"
	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/mesh"
)

// caRenewTimeout bounds the wait, after a pass renewed the intermediates, for every istiod to
// serve a chain of its new intermediate (a rolling update of its Deployment: new Pod, new
// process, old Pod deleted once the new one is ready).
const caRenewTimeout = 3 * time.Minute

// servedIntermediate is the intermediate of the chain member m's istiod serves on its TLS xDS
// port, and the istiod's pod.
func servedIntermediate(ctx context.Context, m istiodMember) (*x509.Certificate, []*x509.Certificate, string, error) {
	info, err := labworld.ReadIstiod(m.dir)
	if err != nil {
		return nil, nil, "", err
	}
	chain, err := labworld.IstiodChain(ctx, info.SecureGRPC)
	if err != nil {
		return nil, nil, info.Pod, err
	}
	return labworld.ChainIntermediate(chain), chain, info.Pod, nil
}

// secretIntermediate is the intermediate in member m's cacerts Secret.
func secretIntermediate(ctx context.Context, m istiodMember) (*x509.Certificate, error) {
	s, err := m.client.CoreV1().Secrets(mesh.MeshNamespace).Get(ctx, "cacerts", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	inter, _, err := mesh.ParseCACerts(s.Data)
	return inter, err
}

// caRenewal (item 6): the intermediates are renewed (mesh.ca.renewBefore raised past their
// remaining life, so one pass re-issues every member's cacerts from the same root and rolls
// istiod: reconcile bumps an annotation of its pod template); every istiod then serves, on its TLS xDS port, a certificate issued by the new
// intermediate, from a new Pod, and its chain still leads to the mesh root; the next pass plans
// nothing. Then a member's cacerts is replaced by hand with an intermediate of another root
// and its istiod restarted: that istiod serves a chain to another root, and reconcile-lab
// show's Mesh section says so. It runs last: it leaves that member on a foreign root.
func (p *istiodPhases) caRenewal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2ePassTimeout+2*caRenewTimeout)
	defer cancel()
	root, err := mesh.LoadRoot(p.store)
	must(t, err)
	before := map[string]*x509.Certificate{}
	pods := map[string]string{}
	for _, m := range p.members {
		inter, chain, pod, err := servedIntermediate(ctx, m)
		if err != nil || inter == nil {
			t.Fatalf("%s: istiod's served chain: %v (%d certificates)", m.name, err, len(chain))
		}
		if ours, top := labworld.ChainRoot(chain, root.Cert); !ours {
			t.Fatalf("%s: istiod serves a chain to %s, not the mesh root", m.name, top)
		}
		before[m.name], pods[m.name] = inter, pod
	}

	// Renew: the intermediates' remaining life is under renewBefore.
	original, err := os.ReadFile(p.fleetPath)
	must(t, err)
	defer func() { _ = os.WriteFile(p.fleetPath, original, 0o644) }()
	// The fleet's intermediates were issued for 1000h: with renewBefore 1999h they are due now,
	// and renewed for 2000h (under the root's 10 years), not due again for an hour.
	const before1000h = "ca: {intermediateValidity: 1000h}"
	renewing := bytes.Replace(original, []byte(before1000h), []byte("ca: {intermediateValidity: 2000h, renewBefore: 1999h}"), 1)
	if bytes.Equal(renewing, original) {
		t.Fatalf("no %q in the fleet", before1000h)
	}
	must(t, os.WriteFile(p.fleetPath, renewing, 0o644))
	code, stdout, stderr, end := p.pass(ctx, "--once")
	if code != 0 {
		t.Fatalf("renewing pass: exit %d\n%s\n%s", code, tail(stdout, 40), tail(stderr, 40))
	}
	for _, m := range p.members {
		if !strings.Contains(stdout, "member/"+m.name+"/mesh/cacerts") {
			t.Errorf("the renewing pass did not replace %s's cacerts:\n%s", m.name, tail(stdout, 40))
		}
	}
	for _, m := range p.members {
		var why string
		ok := waitCond(ctx, caRenewTimeout, 250*time.Millisecond, func() bool {
			want, err := secretIntermediate(ctx, m)
			if err != nil {
				why = err.Error()
				return false
			}
			if want.Equal(before[m.name]) {
				why = "the cacerts Secret still holds the old intermediate"
				return false
			}
			inter, chain, pod, err := servedIntermediate(ctx, m)
			switch {
			case err != nil:
				why = err.Error()
			case !inter.Equal(want):
				why = fmt.Sprintf("istiod (pod %s) serves a certificate of intermediate serial %s, the Secret holds serial %s", pod, inter.SerialNumber, want.SerialNumber)
			case pod == pods[m.name]:
				why = "the same istiod pod serves the new intermediate"
			default:
				ours, top := labworld.ChainRoot(chain, root.Cert)
				if !ours {
					why = "the new chain leads to " + top
					return false
				}
				t.Logf("ca: %s's istiod (pod %s, was %s) serves a certificate of the new intermediate (serial %s, was %s) %s after the pass",
					m.name, pod, pods[m.name], inter.SerialNumber, before[m.name].SerialNumber, time.Since(end).Round(time.Millisecond))
				return true
			}
			return false
		})
		if !ok {
			t.Errorf("%s: within %s of the renewing pass: %s", m.name, caRenewTimeout, why)
		}
	}
	if code, stdout, stderr, _ := p.pass(ctx, "--once", "--detailed-exitcode"); code != 0 {
		t.Errorf("the pass after the renewal: exit %d (want 0, nothing planned)\n%s\n%s", code, tail(stdout, 40), tail(stderr, 40))
	}

	// Someone plugs an intermediate of another root into the first member and restarts istiod.
	m := p.members[0]
	other, err := mesh.NewRoot("ecdsa-p256", 24*time.Hour, time.Now())
	must(t, err)
	cc, err := other.IssueIntermediate(m.name, "ecdsa-p256", 12*time.Hour, time.Now())
	must(t, err)
	s, err := m.client.CoreV1().Secrets(mesh.MeshNamespace).Get(ctx, "cacerts", metav1.GetOptions{})
	must(t, err)
	s.Data = cc.Data()
	_, err = m.client.CoreV1().Secrets(mesh.MeshNamespace).Update(ctx, s, metav1.UpdateOptions{})
	must(t, err)
	_, err = m.client.AppsV1().Deployments(mesh.MeshNamespace).Patch(ctx, labworld.IstiodName, types.MergePatchType,
		[]byte(`{"spec":{"template":{"metadata":{"annotations":{"lab.reconcile.dev/restarted":"foreign-root"}}}}}`), metav1.PatchOptions{})
	must(t, err)
	foreign := ""
	ok := waitCond(ctx, caRenewTimeout, 250*time.Millisecond, func() bool {
		_, chain, _, err := servedIntermediate(ctx, m)
		if err != nil {
			foreign = err.Error()
			return false
		}
		ours, top := labworld.ChainRoot(chain, other.Cert)
		foreign = top
		return ours
	})
	if !ok {
		t.Fatalf("%s: istiod never served a chain of the other root: %s", m.name, foreign)
	}
	f, err := spec.Load(p.fleetPath)
	must(t, err)
	var shown bytes.Buffer
	labworld.ShowMesh(ctx, f, kube.Access{Store: p.store, Timeout: 10 * time.Second}, p.lf.lab.Dir(), &shown)
	var line string
	for _, l := range strings.Split(shown.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), m.name+": istiod pod") {
			line = l
		}
	}
	if !strings.Contains(line, "ANOTHER root") {
		t.Errorf("reconcile-lab show does not mark %s's istiod as serving another root:\n%s", m.name, shown.String())
	}
	for _, o := range p.members[1:] {
		_, chain, _, err := servedIntermediate(ctx, o)
		if ours, _ := labworld.ChainRoot(chain, root.Cert); err != nil || !ours {
			t.Errorf("%s: no longer serves a chain to the mesh root (%v)", o.name, err)
		}
	}
	t.Logf("ca: %s with an intermediate of another root: its istiod serves %s; reconcile-lab show:\n%s", m.name, foreign, shown.String())
}
