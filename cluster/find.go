package cluster

import (
	"context"
	"fmt"
	"time"
)

// copyState is what a node knows locally of a session.
type copyState int

const (
	copyLive     copyState = iota // a live copy, not expired
	copyNone                      // no copy
	copyDeleted                   // a tombstone
	copyExpired                   // expired by this node's clock; another node may know a later access
	copyExpiring                  // expired, and this node (the owner) has just expired it
)

// Get returns this node's copy of a session: authoritative on its owner, a
// replica elsewhere (possibly a few milliseconds behind, or older when the
// owner was unreachable; Claim returns the newest). ErrNotFound when the
// node has no copy, holds a tombstone, or the session has expired by the
// node's clock; on the owner, that expires it then and there (OnExpire
// fires once, as from the sweep).
func (n *Node) Get(id string) (Record, error) {
	r, st := n.local(id)
	if st != copyLive {
		return Record{}, ErrNotFound
	}
	return r, nil
}

// LastKnown returns this node's copy of a session as Get does, for a node
// that cannot confirm it (cut off from the majority) and serves it marked
// stale: a replica's copy, or the owner's as long as it holds no write its
// peers have not acknowledged. It returns ErrNotAcknowledged for an owner's
// copy that does (a write or delete in flight, or one that failed: the
// majority may never have seen it, and the user was not told it was saved).
func (n *Node) LastKnown(id string) (Record, error) {
	if e := n.store.lock(id, false, 0); e != nil {
		holds, unsure := e.holds(n.name), e.unsure
		e.mu.Unlock()
		switch {
		case !holds: // a replica's copy
		case len(n.waits.pending(id)) > 0:
			return Record{}, fmt.Errorf("%w: a write to the session is in flight", ErrNotAcknowledged)
		case unsure != 0: // a write, or a delete, that failed
			return Record{}, fmt.Errorf("%w: this copy holds a write no peer acknowledged", ErrNotAcknowledged)
		}
	}
	return n.Get(id)
}

// local reads the local copy of id, expiring it if this node owns it and
// its time has come.
func (n *Node) local(id string) (Record, copyState) {
	now := nanos(n.clock.Now())
	e := n.store.lock(id, false, now)
	if e == nil {
		return Record{}, copyNone
	}
	defer e.mu.Unlock()
	r := e.rec
	switch {
	case r == nil:
		return Record{}, copyNone
	case r.deleted:
		return Record{}, copyDeleted
	case r.expiresAt() != 0 && now >= r.expiresAt():
		if !e.owned(n.name) {
			return Record{}, copyExpired
		}
		n.expireLocked(e, n.ackTargets())
		return Record{}, copyExpiring
	}
	pub := r.public()
	if r.bal.node == n.name && e.promised.cmp(r.bal) > 0 && !n.own.stalled(e) {
		// This node promised a takeover: its copy may already be behind
		// the new owner's. Name the claimant, so that a reader claims the
		// session (and gets the newest copy) instead of trusting this one.
		// Once the takeover is presumed abandoned, this node is named
		// again, as its peers name it, and a reader here claims the
		// session back (Find: mustReclaim), as a write would.
		pub.Owner = e.promised.node
	}
	return pub, copyLive
}

// Find returns a session wherever it is: this node's copy when it has a
// live one, else the newest copy its live peers hold (kept here as a
// replica). It is how a node answers a request for a session it has not
// received, or not yet: a write acknowledged by another peer, just before
// its owner died, is found. ErrNotFound when no live node has the session
// (or it was deleted or expired). Find changes no ownership: Claim does.
// On the owner, Find waits until the copy it returns is acknowledged by
// the peers as Options.Ack requires (re-sending it if a write to it was
// not), so that no read returns a write a takeover could lose. A copy
// under this node's name that its past incarnation owned is claimed again
// first, as a write would (the only case in which Find changes ownership).
func (n *Node) Find(ctx context.Context, id string) (Record, error) {
	r, st := n.local(id)
	if st == copyLive && r.Owner == n.name && n.own.mustReclaim(id) {
		// A copy under this node's name that this incarnation may not
		// serve as is (its past incarnation owned it): claim it again, as
		// a write would, so that the read is of the newest copy and can
		// be confirmed.
		return n.Claim(ctx, id)
	}
	if st == copyLive && r.Owner == n.name {
		// The owner's copy may hold writes not acknowledged yet: a read
		// returns only what a takeover would keep.
		if err := n.durable(ctx, id); err != nil {
			return Record{}, err
		}
		r, st = n.local(id)
	}
	switch st {
	case copyLive:
		return r, nil
	case copyDeleted, copyExpiring:
		return n.gone(ctx, id)
	}
	best, err := n.ask(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if best == nil {
		return Record{}, ErrNotFound
	}
	now := nanos(n.clock.Now())
	e := n.store.lock(id, true, now)
	_, settled := e.applyRecord(best, true)
	if e.rec != nil && e.rec.bal == best.bal && best.access > e.rec.access {
		e.rec.access = best.access
	}
	r2, live := Record{}, e.rec != nil && !e.rec.deleted && (e.rec.expiresAt() == 0 || now < e.rec.expiresAt())
	if live {
		r2 = e.rec.public()
	}
	e.mu.Unlock()
	n.settle(settled)
	if !live && best.deleted {
		return n.gone(ctx, id) // a peer's tombstone: as this node's own replica's
	}
	if !live {
		return Record{}, ErrNotFound
	}
	return r2, nil
}

// gone answers Find for a session this node holds a tombstone of:
// ErrNotFound, once that is what a takeover would keep. A delete is a write
// like any other: the owner's tombstone must hold no delete its peers may
// lack (durable; a node cut off from the majority that failed to delete a
// session refuses to say it is gone). At the majority levels a tombstone
// this node does not hold as its acknowledged owner (a replica's, which the
// majority may never have received if its owner failed to get it
// acknowledged) is claimed: the claim writes the newest copy a majority
// knows, tombstone or live, under this node's ownership, so that no other
// node can later find the session alive (or, if the majority holds a newer
// live copy, Find returns that, now owned here).
func (n *Node) gone(ctx context.Context, id string) (Record, error) {
	if err := n.durable(ctx, id); err != nil {
		return Record{}, err
	}
	if !n.opts.byMajority() || n.own.holdsAcknowledged(id) {
		return Record{}, ErrNotFound
	}
	return n.Claim(ctx, id)
}

// answerFrom is a query answer with its sender.
type answerFrom struct {
	peer string
	m    *answerMsg
}

// ask queries every live peer for its copy of id and returns the newest
// (ties in version broken by the latest access), nil when none has one
// (with the majority level, only if a majority answered: ErrNoMajority
// otherwise). It
// waits for every peer, but no longer than OwnerWait after the first copy
// arrived, so that a frozen peer delays it little.
func (n *Node) ask(ctx context.Context, id string) (*record, error) {
	req := n.newReq()
	ch := make(chan answerFrom, 64)
	n.mu.Lock()
	n.queries[req] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.queries, req)
		n.mu.Unlock()
	}()
	body := encodeBody(&queryMsg{req: req, id: id})
	ctx, cancel := context.WithTimeout(ctx, n.opts.ClaimTimeout)
	defer cancel()
	sent, answered := map[string]bool{}, map[string]bool{}
	var best *record
	var grace <-chan time.Time
	for {
		changed := n.waitChanged()
		peers, _ := n.claimPeers("")
		waiting := false
		for _, p := range peers {
			if !sent[p] {
				sent[p] = true
				n.sendBody(p, msgQuery, body)
			}
			waiting = waiting || !answered[p]
		}
		if !waiting {
			return best, n.noneFrom(best, answered)
		}
		select {
		case a := <-ch:
			answered[a.peer] = true
			if r := a.m.rec; r != nil && a.m.id == id {
				if best == nil || r.cmpVersion(best.bal, best.version) > 0 ||
					(r.cmpVersion(best.bal, best.version) == 0 && r.access > best.access) {
					best = r
				}
				if grace == nil {
					t := time.NewTimer(n.opts.OwnerWait)
					defer t.Stop()
					grace = t.C
				}
			}
		case <-changed:
			askAgain(sent, answered)
		case <-grace:
			return best, nil
		case <-ctx.Done():
			if best != nil {
				return best, nil
			}
			return nil, fmt.Errorf("%w: %w", ErrClaimTimeout, ctx.Err())
		}
	}
}

// noneFrom checks, when no peer that answered a query has a copy (best is
// nil), that the answers allow concluding that the session does not
// exist: with the majority level they must come from a majority of the
// cluster's ready nodes, this node included; else the session may live on
// nodes this one cannot hear, and ErrNoMajority says so.
func (n *Node) noneFrom(best *record, answered map[string]bool) error {
	ready := 0
	n.mu.Lock()
	for name := range answered {
		if p := n.peers[name]; p != nil && p.ready {
			ready++ // one still receiving the cluster's state may not have the session yet
		}
	}
	n.mu.Unlock()
	if best != nil || !n.opts.byMajority() || ready+1 >= n.opts.quorum() {
		return nil
	}
	n.noMajority.Add(1)
	return fmt.Errorf("%w: %d of %d nodes answered, %d needed to know the session does not exist",
		ErrNoMajority, len(answered)+1, n.opts.Size, n.opts.quorum())
}

// onQuery answers a peer's query with this node's copy.
func (n *Node) onQuery(peer string, m *queryMsg) {
	var body []byte
	if e := n.store.lock(m.id, false, 0); e != nil {
		if e.rec != nil {
			body = encodeBody(&answerMsg{req: m.req, id: m.id, rec: e.rec})
		}
		e.mu.Unlock()
	}
	if body == nil {
		body = encodeBody(&answerMsg{req: m.req, id: m.id})
	}
	n.sendBody(peer, msgAnswer, body)
}

// onAnswer hands a query answer to the Find waiting for it.
func (n *Node) onAnswer(peer string, m *answerMsg) {
	n.mu.Lock()
	ch := n.queries[m.req]
	n.mu.Unlock()
	if ch != nil {
		select {
		case ch <- answerFrom{peer: peer, m: m}:
		default:
		}
	}
}
