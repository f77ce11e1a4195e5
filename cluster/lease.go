package cluster

import (
	"sync/atomic"
	"time"
)

// Read leases, at the majority levels (AckMajority, AckAll).
//
// A peer that acknowledges an owner's write of a session, or its
// confirmation, grants the owner a lease on that session for Options.Lease
// (on the peer's clock, from the moment it applied the write): if another
// node asks it to promise a takeover meanwhile, it promises at once (and so
// fences the old owner's later writes) but answers with the time the lease
// still has to run, and the claimant waits that long before it adopts the
// session and writes it. The owner, once a majority acknowledged a message
// it sent at time t, trusts its lease until t + leaseTrust(Lease) on its own
// clock. Any takeover needs the promise of a majority, which shares a node
// with the majority that acknowledged; so no other node writes the session
// before the owner stops trusting its lease, and the owner answers a read
// from its own copy, without a round trip, while it trusts it.
//
// Time is measured with each node's monotonic clock only; no clocks are
// compared. The owner counts from before any grantor's count starts and
// trusts 90 % of the lease, which holds as long as no node's clock runs
// more than 5 % fast or slow (1/1.05² > 0.9): see docs/cluster.md.
//
// Two refinements keep takeovers fast: a claimant does not wait when the
// lease holder itself promised (it stops trusting its lease as it does),
// nor for a lease its own name holds (its past incarnation, which died). A
// node that started less than Options.Lease ago answers every promise with
// the rest of that time: its past incarnation may have granted leases it
// no longer knows of.

// leaseTrust is how long an owner trusts a lease of duration d.
func leaseTrust(d time.Duration) time.Duration { return d * 9 / 10 }

// leases is a node's lease bookkeeping that is not per session.
type leases struct {
	d      time.Duration // Options.Lease; 0: leases are off
	born   time.Time     // when the node started (monotonic)
	local  atomic.Uint64 // reads confirmed by a lease, without a round trip
	trips  atomic.Uint64 // reads confirmed by a round trip to the peers
	waited atomic.Uint64 // takeovers that waited for a lease to end
}

func newLeases(d time.Duration) *leases {
	if d < 0 {
		d = 0
	}
	return &leases{d: d, born: time.Now()}
}

// now is the node's monotonic time in nanoseconds since it started.
func (l *leases) now() int64 { return int64(time.Since(l.born)) }

// grant records that this node acknowledges the owner's write of the
// locked entry's session: it will not let another node take the session
// over for the lease's duration. Only a write of the ballot this node has
// promised grants: a fenced or superseded one does not.
func (l *leases) grant(e *entry) {
	if l.d == 0 || e.rec == nil || e.rec.deleted || e.rec.bal != e.promised {
		return
	}
	e.grantTo = e.rec.bal.node
	e.grantUntil = l.now() + int64(l.d)
}

// left returns how long a claimant must wait, for this node's sake, before
// it may write the locked entry's session: the lease this node granted to
// an owner other than the claimant, or the rest of Options.Lease after this
// node started.
func (l *leases) left(e *entry, claimant string) time.Duration {
	if l.d == 0 {
		return 0
	}
	now := l.now()
	left := int64(l.d) - now // the past incarnation's grants
	if e.grantTo != claimant && e.grantUntil-now > left {
		left = e.grantUntil - now
	}
	return time.Duration(max(left, 0))
}

// hold records that a majority acknowledged a message of the locked
// entry's owner sent at sent (l.now() then): the owner trusts its lease
// until sent plus leaseTrust.
func (l *leases) hold(e *entry, sent int64) {
	if l.d == 0 {
		return
	}
	e.heldUntil = max(e.heldUntil, sent+int64(leaseTrust(l.d)))
}

// held reports whether the owner of the locked entry may answer a read
// from its copy: it owns the session and trusts its lease.
func (l *leases) held(e *entry, self string) bool {
	return l.d != 0 && e.owned(self) && l.now() < e.heldUntil
}
