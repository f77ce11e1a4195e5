package cluster

import (
	"fmt"
	"time"
)

// fetchInterval is how long a node waits before asking again for the full
// record of a session whose deltas it cannot apply.
const fetchInterval = 200 * time.Millisecond

// handle processes one in-order message from peer. It never blocks on the
// network: answers are queued on the peer's link.
func (n *Node) handle(in *inbound, peer string, m message) error {
	switch m := m.(type) {
	case *deltaMsg:
		n.onDelta(in, peer, m)
	case *recordMsg:
		n.onRecord(in, peer, m)
	case *touchMsg:
		now := nanos(n.clock.Now())
		for _, t := range m.items {
			if e := n.store.lock(t.id, false, now); e != nil {
				e.applyTouch(t)
				e.mu.Unlock()
			}
		}
	case *prepareMsg:
		n.own.onPrepare(peer, m)
	case *promiseMsg:
		n.own.onPromise(peer, m)
	case *fetchMsg:
		if e := n.store.lock(m.id, false, 0); e != nil {
			var body []byte
			if e.rec != nil {
				body = encodeBody(&recordMsg{copy: true, rec: e.rec})
			}
			e.mu.Unlock()
			if body != nil {
				n.sendBody(peer, msgRecord, body)
			}
		}
	case *syncRequestMsg:
		n.spawn(func() { n.streamState(peer, in, m.req) })
	case *syncChunkMsg:
		n.onSyncChunk(peer, m)
	case *statusMsg:
		n.setReady(peer, m.ready, m.leaving)
	case *queryMsg:
		n.onQuery(peer, m)
	case *answerMsg:
		n.onAnswer(peer, m)
	default:
		return fmt.Errorf("%w: %s on an incoming connection", ErrMalformed, m.kind())
	}
	return nil
}

// onDelta applies, buffers or fences a replicated delta and acknowledges it.
func (n *Node) onDelta(in *inbound, peer string, d *deltaMsg) {
	e := n.store.lock(d.id, true, nanos(n.clock.Now()))
	st, settled := e.applyDelta(d, peer)
	fetch := st == statusPending && n.fetchDue(e)
	a, ok := e.ack(d.id, st)
	n.own.grant(e, st)
	if f := n.applied.Load(); f != nil && st == statusApplied {
		(*f)(d.id, e.rec.version)
	}
	e.mu.Unlock()
	n.answer(in, st, a, ok, d.id)
	n.settle(settled)
	if fetch {
		n.send(peer, &fetchMsg{id: d.id})
	}
}

// onRecord merges a full record: an owner's (acknowledged, fenced) or a
// copy answering a fetch.
func (n *Node) onRecord(in *inbound, peer string, m *recordMsg) {
	r := m.rec
	e := n.store.lock(r.id, true, nanos(n.clock.Now()))
	st, settled := e.applyRecord(r, m.copy)
	a, ok := e.ack(r.id, st)
	n.own.grant(e, st)
	if f := n.applied.Load(); f != nil && st == statusApplied {
		(*f)(r.id, e.rec.version)
	}
	e.mu.Unlock()
	n.answer(in, st, a, ok, r.id)
	n.settle(settled)
}

// answer queues the acknowledgement of a write. A node still joining does
// not acknowledge writes as applied: a sync write must not count on a copy
// whose takeover promises may be incomplete. Fencing is always reported.
func (n *Node) answer(in *inbound, st applyStatus, a ackEntry, ok bool, id string) {
	if st == statusFenced {
		n.obs.Fenced(id, false)
	}
	if ok && (st == statusFenced || n.IsReady()) {
		in.queueAcks(a)
	}
}

// settle acknowledges buffered deltas that were applied or fenced later,
// to the peers that sent them.
func (n *Node) settle(s []settled) {
	for _, x := range s {
		if x.ack.status == ackApplied && !n.IsReady() {
			continue
		}
		n.mu.Lock()
		p := n.peers[x.from]
		var in *inbound
		if p != nil {
			in = p.in
		}
		n.mu.Unlock()
		if in != nil {
			in.queueAcks(x.ack)
		}
	}
}

// fetchDue reports whether a fetch for a locked entry should be sent now.
func (n *Node) fetchDue(e *entry) bool {
	now := time.Now().UnixNano()
	if now-e.fetchAt < int64(fetchInterval) {
		return false
	}
	e.fetchAt = now
	return true
}

// reack re-acknowledges a retransmitted write from the session's current
// state (its first acknowledgement may have been lost).
func (n *Node) reack(in *inbound, m message) {
	var id string
	var bal ballot
	switch m := m.(type) {
	case *deltaMsg:
		id, bal = m.id, m.bal
	case *recordMsg:
		if m.copy {
			return
		}
		id, bal = m.rec.id, m.rec.bal
	default:
		return
	}
	e := n.store.lock(id, false, 0)
	if e == nil {
		return
	}
	st := statusApplied
	if bal.cmp(e.promised) < 0 {
		st = statusFenced
	}
	a, ok := e.ack(id, st)
	n.own.grant(e, st)
	e.mu.Unlock()
	n.answer(in, st, a, ok, id)
}

// sendBody queues an encoded message for peer.
func (n *Node) sendBody(peer string, t MessageType, body []byte) {
	n.mu.Lock()
	p := n.peers[peer]
	n.mu.Unlock()
	if p != nil && p.out != nil {
		p.out.enqueue(t, body)
	}
}

// short abbreviates a session id for logs (ids are secrets).
func short(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}
