// Package clustertest provides an in-memory network implementing
// cluster.Transport, with injectable partitions, frame loss, duplication,
// delay and reordering, frozen (SIGSTOP-like) and crashed (SIGKILL-like)
// endpoints, a fake clock, and a harness running N cluster nodes on them.
package clustertest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/tetherlb/tether/cluster"
)

// Faults are the faults injected on traffic from one endpoint to another.
// Drop, Duplicate and Reorder are probabilities in [0, 1], applied to each
// replication frame (SetFaults: the stream is cut at the cluster's frame
// boundaries, the connection otherwise staying reliable and ordered) or to
// each gossip packet (SetGossipFaults).
type Faults struct {
	// Drop loses the packet or frame.
	Drop float64
	// Duplicate delivers it twice.
	Duplicate float64
	// Reorder holds it back so that later ones overtake it.
	Reorder float64
	// Delay is added to every delivery.
	Delay time.Duration
}

func (f Faults) none() bool { return f == Faults{} }

func (f Faults) reorderBy() time.Duration { return 2*f.Delay + 5*time.Millisecond }

// Stats counts the faults the network injected, so that a test can check
// that it exercised them.
type Stats struct {
	FramesDropped, FramesDuplicated, FramesReordered int
	PacketsDropped                                   int
	// Dials counts connection attempts by kind ("gossip", "replication"),
	// refused ones included.
	Dials map[string]int
}

// Network is an in-memory network of endpoints addressed "IP:port".
type Network struct {
	mu        sync.Mutex
	endpoints map[string]*Endpoint
	faultsBy  map[[2]string]Faults // replication frames, by (from, to); "" matches any
	gossipBy  map[[2]string]Faults // gossip packets
	cut       map[[2]string]bool   // partitions, both directions stored
	rng       *rand.Rand
	stats     Stats
	nextIP    int
}

// NewNetwork returns an empty network. seed makes fault injection
// reproducible.
func NewNetwork(seed uint64) *Network {
	return &Network{
		endpoints: map[string]*Endpoint{}, faultsBy: map[[2]string]Faults{}, gossipBy: map[[2]string]Faults{},
		cut: map[[2]string]bool{},
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// NewAddr returns a fresh address (a loopback IP never actually used).
func (n *Network) NewAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextIP++
	return fmt.Sprintf("127.0.%d.%d:7946", 100+n.nextIP/250, 1+n.nextIP%250)
}

// Listen creates the endpoint at addr; it fails while a live endpoint
// holds the address.
func (n *Network) Listen(addr string) (*Endpoint, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	pn, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("clustertest: bad address %q", addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.endpoints[addr]; old != nil && !old.isDown() {
		return nil, fmt.Errorf("clustertest: address %s in use", addr)
	}
	e := &Endpoint{
		net: n, addr: addr, ip: ip.To4(), port: pn,
		packetCh: make(chan *memberlist.Packet, 4096),
		streamCh: make(chan net.Conn),
		replCh:   make(chan net.Conn),
		thawed:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	close(e.thawed)
	n.endpoints[addr] = e
	return e, nil
}

// SetFaults sets the faults on replication frames from one address to
// another; "" stands for any address. The most specific rule applies.
func (n *Network) SetFaults(from, to string, f Faults) { n.setFaults(n.faultsBy, from, to, f) }

// SetGossipFaults sets the faults on gossip packets, as SetFaults; Drop
// also refuses gossip's stream connections (push/pull, joins, TCP probes)
// with that probability, so that Drop 1 cuts gossip between two endpoints
// while their replication channel stays up.
func (n *Network) SetGossipFaults(from, to string, f Faults) { n.setFaults(n.gossipBy, from, to, f) }

func (n *Network) setFaults(m map[[2]string]Faults, from, to string, f Faults) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f.none() {
		delete(m, [2]string{from, to})
	} else {
		m[[2]string{from, to}] = f
	}
}

func (n *Network) faults(from, to string) Faults { return n.lookup(n.faultsBy, from, to) }

func (n *Network) lookup(m map[[2]string]Faults, from, to string) Faults {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range [][2]string{{from, to}, {from, ""}, {"", to}, {"", ""}} {
		if f, ok := m[k]; ok {
			return f
		}
	}
	return Faults{}
}

func (n *Network) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rng.Float64() < p
}

func (n *Network) count(f func(*Stats)) {
	n.mu.Lock()
	f(&n.stats)
	n.mu.Unlock()
}

// Stats returns the faults injected so far.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.Dials = maps.Clone(n.stats.Dials)
	return s
}

// Partition cuts a and b apart: their connections break, packets between
// them are lost and dials fail, until Heal.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	n.cut[[2]string{a, b}], n.cut[[2]string{b, a}] = true, true
	eps := []*Endpoint{n.endpoints[a], n.endpoints[b]}
	n.mu.Unlock()
	for _, e := range eps {
		if e != nil {
			e.breakConns(func(c *conn) bool {
				return (c.local.addr == a && c.remote.addr == b) || (c.local.addr == b && c.remote.addr == a)
			})
		}
	}
}

// Isolate partitions addr from every other endpoint.
func (n *Network) Isolate(addr string) {
	n.mu.Lock()
	var others []string
	for a := range n.endpoints {
		if a != addr {
			others = append(others, a)
		}
	}
	n.mu.Unlock()
	for _, o := range others {
		n.Partition(addr, o)
	}
}

// Heal removes every partition involving addr.
func (n *Network) Heal(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.cut {
		if k[0] == addr || k[1] == addr {
			delete(n.cut, k)
		}
	}
}

func (n *Network) reachable(from, to string) (*Endpoint, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.endpoints[to]
	if e == nil || e.isDown() || n.cut[[2]string{from, to}] {
		return nil, false
	}
	return e, true
}

// Freeze stops addr as SIGSTOP stops a process: its sends and dials block,
// nothing is delivered to it, and what others send it is held (connections
// stay up) until Thaw.
func (n *Network) Freeze(addr string) {
	if e := n.endpoint(addr); e != nil {
		e.freeze()
	}
}

// Thaw resumes a frozen endpoint: held traffic is delivered.
func (n *Network) Thaw(addr string) {
	if e := n.endpoint(addr); e != nil {
		e.thaw()
	}
}

// Crash takes addr down as SIGKILL does: its connections are reset, its
// packets lost, and dials to it refused. Its address can be listened on
// again (a restart).
func (n *Network) Crash(addr string) {
	if e := n.endpoint(addr); e != nil {
		e.shutdown()
	}
}

func (n *Network) endpoint(addr string) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.endpoints[addr]
}

var errRefused = errors.New("clustertest: connection refused")

// dial connects from e to addr. kind selects the target's channel.
func (n *Network) dial(from *Endpoint, addr string, timeout time.Duration, kind string) (net.Conn, error) {
	if err := from.waitThawed(time.Time{}); err != nil {
		return nil, err
	}
	if from.isDown() {
		return nil, net.ErrClosed
	}
	n.count(func(s *Stats) {
		if s.Dials == nil {
			s.Dials = map[string]int{}
		}
		s.Dials[kind+" "+from.addr+" "+addr]++
	})
	to, ok := n.reachable(from.addr, addr)
	if !ok {
		return nil, fmt.Errorf("dial %s: %w", addr, errRefused)
	}
	if kind == "gossip" && n.chance(n.lookup(n.gossipBy, from.addr, addr).Drop) {
		return nil, fmt.Errorf("dial %s: %w", addr, errRefused) // cut, as far as memberlist can tell
	}
	ab, ba := newPipe(to), newPipe(from)
	local := &conn{local: from, remote: to, in: ba, out: ab, kind: kind}
	remote := &conn{local: to, remote: from, in: ab, out: ba, kind: kind}
	if kind == "replication" {
		local.shaper = &shaper{net: n, from: from.addr, to: to.addr, dst: ab}
		remote.shaper = &shaper{net: n, from: to.addr, to: from.addr, dst: ba}
	}
	from.track(local)
	to.track(remote)
	ch := to.streamCh
	if kind == "replication" {
		ch = to.replCh
	}
	go func() { // the kernel would queue the connection until accepted
		if to.waitThawed(time.Time{}) != nil {
			remote.breakConn()
			return
		}
		select {
		case ch <- remote:
		case <-to.done:
			remote.breakConn()
		}
	}()
	return local, nil
}

// sendPacket delivers a gossip packet, subject to faults and partitions.
func (n *Network) sendPacket(from *Endpoint, b []byte, addr string) error {
	if err := from.waitThawed(time.Time{}); err != nil {
		return err
	}
	to, ok := n.reachable(from.addr, addr)
	if !ok {
		return nil // lost, as UDP
	}
	f := n.lookup(n.gossipBy, from.addr, addr)
	if n.chance(f.Drop) {
		n.count(func(s *Stats) { s.PacketsDropped++ })
		return nil
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: from.udpAddr(), Timestamp: time.Now()}
	copies := 1
	if n.chance(f.Duplicate) {
		copies = 2
	}
	delay := f.Delay
	if n.chance(f.Reorder) {
		delay += f.reorderBy()
	}
	for range copies {
		if delay > 0 {
			time.AfterFunc(delay, func() { to.receive(p) })
		} else {
			to.receive(p)
		}
	}
	return nil
}

var _ cluster.Transport = (*Endpoint)(nil)
