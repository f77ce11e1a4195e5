package memcachestore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/tetherlb/tether/session"
)

// Lock takes the lock of session id in memcached (session.Locker): add an
// item holding a random token, with an expiry, retried with a growing
// pause until wait runs out. memcached counts expiry in whole seconds, so
// the holder counts on one second less than Options.LockLease; the lock
// is renewed (compare-and-swap of its own token) while held, up to hold
// (session.KeptLease).
func (s *Store) Lock(ctx context.Context, id string, wait, hold time.Duration) (session.StoreLock, error) {
	k, err := s.key(id)
	if err != nil {
		return nil, err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	key, token := k+":lock", base64.RawURLEncoding.EncodeToString(b[:])
	seconds := int32(s.o.LockLease / time.Second)   // the lock item's expiry
	lease := time.Duration(seconds-1) * time.Second // how long the holder counts on it
	var taken time.Time
	err = session.PollLock(ctx, wait, s.o.LockPoll, func() (bool, error) {
		start := time.Now()
		err := s.c.Add(&memcache.Item{Key: key, Value: []byte(token), Expiration: seconds})
		if errors.Is(err, memcache.ErrNotStored) {
			return false, nil // held
		}
		taken = start
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("memcachestore: lock %s: %w", key, err)
	}
	renew := func(time.Duration) (bool, error) {
		it, err := s.c.Get(key)
		if err == nil && string(it.Value) == token {
			it.Expiration = seconds
			err = s.c.CompareAndSwap(it)
		} else if err == nil || errors.Is(err, memcache.ErrCacheMiss) {
			return false, nil // someone else's, or gone
		}
		if errors.Is(err, memcache.ErrCASConflict) || errors.Is(err, memcache.ErrNotStored) {
			return false, nil
		}
		return err == nil, err
	}
	release := func(left time.Duration) {
		if left < unlockMargin {
			return // the read and the delete below might outlast the lease
		}
		if it, err := s.c.Get(key); err == nil && string(it.Value) == token {
			_ = s.c.Delete(key)
		}
	}
	return session.KeepLease(taken, lease, hold, renew, release), nil
}

// unlockMargin is how much of its lease a holder must have left to delete
// the lock: memcached cannot delete on a condition, so the holder reads
// the token, then deletes, and the lease must outlast the two.
const unlockMargin = 200 * time.Millisecond
