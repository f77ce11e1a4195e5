package balancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/tetherlb/tether/ajp"
)

// request is what routing, retries, forwarding headers and the access log
// need to know about a client request, whichever engine serves it. Its
// strings may view a buffer the engine reuses: they are valid until the
// request ends, and nothing keeps them beyond it.
type request struct {
	method string
	target string // the request target as received (RequestURI)
	query  string // the raw query of the target
	host   string // Host header, or the authority of an absolute-form target
	// cookies are the values of the Cookie header fields.
	cookies []string
	// bodyLen is the declared body length: 0 for none, -1 when unknown
	// (chunked).
	bodyLen int64
	tls     bool
	// userAgent and referer are the User-Agent and Referer fields, for
	// the access log; "" when absent.
	userAgent, referer string

	remoteAddr  string     // "ip:port" of the client connection
	client      netip.Addr // its address, valid if clientKnown
	clientKnown bool
	clientIP    string // client formatted, "" if unknown

	// ctx, if set, is done when the client has gone away (net/http only).
	ctx context.Context
}

// hasBody reports whether the request carries a body.
func (r *request) hasBody() bool { return r.bodyLen != 0 }

// setRemote sets the client address fields from "ip:port".
func (r *request) setRemote(remoteAddr string) {
	r.remoteAddr = remoteAddr
	ap, err := netip.ParseAddrPort(remoteAddr)
	r.clientKnown = err == nil
	if r.clientKnown {
		r.client = ap.Addr().Unmap()
		r.clientIP = r.client.String()
	}
}

// attempt is one request's routing state, pooled between requests. Both
// engines drive it: choose picks the first member, forward sends the
// request through the engine's sender and decides about retries, report
// tells the observers.
type attempt struct {
	b   *Balancer
	s   *settings
	req request
	buf []*Member // candidates, reused

	id, route string  // the session id part and route, "" if none usable
	outcome   Outcome // how the member was chosen
	home      *Member // the session's own member, if in the pool
	member    *Member // the member to try next
	active    *Member // the member that answered, counted in flight
	slot      *Member // the member whose in-flight slot this request holds (MaxConns)
	tried     []*Member
	err       error
	start     time.Time

	// bodyStarted is set once any of the request body was consumed from
	// the client: the request can then no longer be sent elsewhere.
	bodyStarted bool
	// bytesIn counts request body bytes (native engine; net/http reports
	// the declared length).
	bytesIn int64
	status  int   // status sent to the client, 0 until sent
	written int64 // response body bytes written to the client

	// clientFailed: reading from or writing to the client failed (native
	// engine); the request is abandoned.
	clientFailed bool

	// cl is the engine serving the request. Each engine keeps its own
	// state with the attempt, for reuse: x (native), h (net/http).
	cl      client
	x       *exchange
	h       *httpExchange
	scratch []byte // forwarding values (net/http), rewritten cookie fields (both engines)

	insert    insertCookie // insert mode: what the request's cookie said
	setCookie []byte       // insert mode: Tether's Set-Cookie value for the response, if any
	https     bool         // the client's connection is TLS, or a trusted proxy says so
}

// client is what the shared request code asks of the engine serving a
// request, beyond the request view: *exchange (native) and *httpExchange
// (net/http) implement it over their own state.
type client interface {
	// localAddr is the address the client connected to, nil if unknown.
	localAddr() net.Addr
	// ajpForward describes the client's connection for an ajp:// member.
	ajpForward() *ajp.Forward
	// bodyRead returns how many request body bytes were read from the
	// client, or -1 when the engine knows only the declared length.
	bodyRead() int64
}

func (a *attempt) begin(b *Balancer, s *settings) {
	a.b, a.s, a.start = b, s, s.opts.Now()
}

func (a *attempt) reset() {
	buf, tried, scratch, sc := a.buf[:0], a.tried[:0], a.scratch[:0], a.setCookie[:0]
	clear(a.buf[:cap(a.buf)])
	clear(a.tried[:cap(a.tried)])
	x, h := a.x, a.h
	if x != nil {
		x.reset()
	}
	if h != nil {
		*h = httpExchange{}
	}
	*a = attempt{buf: buf, tried: tried, scratch: scratch, x: x, h: h, setCookie: sc}
}

// checkLimits applies the limits known before anything is sent.
func (a *attempt) checkLimits() error {
	if len(a.req.target) > a.s.opts.MaxURLBytes {
		return ErrURITooLong
	}
	if max := a.s.opts.MaxBodyBytes; max > 0 && a.req.bodyLen > max {
		return ErrBodyTooLarge
	}
	return nil
}

// choose picks the first member for the request.
func (a *attempt) choose() error {
	a.id, a.route, a.home = a.session()
	m, outcome, err := a.next()
	if err != nil {
		a.outcome = outcome
		return err
	}
	a.member, a.outcome = m, outcome
	return nil
}

// next picks the member to try now, excluding those tried already.
func (a *attempt) next() (*Member, Outcome, error) {
	home := a.home
	if home != nil && !a.wasTried(home) {
		switch {
		case a.s.opts.Replicated && home.State() == Draining && home.Healthy():
			if m := a.failover(); m != nil {
				m.failovers.Add(1)
				return m, Moved, nil
			}
			return home, Sticky, nil // nobody else can take it: stay
		case home.takesSticky():
			return home, Sticky, nil
		}
	}
	if home != nil {
		if a.s.opts.NoFailover {
			return nil, Rejected, ErrNoFailover
		}
		if m := a.failover(); m != nil {
			m.failovers.Add(1)
			return m, Failover, nil
		}
		return nil, Failover, ErrNoMember
	}
	cands := a.candidates(Active)
	if len(cands) == 0 {
		cands = a.candidates(Standby)
	}
	if len(cands) == 0 {
		return nil, NewSession, ErrNoMember
	}
	cands = a.notFull(a.slowStartGate(cands))
	m := a.s.picker.Pick(cands)
	m.newSessions.Add(1)
	return m, NewSession, nil
}

// notFull moves the members of cands that have a free slot to the front
// and returns them, or cands if none has: a new session waits only if it
// must.
func (a *attempt) notFull(cands []*Member) []*Member {
	k := 0
	for i, m := range cands {
		if limit := a.limit(m); limit <= 0 || !m.queue.full(limit) {
			cands[k], cands[i] = cands[i], cands[k]
			k++
		}
	}
	if k == 0 {
		return cands
	}
	return cands[:k]
}

// limit is how many requests m may be sent at once; 0 for no limit.
func (a *attempt) limit(m *Member) int {
	if n := m.maxConns.Load(); n > 0 {
		return int(n)
	}
	return a.s.opts.MaxConns
}

// failover returns the member that takes the session over: the same one
// for every request of the session, on every balancer instance.
func (a *attempt) failover() *Member {
	cands := a.candidates(Active)
	if len(cands) == 0 {
		cands = a.candidates(Standby)
	}
	return rendezvous(a.id, cands)
}

// candidates returns the untried healthy members in state tier, in a
// buffer reused between requests.
func (a *attempt) candidates(tier State) []*Member {
	a.buf = a.buf[:0]
	for _, m := range a.b.pool.Members() {
		if m != a.home && m.takesNew(tier) && !a.wasTried(m) {
			a.buf = append(a.buf, m)
		}
	}
	return a.buf
}

func (a *attempt) wasTried(m *Member) bool {
	for _, t := range a.tried {
		if t == m {
			return true
		}
	}
	return false
}

// clientGone reports whether the client has gone away: the net/http
// engine knows from the request context, the native one when reading the
// request body or writing to the client failed.
func (a *attempt) clientGone() bool {
	return a.clientFailed || (a.req.ctx != nil && a.req.ctx.Err() != nil)
}

// canRetry reports whether a request that failed may be sent to another
// member: only if nothing was sent, or if it is idempotent and has no
// body; never a sticky request under nofailover.
func (a *attempt) canRetry(notSent bool) bool {
	if len(a.tried) >= a.s.opts.MaxAttempts || a.clientGone() {
		return false
	}
	if a.s.opts.NoFailover && a.home != nil {
		return false
	}
	if notSent && !a.bodyStarted {
		return true
	}
	return idempotent(a.req.method) && !a.req.hasBody()
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// forward sends the request to a.member with send and, while a failure
// allows it, to the next members. It returns nil once a member answered
// (a.active is then set and counted in flight), or why none did. send
// must report a connection that could not be made as a *net.OpError with
// Op "dial", and a response timeout as a net.Error whose Timeout is true.
func (a *attempt) forward(send func(*Member) error) error {
	for {
		m := a.member
		a.tried = append(a.tried, m)
		if limit := a.limit(m); limit > 0 {
			if !m.queue.acquire(limit, a.s.opts.QueueTimeout, a.req.ctx) {
				m.queueFull.Add(1)
				return fmt.Errorf("%w (member %s)", ErrQueueTimeout, m.route)
			}
			a.slot = m
		}
		m.inflight.Add(1)
		err := send(m)
		if err == nil {
			a.active = m
			m.requests.Add(1)
			if m.consecutive.Load() != 0 {
				m.consecutive.Store(0)
			}
			return nil
		}
		m.inflight.Add(-1)
		a.releaseSlot()
		if a.clientGone() || errors.Is(err, ErrBadRequestBody) {
			return err // the client went away or sent a malformed body: not the member's fault
		}
		notSent, timeout := classify(err)
		if notSent || timeout {
			a.b.failed(a.s, m, err)
		}
		if !a.canRetry(notSent) {
			if notSent && a.home == m && a.s.opts.NoFailover {
				return fmt.Errorf("%w: %w", ErrNoFailover, err)
			}
			return wrap(err, timeout)
		}
		next, outcome, nerr := a.next()
		if nerr != nil {
			return wrap(err, timeout)
		}
		if a.home != nil && outcome == Failover {
			a.outcome = Failover
		}
		a.member = next
	}
}

// releaseSlot gives back the in-flight slot the request holds, if any.
func (a *attempt) releaseSlot() {
	if a.slot != nil {
		a.slot.queue.release(a.limit(a.slot))
		a.slot = nil
	}
}

func wrap(err error, timeout bool) error {
	if timeout {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrConnect, err)
}

// failed counts a connection failure or timeout against m and takes it
// down after Failures of them in a row.
func (b *Balancer) failed(s *settings, m *Member, err error) {
	m.failures.Add(1)
	if int(m.consecutive.Add(1)) >= s.opts.Failures && m.Healthy() {
		s.checker.MarkDown(m, err.Error())
	}
}

// finish ends a request: counters, observer, access log, and the attempt
// goes back to the pool.
func (b *Balancer) finish(a *attempt) {
	if n := a.cl.bodyRead(); n >= 0 {
		a.bytesIn = n
	}
	a.releaseSlot()
	if a.active != nil {
		a.active.inflight.Add(-1)
		a.active.bytes.Add(uint64(max(a.bytesIn, 0)) + uint64(a.written))
	}
	a.report()
	a.reset()
	b.reqs.Put(a)
}
