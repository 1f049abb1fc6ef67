package linode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/linode/linodego"

	"github.com/reconcile-dev/reconcile/state"
)

// Error is a failed Linode API call: the operation, the HTTP status (0 for a failure on
// our side of the wire) and the API's reasons as "field: reason".
type Error struct {
	Op      string
	Status  int
	Reasons string
	Err     error
}

func (e *Error) Error() string { return "linode: " + e.Op + ": " + e.Reasons }

// Unwrap gives the linodego error, so linodego.IsNotFound and ErrHasStatus still work.
func (e *Error) Unwrap() error { return e.Err }

// classify wraps an API error: 429, 408, 409, 5xx and failures on the wire are transient
// (retried by the executor, after Retry-After when the API sent one); other 4xx are
// terminal. When the caller's context ended, that is what is returned.
func classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("linode: %s: %w", op, ctxErr)
	}
	status, msg, resp := apiStatus(err)
	if status == 0 && msg == "" {
		// Not from linodego at all (our own code): keep it as is.
		return fmt.Errorf("linode: %s: %w", op, err)
	}
	e := &Error{Op: op, Status: status, Reasons: reasons(msg), Err: err}
	switch {
	case status < 100, // linodego's codes for Go-side failures: timeouts, refused connections
		status == http.StatusTooManyRequests,
		status == http.StatusRequestTimeout,
		status == http.StatusConflict,
		status >= 500:
		return state.Transient(e, retryAfter(resp))
	}
	return e
}

// apiStatus digs the status, message and response out of a linodego error, which comes
// as a pointer from the API and as a value for unexpected content types.
func apiStatus(err error) (int, string, *http.Response) {
	var p *linodego.Error
	if errors.As(err, &p) {
		return p.Code, p.Message, p.Response
	}
	var v linodego.Error
	if errors.As(err, &v) {
		return v.Code, v.Message, v.Response
	}
	return 0, "", nil
}

// reasons turns linodego's "[field] reason; [field2] reason2" into "field: reason; field2: reason2".
func reasons(msg string) string {
	parts := strings.Split(msg, "; ")
	for i, p := range parts {
		if strings.HasPrefix(p, "[") {
			if end := strings.Index(p, "] "); end > 1 {
				parts[i] = p[1:end] + ": " + p[end+2:]
			}
		}
	}
	return strings.Join(parts, "; ")
}

// retryAfter reads a Retry-After in seconds; zero when absent or not a number.
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// isStatus reports whether err is a linodego error with one of the codes.
func isStatus(err error, codes ...int) bool {
	status, _, _ := apiStatus(err)
	for _, c := range codes {
		if status == c {
			return true
		}
	}
	return false
}

// lastAnswer renders an API answer for a timeout message: "[503] reason" or the error text.
func lastAnswer(err error) string {
	if err == nil {
		return "none"
	}
	status, msg, _ := apiStatus(err)
	if status == 0 && msg == "" {
		return err.Error()
	}
	return fmt.Sprintf("[%d] %s", status, reasons(msg))
}
