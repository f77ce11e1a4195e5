package balancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
)

// Errors the balancer returns. Request errors are answered with the status
// that statusOf gives them; the others come from Pool changes.
var (
	// ErrNoMember: no member can take the request (all down or stopped).
	ErrNoMember = errors.New("no member available")
	// ErrNoFailover: the session's member is unavailable and the balancer
	// is configured not to fail over.
	ErrNoFailover = errors.New("the session's member is unavailable and failover is off")
	// ErrTimeout: the member did not answer within the response timeout.
	ErrTimeout = errors.New("member timed out")
	// ErrConnect: no connection could be made to the member(s) tried.
	ErrConnect = errors.New("member connection failed")
	// ErrQueueTimeout: the member had no free slot (Options.MaxConns)
	// within the queue timeout.
	ErrQueueTimeout = errors.New("member busy: no free slot within the queue timeout")
	// ErrBodyTooLarge: the request body exceeds the configured limit.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrURITooLong: the request target exceeds the configured limit.
	ErrURITooLong = errors.New("request URI too long")
	// ErrBadRequestBody: the request body is malformed (its chunked
	// framing is broken); the member's connection is closed, the client
	// gets 400 and its connection is closed too.
	ErrBadRequestBody = errors.New("malformed request body")

	// ErrInvalid: a Pool change was refused because a value is invalid.
	ErrInvalid = errors.New("invalid")
	// ErrNoSuchMember: no member has that route.
	ErrNoSuchMember = errors.New("no such member")
	// ErrExists: a member with that route already exists.
	ErrExists = errors.New("member already exists")
)

// statusOf maps a request error to the status the client gets. It is the
// one place where errors become HTTP statuses.
func statusOf(err error) int {
	var maxBytes *http.MaxBytesError
	switch {
	case errors.Is(err, ErrNoMember), errors.Is(err, ErrNoFailover), errors.Is(err, ErrQueueTimeout):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrURITooLong):
		return http.StatusRequestURITooLong
	case errors.Is(err, ErrBadRequestBody):
		return http.StatusBadRequest
	case errors.Is(err, ErrBodyTooLarge), errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// classify sorts a transport error: was anything sent to the member, and
// did it time out waiting for the response?
func classify(err error) (notSent, timeout bool) {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true, false // refused, unreachable, or connect timeout: nothing sent
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, true
	}
	return false, false
}

// errorPage is what the balancer answers when it cannot proxy a request,
// the same from both engines.
type errorPage struct {
	status     int
	retryAfter int  // seconds, 0 for no Retry-After
	close      bool // Connection: close
	body       string
}

func (a *attempt) errorPage(err error) errorPage {
	a.err = err
	if errors.Is(err, ErrNoFailover) {
		a.outcome = Rejected
	}
	status := statusOf(err)
	p := errorPage{status: status}
	if status == http.StatusServiceUnavailable {
		p.retryAfter = a.retryAfter()
	}
	// The rest of the request cannot be read, or is not worth reading.
	p.close = status == http.StatusRequestEntityTooLarge || status == http.StatusRequestURITooLong || status == http.StatusBadRequest
	p.body = fmt.Sprintf("%d %s: balancer %q: %s\n", status, http.StatusText(status), a.s.opts.Name, publicMessage(err))
	return p
}

// retryAfter is how many seconds a client should wait: the probe interval,
// after which an unavailable member is back if it can be.
func (a *attempt) retryAfter() int {
	d := a.s.opts.Health.ProbeInterval
	if d <= 0 {
		return 1
	}
	return max(1, int((d+999_999_999)/1_000_000_000))
}

// publicMessage says what went wrong without internal detail.
func publicMessage(err error) string {
	switch {
	case errors.Is(err, ErrNoFailover):
		return "the member holding this session is unavailable; try again shortly"
	case errors.Is(err, ErrNoMember):
		return "no member is available"
	case errors.Is(err, ErrQueueTimeout):
		return "the member is busy; try again shortly"
	case errors.Is(err, ErrTimeout):
		return "the member did not answer in time"
	case errors.Is(err, ErrURITooLong):
		return "request URI too long"
	case errors.Is(err, ErrBadRequestBody):
		return "malformed request body"
	case errors.Is(err, ErrBodyTooLarge), statusOf(err) == http.StatusRequestEntityTooLarge:
		return "request body too large"
	}
	return "could not reach a member"
}
