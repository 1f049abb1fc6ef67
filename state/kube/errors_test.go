package kube

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/reconcile-dev/reconcile/executor"
	"github.com/reconcile-dev/reconcile/state"
)

// timeoutErr is a net.Error timeout that is not an *net.OpError (as http.Client.Timeout and
// the TLS handshake timeout are).
type timeoutErr struct{ msg string }

func (e timeoutErr) Error() string   { return e.msg }
func (e timeoutErr) Timeout() bool   { return true }
func (e timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	t.Parallel()
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	gk := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	get := func(err error) error { return &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api", Err: err} }
	tests := []struct {
		name      string
		err       error
		retryable bool
		after     time.Duration
		terminal  bool // wrapped in *TerminalError (Retryable() false)
	}{
		{name: "conflict", err: apierrors.NewConflict(gr, "web", errors.New("the object has been modified")), retryable: true},
		{name: "too many requests", err: apierrors.NewTooManyRequests("slow down", 7), retryable: true, after: 7 * time.Second},
		{name: "too many requests, no delay", err: apierrors.NewTooManyRequests("slow down", 0), retryable: true},
		{name: "internal error", err: apierrors.NewInternalError(errors.New("etcd leader changed")), retryable: true},
		{name: "service unavailable", err: apierrors.NewServiceUnavailable("starting"), retryable: true},
		{name: "timeout", err: apierrors.NewTimeoutError("request did not complete", 2), retryable: true, after: 2 * time.Second},
		{name: "server timeout", err: apierrors.NewServerTimeout(gr, "create", 3), retryable: true, after: 3 * time.Second},
		{name: "502 unexpected answer", err: apierrors.NewGenericServerResponse(http.StatusBadGateway, "GET", gr, "web", "<html>bad gateway</html>", 0, true), retryable: true},
		{name: "504 unexpected answer", err: apierrors.NewGenericServerResponse(http.StatusGatewayTimeout, "GET", gr, "web", "", 0, true), retryable: true},
		{name: "408", err: apierrors.NewGenericServerResponse(http.StatusRequestTimeout, "GET", gr, "web", "", 0, true), retryable: true},
		{name: "wrapped conflict", err: fmt.Errorf("apply web: %w", apierrors.NewConflict(gr, "web", errors.New("changed"))), retryable: true},

		{name: "forbidden", err: apierrors.NewForbidden(gr, "web", errors.New("no RBAC")), terminal: true},
		{name: "not found", err: apierrors.NewNotFound(gr, "web"), terminal: true},
		{name: "invalid", err: apierrors.NewInvalid(gk, "web", field.ErrorList{field.Required(field.NewPath("spec", "replicas"), "")}), terminal: true},
		{name: "bad request", err: apierrors.NewBadRequest("malformed"), terminal: true},
		{name: "unauthorized", err: apierrors.NewUnauthorized("token expired"), terminal: true},
		{name: "method not allowed", err: apierrors.NewMethodNotSupported(gr, "patch"), terminal: true},
		{name: "gone", err: apierrors.NewResourceExpired("too old resource version"), terminal: true},
		{name: "already exists", err: apierrors.NewAlreadyExists(gr, "web"), terminal: true},
		{name: "403 from a proxy", err: apierrors.NewGenericServerResponse(http.StatusForbidden, "GET", gr, "web", "<html>denied</html>", 0, true), terminal: true},

		{name: "connection refused", err: get(syscall.ECONNREFUSED), retryable: true},
		{name: "dial refused", err: get(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), retryable: true},
		{name: "connection reset", err: get(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), retryable: true},
		{name: "no such host", err: get(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "lke1.example", IsNotFound: true}}), retryable: true},
		{name: "EOF", err: io.EOF, retryable: true},
		{name: "EOF on the wire", err: get(io.EOF), retryable: true},
		{name: "unexpected EOF", err: io.ErrUnexpectedEOF, retryable: true},
		{name: "TLS handshake timeout", err: get(timeoutErr{"net/http: TLS handshake timeout"}), retryable: true},
		{name: "i/o timeout", err: get(&net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{"i/o timeout"}}), retryable: true},
		{name: "http2 connection lost", err: get(errors.New("http2: client connection lost")), retryable: true},
		{name: "per-call deadline", err: fmt.Errorf("list nodes: %w", context.DeadlineExceeded), retryable: true},

		{name: "cancelled", err: context.Canceled},
		{name: "unknown certificate authority", err: get(x509.UnknownAuthorityError{})},
		{name: "TLS alert", err: get(&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")})},
		{name: "plain", err: errors.New("workload x is not in the fleet")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Classify(tt.err)
			retry, after := executor.Retryable(got)
			if retry != tt.retryable || after != tt.after {
				t.Errorf("executor.Retryable(Classify(%v)) = %t, %s; want %t, %s", tt.err, retry, after, tt.retryable, tt.after)
			}
			if !errors.Is(got, tt.err) || got.Error() != tt.err.Error() {
				t.Errorf("Classify(%v) = %v: the cause or its message is lost", tt.err, got)
			}
			var term *TerminalError
			if errors.As(got, &term) != tt.terminal {
				t.Errorf("Classify(%v) = %#v, want a *TerminalError: %t", tt.err, got, tt.terminal)
			}
			if !tt.retryable && !tt.terminal && got != tt.err {
				t.Errorf("Classify(%v) = %#v, want it unchanged", tt.err, got)
			}
		})
	}
}

func TestClassifyKeepsCallers(t *testing.T) {
	t.Parallel()
	if Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
	gr := schema.GroupResource{Resource: "secrets"}
	// Already classified: as is, whatever it wraps.
	marked := state.Transient(apierrors.NewForbidden(gr, "s", errors.New("no")), time.Second)
	if got := Classify(marked); got != marked {
		t.Errorf("Classify changed a classified error: %#v", got)
	}
	once := Classify(apierrors.NewNotFound(gr, "s"))
	if got := Classify(once); got != once {
		t.Errorf("Classify twice wrapped again: %#v", got)
	}
	// The API error stays visible to the callers that handle it.
	if !apierrors.IsNotFound(once) {
		t.Errorf("apierrors.IsNotFound(%v) = false", once)
	}
	if s, ok := apierrors.SuggestsClientDelay(Classify(apierrors.NewTooManyRequests("slow", 4))); !ok || s != 4 {
		t.Errorf("SuggestsClientDelay through Classify = %d, %t", s, ok)
	}
}

// TestClassifyClientGo classifies what client-go really returns: answers of an API server
// (a Status, and a page that is not one) and a server that is not there.
func TestClassifyClientGo(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/namespaces/forbidden":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = apiStatusJSON(w, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "forbidden", errors.New("no")))
		case "/api/v1/namespaces/unavailable":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "upstream connect error")
		case "/api/v1/namespaces/cut":
			hj, ok := w.(http.Hijacker)
			if !ok {
				t.Error("no hijacker")
				return
			}
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "http://" + closed.Addr().String()
	_ = closed.Close()

	tests := []struct {
		host, ns  string
		retryable bool
	}{
		{srv.URL, "forbidden", false},
		{srv.URL, "unavailable", true},
		{srv.URL, "cut", true},
		{srv.URL, "missing", false},
		{nowhere, "any", true},
	}
	for _, tt := range tests {
		t.Run(tt.ns, func(t *testing.T) {
			t.Parallel()
			cs, err := kubernetes.NewForConfig(&rest.Config{Host: tt.host, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			// DELETE: client-go retries a GET cut short until its timeout.
			err = cs.CoreV1().Namespaces().Delete(context.Background(), tt.ns, metav1.DeleteOptions{})
			if err == nil {
				t.Fatal("Delete succeeded")
			}
			if retry, _ := executor.Retryable(Classify(err)); retry != tt.retryable {
				t.Errorf("retryable = %t, want %t (%T: %v)", retry, tt.retryable, err, err)
			}
		})
	}
}

func apiStatusJSON(w io.Writer, err *apierrors.StatusError) error {
	s := err.Status()
	s.Kind, s.APIVersion = "Status", "v1"
	b, e := json.Marshal(s)
	if e != nil {
		return e
	}
	_, e = w.Write(b)
	return e
}
