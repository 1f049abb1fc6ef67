package mesh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/reconcile-dev/reconcile/state/world"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Observer fills World.RootCA (from the store) and World.Mesh for every reachable member,
// and for reachable clusters that left the fleet, so their mesh can be torn down. It runs
// after the cluster observer, whose Reachable flags it reads.
type Observer struct {
	Access kube.Access
	Store  kube.Files
	// WrapTransport, when set, wraps every client's transport.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Retry retries a read of a member's mesh that failed with a retryable error.
	Retry state.Retry
}

// Observe implements state.Observer.
func (o Observer) Observe(ctx context.Context, f *spec.Fleet, w *world.World) error {
	if !f.Mesh.On() {
		return nil
	}
	root, err := LoadRoot(o.Store)
	switch {
	case errors.Is(err, ErrRootLost):
		w.RootCALost = true
	case err != nil:
		return fmt.Errorf("mesh root CA: %w", err)
	case root != nil:
		w.RootCA = root.Info()
	}
	var names []string
	for name, c := range w.Clusters {
		if c == nil || !c.Reachable || name == f.Manager.Name {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	state.EachCluster(ctx, names, 0, func(ctx context.Context, name string) (*world.MeshMember, error) {
		var mm *world.MeshMember
		err := o.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			mm, err = o.member(ctx, f, name)
			return kube.Classify(err)
		})
		return mm, err
	}, func(name string, mm *world.MeshMember, err error) {
		switch {
		case err != nil:
			w.MarkUnreadable(name, "mesh: "+err.Error())
		case mm != nil:
			if w.Mesh == nil {
				w.Mesh = map[string]*world.MeshMember{}
			}
			w.Mesh[name] = mm
		}
	})
	return ctx.Err()
}

// member observes one cluster; nil when it has no istio-system at all and is not a member.
func (o Observer) member(ctx context.Context, f *spec.Fleet, name string) (*world.MeshMember, error) {
	c, err := connect(o.Access.For(f), o.WrapTransport, name)
	if err != nil {
		// The cluster answered the cluster observer, so it has a kubeconfig: not reading it
		// now is a failed read, never an empty mesh.
		return nil, fmt.Errorf("mesh: cluster %s: %w", name, err)
	}
	cs := c.kube
	mm := &world.MeshMember{}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, MeshNamespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, member := f.Member(name); !member {
			return nil, nil
		}
		return mm, nil
	case err != nil:
		return nil, fmt.Errorf("mesh: cluster %s: %w", name, err)
	}
	mm.Namespace = true
	mm.NetworkLabel = ns.Labels[NetworkLabel]

	// Helm's release secrets (owner=helm) are the bulk of istio-system's secrets (each
	// revision of each release, compressed manifests) and none of what is read here.
	secrets, err := cs.CoreV1().Secrets(MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: "owner!=helm"})
	if err != nil {
		return nil, fmt.Errorf("mesh: cluster %s: %w", name, err)
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		switch {
		case s.Name == CACertsSecret:
			inter, root, err := ParseCACerts(s.Data)
			if err != nil {
				// It exists: the planner must not take it for absent.
				mm.CACertsInvalid = err.Error()
				continue
			}
			mm.CACerts = &world.CertInfo{Subject: inter.Subject.String(), NotAfter: inter.NotAfter, RootFingerprint: CertFingerprint(root)}
		case strings.HasPrefix(s.Name, RemoteSecretPrefix) && s.Labels[MultiClusterLabel] == "true" && world.OwnedBy(s.Labels, f.Metadata.Name):
			peer := s.Annotations[ClusterAnnotation]
			if peer == "" {
				peer = strings.TrimPrefix(s.Name, RemoteSecretPrefix)
			}
			if mm.RemoteSecrets == nil {
				mm.RemoteSecrets = map[string]string{}
			}
			mm.RemoteSecrets[peer] = s.Annotations[FingerprintAnnot]
		}
	}
	toks := kube.SelectTokens(secrets.Items, ReaderTokenSecret, ReaderServiceAcct, f.Metadata.Name)
	if cur := toks.Current(); cur != nil {
		mm.ReaderToken, mm.ReaderTokenSecret = ReaderTokenFingerprint(cur), cur.Name
		mm.ReaderTokenCreated = cur.CreationTimestamp.UTC()
		mm.OldReaderTokens = toks.Older()
	}
	gw, err := getGateway(ctx, c.dyn, MeshNamespace, GatewayName)
	if err != nil {
		return nil, fmt.Errorf("mesh: cluster %s: gateway: %w", name, err)
	}
	mm.Gateway = gw != nil && gatewayMatches(gw)
	if mm.InjectorReady, err = injectorReady(ctx, cs, MeshNamespace); err != nil {
		return nil, fmt.Errorf("mesh: cluster %s: %w", name, err)
	}
	return mm, nil
}
