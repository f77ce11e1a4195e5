package session

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tetherlb/tether/route"
)

// resolve looks up, once, the session the request presents. A store failure
// is kept and returned by every later call; any other unusable id leaves the
// request without a session.
func (s *Session) resolve() error {
	if s.resolved {
		return s.err
	}
	s.resolved = true
	var p presented
	p.addCookies(s.req, s.m.o.Cookie.Name)
	s.hadCookie = p.n > 0
	if s.urlID != "" {
		p.add(s.urlID, false)
	}
	for i, v := range p.ids[:p.n] {
		id, rt, ok := route.Split(v, s.m.o.Separator)
		if !ok || !s.m.ids.valid(id) {
			s.m.obs.IDRejected(RejectMalformed)
			continue
		}
		if err := s.lock(id); err != nil {
			s.err = err
			return s.err
		}
		rec, ok, err := s.m.lookup(s.base(), id, rt)
		if err == nil && ok {
			err = s.confirmEarly(rec)
		}
		if err != nil && s.useStale() {
			rec, ok, err = s.m.loadStale(s.base(), id)
			s.stale = ok
		}
		if err != nil {
			s.err = err
			return err
		}
		if !ok {
			s.unlock()
		}
		if ok {
			s.rec, s.id, s.presented, s.fromCookie = rec, rec.ID, v, p.fromCookie[i]
			for k, b := range rec.Values {
				s.size += len(k) + len(b)
			}
			return nil
		}
	}
	return nil
}

// lookup returns the live session with well-formed id part id that a
// request presented with route rt, taking it over from another node if the
// store can. ok is false, with a nil error, when it is unusable: unknown,
// expired, or foreign to a store that cannot claim. The error is a store
// failure.
func (m *Manager) lookup(parent context.Context, id, rt string) (rec Record, ok bool, err error) {
	if rt != m.o.Route && m.claimer == nil {
		m.obs.IDRejected(RejectForeign)
		return Record{}, false, nil
	}
	ctx, cancel := m.storeCtx(parent)
	defer cancel()
	rec, err = m.o.Store.Load(ctx, id)
	if errors.Is(err, ErrNotFound) {
		m.obs.IDRejected(RejectUnknown)
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, m.storeErr(OpLoad, id, err)
	}
	if rec.Route != m.o.Route {
		if m.claimer == nil {
			m.obs.IDRejected(RejectForeign)
			return Record{}, false, nil
		}
		rec, err = m.claimer.Claim(ctx, id, m.o.Route)
		if errors.Is(err, ErrNotFound) {
			m.obs.IDRejected(RejectUnknown)
			return Record{}, false, nil
		}
		if err != nil {
			return Record{}, false, m.storeErr(OpClaim, id, err)
		}
		m.obs.SessionClaimed()
	}
	if why, expired := rec.Expired(m.o.Now()); expired {
		// The store's clock is behind ours, or its janitor has not run:
		// end the session here. Of the Delete and the store's own expiry,
		// exactly one succeeds and reports it.
		switch err := m.o.Store.Delete(ctx, id); {
		case err == nil:
			m.destroyed(rec, why)
		case !errors.Is(err, ErrNotFound):
			m.obs.StoreError(OpDelete, err)
		}
		m.obs.IDRejected(RejectExpired)
		return Record{}, false, nil
	}
	return rec, true, nil
}

// useStale reports whether the request may be served from the node's last
// known copy of its session when the store cannot give a confirmed one:
// Options.StaleReads, a store that keeps copies, a read-only request.
func (s *Session) useStale() bool {
	return s.m.stale != nil && s.access == accessReadOnly
}

// confirmEarly confirms, for a read-only request that may be served a
// stale copy, the session just loaded, before the handler reads it: the
// handler then knows (Session.Stale) whether what it shows is current.
// Nothing changes the session in between (the request cannot write), so
// this confirms what the commit otherwise would.
func (s *Session) confirmEarly(rec Record) error {
	if !s.useStale() || s.m.confirm == nil {
		return nil
	}
	ctx, cancel := s.m.storeCtx(s.base())
	defer cancel()
	if err := s.m.confirm.Confirm(ctx, rec); err != nil {
		return s.m.storeErr(OpLoad, rec.ID, err)
	}
	s.confirmed = true
	return nil
}

// loadStale returns this node's last known copy of session id (see
// StaleLoader); ok is false, with a nil error, when it has none or it has
// expired.
func (m *Manager) loadStale(parent context.Context, id string) (rec Record, ok bool, err error) {
	ctx, cancel := m.storeCtx(parent)
	defer cancel()
	rec, err = m.stale.LoadStale(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, m.storeErr(OpLoad, id, err)
	}
	if _, expired := rec.Expired(m.o.Now()); expired {
		return Record{}, false, nil
	}
	m.obs.StaleRead()
	return rec, true, nil
}

// takePathParam moves a ";<PathParam>=<id>" path parameter from r's URL
// into s, and returns r with it removed, so that routers see the plain
// path, as servlet containers do.
func (s *Session) takePathParam(r *http.Request) *http.Request {
	name := s.m.o.PathParam
	v, ok := route.PathParam(r.URL.Path, name)
	if !ok {
		return r
	}
	s.urlID = v
	u := *r.URL
	u.Path = stripPathParam(u.Path, name)
	if u.RawPath != "" {
		u.RawPath = stripPathParam(u.RawPath, name)
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u
	return r2
}

// stripPathParam removes every ";name=value" path parameter from p, where
// value ends at the next '/', ';', '?' or '#' as route.PathParam has it.
func stripPathParam(p, name string) string {
	for i := 0; i < len(p); i++ {
		if p[i] != ';' || !strings.HasPrefix(p[i+1:], name) || len(p) <= i+1+len(name) || p[i+1+len(name)] != '=' {
			continue
		}
		j := i + 1 + len(name) + 1
		for j < len(p) && strings.IndexByte("/;?#", p[j]) < 0 {
			j++
		}
		p = p[:i] + p[j:]
		i--
	}
	return p
}
