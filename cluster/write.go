package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Create creates a session owned by this node, at version 1, and
// replicates it (waiting per Options.Ack). ErrExists if the id is taken,
// even by a deleted session.
func (n *Node) Create(ctx context.Context, s NewSession) (Record, error) {
	start := time.Now()
	if len(s.ID) == 0 || len(s.ID) > maxIDLen {
		return Record{}, fmt.Errorf("cluster: session id of %d bytes, want 1 to %d", len(s.ID), maxIDLen)
	}
	targets, err := n.precheck()
	if err != nil {
		n.obs.WriteDone(n.opts.Ack, time.Since(start), err) // refused before anything was written
		return Record{}, err
	}
	now := nanos(n.clock.Now())
	e := n.store.lock(s.ID, true, now)
	if e.rec != nil {
		e.mu.Unlock()
		return Record{}, ErrExists
	}
	r := &record{id: s.ID, bal: ballot{n: e.promised.n + 1, node: n.name}, version: 1,
		created: orNow(nanos(s.Created), now), access: orNow(nanos(s.LastAccess), now),
		idle: int64(s.IdleTimeout), deadline: nanos(s.Deadline),
		vals: map[string][]byte{}, kver: map[string]uint64{}}
	for k, v := range s.Values {
		r.vals[k], r.kver[k] = v, 1
	}
	r.size = r.computeSize()
	if r.size > n.opts.MaxFrame {
		e.mu.Unlock()
		return Record{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, r.size, n.opts.MaxFrame)
	}
	e.rec, e.mine = r, true
	e.raise(r.bal)
	out := r.public()
	w := n.commitLocked(r.id, r.bal, r.version, targets, msgRecord, encodeBody(&recordMsg{rec: r}))
	e.mu.Unlock()
	return out, n.await(ctx, w, start)
}

func orNow(t, now int64) int64 {
	if t == 0 {
		return now
	}
	return t
}

// Update applies a request's delta to a session this node owns, as version
// Version+1, and replicates it (waiting per Options.Ack). Keys are merged
// one by one; see Result.Conflicts. A session this node's past incarnation
// owned (before a restart) is claimed again first. Errors: ErrNotFound,
// ErrNotOwner (a *NotOwnerError), ErrFenced, ErrBadBase, ErrConflict, ErrTooLarge, and
// for sync writes ErrNotAcknowledged or ErrAlone.
func (n *Node) Update(ctx context.Context, d Delta) (Result, error) {
	start := time.Now()
	targets, err := n.precheck()
	if err != nil {
		n.obs.WriteDone(n.opts.Ack, time.Since(start), err) // refused before anything was written
		return Result{}, err
	}
	e, err := n.lockOwned(ctx, d.ID)
	if err != nil {
		return Result{}, err
	}
	r := e.rec
	if d.Base > r.version {
		e.mu.Unlock()
		return Result{}, fmt.Errorf("%w: base %d, session at %d", ErrBadBase, d.Base, r.version)
	}
	if err := r.check(d); err != nil {
		e.mu.Unlock()
		return Result{}, err
	}
	m, conflicts, size := n.buildDelta(r, d)
	if size > n.opts.MaxFrame {
		e.mu.Unlock()
		return Result{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, n.opts.MaxFrame)
	}
	applyDeltaTo(r, m)
	res := Result{Record: r.public(), Conflicts: conflicts}
	w := n.commitLocked(d.ID, r.bal, r.version, targets, msgDelta, encodeBody(m))
	e.mu.Unlock()
	return res, n.await(ctx, w, start)
}

// check returns ErrConflict, wrapped, unless d's condition holds on r.
func (r *record) check(d Delta) error {
	if d.ExpectBase && r.version != d.Base {
		return fmt.Errorf("%w: session at version %d, expected %d", ErrConflict, r.version, d.Base)
	}
	for k, want := range d.Expect {
		got, ok := r.vals[k]
		if ok != (want != nil) || !bytes.Equal(got, want) {
			return fmt.Errorf("%w: key %q changed after version %d", ErrConflict, k, d.Base)
		}
	}
	return nil
}

// buildDelta turns d into the next delta of r, with the keys it conflicts
// on and the size the record would have.
func (n *Node) buildDelta(r *record, d Delta) (*deltaMsg, []string, int) {
	now := nanos(n.clock.Now())
	m := &deltaMsg{id: d.ID, bal: r.bal, version: r.version + 1,
		access: max(orNow(nanos(d.LastAccess), now), r.access), idle: r.idle, deadline: r.deadline}
	if d.IdleTimeout != 0 {
		m.idle = int64(d.IdleTimeout)
	}
	if !d.Deadline.IsZero() {
		m.deadline = nanos(d.Deadline)
	}
	var conflicts []string
	size := r.size
	for k, v := range d.Set {
		m.set = append(m.set, kv{key: k, val: v})
		size += len(v) - len(r.vals[k])
		if _, ok := r.kver[k]; !ok {
			size += len(k) + 12
		}
		if r.kver[k] > d.Base {
			conflicts = append(conflicts, k)
		}
	}
	for _, k := range d.Remove {
		if _, ok := r.kver[k]; !ok {
			continue // never set: nothing to remove, nothing to record
		}
		if _, set := d.Set[k]; set {
			continue // set and removed in one delta: the set wins
		}
		m.del = append(m.del, k)
		if r.kver[k] > d.Base {
			conflicts = append(conflicts, k)
		}
	}
	slices.Sort(conflicts)
	return m, conflicts, size
}

// Delete invalidates a session this node owns: it becomes a tombstone,
// replicated like a write, so that no late delta or stale copy can bring
// it back. Errors as Update.
func (n *Node) Delete(ctx context.Context, id string) error {
	start := time.Now()
	targets, err := n.precheck()
	if err != nil {
		n.obs.WriteDone(n.opts.Ack, time.Since(start), err) // refused before anything was written
		return err
	}
	e, err := n.lockOwned(ctx, id)
	if err != nil {
		return err
	}
	w := n.tombstoneLocked(e, targets)
	e.mu.Unlock()
	return n.await(ctx, w, start)
}

// tombstoneLocked turns the owned, locked entry into a tombstone and
// replicates it.
func (n *Node) tombstoneLocked(e *entry, targets []string) *waiter {
	r := e.rec
	r.version++
	r.deleted = true
	r.deletedAt = nanos(n.clock.Now())
	r.vals, r.kver = map[string][]byte{}, map[string]uint64{}
	r.size = r.computeSize()
	return n.commitLocked(r.id, r.bal, r.version, targets, msgRecord, encodeBody(&recordMsg{rec: r}))
}

// Touch records that a request used a session this node owns at time at
// (zero: now), without a new version. Touches are sent to peers in
// batches every Options.TouchInterval. Errors as Update.
func (n *Node) Touch(ctx context.Context, id string, at time.Time) error {
	e, err := n.lockOwned(ctx, id)
	if err != nil {
		return err
	}
	if t := orNow(nanos(at), nanos(n.clock.Now())); t > e.rec.access {
		e.rec.access = t
	}
	e.mu.Unlock()
	n.touchMu.Lock()
	n.touched[id] = struct{}{}
	n.touchMu.Unlock()
	return nil
}

// lockOwned returns the locked entry of a session this node owns,
// claiming it again first when reclaimable says so. A session whose time
// has come is expired then and there (as a read would) and reported as
// ErrNotFound: a write or a touch never revives an expired session that
// the sweep has not reached yet.
func (n *Node) lockOwned(ctx context.Context, id string) (*entry, error) {
	for claimed := false; ; claimed = true {
		e := n.store.lock(id, false, 0)
		if e == nil {
			return nil, ErrNotFound
		}
		if claimed || !n.own.reclaimable(e) {
			if err := n.own.ownerCheck(e, id); err != nil {
				e.mu.Unlock()
				return nil, err
			}
			if x := e.rec.expiresAt(); x != 0 && nanos(n.clock.Now()) >= x {
				n.expireLocked(e, n.ackTargets())
				e.mu.Unlock()
				return nil, ErrNotFound
			}
			return e, nil
		}
		e.mu.Unlock()
		if _, err := n.Claim(ctx, id); err != nil {
			return nil, err
		}
	}
}

// precheck returns the peers a write will wait for, or ErrAlone, or
// ErrNoMajority.
func (n *Node) precheck() ([]string, error) {
	if n.closed() {
		return nil, ErrClosed
	}
	if n.opts.Ack == AckNone {
		return nil, nil
	}
	targets := n.ackTargets()
	switch {
	case n.opts.byMajority() && len(targets)+1 < n.opts.quorum():
		n.noMajority.Add(1)
		return nil, fmt.Errorf("%w: %d of %d nodes ready, %d needed", ErrNoMajority, len(targets)+1, n.opts.Size, n.opts.quorum())
	case len(targets) == 0 && n.opts.FailWhenAlone:
		return nil, ErrAlone
	}
	return targets, nil
}

// need returns how many of targets a sync write waits for, and the least
// it may fall to when targets leave (a majority's share; 0: no floor).
func (n *Node) need(targets []string) (need, floor int) {
	switch n.opts.Ack {
	case AckAll:
		return max(len(targets), n.opts.quorum()-1), n.opts.quorum() - 1
	case AckMajority:
		return n.opts.quorum() - 1, n.opts.quorum() - 1
	}
	return 1, 0
}

// commitLocked queues an owner's write for every peer, registering the
// waiter first when the write is sync. The entry must be locked.
func (n *Node) commitLocked(id string, bal ballot, version uint64, targets []string, t MessageType, body []byte) *waiter {
	var w *waiter
	if need, floor := n.need(targets); n.opts.Ack != AckNone && len(targets) > 0 && need > 0 {
		w = n.waits.add(id, bal, version, targets, need, floor, n.own.leases.now())
		var gone []string
		for _, t := range targets {
			if !n.isTarget(t) {
				gone = append(gone, t)
			}
		}
		n.waits.drop(w, gone)
	}
	n.broadcast(t, body)
	return w
}

// await waits for a write's acknowledgements (nothing to wait for when w
// is nil) and reports the write to the observer. A write that was not
// acknowledged leaves its session unsure (see entry.unsure); one that was
// makes every earlier version of its ballot sure.
func (n *Node) await(ctx context.Context, w *waiter, start time.Time) error {
	var err error
	if w != nil {
		err = n.waits.wait(ctx, w, n.opts.AckTimeout, n.closing)
		if err != nil && isFenced(err) {
			n.obs.Fenced(w.id, true)
		}
		if errors.Is(err, ErrNoMajority) {
			n.noMajority.Add(1)
		}
		n.settleSure(w, err)
	}
	n.obs.WriteDone(n.opts.Ack, time.Since(start), err)
	return err
}

// settleSure records the outcome of w in its session's entry.
func (n *Node) settleSure(w *waiter, err error) {
	e := n.store.lock(w.id, false, 0)
	if e == nil {
		return
	}
	defer e.mu.Unlock()
	if e.rec == nil || e.rec.bal != w.bal {
		return
	}
	switch {
	case err == nil && e.unsure <= w.version:
		e.unsure = 0 // a peer applied w.version, and so every version before it
	case err != nil && !isFenced(err) && !w.confirm:
		e.unsure = max(e.unsure, w.version)
	}
	if err == nil && n.opts.byMajority() {
		n.own.leases.hold(e, w.sent) // a majority acknowledged: each granted a lease
	}
}

// Confirm returns nil when a read that returned r (by Find, Claim, Create
// or Update on this node, its owner) returned what a majority would. It
// fails with ErrFenced when r is no longer this node's copy under the same
// ownership (another node took the session over since, even if this node
// took it back): a read that loaded a copy this node held while cut off
// must not be confirmed by the copy it holds now. Then, at the majority
// levels, it returns at once while
// the node holds a lease on the session (a majority acknowledged one of its
// writes or confirmations less than Options.Lease ago, see lease.go), else
// it sends the record to the peers and waits until a majority of the
// cluster, this node included, holds it under this node's ownership (a node
// cut off from the majority, or whose session another node took over, gets
// ErrNoMajority, ErrNotAcknowledged or ErrFenced); in the other modes it
// only waits until
// the copy holds no unacknowledged write (see Find). The session layer
// calls it before answering a request that read the session and wrote
// nothing, since a write confirms itself.
func (n *Node) Confirm(ctx context.Context, r Record) error {
	id := r.ID
	if err := n.own.sameOwnership(id, r); err != nil {
		return err
	}
	if !n.opts.byMajority() {
		return n.durable(ctx, id)
	}
	if n.own.leased(id) {
		n.own.leases.local.Add(1)
		return n.durable(ctx, id) // waits for the writes in flight, as any read
	}
	n.own.leases.trips.Add(1)
	start := time.Now()
	targets, err := n.precheck()
	if err != nil {
		return err
	}
	e, err := n.lockOwned(ctx, id)
	if err != nil {
		return err
	}
	if err := n.own.sameOwnershipLocked(e, r); err != nil { // lockOwned may have claimed it again
		e.mu.Unlock()
		return err
	}
	rec, unsure := e.rec, e.unsure
	w := n.commitLocked(id, rec.bal, rec.version, targets, msgRecord, encodeBody(&recordMsg{rec: rec}))
	e.mu.Unlock()
	if w != nil && unsure == 0 && len(n.waits.pending(id)) == 1 {
		w.confirm = true // nothing in the copy is unacknowledged: it stays so if this fails
	}
	return n.await(ctx, w, start)
}

// durable returns once the owner's copy of session id holds no write that
// its peers may lack: it waits for the writes still waiting for their
// acknowledgements and, if one failed, sends the whole record again and
// waits for that. A read on the owner thus never returns a write that a
// takeover could lose (with Ack AckOne or AckAll). Errors: ErrNotAcknowledged
// when the record could not be confirmed in time.
func (n *Node) durable(ctx context.Context, id string) error {
	if n.opts.Ack == AckNone {
		return nil // async: reads see the owner's writes at once, by definition
	}
	timer := time.NewTimer(n.opts.AckTimeout)
	defer timer.Stop()
	failed := false // a write failed whose settleSure may not have run yet
	for _, w := range n.waits.pending(id) {
		select {
		case <-w.over:
			failed = failed || w.err != nil && !isFenced(w.err)
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNotAcknowledged, ctx.Err())
		case <-timer.C:
			return fmt.Errorf("%w: a write to the session is still unacknowledged after %v", ErrNotAcknowledged, n.opts.AckTimeout)
		}
	}
	targets, err := n.precheck()
	if err != nil {
		return err
	}
	e := n.store.lock(id, false, 0)
	if e == nil {
		return nil
	}
	if e.unsure == 0 && !failed || !e.holds(n.name) { // a tombstone too: a delete is a write
		e.mu.Unlock()
		return nil
	}
	r := e.rec
	w := n.commitLocked(id, r.bal, r.version, targets, msgRecord, encodeBody(&recordMsg{rec: r}))
	e.mu.Unlock()
	return n.await(ctx, w, time.Now())
}

// touchLoop sends batched last-access times to the peers.
func (n *Node) touchLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.TouchInterval)
	defer t.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-t.C:
			n.flushTouches()
		}
	}
}

func (n *Node) flushTouches() {
	n.touchMu.Lock()
	ids := n.touched
	if len(ids) == 0 {
		n.touchMu.Unlock()
		return
	}
	n.touched = map[string]struct{}{}
	n.touchMu.Unlock()
	batch := &touchMsg{}
	size := 0
	for id := range ids {
		e := n.store.lock(id, false, 0)
		if e == nil {
			continue
		}
		if r := e.rec; r != nil && !r.deleted && r.bal.node == n.name {
			batch.items = append(batch.items, touchItem{id: id, bal: r.bal, access: r.access})
			size += len(id) + 32
		}
		e.mu.Unlock()
		if size > n.opts.MaxFrame/2 {
			n.broadcast(msgTouch, encodeBody(batch))
			batch, size = &touchMsg{}, 0
		}
	}
	if len(batch.items) > 0 {
		n.broadcast(msgTouch, encodeBody(batch))
	}
}
