package session

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
)

// updateAttempts bounds how often Update runs fn when other requests keep
// changing the key between its read and its write.
const updateAttempts = 8

// Update replaces the value under key with what fn returns, atomically,
// and saves it at once, before the request's other changes: fn gets the
// value as the store holds it now (T's zero value and false when absent),
// and the write fails if another request changed the key in between, in
// which case Update reads again and calls fn again (holding the session's
// lock on this node, so that only another node's write can still come in
// between), up to 8 times in all (fn must be free of side effects). It returns the value stored. An error
// from fn is returned as is, and nothing is stored.
//
// Update is for requests in the Optimistic access mode (they do not wait
// for each other, so two of them may change one value at once); in the
// default Exclusive mode nothing else writes the session meanwhile, and
// Update succeeds at once. A request without a stored session gets one
// created by its commit, as with Put. A key this request has already
// changed is updated in the request's own view, saved at its commit.
//
// Errors: fn's; ErrConflict when other requests won every attempt; ErrGone
// when the session ended; ErrReadOnly, ErrCommitted, ErrEncoding,
// ErrTooLarge and store failures as Put and the commit report them.
func Update[T any](s *Session, key string, fn func(old T, ok bool) (T, error)) (T, error) {
	var zero T
	if key == "" {
		return zero, errors.New("session: Update: empty key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("Update", key); err != nil {
		return zero, err
	}
	for attempt := 1; ; attempt++ {
		// The request's own view when it changed key or the session is not
		// stored yet (nobody else sees it before the commit saves it); else
		// the store's value, saved at once.
		e := s.entries[key]
		local := s.rec.ID == "" || s.renewed || e != nil && e.written
		cur := s.rec.Values[key]
		if local {
			cur = s.current(key)
		}
		old, ok, err := decode[T](s, cur)
		if err != nil {
			return zero, fmt.Errorf("session: Update %q as %T: %w", key, zero, err)
		}
		v, err := fn(old, ok)
		if err != nil {
			return zero, err
		}
		b, err := s.m.o.Codec.Marshal(v)
		if err != nil {
			return zero, fmt.Errorf("session: Update %q: %w: %w", key, ErrEncoding, err)
		}
		if local {
			if err := s.put(key, v, b); err != nil {
				return zero, err
			}
			return v, nil
		}
		err = s.saveNow(key, v, b)
		switch {
		case err == nil:
			return v, nil
		case errors.Is(err, ErrEncoding), errors.Is(err, ErrTooLarge):
			return zero, err // the value's fault, as with Put
		case !errors.Is(err, ErrConflict) || attempt == updateAttempts:
			return zero, s.refuse(err)
		}
		if !s.lease.held() && s.access == accessOptimistic {
			// Another write on this node came between the read and the
			// write: read again and write while holding the session's lock,
			// so that none can come between them this time.
			le, _, err := s.m.acquire(s.req.Context(), s.rec.ID)
			if err != nil {
				return zero, s.refuse(fmt.Errorf("session: Update %q: %w", key, err))
			}
			s.lease = le
			defer s.unlock()
		}
		if err := s.reload(); err != nil {
			return zero, s.refuse(err)
		}
	}
}

// decode decodes b as a T; ok is false when b is nil (absent).
func decode[T any](s *Session, b []byte) (v T, ok bool, err error) {
	if b == nil {
		return v, false, nil
	}
	if err := s.m.o.Codec.Unmarshal(b, &v); err != nil {
		return v, false, fmt.Errorf("%w: %w", ErrEncoding, err)
	}
	return v, true, nil
}

// saveNow saves key = b to the stored session at once, on the condition
// that the store still holds the value the request sees, and makes it the
// request's view of key.
func (s *Session) saveNow(key string, v any, b []byte) error {
	size, err := s.checkSize(key, b)
	if err != nil {
		return err
	}
	old := s.rec.Values[key]
	unlock, err := s.lockBriefly()
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := s.m.storeCtx(s.base())
	defer cancel()
	res, err := s.m.o.Store.Save(ctx, Delta{ID: s.rec.ID, BaseVersion: s.rec.Version,
		Set: map[string][]byte{key: b}, Read: []KeyValue{{key, old}}, LastAccess: s.m.o.Now()})
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("session: Update %q: %w", key, ErrGone)
	case errors.Is(err, ErrConflict):
		return fmt.Errorf("session: Update %q: %w", key, err)
	case err != nil:
		return s.m.storeErr(OpSave, s.rec.ID, err)
	}
	s.rec.Version = res.Version
	s.rec.Values = maps.Clone(s.rec.Values)
	s.rec.Values[key] = b
	e := s.entry(key)
	e.orig, e.cur, e.put, e.read, e.live = b, b, false, false, nil
	if trackable(reflect.TypeOf(v)) {
		e.live = []tracked{{v: v, enc: b}}
	}
	s.size = size
	return nil
}

// reload reads the stored session again after a conflict. Keys the request
// used keep the values it saw (its commit checks those it read).
func (s *Session) reload() error {
	ctx, cancel := s.m.storeCtx(s.base())
	defer cancel()
	rec, err := s.m.o.Store.Load(ctx, s.rec.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("session: %w", ErrGone)
	case err != nil:
		return s.m.storeErr(OpLoad, s.rec.ID, err)
	}
	for _, k := range s.reads {
		s.entry(k) // keeps what the request read of the old copy, for the commit's check
	}
	s.rec = rec
	s.size = 0
	for k, b := range s.view().Values {
		s.size += len(k) + len(b)
	}
	return nil
}
