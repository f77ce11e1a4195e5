package balancer

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// With Options.MaxConns set, at most that many requests are in flight to
// each member at once (HAProxy's maxconn on a server, httpd's max=, the
// connection_pool_size of mod_jk). A request over the limit waits for a
// slot in its member's queue, first come first served, for at most
// QueueTimeout, and is then answered 503 with Retry-After: a member that
// can serve a few requests at a time is given that many, not all of a
// burst, and the users waiting are served in order. A new session avoids
// a full member when another can take it; a sticky request waits for its
// own member.

// queue holds the in-flight slots of one member and its waiting requests.
// The zero value is ready to use.
type queue struct {
	mu      sync.Mutex
	n       int       // slots held
	waiting list.List // of chan struct{}, oldest first
}

// acquire takes a slot out of max, waiting up to timeout (or until ctx,
// which may be nil, is done). It reports whether it got one.
func (q *queue) acquire(max int, timeout time.Duration, ctx context.Context) bool {
	q.mu.Lock()
	if q.n < max && q.waiting.Len() == 0 {
		q.n++
		q.mu.Unlock()
		return true
	}
	ready := make(chan struct{}, 1)
	e := q.waiting.PushBack(ready)
	q.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	select {
	case <-ready:
		return true
	case <-t.C:
	case <-done:
	}
	q.mu.Lock()
	select {
	case <-ready: // handed a slot just as the wait ended: pass it on
		q.mu.Unlock()
		q.release(max)
	default:
		q.waiting.Remove(e)
		q.mu.Unlock()
	}
	return false
}

// release gives a slot back and hands free slots to the oldest waiting
// requests. max is the limit now: a reload may have lowered it (then
// requests wait until enough slots are back) or raised or removed it
// (max <= 0: every waiting request goes).
func (q *queue) release(max int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n--
	for max <= 0 || q.n < max {
		e := q.waiting.Front()
		if e == nil {
			return
		}
		q.waiting.Remove(e)
		q.n++
		e.Value.(chan struct{}) <- struct{}{}
	}
}

// full reports whether a request would have to wait.
func (q *queue) full(max int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n >= max || q.waiting.Len() > 0
}

// queued returns how many requests are waiting.
func (q *queue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting.Len()
}
