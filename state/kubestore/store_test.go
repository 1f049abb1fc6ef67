package kubestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/lab/labtest"
	"github.com/reconcile-dev/reconcile/state"
)

func TestSecretName(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, name := range []string{"passes.jsonl", "kubeconfigs/us", "Kubeconfigs/US", "kubeconfigs-us", "a", "_",
		strings.Repeat("x", 300), strings.Repeat("x", 300) + "/y", "ünïcode/名前"} {
		n := secretName("production-fleet-with-a-long-name-of-sixty-three-characters-ab", name)
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("%q -> %q: %v", name, n, errs)
		}
		if errs := validation.IsDNS1123Subdomain(chunkName(n, "0123abcd", 12)); len(errs) > 0 {
			t.Errorf("chunk of %q: %v", name, errs)
		}
		if other, ok := seen[n]; ok {
			t.Errorf("%q and %q share the Secret %s", name, other, n)
		}
		seen[n] = name
	}
	if got := secretName("eu", "kubeconfigs/us"); !strings.HasPrefix(got, "reconcile-eu-kubeconfigs-us-") {
		t.Errorf("secretName = %q", got)
	}
	if secretName("eu", "x") == secretName("us", "x") {
		t.Error("two fleets share a Secret")
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "passes.jsonl", "kubeconfigs/us", ".hidden"} {
		if err := checkName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "/a", "a/", "a//b", "a/b/c", "../a", "a/..", "./a", `a\b`, "lock"} {
		if checkName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	s := open(t, ns, "eu")
	if got := s.Describe(); got != "kubernetes "+ns+" in lab-state.kubeconfig" {
		t.Errorf("Describe = %q", got)
	}
	files := map[string][]byte{
		"mesh-root.pem":  []byte("-----BEGIN CERTIFICATE-----\n"),
		"kubeconfigs/us": []byte("apiVersion: v1\n"),
		"Kubeconfigs/US": []byte("another file"),
		"binary":         {0, 1, 2, 0xff, 0xfe},
		"empty":          {},
	}
	for name, data := range files {
		if err := s.WriteFile(name, data); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	// Another Store (another process) reads what the first wrote.
	other := open(t, ns, "eu")
	for _, st := range []*Store{s, other} {
		for name, data := range files {
			got, err := st.ReadFile(name)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read %s: %q, %v", name, got, err)
			}
			if !st.Exists(name) {
				t.Errorf("%s does not exist", name)
			}
		}
		names, err := st.List()
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"Kubeconfigs/US", "binary", "empty", "kubeconfigs/us", "mesh-root.pem"}; !slices.Equal(names, want) {
			t.Errorf("List = %q, want %q", names, want)
		}
	}
	_, err := other.ReadFile("kubeconfigs/ap")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading a missing file: %v", err)
	}
	if other.Exists("kubeconfigs/ap") || other.Exists("../x") {
		t.Error("a missing file exists")
	}
	for _, bad := range []string{"a/b/c", "../x", "lock"} {
		if err := s.WriteFile(bad, nil); err == nil {
			t.Errorf("wrote %q", bad)
		}
	}

	// A fleet sees only its own files.
	if names, err := open(t, ns, "us").List(); err != nil || len(names) != 0 {
		t.Errorf("fleet us lists %q, %v", names, err)
	}

	secrets := fleetSecrets(t, ns, "eu", "file")
	if len(secrets) != len(files) {
		t.Fatalf("%d Secrets for %d files", len(secrets), len(files))
	}
	for _, sec := range secrets {
		if sec.Type != corev1.SecretTypeOpaque || sec.Labels[LabelManagedBy] != "reconcile" || sec.Annotations[AnnotationFile] == "" {
			t.Errorf("Secret %s: type %s, labels %v, annotations %v", sec.Name, sec.Type, sec.Labels, sec.Annotations)
		}
	}

	if err := other.Remove("kubeconfigs/us"); err != nil {
		t.Fatal(err)
	}
	if err := other.Remove("kubeconfigs/us"); err != nil {
		t.Fatalf("removing a removed file: %v", err)
	}
	if err := other.Remove("never-there"); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadFile("kubeconfigs/us"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a removed file reads: %v", err)
	}
	if len(fleetSecrets(t, ns, "eu", "file")) != len(files)-1 {
		t.Error("the removed file's Secret is still there")
	}
}

func TestIdenticalWriteSendsNothing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	wc := &labtest.WriteCounter{}
	s := open(t, ns, "eu", counted(wc))
	if err := s.WriteFile("kubeconfigs/us", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	lock, err := s.Lock(context.Background(), state.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	wc.Reset()
	if err := s.WriteFile("kubeconfigs/us", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := s.ReadFile("kubeconfigs/us"); err != nil {
			t.Fatal(err)
		}
	}
	// Lease renewals may happen meanwhile; no Secret is written and nothing is listed.
	for _, w := range wc.Writes() {
		if strings.Contains(w, "/secrets") {
			t.Errorf("an identical write sent %s", w)
		}
	}
	if wc.Reads() > 0 {
		t.Errorf("%d reads under the lock, want them served from the snapshot", wc.Reads())
	}
}

func TestLargeFile(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	s := open(t, ns, "eu")
	big := make([]byte, 5<<19) // 2.5 MiB
	_, _ = rand.Read(big)
	if err := s.WriteFile("passes.jsonl", big); err != nil {
		t.Fatal(err)
	}
	if n := len(fleetSecrets(t, ns, "eu", "chunk")); n != 2 {
		t.Fatalf("%d chunk Secrets for 2.5 MiB, want 2 (and the head)", n)
	}
	other := open(t, ns, "eu")
	got, err := other.ReadFile("passes.jsonl")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}

	// Shrinking deletes the chunks no longer needed, after the head points elsewhere.
	if err := other.WriteFile("passes.jsonl", big[:1<<20]); err != nil {
		t.Fatal(err)
	}
	if n := len(fleetSecrets(t, ns, "eu", "chunk")); n != 1 {
		t.Fatalf("%d chunk Secrets for 1 MiB, want 1", n)
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadFile("passes.jsonl"); err != nil || !bytes.Equal(got, big[:1<<20]) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if err := s.WriteFile("passes.jsonl", []byte("small")); err != nil {
		t.Fatal(err)
	}
	if n := len(fleetSecrets(t, ns, "eu", "chunk")); n != 0 {
		t.Fatalf("%d chunk Secrets for 5 bytes", n)
	}

	// A chunk changed behind our back fails the checksum; the error holds no content.
	if err := s.WriteFile("ca", big); err != nil {
		t.Fatal(err)
	}
	chunks := fleetSecrets(t, ns, "eu", "chunk")
	if len(chunks) != 2 {
		t.Fatalf("%d chunks", len(chunks))
	}
	c := chunks[0]
	c.Data[dataKey][0] ^= 1
	if _, err := admin(t).CoreV1().Secrets(ns).Update(context.Background(), &c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadFile("ca"); err == nil || !strings.Contains(err.Error(), "corrupt") || len(err.Error()) > 500 {
		t.Fatalf("a corrupt file reads: %v", err)
	}
	if err := s.Remove("ca"); err != nil {
		t.Fatal(err)
	}
	if n := len(fleetSecrets(t, ns, "eu", "chunk")); n != 0 {
		t.Fatalf("%d chunk Secrets after removing the file", n)
	}
}

func TestConflictIsReported(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	a := open(t, ns, "eu")
	b := open(t, ns, "eu")
	if err := a.WriteFile("ca", []byte("a1")); err != nil {
		t.Fatal(err)
	}
	// b saw no ca when it listed: its create fails instead of overwriting.
	var conflict *ConflictError
	err := b.WriteFile("ca", []byte("b1"))
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), "another writer") {
		t.Fatalf("b's write over a's: %v", err)
	}
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.ReadFile("ca"); string(got) != "a1" {
		t.Fatalf("b reads %q", got)
	}
	if err := a.WriteFile("ca", []byte("a2")); err != nil {
		t.Fatal(err)
	}
	err = b.WriteFile("ca", []byte("PRIVATE KEY of b"))
	if !errors.As(err, &conflict) {
		t.Fatalf("b's stale update: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the error shows content: %v", err)
	}
	if err := b.Remove("ca"); !errors.As(err, &conflict) {
		t.Fatalf("b's stale remove: %v", err)
	}
	c := open(t, ns, "eu")
	if got, err := c.ReadFile("ca"); err != nil || string(got) != "a2" {
		t.Fatalf("after the conflicts: %q, %v", got, err)
	}
	// a's own writes keep its versions current.
	if err := a.WriteFile("ca", []byte("a3")); err != nil {
		t.Fatal(err)
	}
}

func TestForeignSecretIsRefused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	name := secretName("eu", "ca")
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{AnnotationFile: "ca"}},
		Data:       map[string][]byte{dataKey: []byte("not ours")},
	}
	if _, err := admin(t).CoreV1().Secrets(ns).Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := open(t, ns, "eu")
	if s.Exists("ca") {
		t.Error("a Secret without our labels is read")
	}
	err := s.WriteFile("ca", []byte("ours"))
	if err == nil || !strings.Contains(err.Error(), "not this fleet's state") {
		t.Fatalf("writing over a foreign Secret: %v", err)
	}
	got, err := admin(t).CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || string(got.Data[dataKey]) != "not ours" {
		t.Fatalf("the foreign Secret: %v, %v", got, err)
	}
}

func TestPasses(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	s := open(t, ns, "eu")
	if p, err := s.Passes(); err != nil || len(p) != 0 {
		t.Fatalf("no passes yet: %v, %v", p, err)
	}
	// 999 records and a torn last line (a writer of another kind died mid-line): the torn line
	// is dropped, and the oldest records go once there are more than 1000.
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var seed []byte
	for i := range 999 {
		line, _ := json.Marshal(state.PassRecord{Time: start.Add(time.Duration(i) * time.Minute), Succeeded: i})
		seed = append(append(seed, line...), '\n')
	}
	if err := s.WriteFile("passes.jsonl", append(seed, `{"succ`...)); err != nil {
		t.Fatal(err)
	}
	for i := 999; i < 1005; i++ {
		if err := s.RecordPass(state.PassRecord{Time: start.Add(time.Duration(i) * time.Minute), Succeeded: i}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := open(t, ns, "eu").Passes()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1000 || p[0].Succeeded != 5 || p[999].Succeeded != 1004 || !p[999].Time.Equal(start.Add(1004*time.Minute)) {
		t.Fatalf("%d passes, first %+v, last %+v", len(p), p[0], p[len(p)-1])
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	c := labCluster(t)
	ns := newNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"missing namespace", Config{Fleet: "eu", Namespace: "nowhere", REST: c.RESTConfig(), Where: "ops.kubeconfig"},
			[]string{`state.kubernetes.namespace: namespace "nowhere" does not exist in ops.kubeconfig`}},
		{"no RBAC", Config{Fleet: "eu", Namespace: ns, REST: tokenConfig(t, nobodyToken), Where: "ops.kubeconfig"},
			[]string{`state.kubernetes: user "nobody" may not get secrets, list secrets`, "in namespace " + ns, "(RBAC)"}},
		{"wrong token", Config{Fleet: "eu", Namespace: ns, REST: tokenConfig(t, "no-such-token"), Where: "ops.kubeconfig"},
			[]string{"does not accept the credentials from ops.kubeconfig"}},
		{"unreachable", Config{Fleet: "eu", Namespace: ns, REST: &rest.Config{Host: "https://127.0.3.254:1", Timeout: 5 * time.Second}},
			[]string{"state.kubernetes: cannot reach the state cluster at https://127.0.3.254:1"}},
		{"bad fleet name", Config{Fleet: "EU_1", Namespace: ns, REST: c.RESTConfig()}, []string{`fleet name "EU_1"`}},
	}
	for _, tc := range cases {
		_, err := Open(ctx, tc.cfg)
		if err == nil {
			t.Errorf("%s: opened", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\nwant it to say %q", tc.name, err, w)
			}
		}
		for _, secret := range []string{nobodyToken, "no-such-token"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows a token: %v", tc.name, err)
			}
		}
	}
}

func TestOpenWithNamespacedRights(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	grant(t, ns, writerUser)
	// The RBAC authorizer learns of the binding through its informers: wait for it.
	var s *Store
	eventually(t, 30*time.Second, "the writer's rights took no effect", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		s, err = Open(ctx, Config{Fleet: "eu", Namespace: ns, REST: tokenConfig(t, writerToken)})
		return err == nil
	})
	if err := s.WriteFile("kubeconfigs/us", []byte("x")); err != nil {
		t.Fatal(err)
	}
	lock, err := s.Lock(context.Background(), state.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lock.Release(); err != nil {
		t.Fatal(err)
	}
}
