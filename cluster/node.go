package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Node is one member of a replication cluster. It holds a copy of every
// session of the cluster, writes the sessions it owns, replicates the
// writes to its peers, and takes sessions over on request.
//
// All methods are safe for concurrent use.
type Node struct {
	opts  Options
	name  string
	addr  string // advertised host:port
	inc   uint64 // incarnation: random per Node, tells a restarted node from its past self
	log   *slog.Logger
	logs  *logLimiter
	obs   Observer
	clock Clock
	tr    Transport
	hs    *handshakeConfig
	ml    *memberlist.Memberlist
	store *store
	waits *waiters
	own   *ownership // who owns each session: claims, promises, leases, fencing

	mu      sync.Mutex // protects peers, changed, queries, syncs, and closing's closure (lock order: doc.go)
	peers   map[string]*peer
	changed chan struct{} // closed and replaced on every peer change
	links   atomic.Pointer[[]*link]
	queries map[uint64]chan answerFrom
	syncs   map[uint64]*pull
	reqID   atomic.Uint64

	noMajority atomic.Uint64 // operations refused with ErrNoMajority (Info)

	touchMu sync.Mutex // protects touched (a leaf)
	touched map[string]struct{}

	ready     chan struct{}
	readyOnce sync.Once
	isReady   atomic.Bool

	handshakes chan struct{} // semaphore: incoming handshakes in progress
	closing    chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup

	// applied, when set (benchmarks), is called after a replica applies a
	// write, with the entry locked.
	applied atomic.Pointer[func(id string, version uint64)]
}

// New starts a node: it binds the transport, starts gossip and the
// replication channel, and joins Options.Peers in the background. The node
// serves its own writes at once; Ready is closed when it has received the
// cluster's state.
func New(opts Options) (*Node, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	n := &Node{
		opts: o, name: o.Name, inc: randomIncarnation(), log: o.Logger.With("node", o.Name),
		obs: o.Observer, clock: o.Clock, store: newStore(), waits: newWaiters(),
		peers: map[string]*peer{}, changed: make(chan struct{}), queries: map[uint64]chan answerFrom{},
		syncs: map[uint64]*pull{}, touched: map[string]struct{}{},
		ready: make(chan struct{}), closing: make(chan struct{}), handshakes: make(chan struct{}, maxHandshakes),
	}
	n.logs = newLogLimiter(n.log, 10*time.Second)
	n.links.Store(&[]*link{})
	n.hs = &handshakeConfig{cluster: o.ClusterName, node: o.Name, inc: n.inc, psk: o.PSK, tls: o.TLS,
		timeout: o.HandshakeTimeout, maxFrame: o.MaxFrame + 64}
	n.tr = o.Transport
	if n.tr == nil {
		t, err := NewTCPTransport(TCPTransportOptions{BindAddr: o.Addr, AdvertiseAddr: o.AdvertiseAddr,
			Logger: n.log})
		if err != nil {
			return nil, err
		}
		n.tr = t
	}
	ip, port, err := n.tr.FinalAdvertiseAddr("", 0)
	if err != nil {
		_ = n.tr.Shutdown()
		return nil, err
	}
	n.addr = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	n.hs.addr = n.addr
	if n.opts.Size == 0 {
		n.opts.Size = 1 + len(slices.Compact(slices.Sorted(slices.Values(n.otherPeers()))))
	}
	if n.opts.Ack == AckAuto {
		n.opts.Ack = AckOne
		if n.opts.Size >= 3 {
			n.opts.Ack = AckMajority
		}
	}
	n.own = newOwnership(n)
	// memberlist reports members from inside Create (peers may join at
	// once): everything the event handlers use is set by now.
	ml, err := memberlist.Create(n.memberlistConfig())
	if err != nil {
		_ = n.tr.Shutdown()
		return nil, fmt.Errorf("cluster: gossip: %w", err)
	}
	n.ml = ml
	n.wg.Add(4)
	go n.acceptLoop()
	go n.sweepLoop()
	go n.touchLoop()
	go n.joinLoop()
	return n, nil
}

func randomIncarnation() uint64 {
	for {
		if v := binary.BigEndian.Uint64(randomBytes(8)); v != 0 {
			return v
		}
	}
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Addr returns the address other nodes reach this node at.
func (n *Node) Addr() string { return n.addr }

// Ready returns a channel closed once the node has received the state of
// the peers that were alive when it started (or found none). Until then
// balancers should keep it out of rotation (its /healthz answers 503).
func (n *Node) Ready() <-chan struct{} { return n.ready }

// IsReady reports whether Ready is closed.
func (n *Node) IsReady() bool { return n.isReady.Load() }

// Close leaves the cluster and stops the node. Sessions it owns stay on the
// peers, which take them over when requests for them arrive. In-flight
// writes fail with ErrClosed.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.broadcastStatus(true)
		n.flushLinks(500 * time.Millisecond)
		_ = n.ml.Leave(time.Second)
		n.mu.Lock()
		close(n.closing)
		n.mu.Unlock()
		_ = n.ml.Shutdown() // shuts the transport down
		for _, l := range *n.links.Load() {
			l.close()
		}
		n.mu.Lock()
		var ins []*inbound
		for _, p := range n.peers {
			if p.in != nil {
				ins = append(ins, p.in)
			}
		}
		n.mu.Unlock()
		for _, in := range ins {
			in.closeConn()
		}
	})
	n.wg.Wait()
	return nil
}

// Flush sends the pending batch of last-access times and waits until every
// live peer has acknowledged everything this node has queued for it, so
// that none of its writes, async ones included, exists on this node alone.
// A node about to leave calls it before Close: its peers then hold its
// sessions as they are and take them over without loss. If ctx ends first,
// Flush returns an error wrapping ctx.Err() that names the peers still
// behind. Peers that die meanwhile are not waited for.
func (n *Node) Flush(ctx context.Context) error {
	n.flushTouches()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		var behind []string
		for _, l := range *n.links.Load() {
			if l.stats().unacked > 0 {
				behind = append(behind, l.peer)
			}
		}
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			slices.Sort(behind)
			return fmt.Errorf("cluster: flush: not acknowledged by %s: %w", strings.Join(behind, ", "), ctx.Err())
		case <-n.closing:
			return ErrClosed
		case <-t.C: // polling the links' queues
		}
	}
}

func (n *Node) closed() bool {
	select {
	case <-n.closing:
		return true
	default:
		return false
	}
}

// markReady closes Ready and tells the peers.
func (n *Node) markReady(why string) {
	n.readyOnce.Do(func() {
		n.isReady.Store(true)
		close(n.ready)
		n.log.Info("cluster: node ready", "why", why)
		n.broadcastStatus(false)
		// Gossip the new metadata too, for nodes not linked yet; UpdateNode
		// blocks until it has been broadcast.
		n.spawn(func() { _ = n.ml.UpdateNode(time.Second) })
	})
}

func (n *Node) broadcastStatus(leaving bool) {
	body := encodeBody(&statusMsg{ready: n.IsReady(), leaving: leaving})
	for _, l := range *n.links.Load() {
		l.enqueue(msgStatus, body)
	}
}

// flushLinks waits, at most d, until the links have sent what they hold.
func (n *Node) flushLinks(d time.Duration) {
	deadline := time.Now().Add(d)
	for _, l := range *n.links.Load() {
		l.waitSent(deadline)
	}
}

// send queues m for peer; false when the peer is not reachable.
func (n *Node) send(peer string, m message) bool {
	n.mu.Lock()
	p := n.peers[peer]
	n.mu.Unlock()
	if p == nil || p.out == nil {
		return false
	}
	return p.out.enqueue(m.kind(), encodeBody(m))
}

// broadcast queues a message body for every live peer. Owner writes call
// it with the session's entry locked, which keeps each session's messages
// in version order on every link.
func (n *Node) broadcast(t MessageType, body []byte) {
	for _, l := range *n.links.Load() {
		l.enqueue(t, body)
	}
}

// spawn runs f on a goroutine that Close waits for; false (f not run)
// once the node is closing.
func (n *Node) spawn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.spawnLocked(f)
}

// spawnLocked is spawn with n.mu held. Close marks the node closing under
// n.mu, so no goroutine is added once it waits for them.
func (n *Node) spawnLocked(f func()) bool {
	if n.closed() {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// newReq returns a fresh request id for prepares and syncs.
func (n *Node) newReq() uint64 { return n.reqID.Add(1) }

// maxHandshakes bounds the incoming replication connections still in
// their handshake; more are closed at once, so that a flood of idle
// connections cannot exhaust the node.
const maxHandshakes = 128

// acceptLoop serves incoming replication connections.
func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		select {
		case c := <-n.tr.ReplicationCh():
			select {
			case n.handshakes <- struct{}{}:
				if !n.spawn(func() { n.serveInbound(c) }) {
					<-n.handshakes
					c.Close()
				}
			default:
				n.logs.warn("handshakes", "cluster: too many replication handshakes in progress; closing one",
					"remote", remoteString(c))
				c.Close()
			}
		case <-n.closing:
			return
		}
	}
}

// waitChanged returns a channel closed at the next peer change.
func (n *Node) waitChanged() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

// notifyLocked wakes waitChanged callers; n.mu must be held.
func (n *Node) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// ackTargets returns the peers a sync write waits for: alive and ready.
func (n *Node) ackTargets() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for name, p := range n.peers {
		if p.member() && p.ready && p.out != nil {
			out = append(out, name)
		}
	}
	return out
}

// isTarget reports whether a sync write may still wait for peer.
func (n *Node) isTarget(peer string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[peer]
	return p != nil && p.member() && p.ready
}

// remoteString names a connection's remote end for logs.
func remoteString(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return "?"
}

// sortedNames returns the keys of m, sorted.
func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
