package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// waiter is a sync write waiting for its acknowledgements: it succeeds when
// need targets have applied (ballot, version), and fails as soon as one
// reports a newer ballot (the session was taken over) or when too few
// targets are left alive.
type waiter struct {
	id      string
	bal     ballot
	version uint64
	targets map[string]bool
	need    int
	floor   int // need never shrinks below it when targets leave (a majority's share)
	got     int
	done    chan error    // buffered; receives exactly one result
	settled bool          // guarded by waiters.mu
	over    chan struct{} // closed once settled, for readers waiting on the write
	err     error         // the result, set before over is closed
	sent    int64         // when the write was sent (leases.now), for the owner's lease
	// confirm marks a confirmation (Confirm): the record re-sent at a
	// version already acknowledged, so that its failure makes no write
	// unsure. Set by its creator before waiting, read by it after.
	confirm bool
}

// waiters indexes the pending waiters by session.
type waiters struct {
	mu   sync.Mutex // protects byID and every waiter's settled, err and counts (a leaf)
	byID map[string][]*waiter
}

func newWaiters() *waiters { return &waiters{byID: map[string][]*waiter{}} }

// add registers a waiter for (id, bal, version) on targets, needing need
// of them, and never fewer than floor however many targets leave, sent at
// sent. Call it
// before the write is queued, so that no acknowledgement can be missed.
func (ws *waiters) add(id string, bal ballot, version uint64, targets []string, need, floor int, sent int64) *waiter {
	w := &waiter{id: id, bal: bal, version: version, targets: map[string]bool{}, done: make(chan error, 1),
		need: need, floor: floor, over: make(chan struct{}), sent: sent}
	for _, t := range targets {
		w.targets[t] = true
	}
	ws.mu.Lock()
	ws.byID[id] = append(ws.byID[id], w)
	ws.mu.Unlock()
	return w
}

// settleLocked delivers w's result once and unindexes it.
func (ws *waiters) settleLocked(w *waiter, err error) {
	if w.settled {
		return
	}
	w.settled = true
	w.done <- err
	w.err = err
	close(w.over)
	list := ws.byID[w.id]
	for i, x := range list {
		if x == w {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(ws.byID, w.id)
	} else {
		ws.byID[w.id] = list
	}
}

// ack applies a peer's per-session results.
func (ws *waiters) ack(peer string, entries []ackEntry) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, a := range entries {
		for _, w := range append([]*waiter(nil), ws.byID[a.id]...) {
			if !w.targets[peer] {
				continue
			}
			c := a.bal.cmp(w.bal)
			switch {
			case c > 0:
				ws.settleLocked(w, fmt.Errorf("%w: %s holds epoch %s", ErrFenced, peer, a.bal))
			case a.status == ackApplied && c == 0 && a.version >= w.version:
				delete(w.targets, peer)
				w.got++
				if w.got >= w.need {
					ws.settleLocked(w, nil)
				}
			}
		}
	}
}

// peerGone stops waiting for a peer that died or restarted.
func (ws *waiters) peerGone(peer string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, list := range ws.byID {
		for _, w := range append([]*waiter(nil), list...) {
			ws.dropLocked(w, peer)
		}
	}
}

// drop stops w waiting for peers: those that died or restarted between
// the choice of targets and the waiter's registration, which peerGone
// could not see.
func (ws *waiters) drop(w *waiter, peers []string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, p := range peers {
		ws.dropLocked(w, p)
	}
}

func (ws *waiters) dropLocked(w *waiter, peer string) {
	if !w.targets[peer] || w.settled {
		return
	}
	delete(w.targets, peer)
	if w.need > w.got+len(w.targets) {
		if w.got+len(w.targets) < w.floor {
			ws.settleLocked(w, fmt.Errorf("%w: %d of the %d acknowledgements a majority needs can still come", ErrNoMajority, w.got+len(w.targets), w.floor))
			return
		}
		w.need = w.got + len(w.targets)
	}
	switch {
	case w.got > 0 && w.got >= w.need:
		ws.settleLocked(w, nil)
	case len(w.targets) == 0:
		ws.settleLocked(w, fmt.Errorf("%w: every peer it was sent to left", ErrNotAcknowledged))
	}
}

// wait blocks until w settles, ctx ends, timeout passes or closing closes.
func (ws *waiters) wait(ctx context.Context, w *waiter, timeout time.Duration, closing <-chan struct{}) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case err = <-w.done:
		return err
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", ErrNotAcknowledged, ctx.Err())
	case <-t.C:
		err = fmt.Errorf("%w: no acknowledgement within %v", ErrNotAcknowledged, timeout)
	case <-closing:
		err = ErrClosed
	}
	ws.mu.Lock()
	ws.settleLocked(w, err)
	ws.mu.Unlock()
	return <-w.done
}

// pending returns the writes of session id still waiting for their
// acknowledgements.
func (ws *waiters) pending(id string) []*waiter {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return append([]*waiter(nil), ws.byID[id]...)
}
