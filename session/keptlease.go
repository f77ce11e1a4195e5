package session

import (
	"sync"
	"time"
)

// KeptLease is for Locker implementations: a StoreLock whose lease in the
// store it keeps running. It renews the lease every third of its length
// until hold has passed since the lock was taken, retries a renewal that
// got no answer while the lease still runs, and reports the lock held only
// while the lease certainly runs by the holder's clock. The store says how
// to renew and how to release.
type KeptLease struct {
	length  time.Duration
	renew   func(length time.Duration) (bool, error)
	release func(left time.Duration)

	mu      sync.Mutex
	expires time.Time // by the holder's clock, measured from before the lock was taken or renewed
	until   time.Time // the end of hold: no renewal past it
	lost    bool      // a renewal found the lock gone, or Unlock ran
	timer   *time.Timer
}

// KeepLease returns the kept lease of a lock taken at taken (read before
// the store was asked) with a lease of length, to be held at most hold.
// renew(length) extends the lease in the store: true when it did, false
// when the lock is another holder's or gone, an error when the store did
// not answer. release(left) removes the lock from the store, left being
// how much of the lease still runs; Unlock calls it at most once, and only
// while the lock was not found lost.
func KeepLease(taken time.Time, length, hold time.Duration, renew func(time.Duration) (bool, error), release func(left time.Duration)) *KeptLease {
	k := &KeptLease{length: length, renew: renew, release: release, expires: taken.Add(length), until: taken.Add(hold)}
	k.mu.Lock() // extend, which uses the timer, waits until it is set
	defer k.mu.Unlock()
	if k.until.After(k.expires) {
		k.timer = time.AfterFunc(length/3, k.extend)
	}
	return k
}

// extend renews the lease, if still wanted and held.
func (k *KeptLease) extend() {
	k.mu.Lock()
	if k.lost {
		k.mu.Unlock()
		return
	}
	length := min(k.length, time.Until(k.until))
	k.mu.Unlock()
	if length <= 0 {
		return
	}
	start := time.Now()
	held, err := k.renew(length)
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.lost:
	case err == nil && held:
		k.expires = start.Add(length)
		if k.until.After(k.expires) {
			k.timer.Reset(k.length / 3)
		}
	case err == nil:
		k.lost = true // someone else's now
	default:
		// The store did not answer: try again while the lease lasts.
		if left := time.Until(k.expires); left > 0 {
			k.timer.Reset(min(k.length/10, left))
		}
	}
}

// Held reports whether the lease certainly still runs.
func (k *KeptLease) Held() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.lost && time.Now().Before(k.expires)
}

// Unlock stops renewing and releases the lock in the store, unless it was
// found lost.
func (k *KeptLease) Unlock() {
	k.mu.Lock()
	if k.lost {
		k.mu.Unlock()
		return
	}
	k.lost = true
	if k.timer != nil {
		k.timer.Stop()
	}
	left := time.Until(k.expires)
	k.mu.Unlock()
	k.release(left)
}

var _ StoreLock = (*KeptLease)(nil)
