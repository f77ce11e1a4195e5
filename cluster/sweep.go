package cluster

import (
	"context"
	"time"
)

const (
	// promiseTTL is how long an entry holding only a promise (a takeover
	// of a session no node had) is kept.
	promiseTTL = time.Minute
	// maxOrphanClaims bounds the takeovers of expired orphans per sweep.
	maxOrphanClaims = 16
)

// sweepLoop runs sweep every SweepInterval of the node's clock.
func (n *Node) sweepLoop() {
	defer n.wg.Done()
	t := n.clock.NewTicker(n.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-t.C():
			n.sweep()
		}
	}
}

// expiry is a session this node expired, waiting for its tombstone's
// acknowledgements before the expiry is reported.
type expiry struct {
	rec Record
	w   *waiter
}

// sweep expires the idle sessions this node owns (the owner alone decides
// expiry, so listeners fire once), claims expired sessions whose owner is
// gone when this node is the designated sweeper, drops tombstones past
// their time, and asks again for records whose deltas are held.
func (n *Node) sweep() {
	now := nanos(n.clock.Now())
	live, sweeper := n.orphanRole()
	var targets []string
	if n.opts.Ack != AckNone {
		targets = n.ackTargets()
	}
	var orphans []string
	for _, id := range n.store.ids() {
		e := n.store.lock(id, false, now)
		if e == nil {
			continue
		}
		r := e.rec
		switch {
		case r == nil:
			if len(e.pending) == 0 && now-e.created > int64(promiseTTL) {
				n.store.remove(id, e)
			}
		case r.deleted:
			if len(e.pending) == 0 && now > tombstoneGC(r, n.opts.TombstoneTTL) {
				n.store.remove(id, e)
			}
		case r.expiresAt() != 0 && now >= r.expiresAt():
			switch {
			case e.owned(n.name):
				n.expireLocked(e, targets)
			case len(orphans) >= maxOrphanClaims:
			case n.own.reclaimable(e):
				orphans = append(orphans, id) // a past incarnation's, or a stalled takeover
			case sweeper && !live[r.bal.node]:
				orphans = append(orphans, id)
			}
		}
		var refetch string
		if len(e.pending) > 0 && n.fetchDue(e) {
			refetch = e.pending[0].from
		}
		e.mu.Unlock()
		if refetch != "" {
			n.send(refetch, &fetchMsg{id: id})
		}
	}
	for _, id := range orphans {
		n.spawn(func() {
			// Once owned, the next sweep expires it like any other.
			if _, err := n.Claim(context.Background(), id); err == nil {
				n.log.Debug("cluster: claimed an expired orphan", "id", short(id))
			}
		})
	}
}

// expireLocked expires the owned, locked entry: a tombstone replicated
// like a delete, then OnExpire once acknowledged.
func (n *Node) expireLocked(e *entry, targets []string) {
	x := expiry{rec: e.rec.public()}
	x.w = n.tombstoneLocked(e, targets)
	n.spawn(func() { n.finishExpiry(x) })
}

// finishExpiry waits for an expiry's tombstone to be acknowledged, then
// reports it. It is not reported when another node has taken the session
// over meanwhile: that node decides.
func (n *Node) finishExpiry(x expiry) {
	err := n.await(context.Background(), x.w, time.Now())
	if isFenced(err) {
		return
	}
	n.obs.Expired(x.rec.ID)
	if n.opts.OnExpire != nil {
		n.opts.OnExpire(x.rec)
	}
}

// tombstoneGC returns when a tombstone may be dropped: TombstoneTTL after
// the later of its deletion and the time the session would have expired.
func tombstoneGC(r *record, ttl time.Duration) int64 {
	return max(r.deletedAt, r.expiresAt()) + int64(ttl)
}

// orphanRole returns the live members (this node included) and whether
// this node sweeps orphans: the ready live node with the smallest name.
func (n *Node) orphanRole() (map[string]bool, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	live := map[string]bool{n.name: true}
	sweeper := n.IsReady()
	for name, p := range n.peers {
		if p.live() {
			live[name] = true
			if p.ready && name < n.name {
				sweeper = false
			}
		}
	}
	return live, sweeper
}
