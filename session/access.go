package session

import (
	"fmt"
	"net/http"
)

// access is how a request uses its session.
type access uint8

const (
	// accessExclusive, the default: the request holds its session's lock
	// from its first access to its commit, so that requests on one session
	// run one after another on this node.
	accessExclusive access = iota
	// accessReadOnly: no lock, no writes.
	accessReadOnly
	// accessOptimistic: no lock; the commit fails with ErrConflict if what
	// the request read changed meanwhile.
	accessOptimistic
)

// ReadOnly returns a handler whose requests only read their session: they
// do not wait for other requests on the session (see Options.LockWait) and
// see its last committed state. Put, Remove, Update, Invalidate and RenewID
// fail with ErrReadOnly; values changed in place are not saved. The
// session's last access is still recorded. Wrap handlers that only show
// the session (a page, a GET of the cart) so that a slow write on the same
// session does not hold them up; wrap them inside the Manager's Handler,
// before anything reads the session:
//
//	mux.Handle("GET /api/cart", session.ReadOnly(http.HandlerFunc(getCart)))
//	http.ListenAndServe(addr, m.Handler(mux))
func ReadOnly(h http.Handler) http.Handler { return withAccess(accessReadOnly, h) }

// Optimistic returns a handler whose requests do not wait for other
// requests on their session: they run at once, and their commit checks
// that every value they read is still the stored one. If another request
// changed one meanwhile, nothing of this request is saved and the commit
// fails with ErrConflict (409), so a read-modify-write never overwrites a
// concurrent one. Use Update for the values such requests change, which
// retries on conflict instead of failing. RenewID fails with
// ErrNeedsExclusive. Wrap handlers inside the Manager's Handler, before
// anything reads the session.
func Optimistic(h http.Handler) http.Handler { return withAccess(accessOptimistic, h) }

func withAccess(a access, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := FromContext(r.Context()); ok {
			s.mu.Lock()
			s.access = a
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// lock takes the lock of session id part id for an Exclusive request,
// waiting at most Options.LockWait, and for as long as the request's
// client waits.
func (s *Session) lock(id string) error {
	if s.access != accessExclusive || s.lease.held() {
		return nil
	}
	le, waited, err := s.m.acquire(s.req.Context(), id)
	s.m.obs.LockWaited(waited, err)
	if err != nil {
		return err
	}
	s.lease = le
	return nil
}

// lockBriefly takes the lock of the stored session for one write of an
// Optimistic request, so that the write does not come between the load and
// the commit of an Exclusive request on this node (a RenewID moving the
// session to a new id would lose it). Call the returned function after the
// write. Exclusive requests hold the lock already; nothing to do.
func (s *Session) lockBriefly() (func(), error) {
	if s.access != accessOptimistic || s.lease.held() || s.rec.ID == "" {
		return func() {}, nil
	}
	le, _, err := s.m.acquire(s.req.Context(), s.rec.ID)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return le.release, nil
}

// unlock releases the session's lock, if the request holds it.
func (s *Session) unlock() {
	s.lease.release()
	s.lease = lease{}
}

// release ends the request's hold on its session's lock: at its commit, or
// at the latest when its handler returns or panics.
func (s *Session) release() {
	s.mu.Lock()
	s.unlock()
	s.mu.Unlock()
}
