package helm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
	"github.com/reconcile-dev/reconcile/state/world"
)

// Observer fills Clusters[name].Releases for every cluster the kube observer found reachable.
// It runs after that observer.
type Observer struct {
	Access kube.Access
	// Namespaces to list releases in: where the fleet's releases live (planner.ReleaseNamespaces).
	Namespaces []string
	// Log receives one warning per cluster whose releases could not be read (default slog.Default()).
	Log *slog.Logger
	// Retry retries a read of a cluster's releases that failed with a retryable error.
	Retry state.Retry
}

// Observe implements state.Observer. A cluster whose releases cannot be read is logged and
// left without releases; it does not fail the pass.
func (o Observer) Observe(ctx context.Context, f *spec.Fleet, w *world.World) error {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		return errors.New("helm observer: no namespaces to look in")
	}
	names := make([]string, 0, len(w.Clusters))
	for name, c := range w.Clusters {
		if c != nil && c.Reachable {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	state.EachCluster(ctx, names, 0, func(ctx context.Context, name string) (map[string]*world.Release, error) {
		var rels map[string]*world.Release
		err := o.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			rels, err = o.releases(ctx, f, name, namespaces, log)
			return kube.Classify(err)
		})
		return rels, err
	}, func(name string, rels map[string]*world.Release, err error) {
		if err != nil {
			log.Warn("helm releases not observed", "cluster", name, "err", err)
			w.MarkUnreadable(name, "helm releases: "+err.Error())
			return
		}
		if len(rels) > 0 {
			w.Clusters[name].Releases = rels
		}
	})
	return ctx.Err()
}

func (o Observer) releases(ctx context.Context, f *spec.Fleet, name string, namespaces []string, log *slog.Logger) (map[string]*world.Release, error) {
	cfg, err := o.Access.For(f).RESTConfig(name)
	if err != nil {
		return nil, err
	}
	cs, err := kube.Clientset(cfg)
	if err != nil {
		return nil, err
	}
	return releasesIn(ctx, cs, namespaces)
}

// releasesIn reads the latest revision of every release in the given namespaces, keyed
// "namespace/name": one secrets list per namespace, the namespaces at once.
func releasesIn(ctx context.Context, cs kubernetes.Interface, namespaces []string) (map[string]*world.Release, error) {
	found := make([][]*release.Release, len(namespaces))
	errs := make([]error, len(namespaces))
	var wg sync.WaitGroup
	for i, ns := range namespaces {
		wg.Go(func() {
			found[i], errs[i] = latestReleases(ctx, cs.CoreV1().Secrets(ns))
			if errs[i] != nil {
				errs[i] = fmt.Errorf("releases in %s: %w", ns, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := map[string]*world.Release{}
	for i, ns := range namespaces {
		for _, r := range found[i] {
			if r.Namespace != ns {
				continue
			}
			s, err := observed(r)
			if err != nil {
				return nil, err
			}
			out[r.Namespace+"/"+r.Name] = s
		}
	}
	return out, nil
}

// latestReleases reads the latest revision of every release stored in secrets, decoding only
// that revision (a release keeps up to ten): the secrets are listed once, the latest of each
// release picked by the name and version labels Helm gives them, and Helm's own secrets
// driver decodes what was picked. A release whose labels do not say its version has all of its
// revisions decoded and the latest picked from them.
func latestReleases(ctx context.Context, secrets corev1client.SecretInterface) ([]*release.Release, error) {
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		return nil, err
	}
	type pick struct {
		version int
		items   []corev1.Secret
	}
	picked := map[string]*pick{}
	for _, item := range list.Items {
		name := item.Labels["name"]
		v, verr := strconv.Atoi(item.Labels["version"])
		p := picked[name]
		switch {
		case p == nil:
			p = &pick{version: v, items: []corev1.Secret{item}}
			if verr != nil || name == "" {
				p.version = -1
			}
			picked[name] = p
		case p.version < 0 || verr != nil || name == "":
			p.version = -1
			p.items = append(p.items, item)
		case v > p.version:
			p.version, p.items = v, []corev1.Secret{item}
		}
	}
	var keep []corev1.Secret
	for _, p := range picked {
		keep = append(keep, p.items...)
	}
	all, err := driver.NewSecrets(listed(keep)).List(func(*release.Release) bool { return true })
	if err != nil {
		return nil, err
	}
	latest := map[string]*release.Release{}
	for _, r := range all {
		key := r.Namespace + "/" + r.Name
		if l := latest[key]; l == nil || r.Version > l.Version {
			latest[key] = r
		}
	}
	out := make([]*release.Release, 0, len(latest))
	for _, r := range latest {
		out = append(out, r)
	}
	return out, nil
}

// listed is a SecretInterface whose List returns secrets already read: it hands Helm's
// driver the revisions latestReleases picked, for Helm's own decoding.
type listed []corev1.Secret

func (l listed) List(context.Context, metav1.ListOptions) (*corev1.SecretList, error) {
	return &corev1.SecretList{Items: l}, nil
}

// The rest of SecretInterface is never called by the driver's List.
func (listed) Create(context.Context, *corev1.Secret, metav1.CreateOptions) (*corev1.Secret, error) {
	return nil, errNotListed
}
func (listed) Update(context.Context, *corev1.Secret, metav1.UpdateOptions) (*corev1.Secret, error) {
	return nil, errNotListed
}
func (listed) Delete(context.Context, string, metav1.DeleteOptions) error { return errNotListed }
func (listed) DeleteCollection(context.Context, metav1.DeleteOptions, metav1.ListOptions) error {
	return errNotListed
}
func (listed) Get(context.Context, string, metav1.GetOptions) (*corev1.Secret, error) {
	return nil, errNotListed
}
func (listed) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return nil, errNotListed
}
func (listed) Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*corev1.Secret, error) {
	return nil, errNotListed
}
func (listed) Apply(context.Context, *applycorev1.SecretApplyConfiguration, metav1.ApplyOptions) (*corev1.Secret, error) {
	return nil, errNotListed
}

var errNotListed = errors.New("helm observer: only List is served")
