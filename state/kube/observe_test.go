package kube

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/reconcile-dev/reconcile/spec"
	"github.com/reconcile-dev/reconcile/state"
	"github.com/reconcile-dev/reconcile/state/world"
)

// apiServer answers GET /api/v1/namespaces/kube-system as a kube-apiserver does, with the
// cluster's name as its UID; fail5xx first answers that many requests with 503.
func apiServer(t *testing.T, name string, fail5xx int32) *httptest.Server {
	t.Helper()
	var failed atomic.Int32
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/v1/namespaces/kube-system" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
			return
		}
		if failed.Add(1) <= fail5xx {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503}`)
			return
		}
		fmt.Fprintf(w, `{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"kube-system","uid":"uid-%s"}}`, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// hungServer accepts TCP connections and never answers, as a SIGSTOPped kube-apiserver does
// (the kernel completes the handshake; the TLS handshake never comes).
func hungServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "https://" + ln.Addr().String()
}

func storeKubeconfig(t *testing.T, store *state.Store, name, server string, ca []byte) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: "token-" + name}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.WriteFile(ClusterKubeconfig(name), data); err != nil {
		t.Fatal(err)
	}
}

// Issue 13: a member whose API server accepts connections and never answers is declared
// unreachable within the handshake bound, with the reason, while the others are observed in
// parallel; a 503 on a probe is retried.
func TestObserverBoundsAHungMember(t *testing.T) {
	t.Parallel()
	store, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &spec.Fleet{Manager: spec.Manager{Name: "mgr"}, Members: []spec.Member{{Name: "ap"}, {Name: "eu"}, {Name: "us"}}}
	w := &world.World{Clusters: map[string]*world.Cluster{}}
	for i, name := range []string{"mgr", "ap", "eu", "us"} {
		w.Clusters[name] = &world.Cluster{Name: name, LinodeID: 100 + i, KubeconfigStored: true}
		if name == "eu" {
			storeKubeconfig(t, store, name, hungServer(t), nil)
			continue
		}
		fails := int32(0)
		if name == "us" {
			fails = 1 // answered on the second attempt
		}
		s := apiServer(t, name, fails)
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
		storeKubeconfig(t, store, name, s.URL, ca)
	}
	var retries atomic.Int32
	retry := state.Retry(func(ctx context.Context, op func(context.Context) error) error {
		for attempt := 1; ; attempt++ {
			err := op(ctx)
			var r interface{ Retryable() bool }
			if err == nil || attempt == 3 || errors.As(err, &r) && !r.Retryable() {
				return err // as the executor's policy does: an unanswering server is not retried
			}
			retries.Add(1)
		}
	})
	const bound = 300 * time.Millisecond
	o := Observer{Access: Access{Store: store}, Handshake: bound, Probe: 10 * time.Second, Retry: retry}
	start := time.Now()
	if err := o.Observe(context.Background(), f, w); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*bound {
		t.Errorf("observing took %s; the hung member should be given up after %s", took, bound)
	}
	eu := w.Clusters["eu"]
	if eu.Reachable || !strings.Contains(eu.Unreachable, "did not answer within 300ms") {
		t.Errorf("eu: reachable %v, unreachable %q", eu.Reachable, eu.Unreachable)
	}
	for _, name := range []string{"mgr", "ap", "us"} {
		c := w.Clusters[name]
		if !c.Reachable || c.Unreachable != "" || c.KubeSystemUID != "uid-"+name {
			t.Errorf("%s: reachable %v, unreachable %q, uid %q", name, c.Reachable, c.Unreachable, c.KubeSystemUID)
		}
	}
	if retries.Load() != 1 {
		t.Errorf("%d retries, want 1 (us answered 503 once)", retries.Load())
	}
}

// A member whose API server refuses connections (nothing listens) is unreachable at once,
// with the dial's reason, and its probe is not retried.
func TestObserverDoesNotRetryARefusedMember(t *testing.T) {
	t.Parallel()
	store, err := state.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	f := &spec.Fleet{Manager: spec.Manager{Name: "mgr"}, Members: []spec.Member{{Name: "eu"}}}
	w := &world.World{Clusters: map[string]*world.Cluster{"eu": {Name: "eu", LinodeID: 7, KubeconfigStored: true}}}
	storeKubeconfig(t, store, "eu", "https://"+addr, nil)
	var attempts atomic.Int32
	retry := state.Retry(func(ctx context.Context, op func(context.Context) error) error {
		for {
			attempts.Add(1)
			err := op(ctx)
			var r interface{ Retryable() bool }
			if err == nil || attempts.Load() == 3 || errors.As(err, &r) && !r.Retryable() {
				return err
			}
		}
	})
	o := Observer{Access: Access{Store: store}, Retry: retry}
	if err := o.Observe(context.Background(), f, w); err != nil {
		t.Fatal(err)
	}
	eu := w.Clusters["eu"]
	if eu.Reachable || !strings.Contains(eu.Unreachable, "connection refused") || !strings.Contains(eu.Unreachable, addr) {
		t.Errorf("eu: reachable %v, unreachable %q", eu.Reachable, eu.Unreachable)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("%d attempts, want 1: a refused connection is not retried", n)
	}
}
