package clustertest

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// maxHeldPackets bounds the gossip packets held for a frozen endpoint, as
// a socket buffer would.
const maxHeldPackets = 4096

// Endpoint is one node's attachment to a Network. It implements
// cluster.Transport (and so memberlist.NodeAwareTransport).
type Endpoint struct {
	net      *Network
	addr     string
	ip       net.IP
	port     int
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	replCh   chan net.Conn
	done     chan struct{}

	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed while not frozen
	held   []*memberlist.Packet
	conns  map[*conn]struct{}
	down   bool
}

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() string { return e.addr }

func (e *Endpoint) tcpAddr() net.Addr { return &net.TCPAddr{IP: e.ip, Port: e.port} }
func (e *Endpoint) udpAddr() net.Addr { return &net.UDPAddr{IP: e.ip, Port: e.port} }

func (e *Endpoint) isFrozen() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.frozen
}

func (e *Endpoint) isDown() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.down
}

// waitThawed blocks while the endpoint is frozen; zero deadline waits as
// long as it takes.
func (e *Endpoint) waitThawed(deadline time.Time) error {
	for {
		e.mu.Lock()
		down, frozen, ch := e.down, e.frozen, e.thawed
		e.mu.Unlock()
		if down {
			return net.ErrClosed
		}
		if !frozen {
			return nil
		}
		var timeout <-chan time.Time
		var t *time.Timer
		if !deadline.IsZero() {
			t = time.NewTimer(time.Until(deadline))
			timeout = t.C
		}
		select {
		case <-ch:
		case <-e.done:
		case <-timeout:
			return os.ErrDeadlineExceeded
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (e *Endpoint) freeze() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.frozen {
		e.frozen = true
		e.thawed = make(chan struct{})
	}
}

func (e *Endpoint) thaw() {
	e.mu.Lock()
	if !e.frozen {
		e.mu.Unlock()
		return
	}
	e.frozen = false
	close(e.thawed)
	held := e.held
	e.held = nil
	conns := e.connList()
	e.mu.Unlock()
	for _, p := range held {
		e.receive(p)
	}
	for _, c := range conns {
		c.in.wake()
	}
}

// receive queues an incoming packet (held while frozen, lost when the
// queue is full or the endpoint down).
func (e *Endpoint) receive(p *memberlist.Packet) {
	e.mu.Lock()
	if e.down {
		e.mu.Unlock()
		return
	}
	if e.frozen {
		if len(e.held) < maxHeldPackets {
			e.held = append(e.held, p)
		}
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	select {
	case e.packetCh <- p:
	default:
		e.net.count(func(s *Stats) { s.PacketsDropped++ })
	}
}

func (e *Endpoint) track(c *conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conns == nil {
		e.conns = map[*conn]struct{}{}
	}
	e.conns[c] = struct{}{}
}

func (e *Endpoint) connList() []*conn {
	out := make([]*conn, 0, len(e.conns))
	for c := range e.conns {
		out = append(out, c)
	}
	return out
}

// breakConns resets the endpoint's connections matching pred.
func (e *Endpoint) breakConns(pred func(*conn) bool) {
	e.mu.Lock()
	var hit []*conn
	for c := range e.conns {
		if pred(c) {
			hit = append(hit, c)
			delete(e.conns, c)
		}
	}
	e.mu.Unlock()
	for _, c := range hit {
		c.breakConn()
	}
}

func (e *Endpoint) shutdown() {
	e.mu.Lock()
	if e.down {
		e.mu.Unlock()
		return
	}
	e.down = true
	close(e.done)
	if e.frozen {
		e.frozen = false
		close(e.thawed)
	}
	e.mu.Unlock()
	e.breakConns(func(*conn) bool { return true })
	for _, o := range e.net.allEndpoints() {
		o.breakConns(func(c *conn) bool { return c.remote == e })
	}
}

func (n *Network) allEndpoints() []*Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Endpoint, 0, len(n.endpoints))
	for _, e := range n.endpoints {
		out = append(out, e)
	}
	return out
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (e *Endpoint) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		parsed := net.ParseIP(ip)
		if parsed == nil {
			return nil, 0, fmt.Errorf("clustertest: bad advertise address %q", ip)
		}
		return parsed, port, nil
	}
	return e.ip, e.port, nil
}

// WriteTo implements memberlist.Transport.
func (e *Endpoint) WriteTo(b []byte, addr string) (time.Time, error) {
	err := e.net.sendPacket(e, b, addr)
	return time.Now(), err
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (e *Endpoint) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return e.WriteTo(b, a.Addr)
}

// PacketCh implements memberlist.Transport.
func (e *Endpoint) PacketCh() <-chan *memberlist.Packet { return e.packetCh }

// DialTimeout implements memberlist.Transport.
func (e *Endpoint) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return e.net.dial(e, addr, timeout, "gossip")
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (e *Endpoint) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return e.DialTimeout(a.Addr, timeout)
}

// StreamCh implements memberlist.Transport.
func (e *Endpoint) StreamCh() <-chan net.Conn { return e.streamCh }

// DialReplication implements cluster.Transport.
func (e *Endpoint) DialReplication(addr string, timeout time.Duration) (net.Conn, error) {
	return e.net.dial(e, addr, timeout, "replication")
}

// ReplicationCh implements cluster.Transport.
func (e *Endpoint) ReplicationCh() <-chan net.Conn { return e.replCh }

// Shutdown implements memberlist.Transport: the endpoint goes down.
func (e *Endpoint) Shutdown() error {
	e.shutdown()
	return nil
}
