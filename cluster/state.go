package cluster

import (
	"time"
)

// State transfer: a node pulls a peer's full state by sending a sync
// request on its link; the peer streams every record (tombstones and
// promises included) back on its own link, in chunks, as ordinary
// sequenced messages. Records are merged newest-wins by (epoch, owner,
// version), so a stale copy never overwrites a newer one, in either
// direction; a live delta that arrives before the record it follows is
// held until the record arrives, and one older than the record is ignored.

const (
	chunkBytes = 256 << 10 // records per sync chunk, by encoded size
	syncWindow = 8 << 20   // queued bytes above which the streamer waits
)

// streamState answers a sync request from peer, sent by the incarnation
// of it that in receives from. The state is delivered, not just sent: the
// transfer starts again whenever its link loses messages before the peer
// has acknowledged the last chunk (gossip declared the peer dead and the
// link dropped its queue, or the queue overflowed), since the chunks lost
// with them may be the peer's only copy of this node's state — a joiner
// whose first connection from this node is the one that comes back sees no
// gap in it, and would wait for them until its JoinTimeout. It ends once
// delivered, when that incarnation of the peer is gone, or at Close.
func (n *Node) streamState(peer string, in *inbound, req uint64) {
	for {
		p, l := n.awaitLink(peer, in)
		if l == nil {
			return
		}
		drops := l.dropCount()
		last, ok := n.streamOnce(p, l, req)
		if ok && l.awaitAcked(last, drops) {
			return
		}
		n.log.Debug("cluster: state transfer lost with the link; sending it again", "peer", peer, "req", req)
	}
}

// streamOnce sends this node's state to p on l, under p.streaming, and
// returns the sequence number of the last chunk; false when the link
// refused a chunk or died meanwhile.
func (n *Node) streamOnce(p *peer, l *link, req uint64) (uint64, bool) {
	p.streaming.Lock() // a peer asking again waits for the transfer under way
	defer p.streaming.Unlock()
	chunk := &syncChunkMsg{req: req}
	size := 0
	flush := func(last bool) (uint64, bool) {
		chunk.last = last
		seq, ok := l.enqueueSeq(msgSyncChunk, encodeBody(chunk))
		if !ok {
			return 0, false
		}
		n.obs.Transferred(p.name, true, len(chunk.recs), size)
		chunk, size = &syncChunkMsg{req: req}, 0
		return seq, n.waitWindow(l)
	}
	for _, id := range n.store.ids() {
		e := n.store.lock(id, false, 0)
		if e == nil {
			continue
		}
		if e.rec != nil {
			r := e.rec.clone()
			r.promised = e.promised
			chunk.recs = append(chunk.recs, r)
			size += r.size
		}
		e.mu.Unlock()
		if size >= chunkBytes {
			if _, ok := flush(false); !ok {
				return 0, false
			}
		}
	}
	return flush(true)
}

// awaitLink returns peer and its live link. A sync request proves its
// sender is up, but gossip may not have said so yet: a node restarted just
// after it was declared dead asks for the state before the news that it is
// back arrives, and its link is still down; or gossip here declared it dead
// while it still sees this node alive. The transfer waits for the link
// instead of being dropped, which would stall the joiner's readiness until
// its own JoinTimeout and leave it without this node's state. It waits as
// long as the incarnation that asked (the one in receives from) may still
// be running: l is nil once another incarnation of the peer has connected,
// the peer left, or the node closes. (One that died for good is waited for
// until Close: a goroutine per request it sent, nothing more.)
func (n *Node) awaitLink(peer string, in *inbound) (p *peer, l *link) {
	for {
		changed := n.waitChanged()
		n.mu.Lock()
		p, l = n.peers[peer], nil
		gone := p == nil || p.in != in || p.state == MemberLeft
		if !gone {
			l = p.out
		}
		n.mu.Unlock()
		if gone {
			return nil, nil
		}
		if l != nil && l.isAlive() {
			return p, l
		}
		select {
		case <-changed:
		case <-n.closing:
			return nil, nil
		}
	}
}

// waitWindow holds a state transfer back while the link's queue is large,
// so that a big state never sits in memory twice; false when the link died.
func (n *Node) waitWindow(l *link) bool {
	delay := time.Millisecond
	for {
		l.mu.Lock()
		bytes, ok := l.bytes, l.alive && !l.closed
		l.mu.Unlock()
		if !ok {
			return false
		}
		if bytes < syncWindow {
			return true
		}
		select {
		case <-n.closing:
			return false
		case <-time.After(delay): // polling the acknowledgements of a peer that reads slowly
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// onSyncChunk merges part of a pulled state.
func (n *Node) onSyncChunk(peer string, m *syncChunkMsg) {
	now := nanos(n.clock.Now())
	size := 0
	for _, r := range m.recs {
		size += r.size
	}
	n.obs.Transferred(peer, false, len(m.recs), size)
	for _, r := range m.recs {
		e := n.store.lock(r.id, true, now)
		_, settled := e.applyRecord(r, true)
		e.mu.Unlock()
		n.settle(settled)
	}
	if !m.last {
		return
	}
	n.mu.Lock()
	if s := n.syncs[m.req]; s != nil && s.peer == peer {
		delete(n.syncs, m.req)
		close(s.done)
		n.notifyLocked()
	}
	n.mu.Unlock()
}
