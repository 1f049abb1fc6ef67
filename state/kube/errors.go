package kube

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/reconcile-dev/reconcile/state"
)

// TerminalError is a Kubernetes API answer that another attempt would only repeat (400, 401,
// 403, 404, 405, 410, 422, ...). Its Retryable method says so explicitly, which the executor
// honours over anything the error wraps.
type TerminalError struct {
	Err error
}

func (e *TerminalError) Error() string { return e.Err.Error() }

// Unwrap gives the API error, so apierrors.IsNotFound and friends still see it.
func (e *TerminalError) Unwrap() error { return e.Err }

// Retryable reports that the call would fail the same way again.
func (e *TerminalError) Retryable() bool { return false }

// Classify marks an error from client-go or apimachinery for the executor, which looks for
// Retryable and RetryAfter methods in the error chain:
//
//   - retryable (state.Transient, after the Retry-After the API server sent, if any): a conflict,
//     throttling (429), 408, 500, 502, 503, 504 and the server and gateway timeouts, an
//     internal or unexpected server error; the API server not answering: connection refused
//     or reset, EOF, a dial, read or write failure, a DNS failure, a network timeout (TLS
//     handshake timeout included), a lost HTTP/2 connection; context.DeadlineExceeded (a
//     per-call timeout) and a wait that ran out of time;
//   - terminal (*TerminalError): every other answer from the API (400, 401, 403, 404, 405,
//     409 AlreadyExists, 410, 422, ...). A caller that expects one of these (404 on delete,
//     say) tests for it before, or after: the API error stays in the chain.
//
// nil stays nil; an error that already says whether it is retryable, context.Canceled, and
// any error Classify does not recognise (certificate errors, our own) are returned unchanged,
// and are terminal to the executor unless marked otherwise.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) || errors.Is(err, context.Canceled) {
		return err
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if !retryableStatus(err, int(status.Status().Code)) {
			return &TerminalError{Err: err}
		}
		var after time.Duration
		if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return state.Transient(err, after)
	}
	if unreachable(err) || errors.Is(err, context.DeadlineExceeded) || wait.Interrupted(err) {
		return state.Transient(err, 0)
	}
	return err
}

// retryableStatus says whether an API answer may change on its own.
func retryableStatus(err error, code int) bool {
	switch {
	case apierrors.IsConflict(err), // reason Conflict: an update lost a race (not AlreadyExists)
		apierrors.IsTooManyRequests(err),
		apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err):
		return true
	}
	switch code {
	case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	if code >= 400 && code < 500 {
		// The client's fault even when the answer was not a Status (from a proxy, say).
		return false
	}
	return apierrors.IsUnexpectedServerError(err)
}

// retryableErrnos are socket errors of a server that is not (or no longer) answering.
var retryableErrnos = []error{
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
	syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
}

// unreachable reports a failure to reach the API server or to hear its whole answer.
func unreachable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true // i/o timeout, TLS handshake timeout, http.Client.Timeout
	}
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "read" || op.Op == "write") {
		return true // not "remote error": a TLS alert from the server stays terminal
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	for _, target := range retryableErrnos {
		if errors.Is(err, target) {
			return true
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	return utilnet.IsProbableEOF(err) || utilnet.IsHTTP2ConnectionLost(err)
}
