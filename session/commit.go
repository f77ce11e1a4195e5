package session

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// commit saves the request's changes and adds the cookie headers to h. It
// runs once, before the first byte of the response. An error means nothing
// of this request's changes was saved and the response must say so.
func (s *Session) commit(h http.Header) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.committed {
		return nil
	}
	s.committed = true
	if !s.resolved {
		return nil // never used: no store access, cookie left alone
	}
	h.Add("Vary", "Cookie")
	if s.err != nil {
		return nil // the load failed; the handler got the error and answered
	}
	if err := s.reencode(); err != nil {
		return err
	}
	now := s.m.o.Now()
	switch {
	case s.id == "" || s.isNew && s.empty():
		if s.hadCookie {
			s.m.expireCookie(h, s.req) // stale, unknown or invalidated
		}
		return nil
	case s.isNew:
		return s.create(h, now)
	case s.renewed:
		return s.renew(h, now)
	}
	return s.update(h, now)
}

// reencode finds values changed in place since they were Put or read.
func (s *Session) reencode() error {
	for key, e := range s.entries {
		for i := range e.live {
			t := &e.live[i]
			b, err := s.m.o.Codec.Marshal(t.v)
			if err != nil {
				return fmt.Errorf("session: value %q, changed after Put or Get: %w: %w", key, ErrEncoding, err)
			}
			if bytes.Equal(b, t.enc) {
				continue
			}
			size, err := s.checkSize(key, b)
			if err != nil {
				return err
			}
			t.enc, e.cur, s.size = b, b, size
		}
	}
	return nil
}

// empty reports whether the session holds no value as this request sees it.
func (s *Session) empty() bool {
	for k := range s.rec.Values {
		if e := s.entries[k]; e == nil || e.cur != nil {
			return false
		}
	}
	for _, e := range s.entries {
		if e.cur != nil {
			return false
		}
	}
	return true
}

// create stores a session issued by this request.
func (s *Session) create(h http.Header, now time.Time) error {
	rec := s.m.newRecord(s.id, now)
	rec.Values = s.view().Values
	if err := s.insert(&rec); err != nil {
		return err
	}
	s.m.setCookie(h, s.req, s.m.canonical(s.id))
	s.m.obs.SessionCreated()
	if s.m.o.OnCreate != nil {
		s.m.o.OnCreate(rec)
	}
	return nil
}

// insert saves rec as a new session, drawing another id in the
// astronomically unlikely case that the first is taken.
func (s *Session) insert(rec *Record) error {
	ctx, cancel := s.m.storeCtx(s.base())
	defer cancel()
	for attempt := 0; ; attempt++ {
		res, err := s.m.o.Store.Save(ctx, Delta{
			ID: rec.ID, Set: rec.Values, LastAccess: rec.LastAccess,
			Route: rec.Route, Created: rec.Created, IdleTimeout: rec.IdleTimeout, Deadline: rec.Deadline,
		})
		if errors.Is(err, ErrExists) && attempt == 0 {
			if rec.ID, err = s.m.ids.generate(s.m.o.Rand); err != nil {
				return err
			}
			s.id = rec.ID
			continue
		}
		if err != nil {
			return s.m.storeErr(OpSave, rec.ID, err)
		}
		rec.Version = res.Version
		return nil
	}
}

// renew moves a stored session to the id RenewID drew: it stores the
// session under the new id, then deletes the old one.
func (s *Session) renew(h http.Header, now time.Time) error {
	rec := s.view()
	old := rec.ID
	rec.ID, rec.Route, rec.LastAccess = s.id, s.m.o.Route, now
	if err := s.insert(&rec); err != nil {
		return err
	}
	ctx, cancel := s.m.storeCtx(s.base())
	defer cancel()
	if err := s.m.o.Store.Delete(ctx, old); err != nil {
		// The old id must not outlive the renewal (that is its point), and
		// a session invalidated meanwhile must not survive under a new id.
		if derr := s.m.o.Store.Delete(ctx, rec.ID); derr != nil {
			s.m.o.Logger.Error("session: renewed id left behind", "err", derr)
		}
		if errors.Is(err, ErrNotFound) {
			s.m.expireCookie(h, s.req)
			return fmt.Errorf("session: RenewID: %w", ErrGone)
		}
		return s.m.storeErr(OpDelete, old, err)
	}
	s.m.setCookie(h, s.req, s.m.canonical(s.id))
	return nil
}

// update saves the changes to a stored session, or touches it, and rewrites
// the cookie when the presented id was not this node's.
func (s *Session) update(h http.Header, now time.Time) error {
	d := Delta{ID: s.id, BaseVersion: s.rec.Version, LastAccess: now}
	for k, e := range s.entries {
		orig, had := s.rec.Values[k]
		switch {
		case e.cur != nil && (e.put || !had || !bytes.Equal(e.cur, orig)):
			if d.Set == nil {
				d.Set = make(map[string][]byte, len(s.entries))
			}
			d.Set[k] = e.cur
		case e.cur == nil && had:
			d.Removed = append(d.Removed, k)
		}
	}
	ctx, cancel := s.m.storeCtx(s.base())
	defer cancel()
	if d.Set != nil || d.Removed != nil {
		res, err := s.m.o.Store.Save(ctx, d)
		if errors.Is(err, ErrNotFound) {
			s.m.expireCookie(h, s.req)
			return fmt.Errorf("session: save: %w", ErrGone)
		}
		if err != nil {
			return s.m.storeErr(OpSave, s.id, err)
		}
		if len(res.Conflicts) > 0 {
			s.m.obs.Conflict(len(res.Conflicts))
		}
	} else if t := s.m.o.TouchInterval; t < 0 || now.Sub(s.rec.LastAccess) >= t {
		err := s.m.o.Store.Touch(ctx, s.id, now)
		if errors.Is(err, ErrNotFound) {
			// Ended meanwhile; nothing of this request is lost.
			s.m.expireCookie(h, s.req)
			return nil
		}
		if err != nil {
			// A lost touch only shortens the session's idle life.
			s.m.obs.StoreError(OpTouch, err)
			s.m.o.Logger.Warn("session: touch failed", "err", err)
		}
	}
	if !s.m.isCanonical(s.presented, s.id) {
		s.m.setCookie(h, s.req, s.m.canonical(s.id)) // taken over, or the route suffix was stale
	}
	return nil
}
