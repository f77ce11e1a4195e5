package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
)

// Session is one request's view of its session. Get it with From or
// FromContext inside a Manager's Handler. It is safe for concurrent use by
// the request's goroutines, and valid only during the request.
//
// A request has no session until it stores something: reading creates
// nothing. The first access loads the session the request presents, if it is
// valid (well-formed, known, not expired, owned by this node or claimable);
// any other presented id is ignored, and its cookie expired in the response.
type Session struct {
	m   *Manager
	req *http.Request
	mu  sync.Mutex

	urlID    string // id from the ;jsessionid= path parameter, if any
	resolved bool   // the presented id has been looked up
	err      error  // the store failed during resolution (sticky)

	hadCookie  bool   // the request carried a session cookie
	presented  string // the presented id that resolved to rec
	fromCookie bool   // presented came from a cookie

	rec     Record // the stored session; rec.ID == "" when none
	id      string // current id part; "" when the request has no session
	isNew   bool   // id was issued by this request and is not stored yet
	renewed bool   // RenewID moved a stored session to id (from rec.ID)

	entries   map[string]*entry // keys this request used
	size      int               // encoded size of keys and values as this request sees them
	reads     []string          // keys read as stored, without an entry (see entry.read)
	readBuf   [2]string         // reads' first backing array
	readKV    [1]KeyValue       // Delta.Read's first backing array
	readAll   bool              // Keys was called: the outcome depends on the whole session
	failed    error             // a change failed (the session could not be loaded, or a store write's outcome is unknown): the answer must be an error
	committed bool

	access    access // how the request uses the session (ReadOnly, Optimistic wrappers)
	confirmed bool   // a read-only request's copy was confirmed as it was loaded (StaleReads)
	stale     bool   // rec is the node's last known copy, not confirmed (StaleReads)
	lease     lease  // the session's lock, held from the first access to the commit (Exclusive)

	w    writer          // the request's ResponseWriter, allocated with the Session
	sctx context.Context // the request's context without its cancellation, made once
}

// base returns the context of the session's store calls: the request's
// values, not its cancellation, so that a client hanging up does not abort
// a commit half-way.
func (s *Session) base() context.Context {
	if s.sctx == nil {
		s.sctx = context.WithoutCancel(s.req.Context())
	}
	return s.sctx
}

// entry is one key as a request uses it.
type entry struct {
	orig    []byte    // the stored encoding when the request first used the key; nil when absent
	cur     []byte    // current encoding; nil when absent
	put     bool      // explicitly Put: saved even if cur equals the stored bytes
	written bool      // Put or Removed by this request
	read    bool      // read as stored (before any write): the commit checks it is still orig
	live    []tracked // values handed out or given, re-encoded at commit
}

// tracked is a value whose in-place changes the commit detects.
type tracked struct {
	v       any    // what Put got, or a *T that Get decoded into
	enc     []byte // its encoding when last seen
	decoded bool   // v is a *T from Get, not a value from Put
}

// ID returns the session id, "<id><sep><route>", or "" when the request has
// no session. A session created by this request has its id before it is
// stored.
func (s *Session) ID() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.resolve(); err != nil {
		return "", err
	}
	if s.id == "" {
		return "", nil
	}
	return s.m.canonical(s.id), nil
}

// Stale reports whether the request's session is this node's last known
// copy, which the store could not confirm as current (Options.StaleReads,
// read-only requests only): what it shows may be behind, and the response
// carries "Tether-Stale: 1". An error is a store failure, as for ID.
func (s *Session) Stale() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.resolve(); err != nil {
		return false, err
	}
	return s.stale, nil
}

// Keys returns the keys the session holds, sorted.
func (s *Session) Keys() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.resolve(); err != nil {
		return nil, err
	}
	s.readAll = true
	var keys []string
	for k := range s.rec.Values {
		if s.entries[k] == nil {
			keys = append(keys, k)
		}
	}
	for k, e := range s.entries {
		if e.cur != nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Put stores v under key, creating the session if the request has none.
// It encodes v at once and fails, storing nothing, if v cannot be encoded
// (ErrEncoding) or is too large (ErrTooLarge), or after the response has
// started (ErrCommitted). Changes v undergoes before the commit are saved
// too: the commit re-encodes it.
func (s *Session) Put(key string, v any) error {
	if key == "" {
		return errors.New("session: Put: empty key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("Put", key); err != nil {
		return err
	}
	b, err := s.m.o.Codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("session: Put %q: %w: %w", key, ErrEncoding, err)
	}
	return s.put(key, v, b)
}

// writable checks that the request may change its session now (op on key,
// "" for the whole session), and resolves it.
func (s *Session) writable(op, key string) error {
	var why error
	switch {
	case s.committed:
		why = ErrCommitted
	case s.access == accessReadOnly:
		why = ErrReadOnly
	}
	if why != nil {
		if key != "" {
			op += " " + strconv.Quote(key)
		}
		return fmt.Errorf("session: %s: %w", op, why)
	}
	if err := s.resolve(); err != nil {
		return s.refuse(err)
	}
	return nil
}

// refuse records that a change of the request's could not be made, or
// may or may not have been, so that its answer is an error whatever the
// handler writes (the commit returns it), and returns err.
func (s *Session) refuse(err error) error {
	if s.failed == nil {
		s.failed = err
	}
	return err
}

// put sets key to v, encoded as b, creating the session if the request has
// none.
func (s *Session) put(key string, v any, b []byte) error {
	size, err := s.checkSize(key, b)
	if err != nil {
		return err
	}
	if s.id == "" {
		if s.id, err = s.m.ids.generate(s.m.o.Rand); err != nil {
			return err
		}
		s.isNew = true
	}
	e := s.entry(key)
	e.cur, e.put, e.written, e.live = b, true, true, nil
	if trackable(reflect.TypeOf(v)) {
		e.live = []tracked{{v: v, enc: b}}
	}
	s.size = size
	return nil
}

// Remove deletes key from the session, if the session held it when this
// request saw it last: a key another request added meanwhile stays. It
// fails after the response has started (ErrCommitted).
func (s *Session) Remove(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("Remove", key); err != nil {
		return err
	}
	e := s.entry(key)
	if !e.written {
		e.read = true // removed only if still held: the outcome depends on it
	}
	if e.cur == nil {
		return nil
	}
	s.size -= len(key) + len(e.cur)
	e.cur, e.put, e.written, e.live = nil, false, true, nil
	return nil
}

// Get returns the value under key decoded as T, or T's zero value when the
// session does not hold key. See Lookup.
func Get[T any](s *Session, key string) (T, error) {
	v, _, err := Lookup[T](s, key)
	return v, err
}

// Lookup returns the value under key decoded as T, and whether the session
// holds key. It fails with ErrEncoding if the stored bytes do not decode as
// T.
//
// Within a request, reading a key again as the same T returns the same value
// (for maps, slices and pointers: the same object), and the value Put stored
// is returned as is when it is a T. Changes made in place to such a value —
// an element appended through a pointer, a map entry set — are found at
// commit, by re-encoding it, and saved as if Put again.
func Lookup[T any](s *Session, key string) (T, bool, error) {
	var zero T
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.resolve(); err != nil {
		return zero, false, err
	}
	if e := s.entries[key]; e != nil {
		for i := len(e.live) - 1; i >= 0; i-- {
			t := e.live[i]
			if p, ok := t.v.(*T); ok && t.decoded {
				return *p, true, nil
			}
			if v, ok := t.v.(T); ok && !t.decoded {
				return v, true, nil
			}
		}
	}
	if !s.committed && s.id != "" && !s.isNew {
		s.markRead(key) // the commit checks that the stored value is still this
	}
	b := s.current(key)
	if b == nil {
		return zero, false, nil
	}
	p := new(T)
	if err := s.m.o.Codec.Unmarshal(b, p); err != nil {
		return zero, false, fmt.Errorf("session: Get %q as %T: %w: %w", key, zero, ErrEncoding, err)
	}
	if !s.committed && trackable(reflect.TypeFor[T]()) {
		e := s.entry(key)
		e.live = append(e.live, tracked{v: p, enc: b, decoded: true})
		if s.id != "" && !s.isNew && !e.written {
			e.read = true
		}
	}
	return *p, true, nil
}

// Invalidate ends the session now: it is deleted from the store, the
// destroyed listeners fire, and the response expires the cookie with the
// Name, Path and Domain it was set with. The request then has no session;
// one is created in this response only if the handler stores something
// afterwards (and gets a new id). Invalidate on a request without a session
// only expires a presented cookie. It fails if the store does, leaving the
// session as it was, or after the response has started (ErrCommitted).
func (s *Session) Invalidate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("Invalidate", ""); err != nil {
		return err
	}
	if s.rec.ID != "" {
		unlock, err := s.lockBriefly()
		if err != nil {
			return s.refuse(err)
		}
		ctx, cancel := s.m.storeCtx(s.base())
		err = s.m.o.Store.Delete(ctx, s.rec.ID)
		cancel()
		unlock()
		switch {
		case err == nil:
			s.m.destroyed(s.view(), ReasonInvalidated)
		case errors.Is(err, ErrNotFound):
			// Another request ended it first and reported it.
		default:
			return s.refuse(s.m.storeErr(OpDelete, s.rec.ID, err))
		}
	}
	s.rec, s.id, s.isNew, s.renewed = Record{}, "", false, false
	s.entries, s.size, s.readAll, s.reads = nil, 0, false, nil
	return nil
}

// RenewID gives the session a new id part, keeping its values, its route,
// its creation time and its absolute deadline. Call it when the user's
// privileges change (login) against session fixation: an id an attacker
// planted or saw before is worthless after. The old id is deleted at
// commit; concurrent requests still using it fail with ErrGone. Without a
// session it does nothing. It fails after the response has started
// (ErrCommitted).
func (s *Session) RenewID() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable("RenewID", ""); err != nil || s.id == "" {
		return err
	}
	if s.access == accessOptimistic && s.rec.ID != "" {
		// The renewal copies the session to the new id and deletes the
		// old one: a write another request commits in between would be
		// lost with the old id.
		return fmt.Errorf("session: RenewID: %w", ErrNeedsExclusive)
	}
	id, err := s.m.ids.generate(s.m.o.Rand)
	if err != nil {
		return err
	}
	s.id = id
	s.renewed = s.rec.ID != ""
	return nil
}

// markRead records that the request read key as stored, unless it wrote
// it first.
func (s *Session) markRead(key string) {
	if e := s.entries[key]; e != nil {
		if !e.written {
			e.read = true
		}
		return
	}
	if !slices.Contains(s.reads, key) {
		if s.reads == nil {
			s.reads = s.readBuf[:0]
		}
		s.reads = append(s.reads, key)
	}
}

// current returns the encoding of key as this request sees it, nil if
// absent.
func (s *Session) current(key string) []byte {
	if e := s.entries[key]; e != nil {
		return e.cur
	}
	return s.rec.Values[key]
}

// entry returns the entry of key, creating it from the stored value.
func (s *Session) entry(key string) *entry {
	e := s.entries[key]
	if e == nil {
		if s.entries == nil {
			s.entries = make(map[string]*entry, 4)
		}
		b := s.rec.Values[key]
		e = &entry{orig: b, cur: b, read: slices.Contains(s.reads, key)}
		s.entries[key] = e
	}
	return e
}

// checkSize returns the session's size with key set to b, or ErrTooLarge.
func (s *Session) checkSize(key string, b []byte) (int, error) {
	o := &s.m.o
	if o.MaxValueBytes > 0 && len(b) > o.MaxValueBytes {
		return 0, fmt.Errorf("session: value %q is %d bytes: %w (max %d)", key, len(b), ErrTooLarge, o.MaxValueBytes)
	}
	size := s.size + len(key) + len(b)
	if old := s.current(key); old != nil {
		size -= len(key) + len(old)
	}
	if o.MaxSessionBytes > 0 && size > o.MaxSessionBytes {
		return 0, fmt.Errorf("session: setting %q makes the session %d bytes: %w (max %d)", key, size, ErrTooLarge, o.MaxSessionBytes)
	}
	return size, nil
}

// view returns the session as this request sees it, as a Record.
func (s *Session) view() Record {
	rec := s.rec
	if len(s.entries) == 0 {
		return rec
	}
	rec.Values = make(map[string][]byte, len(s.rec.Values)+len(s.entries))
	for k, v := range s.rec.Values {
		rec.Values[k] = v
	}
	for k, e := range s.entries {
		if e.cur == nil {
			delete(rec.Values, k)
		} else {
			rec.Values[k] = e.cur
		}
	}
	return rec
}

// trackable reports whether a value of type t can be changed in place
// behind the session's back: not a bool, number or string.
func trackable(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return false
	}
	return true
}
