package memstore

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tetherlb/tether/session"
)

// maxTombstones bounds how many removed keys a session remembers the
// version of, for conflict reports. Beyond it the oldest are forgotten: a
// later write to such a key still wins as the rules say, but its conflict
// with the removal may go unreported.
const maxTombstones = 32

// Save applies d as session.Store specifies: it creates the session when
// d.BaseVersion is 0, else checks what d read and merges d key by key.
func (s *Store) Save(_ context.Context, d session.Delta) (session.SaveResult, error) {
	if err := session.CheckDelta(d); err != nil {
		return session.SaveResult{}, fmt.Errorf("memstore: %w", err)
	}
	s.mu.Lock()
	var (
		res session.SaveResult
		ns  []notice
		err error
	)
	if d.BaseVersion == 0 {
		ns, err = s.create(d)
		res.Version = 1
	} else {
		res, ns, err = s.update(d)
	}
	s.mu.Unlock()
	s.report(ns)
	if err != nil {
		return session.SaveResult{}, err
	}
	return res, nil
}

// create stores a new session. s.mu is held.
func (s *Store) create(d session.Delta) ([]notice, error) {
	old, ns := s.live(d.ID)
	if old != nil {
		return ns, fmt.Errorf("memstore: create: %w", session.ErrExists)
	}
	e := &entry{
		rec: session.Record{
			ID: d.ID, Route: d.Route, Version: 1, Values: maps.Clone(d.Set),
			Created: d.Created, LastAccess: d.LastAccess, IdleTimeout: d.IdleTimeout, Deadline: d.Deadline,
		},
		keyVer:  make(map[string]uint64, len(d.Set)),
		heapIdx: -1,
	}
	if e.rec.Values == nil {
		e.rec.Values = map[string][]byte{}
	}
	for k := range d.Set {
		e.keyVer[k] = 1
	}
	e.size = sizeOf(e.rec)
	more, err := s.makeRoom(1, e.size, nil)
	ns = append(ns, more...)
	if err != nil {
		return ns, err
	}
	s.sessions[d.ID] = e
	e.elem = s.lru.PushFront(e)
	s.bytes += e.size
	s.reschedule(e)
	return ns, nil
}

// update merges d into its session. s.mu is held.
func (s *Store) update(d session.Delta) (session.SaveResult, []notice, error) {
	e, ns := s.live(d.ID)
	if e == nil {
		return session.SaveResult{}, ns, notFound(d.ID)
	}
	if d.BaseVersion > e.rec.Version {
		return session.SaveResult{}, ns, fmt.Errorf("memstore: base version %d after current %d: %w",
			d.BaseVersion, e.rec.Version, session.ErrBadDelta)
	}
	if err := session.CheckReads(d, e.rec); err != nil {
		return session.SaveResult{}, ns, fmt.Errorf("memstore: %w", err)
	}
	var conflicts []string
	values, size := maps.Clone(e.rec.Values), e.size
	for k, v := range d.Set {
		if e.keyVer[k] > d.BaseVersion {
			conflicts = append(conflicts, k)
		}
		if old, ok := values[k]; ok {
			size -= int64(len(k) + len(old))
		}
		values[k] = v
		size += int64(len(k) + len(v))
	}
	for _, k := range d.Removed {
		if e.keyVer[k] > d.BaseVersion {
			conflicts = append(conflicts, k)
		}
		if old, ok := values[k]; ok {
			size -= int64(len(k) + len(old))
			delete(values, k)
		}
	}
	rec := e.rec
	rec.Values = values
	rec.Version++
	if d.LastAccess.After(rec.LastAccess) {
		rec.LastAccess = d.LastAccess
	}
	more, err := s.makeRoom(0, size-e.size, e)
	ns = append(ns, more...)
	if err != nil {
		return session.SaveResult{}, ns, err
	}
	for k := range d.Set {
		e.keyVer[k] = rec.Version
	}
	for _, k := range d.Removed {
		e.keyVer[k] = rec.Version
	}
	pruneTombstones(e.keyVer, values)
	s.bytes += size - e.size
	e.rec, e.size = rec, size
	s.lru.MoveToFront(e.elem)
	s.reschedule(e)
	slices.Sort(conflicts)
	return session.SaveResult{Version: rec.Version, Conflicts: conflicts}, ns, nil
}

// makeRoom makes room for sessions more sessions and bytes more bytes,
// first by removing expired sessions, then as the policy says. keep is never
// evicted. s.mu is held.
func (s *Store) makeRoom(sessions int, bytes int64, keep *entry) ([]notice, error) {
	over := func() bool {
		return s.o.MaxSessions > 0 && len(s.sessions)+sessions > s.o.MaxSessions ||
			s.o.MaxBytes > 0 && s.bytes+bytes > s.o.MaxBytes
	}
	if !over() {
		return nil, nil
	}
	ns := s.sweepLocked(s.o.Now())
	if !over() {
		return ns, nil
	}
	full := func(why string) error {
		s.refused.Add(1)
		return fmt.Errorf("memstore: %s (%d sessions, %d bytes; max %d, %d): %w",
			why, len(s.sessions), s.bytes, s.o.MaxSessions, s.o.MaxBytes, session.ErrStoreFull)
	}
	if s.o.Full == RefuseNew {
		return ns, full("full")
	}
	own := int64(0)
	if keep != nil {
		own = keep.size
	}
	if s.o.MaxBytes > 0 && own+bytes > s.o.MaxBytes {
		return ns, full("the session alone exceeds MaxBytes")
	}
	for over() {
		victim := s.lru.Back()
		if victim != nil && victim.Value.(*entry) == keep {
			victim = victim.Prev()
		}
		if victim == nil {
			return ns, full("nothing left to evict")
		}
		v := victim.Value.(*entry)
		s.remove(v)
		ns = append(ns, notice{v.rec, session.ReasonEvicted})
	}
	return ns, nil
}

// pruneTombstones forgets the oldest removed keys beyond maxTombstones.
func pruneTombstones(keyVer map[string]uint64, values map[string][]byte) {
	if len(keyVer) <= len(values)+maxTombstones { // every live key has a version
		return
	}
	var dead []string
	for k := range keyVer {
		if _, ok := values[k]; !ok {
			dead = append(dead, k)
		}
	}
	if len(dead) <= maxTombstones {
		return
	}
	// Oldest first; ties by key, so that pruning is deterministic.
	slices.SortFunc(dead, func(a, b string) int {
		return cmp.Or(cmp.Compare(keyVer[a], keyVer[b]), strings.Compare(a, b))
	})
	for _, k := range dead[:len(dead)-maxTombstones] {
		delete(keyVer, k)
	}
}

// sizeOf approximates the memory rec takes.
func sizeOf(rec session.Record) int64 {
	n := int64(Overhead + len(rec.ID) + len(rec.Route))
	for k, v := range rec.Values {
		n += int64(len(k) + len(v))
	}
	return n
}
