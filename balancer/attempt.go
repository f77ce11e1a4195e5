package balancer

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/tetherlb/tether/route"
)

// attempt is one request's routing state, pooled between requests. The
// proxy finds it in the request context.
type attempt struct {
	b   *Balancer
	s   *settings
	in  *http.Request
	w   responseWriter
	buf []*Member // candidates, reused

	id, route string  // the session id part and route, "" if none usable
	outcome   Outcome // how the member was chosen
	home      *Member // the session's own member, if in the pool
	member    *Member // the member to try next
	active    *Member // the member that answered, counted in flight
	tried     []*Member
	body      trackedBody
	err       error
	start     time.Time
}

func (a *attempt) begin(b *Balancer, s *settings, w http.ResponseWriter, r *http.Request) {
	a.b, a.s, a.in, a.start = b, s, r, s.opts.Now()
	a.w.ResponseWriter = w
}

func (a *attempt) reset() {
	buf, tried := a.buf[:0], a.tried[:0]
	clear(a.buf[:cap(a.buf)])
	clear(a.tried[:cap(a.tried)])
	*a = attempt{buf: buf, tried: tried}
}

func (a *attempt) checkLimits() error {
	if len(a.in.RequestURI) > a.s.opts.MaxURLBytes {
		return ErrURITooLong
	}
	if max := a.s.opts.MaxBodyBytes; max > 0 {
		if a.in.ContentLength > max {
			return ErrBodyTooLarge
		}
		a.in.Body = http.MaxBytesReader(&a.w, a.in.Body, max)
	}
	return nil
}

// session finds the request's session id and route: cookies first, then
// path parameters, then query parameters, in the order of StickyNames. A
// value that does not parse as "<id><sep><route>" is skipped. The first id
// whose route names a member wins; failing that, the first that parsed.
func (a *attempt) session() (id, rt string, home *Member) {
	names, sep, pool := a.s.opts.StickyNames, a.s.opts.Separator, a.b.pool
	found := false
	consider := func(v string) bool {
		i, r, ok := route.Split(v, sep)
		if !ok {
			return false
		}
		if m := pool.Lookup(r); m != nil {
			id, rt, home = i, r, m
			return true
		}
		if !found {
			id, rt, found = i, r, true
		}
		return false
	}
	for _, h := range a.in.Header["Cookie"] {
		for _, n := range names {
			for rest := h; ; {
				v, more, ok := route.Cookie(rest, n)
				if !ok {
					break
				}
				if consider(v) {
					return
				}
				rest = more
			}
		}
	}
	path := a.in.RequestURI
	if path == "" {
		path = a.in.URL.Path
	}
	for _, n := range names {
		if v, ok := route.PathParam(path, n); ok && consider(v) {
			return
		}
	}
	for _, n := range names {
		if v, ok := route.QueryParam(a.in.URL.RawQuery, n); ok && consider(v) {
			return
		}
	}
	return id, rt, nil
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
	m := a.s.picker.Pick(cands)
	m.newSessions.Add(1)
	return m, NewSession, nil
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

// canRetry reports whether a request that failed with err may be sent to
// another member: only if nothing was sent, or if it is idempotent and has
// no body; never a sticky request under nofailover.
func (a *attempt) canRetry(err error, notSent bool) bool {
	if len(a.tried) >= a.s.opts.MaxAttempts || a.in.Context().Err() != nil {
		return false
	}
	if a.s.opts.NoFailover && a.home != nil {
		return false
	}
	if notSent && !a.body.started {
		return true
	}
	return idempotent(a.in.Method) && a.body.empty()
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// trackedBody wraps the request body so that a retry can tell whether any
// of it was consumed, and so that the transport closing it after a failed
// attempt does not close the client's body.
type trackedBody struct {
	rc      io.ReadCloser
	started bool
}

func (t *trackedBody) Read(p []byte) (int, error) {
	t.started = true
	n, err := t.rc.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = ErrBodyTooLarge
	}
	return n, err
}

// Close does nothing: the server closes the client's body.
func (t *trackedBody) Close() error { return nil }

func (t *trackedBody) empty() bool { return t.rc == nil }

// responseWriter counts what is written to the client. It unwraps, so the
// proxy can flush and hijack (WebSocket) through it.
type responseWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
