package cluster

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Link timing. The retransmission timer only matters when frames are lost
// without the connection breaking (never on TCP, but on a faulty test
// network); a broken connection resends everything unacknowledged at once.
// A connection on which nothing has been acknowledged for stallTimeout
// while messages wait is closed and dialled again: its peer may have died
// or restarted behind a network that dropped the resets, or TCP may be
// backing off after a partition for far longer than the partition lasted.
const (
	rtoBase      = 300 * time.Millisecond
	rtoMax       = 5 * time.Second
	stallTimeout = 5 * time.Second
	writeTimeout = 10 * time.Second
	dialBackoff  = 10 * time.Millisecond
	maxBackoff   = time.Second
	writeBatch   = 256
)

// link is the outgoing half of the replication channel to one peer: a
// queue of sequence-numbered messages, sent in order on a connection the
// link dials (again after any failure), and dropped once the peer
// acknowledges them. The queue survives reconnections, so the peer gets
// every message exactly in order (it drops duplicates by sequence number);
// when the queue is dropped (the peer died, or it overflowed) the peer sees
// a gap at the next handshake and re-synchronizes its state instead.
type link struct {
	n    *Node
	peer string
	wake chan struct{} // cap 1: there is something to send or to check

	mu        sync.Mutex // protects the fields below (a leaf but for the log limiter)
	addr      string
	alive     bool // gossip lists the peer; when false the queue stays empty
	closed    bool
	q         []outMsg
	first     uint64 // seq of q[0]; next when q is empty
	next      uint64 // seq of the next message enqueued
	sendAt    uint64 // seq of the next message to write on conn
	bytes     int
	conn      net.Conn
	connAt    time.Time // when conn was established
	progress  time.Time // last acknowledgement progress or retransmission
	rto       time.Duration
	lastAck   time.Time
	ackLag    time.Duration
	connected bool
	drops     uint64 // times messages were lost: the queue dropped, or one burnt while the peer was dead
}

type outMsg struct {
	seq  uint64
	t    MessageType
	body []byte
	sent time.Time // first transmission; zero until sent
}

func newLink(n *Node, peer, addr string) *link {
	return &link{n: n, peer: peer, addr: addr, wake: make(chan struct{}, 1), first: 1, next: 1, sendAt: 1,
		alive: true, rto: rtoBase}
}

func (l *link) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// enqueue queues a message; false when the peer is not alive.
func (l *link) enqueue(t MessageType, body []byte) bool {
	_, ok := l.enqueueSeq(t, body)
	return ok
}

// enqueueSeq is enqueue, and returns the message's sequence number.
func (l *link) enqueueSeq(t MessageType, body []byte) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, false
	}
	if !l.alive {
		// The message is lost for this peer: burn its sequence number, so
		// that if the peer comes back it sees the gap and re-synchronizes.
		l.next++
		l.first, l.sendAt = l.next, l.next
		l.drops++
		return 0, false
	}
	seq := l.next
	l.q = append(l.q, outMsg{seq: l.next, t: t, body: body})
	l.next++
	l.bytes += len(body)
	if l.bytes > l.n.opts.MaxOutbox {
		l.n.logs.warn("outbox:"+l.peer, "cluster: replication queue full; the peer will re-synchronize",
			"peer", l.peer, "bytes", l.bytes)
		l.dropLocked()
	}
	l.signal()
	return seq, true
}

// dropLocked empties the queue and breaks the connection, so that the peer
// notices the gap when it reconnects.
func (l *link) dropLocked() {
	l.drops++
	clear(l.q)
	l.q = nil
	l.bytes = 0
	l.first, l.sendAt = l.next, l.next
	if l.conn != nil {
		l.conn.Close()
	}
}

// setAlive follows gossip: a dead peer's queue is dropped and not refilled.
func (l *link) setAlive(alive bool, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if addr != "" {
		l.addr = addr
	}
	if l.alive && !alive {
		l.dropLocked()
	}
	l.alive = alive
	l.signal()
}

// dropCount returns how many times the link lost messages so far.
func (l *link) dropCount() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.drops
}

// awaitAcked waits until the peer has acknowledged the message seq, and
// reports true, or until the link loses messages after its drop count was
// drops (the message may be among them), the link closes or the node
// does, and reports false.
func (l *link) awaitAcked(seq, drops uint64) bool {
	delay := time.Millisecond
	for {
		l.mu.Lock()
		lost, acked := l.drops != drops || l.closed, l.first > seq
		l.mu.Unlock()
		if lost || acked {
			return acked && !lost
		}
		select {
		case <-l.n.closing:
			return false
		case <-time.After(delay): // polling the acknowledgements, as waitWindow does
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// isAlive reports whether gossip lists the peer and the link is open.
func (l *link) isAlive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.alive && !l.closed
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	if l.conn != nil {
		l.conn.Close()
	}
	l.mu.Unlock()
	l.signal()
}

// waitSent waits until everything queued has been written, or deadline.
func (l *link) waitSent(deadline time.Time) {
	for time.Now().Before(deadline) {
		l.mu.Lock()
		done := l.sendAt == l.next || l.conn == nil
		l.mu.Unlock()
		if done {
			return
		}
		time.Sleep(2 * time.Millisecond) // bounded flush at Close
	}
}

// run dials, serves and redials the peer until the node closes.
func (l *link) run() {
	backoff := time.Duration(0)
	for {
		if !l.waitAlive() {
			return
		}
		conn, f, err := l.connect()
		if err != nil {
			l.n.connFailed(l.peer, "dial:"+l.peer, err)
			backoff = min(max(2*backoff, dialBackoff), maxBackoff)
			select {
			case <-l.n.closing:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if err := l.serve(conn, f); err != nil && !l.n.closed() {
			l.n.connFailed(l.peer, "conn:"+l.peer, err)
		}
	}
}

// waitAlive blocks until the peer is alive; false when the node closes.
func (l *link) waitAlive() bool {
	for {
		l.mu.Lock()
		ok, closed := l.alive, l.closed
		l.mu.Unlock()
		if closed {
			return false
		}
		if ok {
			return true
		}
		select {
		case <-l.wake:
		case <-l.n.closing:
			return false
		}
	}
}

// connect dials the peer and runs the handshake.
func (l *link) connect() (net.Conn, *framer, error) {
	l.mu.Lock()
	addr, first := l.addr, l.first
	l.mu.Unlock()
	c, err := l.n.tr.DialReplication(addr, l.n.opts.HandshakeTimeout)
	if err != nil {
		return nil, nil, err
	}
	f, info, err := clientHandshake(c, l.n.hs, first, l.n.IsReady())
	if err == nil && info.node != l.peer {
		err = fmt.Errorf("cluster: %s answers as %q, expected %q", addr, info.node, l.peer)
	}
	if err != nil {
		c.Close()
		if errors.Is(err, ErrAuth) || errors.Is(err, ErrClusterMismatch) || errors.Is(err, ErrRejected) {
			l.n.obs.AuthFailed(addr, err)
			l.n.refusedBy(l.peer, err)
		}
		return nil, nil, err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return nil, nil, ErrClosed
	}
	if info.resume < l.first {
		// The queue was dropped while the handshake ran (gossip declared
		// the peer dead): the peer expects messages this link no longer
		// holds, and said so from a first sequence number that is stale.
		// Dial again: the next handshake says where the link starts now,
		// and the peer, seeing the gap, pulls the state.
		resume, now := info.resume, l.first
		l.mu.Unlock()
		c.Close()
		return nil, nil, fmt.Errorf("cluster: %s expects message %d, dropped during the handshake (the link now starts at %d)", l.peer, resume, now)
	}
	if info.resume > l.first {
		l.trimLocked(info.resume - 1)
	}
	l.sendAt = max(info.resume, l.first)
	l.conn, l.connected, l.connAt = c, true, time.Now()
	l.progress, l.rto = l.connAt, rtoBase
	l.mu.Unlock()
	l.n.contact(l.peer, "", info.inc, info.ready, false)
	return c, f, nil
}

// serve writes queued messages on conn until it fails.
func (l *link) serve(conn net.Conn, f *framer) error {
	done := make(chan error, 1)
	go func() { done <- l.readAcks(f) }()
	defer func() {
		l.mu.Lock()
		if l.conn == conn {
			l.conn, l.connected = nil, false
		}
		l.mu.Unlock()
		conn.Close()
	}()
	timer := time.NewTimer(rtoBase)
	defer timer.Stop()
	var hdr []byte
	for {
		batch, more, err := l.takeBatch(conn)
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			for _, m := range batch {
				hdr = appendHeader(hdr[:0], m.t, m.seq)
				if err := f.writeParts(hdr, m.body); err != nil {
					return err
				}
				l.n.obs.MessageSent(l.peer, m.t, len(hdr)+len(m.body))
			}
			if more {
				continue
			}
			if err := f.flush(); err != nil {
				return err
			}
			continue
		}
		timer.Reset(rtoBase)
		select {
		case <-l.wake:
		case err := <-done:
			return err
		case <-l.n.closing:
			return nil
		case <-timer.C:
			l.checkRetransmit()
		}
	}
}

// takeBatch returns the next messages to write on conn, and whether more
// are waiting after them.
func (l *link) takeBatch(conn net.Conn) ([]outMsg, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != conn || l.closed {
		return nil, false, errors.New("cluster: connection replaced")
	}
	start := int(l.sendAt - l.first)
	end := min(len(l.q), start+writeBatch)
	if start >= end {
		return nil, false, nil
	}
	batch := make([]outMsg, end-start)
	now := time.Now()
	for i := start; i < end; i++ {
		if l.q[i].sent.IsZero() {
			l.q[i].sent = now
		}
	}
	copy(batch, l.q[start:end])
	l.sendAt += uint64(end - start)
	return batch, end < len(l.q), nil
}

// checkRetransmit goes back to the oldest unacknowledged message when no
// acknowledgement has arrived for a retransmission timeout.
func (l *link) checkRetransmit() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.q) == 0 {
		return
	}
	if l.conn != nil && time.Since(l.lastAck) > stallTimeout && time.Since(l.connAt) > stallTimeout {
		l.n.logs.warn("stall:"+l.peer, "cluster: nothing acknowledged on the replication connection for a while; dialling again",
			"peer", l.peer, "unacknowledged", len(l.q), "connected", time.Since(l.connAt).Round(time.Millisecond))
		l.conn.Close() // serve fails, run dials again, the handshake resumes where the peer stopped
		return
	}
	if time.Since(l.progress) < l.rto {
		return
	}
	l.sendAt = l.first
	l.progress = time.Now()
	l.rto = min(2*l.rto, rtoMax)
	l.signal()
}

// readAcks reads the peer's acknowledgements on the connection.
func (l *link) readAcks(f *framer) error {
	for {
		p, err := f.read()
		if err != nil {
			return err
		}
		m, _, err := decodePayload(p)
		if err != nil {
			return err
		}
		l.n.obs.MessageReceived(l.peer, m.kind(), len(p))
		switch m := m.(type) {
		case *ackMsg:
			l.onAck(m.cum)
			if len(m.entries) > 0 {
				l.n.waits.ack(l.peer, m.entries)
				l.n.own.learnFencing(m.entries)
			}
		case *nackMsg:
			l.onNack(m.expected)
		default:
			return fmt.Errorf("%w: %s on an outgoing connection", ErrMalformed, m.kind())
		}
	}
}

func (l *link) onAck(cum uint64) {
	l.mu.Lock()
	if cum < l.first || cum >= l.next {
		l.mu.Unlock()
		return
	}
	sent := l.q[cum-l.first].sent
	l.trimLocked(cum)
	now := time.Now()
	l.progress, l.rto, l.lastAck = now, rtoBase, now
	var lag time.Duration
	if !sent.IsZero() {
		lag = now.Sub(sent)
		l.ackLag = lag
	}
	l.mu.Unlock()
	if lag > 0 {
		l.n.obs.Acked(l.peer, lag)
	}
}

// trimLocked drops messages up to and including seq.
func (l *link) trimLocked(seq uint64) {
	k := int(min(seq+1-l.first, uint64(len(l.q))))
	for i := range k {
		l.bytes -= len(l.q[i].body)
	}
	clear(l.q[:k])
	l.q = l.q[k:]
	l.first += uint64(k)
	if len(l.q) == 0 {
		l.q = nil
	}
	if l.sendAt < l.first {
		l.sendAt = l.first
	}
}

func (l *link) onNack(expected uint64) {
	l.mu.Lock()
	if expected >= l.first && expected < l.sendAt {
		l.sendAt = expected
		l.progress = time.Now()
		l.signal()
	}
	l.mu.Unlock()
}

// linkStats is a link's share of Info.
type linkStats struct {
	connected bool
	unacked   int
	bytes     int
	lastAck   time.Time
	ackLag    time.Duration
	oldest    time.Duration // age of the oldest unacknowledged message
}

func (l *link) stats() linkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := linkStats{connected: l.connected, unacked: len(l.q), bytes: l.bytes, lastAck: l.lastAck, ackLag: l.ackLag}
	if len(l.q) > 0 && !l.q[0].sent.IsZero() {
		s.oldest = time.Since(l.q[0].sent)
	}
	return s
}
