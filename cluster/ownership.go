package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ownership is the part of a Node that decides who owns each session and
// may write it: takeovers (claim.go: the proposer side of a single-decree
// Paxos round per session), promises (the acceptor side, below), read
// leases (lease.go) and fencing (the owner's checks before it writes). It
// keeps no copies of sessions: the ballots and records it decides on are
// in the store's entries, and it reaches the peers and the node's write
// path through two small interfaces, which the Node implements.
//
// Lock order: see the package documentation. ownership.mu protects only
// the claims in flight and the promises they wait for; it is taken after
// an entry's mutex, never before, and Node.mu only through spawn.
type ownership struct {
	self    string
	opts    *Options // resolved (Ack, Size); read only
	store   *store
	net     claimNet
	w       claimWriter
	leases  *leases
	obs     Observer
	log     *slog.Logger
	clock   Clock
	closing <-chan struct{}
	spawn   func(func()) bool // runs a goroutine that Node.Close waits for; false once closing
	refused *atomic.Uint64    // operations refused with ErrNoMajority (Node.Info)
	reqID   atomic.Uint64

	mu       sync.Mutex                  // protects claiming and promises
	claiming map[string]*claimCall       // the takeover in flight per session
	promises map[uint64]chan promiseFrom // phase-1 answers, by request id
}

// claimNet is what ownership needs of membership and the replication
// links.
type claimNet interface {
	// claimPeers returns the live peers whose promise a takeover requires
	// (all but the believed owner), and whether that owner is alive.
	claimPeers(owner string) (required []string, ownerAlive bool)
	// readyAmong counts the peers of answers that are ready.
	readyAmong(answers map[string]*promiseMsg) int
	// waitChanged returns a channel closed at the next membership change.
	waitChanged() <-chan struct{}
	// sendBody queues a message for a peer.
	sendBody(peer string, t MessageType, body []byte)
	// IsReady reports whether this node has received the cluster's state.
	IsReady() bool
}

// claimWriter is what a takeover needs of the node's write path: the
// adopted record is replicated and acknowledged like an owner's write.
type claimWriter interface {
	precheck() ([]string, error)
	commitLocked(id string, bal ballot, version uint64, targets []string, t MessageType, body []byte) *waiter
	await(ctx context.Context, w *waiter, start time.Time) error
	settle(s []settled)
}

// newOwnership returns the ownership part of node n, whose options are
// resolved.
func newOwnership(n *Node) *ownership {
	lease := time.Duration(0)
	if n.opts.byMajority() {
		lease = n.opts.Lease
	}
	return &ownership{self: n.name, opts: &n.opts, store: n.store, net: n, w: n, leases: newLeases(lease),
		obs: n.obs, log: n.log, clock: n.clock, closing: n.closing, spawn: n.spawn, refused: &n.noMajority,
		claiming: map[string]*claimCall{}, promises: map[uint64]chan promiseFrom{}}
}

// onPromise hands a phase-1 answer to the claim waiting for it.
func (o *ownership) onPromise(peer string, m *promiseMsg) {
	o.mu.Lock()
	ch := o.promises[m.req]
	o.mu.Unlock()
	if ch != nil {
		select {
		case ch <- promiseFrom{peer: peer, m: m}:
		default: // the claim has enough answers or is gone
		}
	}
}

// onPrepare is the acceptor's side of a takeover's first phase.
func (o *ownership) onPrepare(peer string, m *prepareMsg) {
	e := o.store.lock(m.id, true, nanos(o.clock.Now()))
	wasOwner := e.owned(o.self)
	ok := e.promise(m.bal)
	reply := &promiseMsg{req: m.req, id: m.id, ok: ok, promised: e.promised}
	if ok {
		reply.lease = o.leases.left(e, m.bal.node)
	}
	if ok && e.rec != nil && e.rec.cmpVersion(m.known, m.knownVer) > 0 {
		reply.rec = e.rec
	}
	body := encodeBody(reply)
	e.mu.Unlock()
	if ok && wasOwner {
		o.log.Debug("cluster: session taken over", "id", short(m.id), "by", m.bal.node)
	}
	o.net.sendBody(peer, msgPromise, body)
}

// learnFencing records the newer ballots peers reported when they fenced
// this node's writes, so that its next writes fail at once, without a
// round trip, until the new owner's record arrives.
func (o *ownership) learnFencing(entries []ackEntry) {
	for _, a := range entries {
		if a.status != ackFenced {
			continue
		}
		if e := o.store.lock(a.id, false, 0); e != nil {
			e.raise(a.bal)
			e.mu.Unlock()
		}
	}
}

// grant grants the owner of a locked entry a lease as this node
// acknowledges its write as applied (see answer: a node still joining
// acknowledges nothing, and so grants nothing).
func (o *ownership) grant(e *entry, st applyStatus) {
	if st == statusApplied && o.net.IsReady() {
		o.leases.grant(e)
	}
}

// reclaimable reports whether this node should claim again a session
// recorded under its own name that it cannot write as is: its past
// incarnation owned it (this incarnation never writes under a ballot it did
// not win), or it promised a takeover that has not completed for longer
// than a takeover may take (the claimant died half-way; the session must
// not stay blocked). A takeover promised less than ClaimTimeout ago is
// presumed to be completing: the write is fenced, so that an owner waking
// from a freeze cannot write over the new owner's data before its record
// arrives.
func (o *ownership) reclaimable(e *entry) bool {
	r := e.rec
	switch {
	case r == nil || r.deleted || r.bal.node != o.self || e.owned(o.self):
		return false
	case !e.mine || e.promised.node == o.self:
		return true
	}
	return o.stalled(e)
}

// stalled reports whether the locked entry's promise is older than a
// takeover may take (ClaimTimeout): a takeover by another node that has not
// completed by then is presumed abandoned (its claimant died half-way, or
// could not gather its peers), by reclaimable and by the owner it names.
func (o *ownership) stalled(e *entry) bool {
	return time.Now().UnixNano()-e.raisedAt > int64(o.opts.ClaimTimeout)
}

// mustReclaim reports whether session id is recorded under this node's
// name but must be claimed again before this node serves it (reclaimable).
func (o *ownership) mustReclaim(id string) bool {
	e := o.store.lock(id, false, 0)
	if e == nil {
		return false
	}
	defer e.mu.Unlock()
	return o.reclaimable(e)
}

// holdsAcknowledged reports whether this node holds session id's record,
// live or a tombstone, as its owner (entry.holds) with every write to it
// acknowledged: a copy a takeover would keep.
func (o *ownership) holdsAcknowledged(id string) bool {
	e := o.store.lock(id, false, 0)
	if e == nil {
		return false
	}
	defer e.mu.Unlock()
	return e.holds(o.self) && e.unsure == 0
}

// ownerCheck verifies that this node owns the locked entry's session and
// has not promised a takeover to another node.
func (o *ownership) ownerCheck(e *entry, id string) error {
	r := e.rec
	switch {
	case r == nil || r.deleted:
		return ErrNotFound
	case r.bal.node != o.self || !e.mine:
		return &NotOwnerError{ID: id, Owner: r.bal.node, Epoch: r.bal.n}
	case e.promised != r.bal:
		o.obs.Fenced(id, true)
		return fmt.Errorf("%w: %s is taking session %s over", ErrFenced, e.promised.node, short(id))
	}
	return nil
}

// sameOwnership checks that this node still owns session id under the
// ballot of r, a record it returned: ErrFenced if another takeover came
// in between, ErrNotFound if the session is gone.
func (o *ownership) sameOwnership(id string, r Record) error {
	e := o.store.lock(id, false, 0)
	if e == nil {
		return ErrNotFound
	}
	defer e.mu.Unlock()
	return o.sameOwnershipLocked(e, r)
}

// sameOwnershipLocked is sameOwnership on a locked entry.
func (o *ownership) sameOwnershipLocked(e *entry, r Record) error {
	switch cur := e.rec; {
	case cur == nil || cur.deleted:
		return ErrNotFound
	case cur.bal != (ballot{n: r.Epoch, node: r.Owner}):
		return fmt.Errorf("%w: the copy read (epoch %d of %s) was superseded by epoch %d of %s",
			ErrFenced, r.Epoch, r.Owner, cur.bal.n, cur.bal.node)
	case !e.mine:
		return fmt.Errorf("%w: the copy read (epoch %d of %s) belongs to this node's past incarnation", ErrFenced, r.Epoch, r.Owner)
	case !e.owned(o.self):
		return fmt.Errorf("%w: %s is taking the session over", ErrFenced, e.promised.node)
	}
	return nil
}

// leased reports whether this node owns session id and trusts its lease
// on it, so that a read needs no round trip (lease.go).
func (o *ownership) leased(id string) bool {
	e := o.store.lock(id, false, 0)
	if e == nil {
		return false
	}
	defer e.mu.Unlock()
	return o.leases.held(e, o.self) && e.unsure == 0
}
