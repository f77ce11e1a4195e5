package balancer

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/tetherlb/tether/route"
)

// Outcome is how a request's member was chosen.
type Outcome uint8

// The outcomes. Append only: observers may store them as numbers.
const (
	// NewSession: no usable route; the lb method chose (a new session).
	NewSession Outcome = iota
	// Sticky: the session's own member.
	Sticky
	// Failover: the session's member was unavailable; rendezvous hashing chose.
	Failover
	// Rejected: the session's member was unavailable and nofailover is on.
	Rejected
	// Moved: the session's member is draining and sessions are replicated;
	// rendezvous hashing chose a member to take it over.
	Moved
)

// outcomeNames are the outcomes' one spelling, in the access log and the
// metrics' outcome label alike.
var outcomeNames = [...]string{
	NewSession: "new", Sticky: "sticky", Failover: "failover", Rejected: "nofailover_rejected", Moved: "moved",
}

// OutcomeCount is how many outcomes there are: every Outcome below it has
// a name.
const OutcomeCount = len(outcomeNames)

// String returns the outcome's name: new, sticky, failover,
// nofailover_rejected or moved ("unknown" past OutcomeCount).
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// RequestInfo describes a finished request.
type RequestInfo struct {
	Balancer string
	// Member is the route of the member that answered, or of the last one
	// tried; "" if none was.
	Member   string
	Outcome  Outcome
	Status   int
	Attempts int // members tried
	Duration time.Duration
	BytesIn  int64 // request body bytes, when known
	BytesOut int64 // response bytes written to the client
	// Err is why the balancer answered itself (no member, timeout …), or nil.
	Err error
}

// Observer is told about every request when it ends (metrics implement
// it). ObserveRequest runs on the request's goroutine: it must be fast and
// must not block or retain the RequestInfo's Err beyond the call.
type Observer interface {
	ObserveRequest(RequestInfo)
}

func (a *attempt) report() {
	o, log := a.s.opts.Observer, a.s.opts.AccessLog
	if o == nil && log == nil {
		return
	}
	info := RequestInfo{
		Balancer: a.s.opts.Name, Outcome: a.outcome, Status: a.status, Attempts: len(a.tried),
		Duration: a.s.opts.Now().Sub(a.start), BytesIn: max(a.bytesIn, 0), BytesOut: a.written, Err: a.err,
	}
	if m := a.active; m != nil {
		info.Member = m.route
	} else if m := a.member; m != nil {
		info.Member = m.route
	}
	if o != nil {
		o.ObserveRequest(info)
	}
	if log != nil {
		a.logAccess(log, &info)
	}
}

// logAccess writes the request's access log record. The target's session
// ids (";jsessionid=…", query parameters named like the session cookies)
// are redacted: a log file never holds a live session id.
func (a *attempt) logAccess(log *slog.Logger, info *RequestInfo) {
	attrs := []slog.Attr{
		// The request's strings may view a buffer the engine reuses:
		// a handler that keeps the record must get copies.
		slog.String("balancer", info.Balancer), slog.String("method", strings.Clone(a.req.method)),
		slog.String("uri", strings.Clone(route.RedactTarget(a.req.target, a.s.redactNames))),
		slog.String("remote", strings.Clone(a.req.remoteAddr)),
		slog.Int("status", info.Status), slog.String("member", info.Member),
		slog.String("sticky", info.Outcome.String()), slog.Int("attempts", info.Attempts),
		slog.Float64("duration", info.Duration.Seconds()), slog.Int64("bytes", info.BytesOut),
		slog.String("user_agent", strings.Clone(a.req.userAgent)), slog.String("referer", strings.Clone(route.RedactTarget(a.req.referer, a.s.redactNames))),
	}
	if a.route != "" {
		attrs = append(attrs, slog.String("route", strings.Clone(a.route)))
	}
	if info.Err != nil {
		attrs = append(attrs, slog.String("error", info.Err.Error()))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}
