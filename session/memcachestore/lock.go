package memcachestore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/tetherlb/tether/session"
)

// Lock takes the lock of session id in memcached (session.Locker): add an
// item holding a random token, with an expiry, retried with a growing
// pause until wait runs out. memcached counts expiry in whole seconds, so
// the holder counts on one second less than Options.LockLease; the lock
// is renewed (compare-and-swap of its own token) while held, up to hold.
func (s *Store) Lock(ctx context.Context, id string, wait, hold time.Duration) (session.StoreLock, error) {
	k, err := s.key(id)
	if err != nil {
		return nil, err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	l := &lock{s: s, key: k + ":lock", token: base64.RawURLEncoding.EncodeToString(b[:])}
	err = session.PollLock(ctx, wait, s.o.LockPoll, func() (bool, error) {
		start := time.Now()
		err := s.c.Add(&memcache.Item{Key: l.key, Value: []byte(l.token), Expiration: l.seconds()})
		if errors.Is(err, memcache.ErrNotStored) {
			return false, nil // held
		}
		if err == nil {
			l.start(start, hold)
		}
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("memcachestore: lock %s: %w", l.key, err)
	}
	return l, nil
}

// lock is a held lock, renewed every third of its lease by a timer until
// hold has passed since it was taken.
type lock struct {
	s     *Store
	key   string
	token string

	mu      sync.Mutex
	expires time.Time // by our clock, one second short of memcached's
	until   time.Time // the end of hold
	lost    bool
	timer   *time.Timer
}

// seconds is the lock item's expiry.
func (l *lock) seconds() int32 { return int32(l.s.o.LockLease / time.Second) }

// lease is how long the holder counts on the lock after writing it.
func (l *lock) lease() time.Duration { return time.Duration(l.seconds()-1) * time.Second }

func (l *lock) start(t time.Time, hold time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expires, l.until = t.Add(l.lease()), t.Add(hold)
	if l.until.After(l.expires) {
		l.timer = time.AfterFunc(l.lease()/3, l.renew)
	}
}

// renew writes the lock again with a fresh expiry, if it still holds our
// token.
func (l *lock) renew() {
	l.mu.Lock()
	if l.lost || !time.Now().Before(l.until) {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	start := time.Now()
	it, err := l.s.c.Get(l.key)
	if err == nil && string(it.Value) == l.token {
		it.Expiration = l.seconds()
		err = l.s.c.CompareAndSwap(it)
	} else if err == nil || errors.Is(err, memcache.ErrCacheMiss) {
		err = memcache.ErrCASConflict // someone else's, or gone
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.lost:
	case err == nil:
		l.expires = start.Add(l.lease())
		if l.until.After(l.expires) {
			l.timer.Reset(l.lease() / 3)
		}
	case errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrNotStored):
		l.lost = true
	default:
		if time.Until(l.expires) > 0 { // no answer: try again while the lease lasts
			l.timer.Reset(min(l.lease()/10, time.Until(l.expires)))
		}
	}
}

// Held reports whether the lease certainly still runs.
func (l *lock) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.lost && time.Now().Before(l.expires)
}

// unlockMargin is how much of its lease a holder must have left to delete
// the lock: memcached cannot delete on a condition, so the holder reads
// the token, then deletes, and the lease must outlast the two.
const unlockMargin = 200 * time.Millisecond

// Unlock deletes the lock if it still holds our token and our lease has
// unlockMargin left; otherwise the lock expires on its own.
func (l *lock) Unlock() {
	l.mu.Lock()
	if l.lost {
		l.mu.Unlock()
		return
	}
	l.lost = true
	if l.timer != nil {
		l.timer.Stop()
	}
	left := time.Until(l.expires)
	l.mu.Unlock()
	if left < unlockMargin {
		return
	}
	if it, err := l.s.c.Get(l.key); err == nil && string(it.Value) == l.token {
		_ = l.s.c.Delete(l.key)
	}
}
