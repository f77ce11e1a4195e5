// Package memstore is an in-process session.Store: a map of records with a
// janitor that expires them, bounded by session count and bytes, with an
// explicit policy when full.
//
// It keeps sessions in this process only: they are lost when it stops, and
// a balancer must keep each session on the node that created it (sticky
// sessions by route). For sessions that survive a node, use a replicated
// store (session/clusterstore).
package memstore

import (
	"container/heap"
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/session"
)

// Policy says what a full Store does with a write that needs more room.
type Policy uint8

const (
	// RefuseNew refuses the write with an error wrapping
	// session.ErrStoreFull: no new session is created and no session grows
	// until room is freed; the Manager answers 503. No live session is ever
	// dropped.
	RefuseNew Policy = iota
	// EvictLRU makes room by removing the least recently used sessions
	// (other than the one being written), reporting each to the
	// ExpiryNotifier with session.ReasonEvicted and counting it.
	EvictLRU
)

// Options configure a Store. The zero value of every field means the default
// stated on it.
type Options struct {
	// MaxSessions bounds the number of sessions. Zero means 100 000;
	// negative means no bound.
	MaxSessions int
	// MaxBytes bounds the approximate memory the sessions take: their ids,
	// routes, keys and values, plus Overhead bytes per session. Zero means
	// 256 MiB; negative means no bound.
	MaxBytes int64
	// Full is the policy when a bound is reached. Zero means RefuseNew.
	Full Policy
	// JanitorInterval is how often the janitor removes expired sessions.
	// Zero means 1 minute; negative means no janitor goroutine (call
	// Sweep). Expired sessions are never returned in between: Load, Save
	// and Touch check expiry themselves.
	JanitorInterval time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger logs janitor activity. Nil means no logging.
	Logger *slog.Logger
}

// Overhead is the fixed number of bytes counted per session in MaxBytes, for
// the map entry, list element and record around the data.
const Overhead = 256

func defaults() Options {
	return Options{
		MaxSessions:     100_000,                       // ~ a busy node's day
		MaxBytes:        256 << 20,                     // 256 MiB
		Full:            RefuseNew,                     // never drop a live session
		JanitorInterval: time.Minute,                   // expired sessions linger at most a minute
		Now:             time.Now,                      // the wall clock
		Logger:          slog.New(slog.DiscardHandler), // quiet unless asked
	}
}

// Validate reports mistakes in o.
func (o Options) Validate() error {
	if o.Full > EvictLRU {
		return fmt.Errorf("memstore: unknown Full policy %d", o.Full)
	}
	return nil
}

// Store is an in-memory session.Store. It implements session.ExpiryNotifier
// and session.StatsReporter. Close it to stop its janitor.
type Store struct {
	o Options

	mu       sync.Mutex
	sessions map[string]*entry
	lru      list.List  // of *entry, most recently used first
	expiry   expiryHeap // entries that can expire, soonest first
	bytes    int64

	notify                    atomic.Pointer[func(session.Record, session.Reason)]
	expired, evicted, refused atomic.Uint64

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// entry is one stored session.
type entry struct {
	rec     session.Record    // Values is never modified: Save replaces it
	keyVer  map[string]uint64 // version that last wrote each key, removed keys included
	size    int64
	elem    *list.Element
	heapIdx int // index in Store.expiry, -1 when it never expires
	expires time.Time
}

// notice is an expiry or eviction to report once the lock is released.
type notice struct {
	rec session.Record
	why session.Reason
}

// New returns a Store, with its janitor running unless JanitorInterval is
// negative.
func New(o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	d := defaults()
	if o.MaxSessions == 0 {
		o.MaxSessions = d.MaxSessions
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = d.MaxBytes
	}
	if o.JanitorInterval == 0 {
		o.JanitorInterval = d.JanitorInterval
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	s := &Store{o: o, sessions: make(map[string]*entry), stop: make(chan struct{}), done: make(chan struct{})}
	if o.JanitorInterval > 0 {
		go s.janitor(o.JanitorInterval)
	} else {
		close(s.done)
	}
	return s, nil
}

// Close stops the janitor. The Store keeps working without it.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

func (s *Store) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if n := s.Sweep(); n > 0 {
				s.o.Logger.Debug("memstore: expired sessions", "count", n)
			}
		}
	}
}

// NotifyExpiry registers fn for the sessions the Store removes on its own:
// expired (found by Sweep, Load, Save or Touch) or evicted.
func (s *Store) NotifyExpiry(fn func(session.Record, session.Reason)) {
	s.notify.Store(&fn)
}

// report calls the registered function for each notice, outside the lock.
func (s *Store) report(ns []notice) {
	for _, n := range ns {
		if n.why == session.ReasonEvicted {
			s.evicted.Add(1)
		} else {
			s.expired.Add(1)
		}
		if fn := s.notify.Load(); fn != nil {
			(*fn)(n.rec, n.why)
		}
	}
}

// Load returns the session id.
func (s *Store) Load(_ context.Context, id string) (session.Record, error) {
	s.mu.Lock()
	e, ns := s.live(id)
	if e == nil {
		s.mu.Unlock()
		s.report(ns)
		return session.Record{}, notFound(id)
	}
	s.lru.MoveToFront(e.elem)
	rec := e.rec
	s.mu.Unlock()
	return rec, nil
}

// Delete removes the session id, without reporting it.
func (s *Store) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sessions[id]
	if e == nil {
		return notFound(id)
	}
	s.remove(e)
	return nil
}

// Touch moves the session's last access to at, if later.
func (s *Store) Touch(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	e, ns := s.live(id)
	if e == nil {
		s.mu.Unlock()
		s.report(ns)
		return notFound(id)
	}
	if at.After(e.rec.LastAccess) {
		e.rec.LastAccess = at
		s.reschedule(e)
	}
	s.lru.MoveToFront(e.elem)
	s.mu.Unlock()
	return nil
}

// Sweep removes the expired sessions now, reports them, and returns how
// many there were. The janitor calls it; tests call it after moving their
// clock.
func (s *Store) Sweep() int {
	s.mu.Lock()
	ns := s.sweepLocked(s.o.Now())
	s.mu.Unlock()
	s.report(ns)
	return len(ns)
}

// Stats returns the Store's counts.
func (s *Store) Stats() session.StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := session.StoreStats{Sessions: len(s.sessions), Bytes: s.bytes}
	if s.o.MaxSessions > 0 {
		st.MaxSessions = s.o.MaxSessions
	}
	if s.o.MaxBytes > 0 {
		st.MaxBytes = s.o.MaxBytes
	}
	return st
}

// Counts are the Store's running totals since New.
type Counts struct {
	Expired uint64 // removed by idle timeout or lifetime
	Evicted uint64 // removed to make room (EvictLRU)
	Refused uint64 // writes refused for lack of room (RefuseNew, or too big)
}

// Counts returns the Store's running totals.
func (s *Store) Counts() Counts {
	return Counts{Expired: s.expired.Load(), Evicted: s.evicted.Load(), Refused: s.refused.Load()}
}

// live returns the unexpired entry of id, or nil and the notice of its
// expiry. s.mu is held.
func (s *Store) live(id string) (*entry, []notice) {
	e := s.sessions[id]
	if e == nil {
		return nil, nil
	}
	if why, ok := e.rec.Expired(s.o.Now()); ok {
		s.remove(e)
		return nil, []notice{{e.rec, why}}
	}
	return e, nil
}

// sweepLocked removes the sessions expired at now. s.mu is held.
func (s *Store) sweepLocked(now time.Time) []notice {
	var ns []notice
	for len(s.expiry) > 0 && !now.Before(s.expiry[0].expires) {
		e := s.expiry[0]
		why, _ := e.rec.Expired(now)
		s.remove(e)
		ns = append(ns, notice{e.rec, why})
	}
	return ns
}

// remove takes e out of every index. s.mu is held.
func (s *Store) remove(e *entry) {
	delete(s.sessions, e.rec.ID)
	s.lru.Remove(e.elem)
	if e.heapIdx >= 0 {
		heap.Remove(&s.expiry, e.heapIdx)
	}
	s.bytes -= e.size
}

// reschedule updates e's place in the expiry heap after its record changed.
// s.mu is held.
func (s *Store) reschedule(e *entry) {
	e.expires = e.rec.ExpiresAt()
	switch {
	case e.expires.IsZero() && e.heapIdx >= 0:
		heap.Remove(&s.expiry, e.heapIdx)
	case e.expires.IsZero():
	case e.heapIdx >= 0:
		heap.Fix(&s.expiry, e.heapIdx)
	default:
		heap.Push(&s.expiry, e)
	}
}

func notFound(id string) error {
	return fmt.Errorf("memstore: session %s: %w", session.ShortID(id), session.ErrNotFound)
}

// expiryHeap orders entries by expiry time, for container/heap.
type expiryHeap []*entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}
