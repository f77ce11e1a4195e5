package memcachestore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/tetherlb/tether/session"
)

// ErrCorrupt wraps the error of an item that holds something other than a
// session this package wrote. Nothing is changed; Delete removes it.
var ErrCorrupt = errors.New("memcachestore: not a session record")

// Store is a session.Store in memcached, on one server or several (items
// are spread over them by key). Besides session.Store it implements
// session.Claimer and session.Locker. It does not implement
// session.ExpiryNotifier: memcached drops expired sessions by item
// expiry, without telling anyone.
type Store struct {
	c *memcache.Client
	o Options

	// sleep and randN are retry's pause and random source: sleepCtx and
	// rand.Int64N, replaced by tests.
	sleep func(context.Context, time.Duration) error
	randN func(int64) int64
}

// New returns a Store over the memcached servers (host:port).
func New(servers []string, o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("memcachestore: no servers")
	}
	o = o.withDefaults()
	c := memcache.New(servers...)
	c.Timeout = o.Timeout
	c.MaxIdleConns = 64
	return &Store{c: c, o: o, sleep: sleepCtx, randN: rand.Int64N}, nil
}

// Ping checks that every server answers.
func (s *Store) Ping() error {
	if err := s.c.Ping(); err != nil {
		return fmt.Errorf("memcachestore: %w", err)
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.c.Close() }

func (s *Store) key(id string) (string, error) {
	k := s.o.Prefix + id
	if len(k)+len(":lock") > 250 || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", fmt.Errorf("memcachestore: id %s cannot be a memcached key", session.ShortID(id))
	}
	return k, nil
}

// get reads session id: the record and its item (for the CAS), or
// ErrNotFound when there is none or it has expired by the Store's clock.
func (s *Store) get(id string) (*record, *memcache.Item, error) {
	k, err := s.key(id)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", err, session.ErrNotFound)
	}
	it, err := s.c.Get(k)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, nil, fmt.Errorf("memcachestore: %w", session.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("memcachestore: get %s: %w", k, err)
	}
	if len(it.Value) > s.o.MaxRecordBytes {
		return nil, it, fmt.Errorf("memcachestore: %s holds %d bytes, more than %d: %w", k, len(it.Value), s.o.MaxRecordBytes, ErrCorrupt)
	}
	r, err := decode(id, it.Value)
	if err != nil {
		return nil, it, fmt.Errorf("memcachestore: %s: %w: %w", k, ErrCorrupt, err)
	}
	if _, expired := r.Expired(s.o.Now()); expired {
		return nil, it, fmt.Errorf("memcachestore: expired: %w", session.ErrNotFound)
	}
	return r, it, nil
}

// Load returns the session id.
func (s *Store) Load(ctx context.Context, id string) (session.Record, error) {
	if err := ctx.Err(); err != nil {
		return session.Record{}, err
	}
	r, _, err := s.get(id)
	if err != nil {
		return session.Record{}, err
	}
	return r.Record, nil
}

// expiration returns memcached's expiration for r at now: seconds from
// now (rounded up) up to 30 days, a Unix time beyond, 0 for never.
func expiration(r session.Record, now time.Time) int32 {
	at := r.ExpiresAt()
	if at.IsZero() {
		return 0
	}
	d := at.Sub(now)
	if d <= 0 {
		return 1
	}
	secs := (d + time.Second - 1) / time.Second
	if secs > 30*24*3600 {
		return int32(min(time.Now().Add(d).Unix(), 1<<31-1))
	}
	return int32(secs)
}

// put stores r over it (compare-and-swap), or adds it when it is nil.
func (s *Store) put(r *record, it *memcache.Item) error {
	b := encode(nil, r)
	if len(b) > s.o.MaxRecordBytes {
		return fmt.Errorf("memcachestore: session %s would take %d bytes, more than %d: %w", session.ShortID(r.ID), len(b), s.o.MaxRecordBytes, session.ErrStoreFull)
	}
	k, err := s.key(r.ID)
	if err != nil {
		return err
	}
	n := &memcache.Item{Key: k, Value: b, Expiration: expiration(r.Record, s.o.Now())}
	if it == nil {
		return s.c.Add(n)
	}
	n.CasID = it.CasID
	return s.c.CompareAndSwap(n)
}

// retry runs one read-change-write attempt until it does not meet a
// concurrent writer, at most Options.Retries more times, each after a
// random pause: uniform in [0, w), w from Options.RetryBackoff doubling up
// to Options.RetryBackoffMax. Tried again at once, the writers that run
// first would win every race and starve the others.
func (s *Store) retry(ctx context.Context, attempt func() error) error {
	w := min(s.o.RetryBackoff, s.o.RetryBackoffMax)
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := attempt()
		if !errors.Is(err, memcache.ErrCASConflict) && !errors.Is(err, memcache.ErrNotStored) {
			return err
		}
		if i == s.o.Retries {
			return fmt.Errorf("memcachestore: %d writers in a row came first: %w", i+1, session.ErrConflict)
		}
		if err := s.sleep(ctx, time.Duration(s.randN(int64(w)))); err != nil {
			return err
		}
		if w > s.o.RetryBackoffMax/2 {
			w = s.o.RetryBackoffMax
		} else {
			w *= 2
		}
	}
}

// sleepCtx waits d, or returns ctx's error as soon as ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Save applies d as session.Store specifies: read, check, merge,
// compare-and-swap, again if another writer came first.
func (s *Store) Save(ctx context.Context, d session.Delta) (session.SaveResult, error) {
	if err := session.CheckDelta(d); err != nil {
		return session.SaveResult{}, fmt.Errorf("memcachestore: %w", err)
	}
	if d.BaseVersion == 0 {
		return session.SaveResult{Version: 1}, s.create(ctx, d)
	}
	var res session.SaveResult
	err := s.retry(ctx, func() error {
		cur, it, err := s.get(d.ID)
		if err != nil {
			return err
		}
		if d.BaseVersion > cur.Version {
			return fmt.Errorf("memcachestore: base version %d after current %d: %w", d.BaseVersion, cur.Version, session.ErrBadDelta)
		}
		if err := session.CheckReads(d, cur.Record); err != nil {
			return fmt.Errorf("memcachestore: %w", err)
		}
		next, conflicts := merge(cur, d)
		if err := s.put(next, it); err != nil {
			return err
		}
		res = session.SaveResult{Version: next.Version, Conflicts: conflicts}
		return nil
	})
	return res, err
}

// merge returns cur with d applied, and the keys d wrote blind over a
// later write.
func merge(cur *record, d session.Delta) (*record, []string) {
	next := &record{Record: cur.Record, wrote: maps.Clone(cur.wrote)}
	next.Values = maps.Clone(cur.Values)
	next.Version++
	if d.LastAccess.After(next.LastAccess) {
		next.LastAccess = d.LastAccess
	}
	var conflicts []string
	write := func(k string) {
		if cur.wrote[k] > d.BaseVersion {
			conflicts = append(conflicts, k)
		}
		next.wrote[k] = next.Version
	}
	for k, v := range d.Set {
		write(k)
		next.Values[k] = v
	}
	for _, k := range d.Removed {
		write(k)
		delete(next.Values, k)
	}
	pruneTombstones(next)
	slices.Sort(conflicts)
	return next, conflicts
}

// pruneTombstones forgets the oldest removed keys beyond maxTombstones.
func pruneTombstones(r *record) {
	var dead []string
	for k := range r.wrote {
		if _, ok := r.Values[k]; !ok {
			dead = append(dead, k)
		}
	}
	if len(dead) <= maxTombstones {
		return
	}
	slices.SortFunc(dead, func(a, b string) int {
		if r.wrote[a] != r.wrote[b] {
			return int(r.wrote[a]) - int(r.wrote[b])
		}
		return strings.Compare(a, b)
	})
	for _, k := range dead[:len(dead)-maxTombstones] {
		delete(r.wrote, k)
	}
}

// create adds a new session; an expired one under the same id is
// replaced.
func (s *Store) create(ctx context.Context, d session.Delta) error {
	r := &record{Record: session.Record{ID: d.ID, Route: d.Route, Version: 1, Values: maps.Clone(d.Set),
		Created: d.Created, LastAccess: d.LastAccess, IdleTimeout: d.IdleTimeout, Deadline: d.Deadline},
		wrote: make(map[string]uint64, len(d.Set))}
	if r.Values == nil {
		r.Values = map[string][]byte{}
	}
	for k := range d.Set {
		r.wrote[k] = 1
	}
	return s.retry(ctx, func() error {
		_, it, err := s.get(d.ID)
		switch {
		case err == nil, errors.Is(err, ErrCorrupt):
			return fmt.Errorf("memcachestore: create: %w", session.ErrExists)
		case errors.Is(err, session.ErrNotFound):
			return s.put(r, it) // it is nil, or the expired session's item
		}
		return err
	})
}

// Delete removes the session id. An item that is not a session is
// removed too.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, it, err := s.get(id)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return err
	}
	if err := s.c.Delete(it.Key); errors.Is(err, memcache.ErrCacheMiss) {
		return fmt.Errorf("memcachestore: delete: %w", session.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("memcachestore: delete %s: %w", it.Key, err)
	}
	return nil
}

// Touch moves the session's last access to at, if later.
func (s *Store) Touch(ctx context.Context, id string, at time.Time) error {
	return s.retry(ctx, func() error {
		cur, it, err := s.get(id)
		if err != nil {
			return err
		}
		if !at.After(cur.LastAccess) {
			return nil
		}
		cur.LastAccess = at
		return s.put(cur, it)
	})
}

// Claim makes route the session's route: any node may serve any session.
func (s *Store) Claim(ctx context.Context, id, route string) (session.Record, error) {
	var out session.Record
	err := s.retry(ctx, func() error {
		cur, it, err := s.get(id)
		if err != nil {
			return err
		}
		out = cur.Record
		if cur.Route == route {
			return nil
		}
		cur.Route = route
		out = cur.Record
		return s.put(cur, it)
	})
	return out, err
}
