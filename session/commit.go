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
	defer s.unlock() // once saved, the next request on the session may start
	if !s.resolved {
		return nil // never used: no store access, cookie left alone
	}
	h.Add("Vary", "Cookie")
	if s.failed != nil {
		// A change was refused, or a write may or may not have been
		// applied: whatever the handler answers, the answer must not say
		// that it was saved, nor that it was not.
		return s.failed
	}
	if s.err != nil {
		return nil // the load failed; the handler got the error and answered
	}
	if s.stale {
		h.Set("Tether-Stale", "1") // served from a copy this node could not confirm; nothing to save
		return nil
	}
	if s.access != accessReadOnly { // read-only: values changed in place are not saved
		if err := s.reencode(); err != nil {
			return err
		}
	}
	if s.lease.held() && !s.lease.valid() {
		return fmt.Errorf("session: lost its lock (held longer than LockHold, %v, or the store's lease ran out): %w", s.m.o.LockHold, ErrConflict)
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
	d := s.delta(now)
	if d.Set == nil && d.Removed == nil {
		if err := s.confirm(); err != nil {
			return err
		}
		return s.touch(h, now)
	}
	unlock, err := s.lockBriefly()
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := s.m.storeCtx(s.base())
	defer cancel()
	res, err := s.m.o.Store.Save(ctx, d)
	if err != nil {
		return s.saveErr(h, err)
	}
	if len(res.Conflicts) > 0 {
		s.m.obs.Conflict(len(res.Conflicts))
	}
	s.fixCookie(h)
	return nil
}

// delta returns the request's changes to its stored session, with what it
// read of it.
func (s *Session) delta(now time.Time) Delta {
	d := Delta{ID: s.id, BaseVersion: s.rec.Version, LastAccess: now, ReadAll: s.readAll}
	for k, e := range s.entries {
		switch {
		case e.cur != nil && (e.put || e.orig == nil || !bytes.Equal(e.cur, e.orig)):
			if d.Set == nil {
				d.Set = make(map[string][]byte, len(s.entries))
			}
			d.Set[k] = e.cur
		case e.cur == nil && e.orig != nil:
			d.Removed = append(d.Removed, k)
		}
		if e.read {
			d.Read = s.appendRead(d.Read, k, e.orig)
		}
	}
	for _, k := range s.reads {
		if s.entries[k] == nil {
			d.Read = s.appendRead(d.Read, k, s.rec.Values[k])
		}
	}
	return d
}

// appendRead appends key's read value to r, starting in the Session's
// buffer.
func (s *Session) appendRead(r []KeyValue, key string, v []byte) []KeyValue {
	if r == nil {
		r = s.readKV[:0]
	}
	return append(r, KeyValue{Key: key, Value: v})
}

// confirm asks a Confirmer store whether the session the request read and
// did not change is still current, before the answer says what it held.
func (s *Session) confirm() error {
	if s.m.confirm == nil || s.rec.ID == "" || s.confirmed || s.stale {
		return nil
	}
	ctx, cancel := s.m.storeCtx(s.base())
	defer cancel()
	err := s.m.confirm.Confirm(ctx, s.rec)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("session: %w", ErrGone)
	}
	if err != nil {
		return s.m.storeErr(OpLoad, s.rec.ID, err)
	}
	return nil
}

// saveErr maps a failed Save of the request's session onto the Manager's
// errors, expiring the cookie of a session that ended.
func (s *Session) saveErr(h http.Header, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		s.m.expireCookie(h, s.req)
		return fmt.Errorf("session: save: %w", ErrGone)
	case errors.Is(err, ErrConflict):
		s.m.obs.StoreError(OpSave, err)
		return fmt.Errorf("session: save: %w", err)
	}
	return s.m.storeErr(OpSave, s.id, err)
}

// touch records the request's use of its stored session, at most once per
// TouchInterval, and rewrites the cookie when the presented id was not this
// node's.
func (s *Session) touch(h http.Header, now time.Time) error {
	if s.rec.ID == "" {
		return nil
	}
	if t := s.m.o.TouchInterval; t < 0 || now.Sub(s.rec.LastAccess) >= t {
		ctx, cancel := s.m.storeCtx(s.base())
		err := s.m.o.Store.Touch(ctx, s.rec.ID, now)
		cancel()
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
	s.fixCookie(h)
	return nil
}

// fixCookie rewrites the cookie when the presented id was not this node's:
// the session was taken over, or the route suffix was stale.
func (s *Session) fixCookie(h http.Header) {
	if !s.m.isCanonical(s.presented, s.id) {
		s.m.setCookie(h, s.req, s.m.canonical(s.id))
	}
}
