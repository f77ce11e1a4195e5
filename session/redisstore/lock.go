package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/session"
)

// Lock takes the lock of session id in Redis (session.Locker): SET NX PX
// with a random token, retried with a growing pause up to
// Options.LockPoll until wait runs out. The lock lives Options.LockLease
// in Redis and is renewed while held, up to hold; Unlock deletes it only
// if it still holds the token.
func (s *Store) Lock(ctx context.Context, id string, wait, hold time.Duration) (session.StoreLock, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	l := &lock{s: s, key: s.key(id) + ":lock", token: base64.RawURLEncoding.EncodeToString(b[:])}
	err := session.PollLock(ctx, wait, s.o.LockPoll, func() (bool, error) {
		start := time.Now()
		cctx, cancel := s.ctx(ctx)
		ok, err := s.c.SetNX(cctx, l.key, l.token, s.o.LockLease).Result()
		cancel()
		if ok {
			l.start(start, hold)
		}
		return ok, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("redisstore: lock %s: %w", l.key, err)
	}
	return l, nil
}

// lock is a held lock. It is renewed every third of the lease by a timer,
// until hold has passed since it was taken.
type lock struct {
	s     *Store
	key   string
	token string

	mu      sync.Mutex
	expires time.Time // by our clock: the lease, measured from before SET was sent
	until   time.Time // the end of hold: no renewal past it
	lost    bool      // a renewal found the lock gone, or Unlock ran
	timer   *time.Timer
}

// start records the lease taken at t and arms the renewal timer.
func (l *lock) start(t time.Time, hold time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expires = t.Add(l.s.o.LockLease)
	l.until = t.Add(hold)
	if l.until.After(l.expires) {
		l.timer = time.AfterFunc(l.s.o.LockLease/3, l.renew)
	}
}

// renew extends the lease, if still wanted and held.
func (l *lock) renew() {
	l.mu.Lock()
	if l.lost {
		l.mu.Unlock()
		return
	}
	lease := min(l.s.o.LockLease, time.Until(l.until))
	l.mu.Unlock()
	if lease <= 0 {
		return
	}
	start := time.Now()
	ctx, cancel := l.s.ctx(context.Background())
	n, err := extendScript.Run(ctx, l.s.c, []string{l.key}, l.token, lease.Milliseconds()).Int64()
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.lost:
	case err == nil && n == 1:
		l.expires = start.Add(lease)
		if l.until.After(l.expires) {
			l.timer.Reset(l.s.o.LockLease / 3)
		}
	case err == nil || errors.Is(err, redis.Nil):
		l.lost = true // someone else's now
	default:
		// Redis did not answer: try again while the lease lasts.
		if time.Until(l.expires) > 0 {
			l.timer.Reset(min(l.s.o.LockLease/10, time.Until(l.expires)))
		}
	}
}

// Held reports whether the lease certainly still runs.
func (l *lock) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.lost && time.Now().Before(l.expires)
}

// Unlock releases the lock if it is still ours.
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
	l.mu.Unlock()
	ctx, cancel := l.s.ctx(context.Background())
	defer cancel()
	_ = unlockScript.Run(ctx, l.s.c, []string{l.key}, l.token).Err() // a lock we cannot delete expires
}
