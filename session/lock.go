package session

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// locks serializes the requests of one session on one node: a request in
// the Exclusive access mode holds its session's lock from its first access
// until its commit. Locks are FIFO, so a burst of requests commits in the
// order it arrived, and bounded both ways: a waiter gives up after
// Options.LockWait (ErrBusy), and a holder that keeps others waiting for
// longer than Options.LockHold loses the lock to the next waiter (its
// commit then fails with ErrConflict). The holder's time counts from the
// first request it keeps waiting, so that an uncontended lock reads no
// clock. A lock exists only while someone holds or waits for it.
type locks struct {
	seed   maphash.Seed
	shards [64]lockShard
}

type lockShard struct {
	mu   sync.Mutex
	m    map[string]*sessionLock
	free []*sessionLock // released locks, reused so that a request allocates none
	gen  uint64         // the last generation handed out in this shard
}

// sessionLock is one session's lock. Every field is guarded by its shard's
// mutex; gen is also read without it.
type sessionLock struct {
	id      string        // the session's id part, while the lock is in the shard's map
	gen     atomic.Uint64 // the holder's generation, unique in the shard, new at every hand-over
	held    bool          // someone holds it
	since   time.Time     // when the current holder began to keep a request waiting; zero while none waits
	waiters []*lockWaiter // FIFO
}

// lockWaiter is a request waiting for a lock.
type lockWaiter struct {
	ready chan uint64 // receives the generation once the lock is handed over
}

// lease is a held lock: the generation names this holder, so that a holder
// that lost the lock cannot release its successor's. The zero lease holds
// nothing.
type lease struct {
	sh  *lockShard
	sl  *sessionLock // reused for other sessions of its shard once freed: compare gen
	gen uint64

	shared StoreLock // the store's lock too, when the store is a Locker (locker.go)
}

// held reports whether le holds (or held) a lock.
func (le lease) held() bool { return le.sl != nil }

func newLocks() *locks {
	ls := &locks{seed: maphash.MakeSeed()}
	for i := range ls.shards {
		ls.shards[i].m = map[string]*sessionLock{}
	}
	return ls
}

func (ls *locks) shard(id string) *lockShard {
	return &ls.shards[maphash.String(ls.seed, id)%uint64(len(ls.shards))]
}

// acquire takes the lock of session id, waiting in line for at most wait
// and until ctx is done. A holder that has held the lock for hold or longer
// is passed over: the lock goes to the first waiter. It returns how long it
// waited (zero when the lock was free), and ErrBusy when the wait ran out,
// or ctx's error.
func (ls *locks) acquire(ctx context.Context, id string, wait, hold time.Duration) (lease, time.Duration, error) {
	sh := ls.shard(id)
	sh.mu.Lock()
	l := sh.m[id]
	if l == nil {
		if n := len(sh.free); n > 0 {
			l, sh.free = sh.free[n-1], sh.free[:n-1]
		} else {
			l = &sessionLock{}
		}
		l.id = id
		sh.m[id] = l
	}
	if !l.held {
		l.held, l.since = true, time.Time{} // nobody waits: no clock read
		sh.gen++
		l.gen.Store(sh.gen)
		g := sh.gen
		sh.mu.Unlock()
		return lease{sh: sh, sl: l, gen: g}, 0, nil
	}
	now := time.Now()
	w := &lockWaiter{ready: make(chan uint64, 1)}
	l.waiters = append(l.waiters, w)
	if l.since.IsZero() {
		l.since = now // the holder's time counts from the first request it keeps waiting
	}
	since := l.since
	sh.mu.Unlock()
	le, err := ls.await(ctx, sh, l, w, since, wait, hold)
	return le, time.Since(now), err
}

// await waits in line for l, as acquire describes.
func (ls *locks) await(ctx context.Context, sh *lockShard, l *sessionLock, w *lockWaiter, since time.Time, wait, hold time.Duration) (lease, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	stale := time.NewTimer(max(since.Add(hold).Sub(time.Now()), 0))
	defer stale.Stop()
	for {
		select {
		case g := <-w.ready:
			return lease{sh: sh, sl: l, gen: g}, nil
		case <-stale.C:
			// The holder has had the lock for hold: the first waiter takes
			// it over; the others wait for the new holder's hold.
			sh.mu.Lock()
			if l.held && len(l.waiters) > 0 && !time.Now().Before(l.since.Add(hold)) {
				sh.handOverLocked(l)
			}
			next := l.since.Add(hold)
			sh.mu.Unlock()
			stale.Reset(max(next.Sub(time.Now()), time.Millisecond))
		case <-deadline.C:
			return lease{}, abandon(sh, l, w, ErrBusy)
		case <-ctx.Done():
			return lease{}, abandon(sh, l, w, ctx.Err())
		}
	}
}

// abandon takes w out of line. If the lock was handed to w meanwhile, w
// passes it on at once.
func abandon(sh *lockShard, l *sessionLock, w *lockWaiter, err error) error {
	sh.mu.Lock()
	for i, x := range l.waiters {
		if x == w {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			sh.mu.Unlock()
			return err
		}
	}
	sh.mu.Unlock()
	// Not in line any more: the lock was handed to w just now.
	lease{sh: sh, sl: l, gen: <-w.ready}.release()
	return err
}

// handOverLocked gives the lock to the first waiter, or frees it.
func (sh *lockShard) handOverLocked(l *sessionLock) {
	sh.gen++
	l.gen.Store(sh.gen)
	if len(l.waiters) == 0 {
		l.held = false
		return
	}
	w := l.waiters[0]
	l.waiters = l.waiters[1:]
	l.since = time.Time{}
	if len(l.waiters) > 0 {
		l.since = time.Now() // the others wait for the new holder from now
	}
	w.ready <- sh.gen
}

// release gives the lock to the next waiter, or frees it, unless the
// holder had already lost it. Releasing the zero lease does nothing.
func (le lease) release() {
	if le.sl == nil {
		return
	}
	if le.shared != nil {
		le.shared.Unlock()
	}
	sh := le.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l := le.sl
	if l.gen.Load() != le.gen {
		return // passed over: the lock is someone else's now
	}
	sh.handOverLocked(l)
	if !l.held {
		delete(sh.m, l.id)
		l.id = ""
		if len(sh.free) < maxFreeLocks {
			l.waiters = l.waiters[:0]
			sh.free = append(sh.free, l)
		}
	}
}

// maxFreeLocks bounds the released locks a shard keeps for reuse.
const maxFreeLocks = 64

// valid reports whether the holder still holds the lock. Generations are
// unique in a shard and a freed lock is reused only in its shard, so a
// passed-over holder never finds its generation again.
func (le lease) valid() bool {
	return le.sl != nil && le.sl.gen.Load() == le.gen && (le.shared == nil || le.shared.Held())
}
