package cluster

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// maxOutOfOrder and maxOutOfOrderBytes bound the frames a receiver holds
// while waiting for a missing sequence number; a peer exceeding them is
// disconnected (and resends from the hole when it reconnects).
const (
	maxOutOfOrder      = 4096
	maxOutOfOrderBytes = 64 << 20
)

// maxAckEntries bounds the per-session results in one ack frame.
const maxAckEntries = 8192

// inbound is the receiving half of the replication channel from one
// incarnation of a peer. It outlives connections: the next expected
// sequence number lets a reconnecting peer resume exactly where it was.
type inbound struct {
	inc uint64

	mu      sync.Mutex // protects next, ooo, oooSize, nackAt, nackDue, conn; held while a frame is processed
	next    uint64     // next expected sequence number
	ooo     map[uint64][]byte
	oooSize int // bytes held in ooo
	nackAt  time.Time
	nackDue bool    // a nack for next should go out with the next ack
	conn    *inConn // the connection currently allowed to deliver

	ackMu   sync.Mutex // protects acks (a leaf)
	acks    []ackEntry
	ackWake chan struct{}
}

func newInbound(inc, first uint64) *inbound {
	return &inbound{inc: inc, next: first, ooo: map[uint64][]byte{}, ackWake: make(chan struct{}, 1)}
}

// inConn is one accepted connection.
type inConn struct {
	conn net.Conn
	f    *framer
	peer string
}

// queueAcks adds per-session results to the next acknowledgement.
func (in *inbound) queueAcks(a ...ackEntry) {
	in.ackMu.Lock()
	in.acks = append(in.acks, a...)
	in.ackMu.Unlock()
	in.wakeAcks()
}

func (in *inbound) wakeAcks() {
	select {
	case in.ackWake <- struct{}{}:
	default:
	}
}

func (in *inbound) closeConn() {
	in.mu.Lock()
	if in.conn != nil {
		in.conn.conn.Close()
	}
	in.mu.Unlock()
}

// serveInbound authenticates an accepted replication connection and reads
// the peer's messages from it until it fails.
func (n *Node) serveInbound(c net.Conn) {
	var in *inbound
	var gap bool
	f, info, err := serverHandshake(c, n.hs, n.IsReady, func(p peerInfo) (uint64, error) {
		in, gap = n.inboundFor(p)
		if in == nil {
			return 0, ErrClosed
		}
		return in.next, nil
	})
	<-n.handshakes
	if err != nil {
		if errors.Is(err, ErrAuth) || errors.Is(err, ErrClusterMismatch) {
			n.obs.AuthFailed(remoteString(c), err)
		}
		n.connFailed(info.node, "accept:"+info.node, err)
		c.Close()
		return
	}
	ic := &inConn{conn: c, f: f, peer: info.node}
	in.mu.Lock()
	if in.conn != nil {
		in.conn.conn.Close() // a reconnection replaces the old connection
	}
	in.conn = ic
	in.mu.Unlock()
	n.contact(info.node, info.addr, info.inc, info.ready, gap)

	stop := make(chan struct{})
	if !n.spawn(func() { n.writeAcks(in, ic, stop) }) {
		c.Close()
		return
	}
	err = n.readInbound(in, ic)
	close(stop)
	c.Close()
	if err != nil && !n.closed() {
		n.connFailed(info.node, "conn:"+info.node, err)
	}
}

// inboundFor returns the receiver state for a peer incarnation, creating it
// when the incarnation is new; gap reports that the peer can no longer
// resend what this node has not received.
func (n *Node) inboundFor(p peerInfo) (*inbound, bool) {
	n.mu.Lock()
	if n.closed() {
		n.mu.Unlock()
		return nil, false
	}
	pr := n.peerLocked(p.node)
	in := pr.in
	if in == nil || in.inc != p.inc {
		old := in
		in = newInbound(p.inc, p.firstSeq)
		pr.in = in
		n.mu.Unlock()
		if old != nil {
			old.closeConn()
		}
		return in, false
	}
	n.mu.Unlock()
	// Lock order: an inbound's mu is taken before Node.mu, never after.
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.next < p.firstSeq {
		in.next = p.firstSeq
		clear(in.ooo)
		in.oooSize = 0
		return in, true
	}
	return in, false
}

// readInbound reads frames, delivers them in sequence order exactly once,
// and wakes the acknowledgement writer whenever its input runs dry.
func (n *Node) readInbound(in *inbound, ic *inConn) error {
	for {
		p, err := ic.f.read()
		if err != nil {
			return err
		}
		t, seq, body, err := parseHeader(p)
		if err != nil {
			return err
		}
		n.obs.MessageReceived(ic.peer, t, len(p))
		if seq == 0 {
			return fmt.Errorf("%w: unsequenced %s on an incoming connection", ErrMalformed, t)
		}
		if err := n.deliver(in, ic, t, seq, body); err != nil {
			return err
		}
		if !ic.f.buffered() {
			in.wakeAcks()
		}
	}
}

// deliver processes one frame and any held frames that now follow.
func (n *Node) deliver(in *inbound, ic *inConn, t MessageType, seq uint64, body []byte) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.conn != ic {
		return errors.New("cluster: connection replaced")
	}
	switch {
	case seq < in.next:
		// A retransmission: already processed. Re-acknowledge its session so
		// that a lost acknowledgement cannot leave the owner waiting.
		if t == msgDelta || t == msgRecord {
			if m, err := decodeBody(t, body); err == nil {
				n.reack(in, m)
			}
		}
		return nil
	case seq > in.next:
		if len(in.ooo) >= maxOutOfOrder || in.oooSize+len(body) > maxOutOfOrderBytes {
			return fmt.Errorf("cluster: more than %d frames or %d bytes out of order", maxOutOfOrder, maxOutOfOrderBytes)
		}
		if _, ok := in.ooo[seq]; !ok {
			in.ooo[seq] = append(append(make([]byte, 0, 2+len(body)), byte(t)), body...)
			in.oooSize += len(body)
		}
		if time.Since(in.nackAt) > rtoBase/2 {
			in.nackAt, in.nackDue = time.Now(), true
		}
		return nil
	}
	if err := n.process(in, ic.peer, t, body); err != nil {
		return err
	}
	in.next++
	for {
		held, ok := in.ooo[in.next]
		if !ok {
			return nil
		}
		delete(in.ooo, in.next)
		in.oooSize -= len(held) - 1
		if err := n.process(in, ic.peer, MessageType(held[0]), held[1:]); err != nil {
			return err
		}
		in.next++
	}
}

// process decodes and handles one in-order message.
func (n *Node) process(in *inbound, peer string, t MessageType, body []byte) error {
	m, err := decodeBody(t, body)
	if err != nil {
		return err
	}
	return n.handle(in, peer, m)
}

// writeAcks sends cumulative acknowledgements, per-session results and
// nacks for missing frames, coalescing everything that accumulated since
// the last one.
func (n *Node) writeAcks(in *inbound, ic *inConn, stop <-chan struct{}) {
	var sentCum uint64
	for {
		select {
		case <-in.ackWake:
		case <-stop:
			return
		case <-n.closing:
			return
		}
		in.mu.Lock()
		cum, gap := in.next-1, in.nackDue && len(in.ooo) > 0
		in.nackDue = false
		in.mu.Unlock()
		in.ackMu.Lock()
		entries := in.acks
		in.acks = nil
		in.ackMu.Unlock()
		if cum == sentCum && len(entries) == 0 && !gap {
			continue
		}
		_ = ic.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		for first := true; first || len(entries) > 0; first = false {
			chunk := entries[:min(len(entries), maxAckEntries)]
			entries = entries[len(chunk):]
			if !first && len(chunk) == 0 {
				break
			}
			if err := ic.f.write(encodePayload(&ackMsg{cum: cum, entries: chunk}, 0)); err != nil {
				ic.conn.Close()
				return
			}
		}
		sentCum = cum
		if gap {
			if err := ic.f.write(encodePayload(&nackMsg{expected: cum + 1}, 0)); err != nil {
				ic.conn.Close()
				return
			}
		}
		if err := ic.f.flush(); err != nil {
			ic.conn.Close()
			return
		}
	}
}

// connFailed reports a replication connection problem, rate-limited.
func (n *Node) connFailed(peer, key string, err error) {
	if n.closed() {
		return
	}
	n.obs.ConnFailed(peer, err)
	n.logs.warn(key, "cluster: replication connection failed", "peer", peer, "err", err)
}
