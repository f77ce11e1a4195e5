package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"time"
)

// ErrClaimTimeout: a takeover did not complete within Options.ClaimTimeout,
// typically because a peer that gossip still lists as alive does not answer.
var ErrClaimTimeout = errors.New("cluster: takeover did not complete in time")

// claimCall is one takeover in flight; concurrent Claims of the same
// session on one node share it.
type claimCall struct {
	done chan struct{}
	rec  Record
	err  error
}

// promiseFrom is a phase-1 answer with its sender.
type promiseFrom struct {
	peer string
	m    *promiseMsg
}

// Claim makes this node the owner of session id and returns the newest
// acknowledged version of it, so that a request for a session owned by
// another node (dead, frozen, draining, or simply elsewhere) can be served
// here with the same id. It returns at once when this node already owns it.
//
// A takeover is a single-decree Paxos round over the peers: this node picks
// a ballot (epoch, name) above any it has seen and asks every live peer to
// promise it; a peer promises unless it promised a higher ballot, and sends
// its copy when newer. The previous owner's answer is not required (it may
// be dead or frozen) but is awaited for Options.OwnerWait when gossip lists
// it as alive. With every answer in, this node adopts the newest copy, makes
// it its own under the new epoch and replicates it (waiting per
// Options.Ack). Peers that promised reject any later write of an older
// epoch, so a frozen previous owner that wakes up cannot overwrite the new
// owner's data: its writes fail with ErrFenced. Claims racing on several
// nodes end with exactly one owner; the others retry with a higher ballot
// after a random pause, so the last to finish wins and each started from
// the data of the one before.
//
// Errors: ErrNotFound when no live node has the session (or it was
// deleted), ErrClaimTimeout, ErrNotAcknowledged, ErrAlone, ErrNoMajority
// (AckMajority: a majority of the cluster must promise), ErrClosed.
func (n *Node) Claim(ctx context.Context, id string) (Record, error) { return n.own.claim(ctx, id) }

// claim is Node.Claim: concurrent claims of one session share one round.
func (o *ownership) claim(ctx context.Context, id string) (Record, error) {
	if len(id) == 0 || len(id) > maxIDLen {
		return Record{}, fmt.Errorf("cluster: session id of %d bytes, want 1 to %d", len(id), maxIDLen)
	}
	o.mu.Lock()
	c := o.claiming[id]
	if c == nil {
		c = &claimCall{done: make(chan struct{})}
		o.claiming[id] = c
		if !o.spawn(func() {
			c.rec, c.err = o.run(id)
			o.mu.Lock()
			delete(o.claiming, id)
			o.mu.Unlock()
			close(c.done)
		}) {
			delete(o.claiming, id)
			o.mu.Unlock()
			return Record{}, ErrClosed
		}
	}
	o.mu.Unlock()
	select {
	case <-c.done:
		r := c.rec
		r.Values = maps.Clone(r.Values)
		return r, c.err
	case <-ctx.Done():
		return Record{}, fmt.Errorf("%w: %w", ErrClaimTimeout, ctx.Err())
	}
}

// run runs takeover rounds until one decides.
func (o *ownership) run(id string) (Record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.opts.ClaimTimeout)
	defer cancel()
	go func() {
		select {
		case <-o.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	var floor uint64
	for attempt := 1; ; attempt++ {
		rec, retry, err := o.claimRound(ctx, id, &floor, start)
		if !retry {
			o.obs.Claimed(id, attempt, time.Since(start), err)
			return rec, err
		}
		pause := time.Duration(rand.Int64N(int64(min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)) + 1))
		select {
		case <-ctx.Done():
			err := fmt.Errorf("%w after %d rounds", ErrClaimTimeout, attempt)
			o.obs.Claimed(id, attempt, time.Since(start), err)
			return Record{}, err
		case <-time.After(pause): // randomized backoff between competing claimants
		}
	}
}

// claimRound runs one takeover round. retry is true when a competing
// ballot won this round.
func (o *ownership) claimRound(ctx context.Context, id string, floor *uint64, start time.Time) (Record, bool, error) {
	targets, err := o.w.precheck()
	if err != nil {
		return Record{}, false, err
	}
	b, owner, prep, done := o.prepareLocal(id, *floor)
	if done != nil {
		return done.rec, false, done.err
	}
	answers, err := o.collectPromises(ctx, id, owner, prep)
	if err != nil {
		return Record{}, false, err
	}
	for _, a := range answers {
		if !a.ok {
			*floor = max(*floor, a.promised.n)
			return Record{}, true, nil
		}
	}
	if err := o.waitLeases(ctx, id, answers); err != nil {
		return Record{}, false, err
	}
	e := o.store.lock(id, true, nanos(o.clock.Now()))
	if e.promised != b {
		*floor = max(*floor, e.promised.n)
		e.mu.Unlock()
		return Record{}, true, nil
	}
	best := newest(e.rec, answers)
	if best == nil {
		e.mu.Unlock()
		return Record{}, false, ErrNotFound
	}
	// The newest copy is written under the new ballot even when it is a
	// tombstone: one that its owner failed to get acknowledged may be held
	// by a minority only, and a later claim by another majority must not
	// find the session alive after this one answered it was gone.
	r := best.clone()
	r.bal, r.promised = b, b
	if e.rec != nil && e.rec.bal == best.bal { // touches make no versions: keep the latest access
		r.access = max(r.access, e.rec.access)
	}
	for _, a := range answers {
		if a.rec != nil && a.rec.bal == best.bal {
			r.access = max(r.access, a.rec.access)
		}
	}
	e.rec, e.mine, e.heldUntil = r, true, 0
	settled := e.drain()
	out, deleted := r.public(), r.deleted // r is the entry's now: read under its lock
	w := o.w.commitLocked(id, b, r.version, targets, msgRecord, encodeBody(&recordMsg{rec: r}))
	e.mu.Unlock()
	o.w.settle(settled)
	if err := o.w.await(ctx, w, start); err != nil {
		if errors.Is(err, ErrFenced) {
			return Record{}, true, nil
		}
		return Record{}, false, err
	}
	if deleted {
		return Record{}, false, ErrNotFound
	}
	o.log.Debug("cluster: session claimed", "id", short(id), "epoch", b.n, "from", owner)
	return out, false, nil
}

// prepareLocal promises a new ballot locally and builds the prepare
// message. done is set when no round is needed.
func (o *ownership) prepareLocal(id string, floor uint64) (b ballot, owner string, prep *prepareMsg, done *claimCall) {
	e := o.store.lock(id, true, nanos(o.clock.Now()))
	defer e.mu.Unlock()
	r := e.rec
	if e.owned(o.self) {
		return b, "", nil, &claimCall{rec: r.public()}
	}
	if r != nil && r.deleted && (!o.opts.byMajority() || e.holds(o.self) && e.unsure == 0) {
		// At the majority levels, only a tombstone this node holds as its
		// acknowledged owner is known to be what a majority holds; any
		// other runs a round, which writes it to a majority.
		return b, "", nil, &claimCall{err: ErrNotFound}
	}
	prep = &prepareMsg{id: id}
	if r != nil {
		owner, prep.known, prep.knownVer = r.bal.node, r.bal, r.version
		if e.promised.cmp(r.bal) > 0 && e.promised.node != o.self {
			owner = e.promised.node // a takeover by that node is under way or done
		}
	}
	if owner == o.self {
		owner = "" // a past incarnation of this node: wait for everyone
	}
	b = ballot{n: max(e.promised.n, floor) + 1, node: o.self}
	e.raise(b)
	prep.bal = b
	return b, owner, prep, nil
}

// collectPromises sends the prepare to every live peer and gathers the
// answers: all of them except the believed owner's, which is awaited for
// OwnerWait only if gossip lists that owner as alive. Peers that die while
// it waits stop being waited for; at every membership change, those that
// have not answered are asked again (askAgain).
func (o *ownership) collectPromises(ctx context.Context, id, owner string, prep *prepareMsg) (map[string]*promiseMsg, error) {
	prep.req = o.reqID.Add(1)
	ch := make(chan promiseFrom, 64)
	o.mu.Lock()
	o.promises[prep.req] = ch
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.promises, prep.req)
		o.mu.Unlock()
	}()
	body := encodeBody(prep)
	sent := map[string]bool{}
	answers := map[string]*promiseMsg{}
	var ownerWait <-chan time.Time
	majority := o.opts.byMajority()
	// A majority counts only ready nodes: one that restarted and has not
	// received the cluster's state yet may lack the last acknowledged write
	// its promise should bring.
	enough := func() bool {
		self := 0
		if o.net.IsReady() {
			self = 1 // this node, too, only once it has the cluster's state
		}
		return !majority || o.net.readyAmong(answers)+self >= o.opts.quorum()
	}
	for {
		changed := o.net.waitChanged()
		required, ownerAlive := o.net.claimPeers(owner)
		if majority {
			reachable := len(required) + 1 // and this node
			if ownerAlive {
				reachable++
			}
			if reachable < o.opts.quorum() {
				o.refused.Add(1)
				return nil, fmt.Errorf("%w: %d of %d nodes reachable for a takeover, %d needed", ErrNoMajority, reachable, o.opts.Size, o.opts.quorum())
			}
		}
		for _, p := range append(required, owner) {
			if p != "" && !sent[p] && (p != owner || ownerAlive) {
				sent[p] = true
				o.net.sendBody(p, msgPrepare, body)
			}
		}
		complete := true
		for _, p := range required {
			if a := answers[p]; a == nil {
				complete = false
			} else if !a.ok {
				return map[string]*promiseMsg{p: a}, nil
			}
		}
		if complete && enough() {
			if !ownerAlive || answers[owner] != nil {
				break
			}
			if ownerWait == nil {
				t := time.NewTimer(o.opts.OwnerWait)
				defer t.Stop()
				ownerWait = t.C
			}
		}
		select {
		case a := <-ch:
			if a.m.id == id {
				answers[a.peer] = a.m
				if !a.m.ok {
					return map[string]*promiseMsg{a.peer: a.m}, nil
				}
			}
		case <-changed:
			askAgain(sent, answers)
		case <-ownerWait:
			if enough() {
				return answers, nil
			}
			ownerWait = nil // the owner's promise is needed for a majority: wait for it
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for %v", ErrClaimTimeout, missing(required, answers))
		}
	}
	return answers, nil
}

// newest returns the newest of the local record and the promises' copies.
func newest(local *record, answers map[string]*promiseMsg) *record {
	best := local
	for _, a := range answers {
		if a.rec != nil && (best == nil || a.rec.cmpVersion(best.bal, best.version) > 0) {
			best = a.rec
		}
	}
	return best
}

// waitLeases waits, before a claimant writes session id, until no lease
// that its promisers (or this node) granted to the session's owner can
// still be trusted (see lease.go). There is nothing to wait for when the
// owner of the newest copy promised, or is this node: it stopped trusting
// its lease as it promised, or died.
func (o *ownership) waitLeases(ctx context.Context, id string, answers map[string]*promiseMsg) error {
	e := o.store.lock(id, true, nanos(o.clock.Now()))
	holder := ""
	if best := newest(e.rec, answers); best != nil {
		holder = best.bal.node
	}
	wait := o.leases.left(e, o.self)
	e.mu.Unlock()
	if holder == o.self || answers[holder] != nil {
		return nil
	}
	for _, a := range answers {
		wait = max(wait, a.lease)
	}
	if wait <= 0 {
		return nil
	}
	o.leases.waited.Add(1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C: // the owner's lease is over: it serves no more reads from its copy
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting %v for the owner's lease to end: %w", ErrClaimTimeout, wait, ctx.Err())
	}
}

// askAgain forgets that a request was sent to the peers that have not
// answered it, so that it is sent to them again: an answer is lost when
// its sender believed this node dead as it answered (its link to this
// node was closed: link.enqueue drops the message), and the peer's link
// coming back is a membership change here (its handshake), after which
// the answer gets through. Prepares and queries are idempotent: a peer
// that promised a ballot promises it again.
func askAgain[T any](sent map[string]bool, answers map[string]T) {
	for p := range sent {
		if _, ok := answers[p]; !ok {
			delete(sent, p)
		}
	}
}

func missing(required []string, answers map[string]*promiseMsg) []string {
	var out []string
	for _, p := range required {
		if answers[p] == nil {
			out = append(out, p)
		}
	}
	return out
}

func isFenced(err error) bool { return errors.Is(err, ErrFenced) }
