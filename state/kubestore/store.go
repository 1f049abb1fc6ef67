// Package kubestore keeps a fleet's state in Secrets of one namespace of a Kubernetes cluster
// (one that is not part of the fleet), locked by a coordination.k8s.io/v1 Lease: the
// kubernetes backend of fleet.yaml's state block.
//
// Every file is one Secret (a head) named after the fleet and the file, labelled as ours and
// annotated with the file's name; content above ChunkSize is split over chunk Secrets that the
// head points to. Only Secrets that carry our labels for this fleet are ever read, updated or
// deleted.
//
// # What the Store knows, and when it asks the API server
//
// A Store keeps a snapshot of the fleet's files: every file Secret (and chunk) of the fleet as
// one List call returned them (Refresh), amended by the Store's own writes and removals. Open
// and every Lock acquisition take a fresh snapshot.
//
//   - Reads (Exists, ReadFile, List, Passes) are served from the snapshot while it is fresh, and
//     Refresh first otherwise. The snapshot is fresh while this Store holds the fleet's Lock
//     and took it after acquiring the lock (no other runner writes while we hold it, and our
//     own writes amend it), or, without the lock, for Config.SnapshotMaxAge after it was taken.
//   - Writes (WriteFile, Remove, RecordPass) never refresh: each is preconditioned on what this
//     Store last saw of the file, an Update or Delete with the resourceVersion last read or
//     written, or a Create for a file last seen absent. When another writer changed the file
//     since, the write fails with a *ConflictError and changes nothing; Refresh (or the next
//     Lock) and decide again. A write of the content the fresh snapshot already holds sends
//     nothing. While the Store's lock is lost (and not yet released), it writes nothing.
package kubestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/kube"
)

// Labels and annotations on every object the Store owns.
const (
	LabelFleet     = "reconcile.dev/fleet"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelState     = "reconcile.dev/state"
	managedBy      = "reconcile"
	stateFile      = "file"  // a file's head Secret
	stateChunk     = "chunk" // a part of a large file after the first
	stateLock      = "lock"  // the Lease

	AnnotationFile   = "reconcile.dev/file"
	AnnotationChunks = "reconcile.dev/chunks"
	// AnnotationGeneration names the set of chunk Secrets a head points to: a large file is
	// written as new chunks first and the head last, so a reader sees old or new, never a mix.
	AnnotationGeneration = "reconcile.dev/generation"
	AnnotationChunk      = "reconcile.dev/chunk"
	AnnotationSHA256     = "reconcile.dev/sha256"
	AnnotationHolder     = "reconcile.dev/holder"

	dataKey = "data"
)

// ChunkSize is the most content one Secret holds: Kubernetes refuses Secrets above 1 MiB.
const ChunkSize = 900 << 10

const (
	// callTimeout bounds each API call of the methods that take no ctx.
	callTimeout = 30 * time.Second
	// DefaultSnapshotMaxAge is how long a snapshot serves reads without the lock.
	DefaultSnapshotMaxAge = 2 * time.Second
	passesName            = state.PassesFile
	readAttempts          = 4
)

// Config says where a fleet's state lives.
type Config struct {
	Fleet     string
	Namespace string
	REST      *rest.Config
	// LeaseDuration is how long the lock outlives its holder's last renewal; default
	// spec.DefaultLeaseDuration.
	LeaseDuration time.Duration
	// Where names the cluster for people (the kubeconfig's path), for Describe and errors.
	Where string
	// SnapshotMaxAge is how long a snapshot serves reads without the lock; default
	// DefaultSnapshotMaxAge.
	SnapshotMaxAge time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Store is a fleet's state in Secrets of one namespace, with a Lease for the lock.
type Store struct {
	fleet, ns, where, host string
	client                 kubernetes.Interface
	leaseDuration, maxAge  time.Duration
	now                    func() time.Time

	// mu guards the snapshot and held, and serializes the Store's operations (API calls
	// included): a write's precondition is the version the snapshot holds.
	mu    sync.Mutex
	files map[string]*file
	// chunks are every chunk Secret seen of each file, pointed to by a head or not (left by a
	// writer that died mid-write); the next write of the file deletes those it does not use.
	chunks map[string][]*corev1.Secret
	// taken is when the snapshot was listed; zero when it must be listed again.
	taken time.Time
	held  *leaseLock
}

// file is one file as the snapshot knows it.
type file struct {
	head   *corev1.Secret
	chunks []*corev1.Secret // the chunks head points to, in order
	data   []byte
	// err says why the content cannot be read (a missing chunk, a checksum mismatch).
	err error
}

var _ state.Backend = (*Store)(nil)

// ConflictError says that another writer changed a state file since this Store last read it;
// nothing was written.
type ConflictError struct {
	Name  string
	Where string
	Err   error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("state file %s in %s was changed by another writer since this runner read it; nothing was written (the next pass reads it again): %v",
		e.Name, e.Where, e.Err)
}

func (e *ConflictError) Unwrap() error { return e.Err }

// Retryable is false: writing again without reading again would fail the same way.
func (e *ConflictError) Retryable() bool { return false }

// Open connects to the state cluster, checks that the namespace exists and that we may use
// Secrets and Leases there, and takes the first snapshot. Its errors name the fleet.yaml field
// to look at.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if errs := validation.IsDNS1123Label(cfg.Fleet); len(errs) > 0 {
		return nil, fmt.Errorf("state.kubernetes: fleet name %q cannot name Kubernetes objects: %s", cfg.Fleet, strings.Join(errs, "; "))
	}
	if cfg.Namespace == "" {
		cfg.Namespace = spec.DefaultStateNamespace
	}
	if errs := validation.IsDNS1123Label(cfg.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("state.kubernetes.namespace: %q is not a namespace name: %s", cfg.Namespace, strings.Join(errs, "; "))
	}
	if cfg.REST == nil {
		return nil, errors.New("state.kubernetes: no client configuration")
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = spec.DefaultLeaseDuration
	}
	if cfg.SnapshotMaxAge <= 0 {
		cfg.SnapshotMaxAge = DefaultSnapshotMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Where == "" {
		cfg.Where = cfg.REST.Host
	}
	rc := rest.CopyConfig(cfg.REST)
	if rc.QPS == 0 && rc.RateLimiter == nil {
		// client-go's default of 5 requests a second would pace a pass (a List, an Update and
		// the Lease's renewals) at hundreds of milliseconds for nothing.
		rc.QPS, rc.Burst = 50, 100
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("state.kubernetes: %w", err)
	}
	s := &Store{
		fleet: cfg.Fleet, ns: cfg.Namespace, where: cfg.Where, host: cfg.REST.Host,
		client: client, leaseDuration: cfg.LeaseDuration, maxAge: cfg.SnapshotMaxAge, now: cfg.Now,
	}
	if err := s.checkAccess(ctx); err != nil {
		return nil, err
	}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// access is what the Store does in its namespace.
var access = []struct{ group, resource, verb string }{
	{"", "secrets", "get"}, {"", "secrets", "list"}, {"", "secrets", "create"},
	{"", "secrets", "update"}, {"", "secrets", "delete"},
	{"coordination.k8s.io", "leases", "get"}, {"coordination.k8s.io", "leases", "create"},
	{"coordination.k8s.io", "leases", "update"},
}

// checkAccess finds the namespace (when we may read it) and asks the API server, by
// SelfSubjectAccessReviews, whether we may do what the Store does there.
func (s *Store) checkAccess(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := s.client.CoreV1().Namespaces().Get(cctx, s.ns, metav1.GetOptions{})
	switch {
	case err == nil, apierrors.IsForbidden(err):
		// Reading namespaces is not ours to require; a missing one shows on the first write.
	case apierrors.IsNotFound(err):
		return fmt.Errorf("state.kubernetes.namespace: namespace %q does not exist in %s; create it first", s.ns, s.where)
	default:
		return s.apiError(err)
	}
	var denied []string
	var reason string
	for _, a := range access {
		review, err := s.client.AuthorizationV1().SelfSubjectAccessReviews().Create(cctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: s.ns, Group: a.group, Resource: a.resource, Verb: a.verb,
			}},
		}, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) {
			break // reviews are not ours to create here: the first List tells
		}
		if err != nil {
			return s.apiError(err)
		}
		if !review.Status.Allowed {
			denied = append(denied, a.verb+" "+a.resource)
			if reason == "" {
				reason = review.Status.Reason
			}
		}
	}
	if len(denied) == 0 {
		return nil
	}
	user := "(unknown)"
	if u, err := s.client.AuthenticationV1().SelfSubjectReviews().Create(cctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil {
		user = u.Status.UserInfo.Username
	}
	if reason == "" {
		reason = "no RBAC rule allows it"
	}
	return fmt.Errorf("state.kubernetes: user %q may not %s in namespace %s of %s (RBAC): %s",
		user, strings.Join(denied, ", "), s.ns, s.where, reason)
}

// apiError words an error of the state cluster for people.
func (s *Store) apiError(err error) error {
	var status apierrors.APIStatus
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("state.kubernetes: the state cluster at %s does not accept the credentials from %s: %w", s.host, s.where, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("state.kubernetes: %s refuses (RBAC): %w", s.where, err)
	case errors.As(err, &status):
		return fmt.Errorf("state.kubernetes: %s: %w", s.where, kube.Classify(err))
	default:
		return fmt.Errorf("state.kubernetes: cannot reach the state cluster at %s: %w", s.host, kube.Classify(err))
	}
}

// Describe implements state.Backend.
func (s *Store) Describe() string { return "kubernetes " + s.ns + " in " + s.where }

// Namespace is where the Secrets and the Lease live.
func (s *Store) Namespace() string { return s.ns }

func (s *Store) selector(kind string) string {
	set := labels.Set{LabelFleet: s.fleet, LabelManagedBy: managedBy}
	if kind != "" {
		set[LabelState] = kind
	}
	return labels.SelectorFromSet(set).String()
}

func (s *Store) ours(obj metav1.Object, kind string) bool {
	l := obj.GetLabels()
	return l[LabelFleet] == s.fleet && l[LabelManagedBy] == managedBy && l[LabelState] == kind
}

// Refresh replaces the snapshot by what one List of the fleet's Secrets returns. Transient
// errors (timeouts, 429, 5xx, an unreachable server) are retried a few times.
func (s *Store) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh(ctx)
}

func (s *Store) refresh(ctx context.Context) error {
	var list *corev1.SecretList
	err := retryRead(ctx, func(ctx context.Context) error {
		var err error
		list, err = s.client.CoreV1().Secrets(s.ns).List(ctx, metav1.ListOptions{LabelSelector: s.selector("")})
		return err
	})
	if err != nil {
		return s.apiError(fmt.Errorf("list the state Secrets of fleet %s in namespace %s: %w", s.fleet, s.ns, err))
	}
	taken := s.now()
	files := map[string]*file{}
	chunks := map[string][]*corev1.Secret{}
	byName := map[string]*corev1.Secret{}
	for i := range list.Items {
		sec := &list.Items[i]
		name := sec.Annotations[AnnotationFile]
		if checkName(name) != nil {
			continue
		}
		switch {
		case s.ours(sec, stateFile) && sec.Name == secretName(s.fleet, name):
			files[name] = &file{head: sec}
		case s.ours(sec, stateChunk):
			chunks[name] = append(chunks[name], sec)
			byName[sec.Name] = sec
		}
	}
	for name, f := range files {
		f.chunks, f.data, f.err = s.assemble(name, f.head, byName)
	}
	s.files, s.chunks, s.taken = files, chunks, taken
	return nil
}

// assemble joins a head and the chunks it points to and checks the checksum.
func (s *Store) assemble(name string, head *corev1.Secret, byName map[string]*corev1.Secret) ([]*corev1.Secret, []byte, error) {
	n := 1
	if c := head.Annotations[AnnotationChunks]; c != "" {
		var err error
		if n, err = strconv.Atoi(c); err != nil || n < 1 {
			return nil, nil, fmt.Errorf("state file %s in %s: Secret %s has a bad %s annotation", name, s.Describe(), head.Name, AnnotationChunks)
		}
	}
	data := append([]byte(nil), head.Data[dataKey]...)
	var parts []*corev1.Secret
	for i := 1; i < n; i++ {
		cn := chunkName(head.Name, head.Annotations[AnnotationGeneration], i)
		c, ok := byName[cn]
		if !ok {
			return nil, nil, fmt.Errorf("state file %s in %s is incomplete: its chunk Secret %s is missing", name, s.Describe(), cn)
		}
		parts = append(parts, c)
		data = append(data, c.Data[dataKey]...)
	}
	if want := head.Annotations[AnnotationSHA256]; want != "" && want != sum(data) {
		return nil, nil, fmt.Errorf("state file %s in %s is corrupt: its content does not match the checksum of Secret %s", name, s.Describe(), head.Name)
	}
	return parts, data, nil
}

// fresh says whether reads may be served from the snapshot (see the package comment).
func (s *Store) fresh() bool {
	if s.taken.IsZero() {
		return false
	}
	if l := s.held; l != nil && !l.isLost() && !s.taken.Before(l.acquired) {
		return true
	}
	return s.now().Sub(s.taken) < s.maxAge
}

func (s *Store) ensureFresh() error {
	if s.fresh() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout*readAttempts)
	defer cancel()
	return s.refresh(ctx)
}

// Exists reports whether the named file is there; an invalid name, or a state cluster that
// cannot be read, is never there.
func (s *Store) Exists(name string) bool {
	if checkName(name) != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ensureFresh() != nil {
		return false
	}
	return s.files[name] != nil
}

// ReadFile returns the named file's content; a missing file gives an error that
// errors.Is(err, os.ErrNotExist).
func (s *Store) ReadFile(name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(name)
}

func (s *Store) read(name string) ([]byte, error) {
	if err := s.ensureFresh(); err != nil {
		return nil, err
	}
	f := s.files[name]
	if f == nil {
		return nil, fmt.Errorf("state file %s in %s: %w", name, s.Describe(), os.ErrNotExist)
	}
	if f.err != nil {
		return nil, f.err
	}
	return append([]byte(nil), f.data...), nil
}

// List returns every file name, sorted.
func (s *Store) List() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureFresh(); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(s.files))
	for name := range s.files {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

// WriteFile replaces the named file, preconditioned on the version this Store last saw (see
// the package comment). Large content goes into chunk Secrets first and the head last; chunks
// the head no longer points to are deleted afterwards.
func (s *Store) WriteFile(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(name, data)
}

func (s *Store) write(name string, data []byte) error {
	if err := s.lostLock(name); err != nil {
		return err
	}
	cur := s.files[name]
	if cur != nil && cur.err == nil && s.fresh() && bytes.Equal(cur.data, data) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	secrets := s.client.CoreV1().Secrets(s.ns)
	headName := secretName(s.fleet, name)
	n := max(1, (len(data)+ChunkSize-1)/ChunkSize)
	part := func(i int) []byte { return data[i*ChunkSize : min(len(data), (i+1)*ChunkSize)] }
	gen := ""
	if n > 1 {
		gen = randomHex(4)
	}
	var created []*corev1.Secret
	undo := func() {
		for _, c := range created {
			_ = deleteIgnoringMissing(ctx, secrets, c.Name, "")
		}
	}
	for i := 1; i < n; i++ {
		c := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: chunkName(headName, gen, i), Namespace: s.ns,
				Labels:      s.labels(stateChunk),
				Annotations: map[string]string{AnnotationFile: name, AnnotationChunk: strconv.Itoa(i)},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{dataKey: part(i)},
		}
		got, err := writeRetrying(ctx, func(ctx context.Context) (*corev1.Secret, error) {
			return secrets.Create(ctx, c, metav1.CreateOptions{})
		})
		if err != nil {
			undo()
			return s.writeError(name, err)
		}
		created = append(created, got)
	}
	head := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: headName, Namespace: s.ns,
			Labels: s.labels(stateFile),
			Annotations: map[string]string{
				AnnotationFile: name, AnnotationChunks: strconv.Itoa(n), AnnotationSHA256: sum(data),
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{dataKey: part(0)},
	}
	if gen != "" {
		head.Annotations[AnnotationGeneration] = gen
	}
	var got *corev1.Secret
	var err error
	if cur == nil {
		got, err = writeRetrying(ctx, func(ctx context.Context) (*corev1.Secret, error) {
			return secrets.Create(ctx, head, metav1.CreateOptions{})
		})
		if apierrors.IsAlreadyExists(err) {
			err = s.existingError(ctx, name, headName, err)
		}
	} else {
		head.ResourceVersion = cur.head.ResourceVersion
		got, err = writeRetrying(ctx, func(ctx context.Context) (*corev1.Secret, error) {
			return secrets.Update(ctx, head, metav1.UpdateOptions{})
		})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			err = &ConflictError{Name: name, Where: s.Describe(), Err: err}
		}
	}
	if err != nil {
		undo()
		return s.writeError(name, err)
	}
	s.files[name] = &file{head: got, chunks: created, data: append([]byte(nil), data...)}
	// Everything else of this file's chunks is surplus now: the old generation, and what a
	// writer that died mid-write left. A chunk that cannot be deleted now is kept in mind for
	// the next write; the content is committed either way.
	var keep []*corev1.Secret
	for _, c := range s.chunks[name] {
		if deleteIgnoringMissing(ctx, secrets, c.Name, string(c.UID)) != nil {
			keep = append(keep, c)
		}
	}
	s.chunks[name] = append(keep, created...)
	return nil
}

// lostLock refuses a write while this Store's lock is lost and not yet released: another
// runner may be converging the fleet now.
func (s *Store) lostLock(name string) error {
	if s.held != nil && s.held.isLost() {
		return fmt.Errorf("state file %s in %s: not written: this runner lost the fleet's lock", name, s.Describe())
	}
	return nil
}

// existingError explains why a Create found the name taken: another writer created the file,
// or a Secret that is not ours has its name.
func (s *Store) existingError(ctx context.Context, name, secret string, err error) error {
	got, gerr := s.client.CoreV1().Secrets(s.ns).Get(ctx, secret, metav1.GetOptions{})
	if gerr == nil && !(s.ours(got, stateFile) && got.Annotations[AnnotationFile] == name) {
		return &foreignError{fmt.Sprintf("state file %s in %s: Secret %s/%s exists but is not this fleet's state (it lacks the labels %s=%s, %s=%s, %s=%s); refusing to overwrite it",
			name, s.Describe(), s.ns, secret, LabelFleet, s.fleet, LabelManagedBy, managedBy, LabelState, stateFile)}
	}
	return &ConflictError{Name: name, Where: s.Describe(), Err: err}
}

func (s *Store) writeError(name string, err error) error {
	var c *ConflictError
	var f *foreignError
	if errors.As(err, &c) || errors.As(err, &f) {
		return err
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("state file %s: state.kubernetes.namespace: %q is gone from %s: %w", name, s.ns, s.where, err)
	}
	return fmt.Errorf("state file %s: write: %w", name, s.apiError(err))
}

// Remove deletes the named file and its chunks, preconditioned on the version this Store
// last saw; removing a file the snapshot does not hold does nothing.
func (s *Store) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.lostLock(name); err != nil {
		return err
	}
	cur := s.files[name]
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	secrets := s.client.CoreV1().Secrets(s.ns)
	if cur != nil {
		err := retryWrite(ctx, func(ctx context.Context) error {
			rv := cur.head.ResourceVersion
			err := secrets.Delete(ctx, cur.head.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
		if apierrors.IsConflict(err) {
			return &ConflictError{Name: name, Where: s.Describe(), Err: err}
		}
		if err != nil {
			return fmt.Errorf("state file %s: remove: %w", name, s.apiError(err))
		}
		delete(s.files, name)
	}
	var keep []*corev1.Secret
	for _, c := range s.chunks[name] {
		if deleteIgnoringMissing(ctx, secrets, c.Name, string(c.UID)) != nil {
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		delete(s.chunks, name)
	} else {
		s.chunks[name] = keep
	}
	return nil
}

// RecordPass appends p to passes.jsonl (state.AppendPass: the last 1000 records).
func (s *Store) RecordPass(p state.PassRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.read(passesName)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state: record pass: %w", err)
	}
	data, err := state.AppendPass(old, p)
	if err != nil {
		return fmt.Errorf("state: record pass: %w", err)
	}
	return s.write(passesName, data)
}

// Passes returns the recorded passes, oldest first.
func (s *Store) Passes() ([]state.PassRecord, error) {
	s.mu.Lock()
	data, err := s.read(passesName)
	s.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := state.ParsePasses(data)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return out, nil
}

func (s *Store) labels(kind string) map[string]string {
	return map[string]string{LabelFleet: s.fleet, LabelManagedBy: managedBy, LabelState: kind}
}

// checkName accepts what the local store accepts: "file" or "dir/file", clean, relative, not
// the local store's reserved lock file (so that state migrates both ways).
func checkName(name string) error {
	parts := strings.Split(name, "/")
	switch {
	case name == "" || path.Clean(name) != name || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) ||
		parts[0] == ".." || strings.ContainsRune(name, 0):
		return fmt.Errorf("state: invalid file name %q", name)
	case len(parts) > 2:
		return fmt.Errorf("state: file name %q is nested more than one directory deep", name)
	case name == "lock" || name == ".":
		return fmt.Errorf("state: %q is reserved", name)
	}
	for _, p := range parts {
		if p == "." || p == ".." || p == "" {
			return fmt.Errorf("state: invalid file name %q", name)
		}
	}
	return nil
}

// secretName maps a file name to a Secret name: readable, and unique through a hash of the
// fleet and the file name (the readable part folds case and punctuation).
func secretName(fleet, name string) string {
	h := sha256.Sum256([]byte(fleet + "\x00" + name))
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	readable := strings.Trim(b.String(), "-")
	out := "reconcile-" + fleet + "-"
	if readable != "" {
		out += readable + "-"
	}
	return out + hex.EncodeToString(h[:5])
}

func chunkName(head, gen string, i int) string {
	return fmt.Sprintf("%s-%s-%d", head, gen, i)
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type secretDeleter interface {
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// deleteIgnoringMissing deletes a Secret, only the very object uid names when uid is set.
func deleteIgnoringMissing(ctx context.Context, c secretDeleter, name, uid string) error {
	opts := metav1.DeleteOptions{}
	if uid != "" {
		u := types.UID(uid)
		opts.Preconditions = &metav1.Preconditions{UID: &u}
	}
	err := retryWrite(ctx, func(ctx context.Context) error { return c.Delete(ctx, name, opts) })
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by another object we do not own
	}
	return err
}

// retryRead runs a read, again after transient errors, a few times with backoff.
func retryRead(ctx context.Context, f func(context.Context) error) error {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := f(cctx)
		cancel()
		if err == nil || attempt == readAttempts || !transient(err) || ctx.Err() != nil {
			return err
		}
		if !sleep(ctx, delay) {
			return err
		}
		delay *= 2
	}
}

// transient says whether a read may succeed when tried again; conflicts are not read errors.
func transient(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(kube.Classify(err), &r) && r.Retryable() && !apierrors.IsConflict(err)
}

// retryWrite runs a write again only after errors that prove it was not applied: throttling
// (429) and a connection that was never made.
func retryWrite(ctx context.Context, f func(context.Context) error) error {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil || attempt == 3 || !notApplied(err) || ctx.Err() != nil {
			return err
		}
		if !sleep(ctx, delay) {
			return err
		}
		delay *= 2
	}
}

func writeRetrying(ctx context.Context, f func(context.Context) (*corev1.Secret, error)) (*corev1.Secret, error) {
	var got *corev1.Secret
	err := retryWrite(ctx, func(ctx context.Context) error {
		var err error
		got, err = f(ctx)
		return err
	})
	return got, err
}

func notApplied(err error) bool {
	if apierrors.IsTooManyRequests(err) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
