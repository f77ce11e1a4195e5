package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/session"
)

// Lock takes the lock of session id in Redis (session.Locker): SET NX PX
// with a random token, retried with a growing pause up to
// Options.LockPoll until wait runs out. The lock lives Options.LockLease
// in Redis and is renewed while held, up to hold (session.KeptLease);
// Unlock deletes it only if it still holds the token.
func (s *Store) Lock(ctx context.Context, id string, wait, hold time.Duration) (session.StoreLock, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	key, token := s.key(id)+":lock", base64.RawURLEncoding.EncodeToString(b[:])
	var taken time.Time
	err := session.PollLock(ctx, wait, s.o.LockPoll, func() (bool, error) {
		start := time.Now()
		cctx, cancel := s.ctx(ctx)
		ok, err := s.c.SetNX(cctx, key, token, s.o.LockLease).Result()
		cancel()
		taken = start
		return ok, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("redisstore: lock %s: %w", key, err)
	}
	renew := func(lease time.Duration) (bool, error) {
		ctx, cancel := s.ctx(context.Background())
		defer cancel()
		n, err := extendScript.Run(ctx, s.c, []string{key}, token, lease.Milliseconds()).Int64()
		if errors.Is(err, redis.Nil) {
			return false, nil // gone
		}
		return n == 1, err
	}
	release := func(time.Duration) {
		ctx, cancel := s.ctx(context.Background())
		defer cancel()
		_ = unlockScript.Run(ctx, s.c, []string{key}, token).Err() // a lock we cannot delete expires
	}
	return session.KeepLease(taken, s.o.LockLease, hold, renew, release), nil
}
