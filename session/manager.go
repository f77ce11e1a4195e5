package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tetherlb/tether/route"
)

// Manager issues, loads and commits sessions for one application on one
// node. It is safe for concurrent use; create one per application with New
// and wrap the application's handler with Handler.
type Manager struct {
	o       Options // with defaults
	ids     idFormat
	obs     Observer
	claimer Claimer     // nil when the store cannot take sessions over
	confirm Confirmer   // nil when the store's reads need no confirmation
	locker  Locker      // nil when the store has no shared lock (locker.go)
	stale   StaleLoader // nil unless Options.StaleReads and the store keeps copies
	store   Store       // Options.Store itself; o.Store may wrap it (storetime.go)
	locks   *locks      // one lock per session in use by an Exclusive request
}

// New returns a Manager for o, or the errors of o.Validate. If o.Store is an
// ExpiryNotifier, New registers the Manager with it, so a Store serves one
// Manager.
func New(o Options) (*Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	m := &Manager{o: o, ids: newIDFormat(o.Separator, o.IDBytes), obs: o.Observer, locks: newLocks()}
	if m.obs == nil {
		m.obs = NopObserver{}
	}
	m.store = o.Store
	m.claimer, _ = o.Store.(Claimer)
	m.confirm, _ = o.Store.(Confirmer)
	m.locker, _ = o.Store.(Locker)
	if o.StaleReads {
		m.stale, _ = o.Store.(StaleLoader)
	}
	if n, ok := o.Store.(ExpiryNotifier); ok {
		n.NotifyExpiry(m.destroyed)
	}
	m.timeStore()
	return m, nil
}

// Route returns the node's route, the suffix of the ids it issues.
func (m *Manager) Route() string { return m.o.Route }

// CookieName returns the session cookie's name.
func (m *Manager) CookieName() string { return m.o.Cookie.Name }

// Ready returns nil when the Manager can serve sessions: the store's
// readiness if it is a Readier, else always nil. Use it in health checks.
func (m *Manager) Ready() error {
	if r, ok := m.store.(Readier); ok {
		return r.Ready()
	}
	return nil
}

// Stats returns the store's counts, and false if the store does not report
// them (it is not a StatsReporter).
func (m *Manager) Stats() (StoreStats, bool) {
	if r, ok := m.store.(StatsReporter); ok {
		return r.Stats(), true
	}
	return StoreStats{}, false
}

type ctxKey struct{}

// Handler returns a handler that gives next's requests a Session, reached
// with From or FromContext, and commits it before the first byte of the
// response: on the first WriteHeader (other than 1xx), Write, Flush or
// Hijack, or when next returns without writing. Nothing is read from the
// store until next uses the Session; a request that never does costs no
// store access and its cookie is left alone.
//
// Requests on one session run one after another on this node, from their
// first use of the Session to their commit (Options.LockWait, LockHold);
// wrap handlers in ReadOnly or Optimistic to change that.
//
// If the commit fails (the store is full or failing, the session ended
// under the request), the response next was about to write is replaced by
// Options.ErrorHandler's, and next's later writes fail with the error: the
// client learns that its change was not saved. A handler that panics before
// writing commits nothing.
func (m *Manager) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &Session{m: m, req: r}
		if m.o.URLRewriting {
			r = s.takePathParam(r)
		}
		s.req = r
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, s))
		cw := &s.w // one allocation for both
		*cw = writer{ResponseWriter: w, s: s, r: r}
		defer s.release() // a handler that panics releases the session too
		next.ServeHTTP(cw, r)
		cw.begin()
	})
}

// From returns the Session of r. It panics if r did not go through a
// Manager's Handler: that is a wiring mistake, not a runtime condition.
// With nested Handlers it returns the innermost one's Session.
func From(r *http.Request) *Session {
	s, ok := FromContext(r.Context())
	if !ok {
		panic("session: From: the request did not go through a session.Manager's Handler")
	}
	return s
}

// FromContext returns the Session in ctx, if any.
func FromContext(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(ctxKey{}).(*Session)
	return s, ok
}

// Logout ends the request's session and redirects to url with 303 See Other:
// the session is deleted from the store, the response expires the cookie
// (same Name, Path and Domain) and creates no session, so the browser's next
// request carries no session id and the balancer is free to send it to any
// node. If the store fails, the response is Options.ErrorHandler's.
func (m *Manager) Logout(w http.ResponseWriter, r *http.Request, url string) {
	if s, ok := FromContext(r.Context()); ok && s.m == m {
		if err := s.Invalidate(); err != nil {
			m.fail(w, r, err)
			return
		}
	} else {
		var p presented // outside the Handler: still clear the cookie
		if p.addCookies(r, m.o.Cookie.Name); p.n > 0 {
			m.expireCookie(w.Header(), r)
		}
	}
	http.Redirect(w, r, url, http.StatusSeeOther)
}

// fail writes the error response for err in place of the handler's.
func (m *Manager) fail(w http.ResponseWriter, r *http.Request, err error) {
	m.o.Logger.Warn("session not committed",
		"path", route.RedactTarget(r.URL.Path, []string{m.o.Cookie.Name, "jsessionid"}), "err", err)
	h := w.Header()
	for _, k := range [...]string{"Content-Type", "Content-Length", "Content-Encoding",
		"Content-Disposition", "Content-Range", "Etag", "Last-Modified", "Location"} {
		h.Del(k)
	}
	if m.o.ErrorHandler != nil {
		m.o.ErrorHandler(w, r, err)
		return
	}
	code := StatusCode(err)
	if code == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	h.Set("Cache-Control", "no-store")
	http.Error(w, message(err), code)
}

// destroyed reports the end of a session to the observer and OnDestroy.
func (m *Manager) destroyed(rec Record, why Reason) {
	m.obs.SessionDestroyed(why)
	if m.o.OnDestroy != nil {
		m.o.OnDestroy(rec, why)
	}
}

// storeErr reports a store failure and wraps it in ErrStore.
func (m *Manager) storeErr(op Op, id string, err error) error {
	m.obs.StoreError(op, err)
	if errors.Is(err, ErrStoreFull) {
		return fmt.Errorf("session: %s: %w", op, err)
	}
	return fmt.Errorf("session: %s: %w: %w", op, ErrStore, err)
}

// canonical returns the full session id of id part id on this node.
func (m *Manager) canonical(id string) string {
	return route.Join(id, m.o.Route, m.o.Separator)
}

// isCanonical reports whether v is canonical(id), without building it.
func (m *Manager) isCanonical(v, id string) bool {
	r := m.o.Route
	return len(v) == len(id)+1+len(r) && v[:len(id)] == id && v[len(id)] == m.o.Separator && v[len(id)+1:] == r
}

// newRecord returns the record of a session created at now.
func (m *Manager) newRecord(id string, now time.Time) Record {
	rec := Record{ID: id, Route: m.o.Route, Created: now, LastAccess: now}
	if m.o.IdleTimeout > 0 {
		rec.IdleTimeout = m.o.IdleTimeout
	}
	if m.o.MaxLifetime > 0 {
		rec.Deadline = now.Add(m.o.MaxLifetime)
	}
	return rec
}

// storeCtx returns the context of one store call from parent (a request's
// context without its cancellation): bounded by StoreTimeout if set.
func (m *Manager) storeCtx(parent context.Context) (context.Context, context.CancelFunc) {
	if m.o.StoreTimeout > 0 {
		return context.WithTimeout(parent, m.o.StoreTimeout)
	}
	return parent, func() {}
}
