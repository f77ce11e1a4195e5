package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Locker is implemented by stores that several nodes share (a Redis or
// memcached server), where two nodes can serve requests of one session at
// the same time. The Manager's own lock serializes the requests of a
// session on one node; with a Locker it also takes the session's lock in
// the store, so that Exclusive requests run one after another across
// nodes too: parallel read-modify-writes of one session spread over nodes
// are applied one after another instead of failing with ErrConflict.
//
// The Manager takes the store's lock after its own, with what is left of
// Options.LockWait to wait, and holds it until the commit, bounded by
// Options.LockHold. The lock is a lease: it may be lost (it expired, the
// store failed over and forgot it). A request that lost it does not save:
// its commit fails with ErrConflict. It never fails open, and the store's
// read checks (Delta.Read) remain the safety net for whatever a lost lock
// let through.
type Locker interface {
	// Lock takes the store-wide lock of session id part id, waiting at
	// most wait (and until ctx is done), and keeps it for at most hold. It
	// returns an error wrapping ErrBusy when the wait ran out, ctx's error
	// when ctx ended, or a store error.
	Lock(ctx context.Context, id string, wait, hold time.Duration) (StoreLock, error)
}

// StoreLock is a lock held in a store, returned by Locker.Lock.
type StoreLock interface {
	// Held reports whether the lock is certainly still held: false once
	// it may have expired in the store (its lease ran out by the holder's
	// own clock, measured from before it was taken) or was found lost. It
	// must not block.
	Held() bool
	// Unlock releases the lock if it is still the holder's; it never
	// releases another holder's. It may block on I/O, bounded by the
	// store's timeouts.
	Unlock()
}

// OpLock is a Locker's lock operation, for Observer.StoreError.
const OpLock Op = "lock"

// acquire takes the lock of session id for a request: the Manager's lock,
// then the store's when the store is a Locker. It returns how long it
// waited in all.
func (m *Manager) acquire(ctx context.Context, id string) (lease, time.Duration, error) {
	le, waited, err := m.locks.acquire(ctx, id, m.o.LockWait, m.o.LockHold)
	if err != nil || m.locker == nil {
		return le, waited, err
	}
	start := time.Now()
	sl, err := m.locker.Lock(ctx, id, max(m.o.LockWait-waited, 0), m.o.LockHold)
	waited += time.Since(start)
	if err != nil {
		le.release()
		if !errors.Is(err, ErrBusy) && ctx.Err() == nil {
			m.obs.StoreError(OpLock, err)
			return lease{}, waited, fmt.Errorf("session: lock: %w: %w", ErrStore, err)
		}
		return lease{}, waited, err
	}
	le.shared = sl
	return le, waited, nil
}

// PollLock is for Locker implementations: it calls try until try takes the
// lock (true) or fails, pausing between attempts from 1 ms, doubling up to
// maxPause. It gives up with an error wrapping ErrBusy once wait has run
// out, and with ctx's error once ctx is done.
func PollLock(ctx context.Context, wait, maxPause time.Duration, try func() (bool, error)) error {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		ok, err := try()
		if err != nil || ok {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("held elsewhere for %v: %w", wait, ErrBusy)
		}
		t := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, max(maxPause, time.Millisecond))
	}
}
