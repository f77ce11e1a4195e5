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

// streamState answers a sync request from peer.
func (n *Node) streamState(peer string, req uint64) {
	p, l := n.awaitLink(peer)
	if l == nil {
		n.log.Warn("cluster: state requested by a peer this node cannot reach", "peer", peer)
		return
	}
	p.streaming.Lock() // a peer asking again waits for the transfer under way
	defer p.streaming.Unlock()
	chunk := &syncChunkMsg{req: req}
	size := 0
	flush := func(last bool) bool {
		chunk.last = last
		if !l.enqueue(msgSyncChunk, encodeBody(chunk)) {
			return false
		}
		n.obs.Transferred(peer, true, len(chunk.recs), size)
		chunk, size = &syncChunkMsg{req: req}, 0
		return n.waitWindow(l)
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
		if size >= chunkBytes && !flush(false) {
			return
		}
	}
	flush(true)
}

// awaitLink returns peer and its live link. A sync request proves its
// sender is up, but gossip may not have said so yet: a node restarted just
// after it was declared dead asks for the state before the news that it is
// back arrives, and its link is still down. The transfer waits for it (at
// most JoinTimeout) instead of being dropped, which would stall the
// joiner's readiness until its own JoinTimeout. l is nil if it never came.
func (n *Node) awaitLink(peer string) (p *peer, l *link) {
	timeout := time.NewTimer(n.opts.JoinTimeout)
	defer timeout.Stop()
	for {
		changed := n.waitChanged()
		n.mu.Lock()
		if p = n.peers[peer]; p != nil {
			l = p.out
		}
		n.mu.Unlock()
		if l != nil && l.isAlive() {
			return p, l
		}
		select {
		case <-changed:
		case <-n.closing:
			return nil, nil
		case <-timeout.C:
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
