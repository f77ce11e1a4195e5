package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport carries a node's two kinds of traffic over one address:
// memberlist's gossip (packets and streams, through the embedded
// memberlist.NodeAwareTransport) and the replication channel (streams
// returned by DialReplication and ReplicationCh).
//
// TCPTransport is the real one; clustertest has an in-memory one. A
// replication connection must not be handed to memberlist, nor a
// memberlist stream to ReplicationCh.
type Transport interface {
	memberlist.NodeAwareTransport

	// DialReplication opens a replication connection to the node at addr
	// (host:port, as memberlist advertises it).
	DialReplication(addr string, timeout time.Duration) (net.Conn, error)

	// ReplicationCh returns the channel of accepted replication
	// connections. It is read until Shutdown.
	ReplicationCh() <-chan net.Conn
}

// TCPTransportOptions configures a TCPTransport.
type TCPTransportOptions struct {
	// BindAddr is the host:port to listen on, TCP and UDP on the same port.
	// Port 0 picks a free port. Required.
	BindAddr string
	// AdvertiseAddr is the host:port other nodes reach this one at.
	// Default: the bound address; required when BindAddr's host is
	// unspecified (0.0.0.0 or ::).
	AdvertiseAddr string
	// PeekTimeout bounds how long a new TCP connection may take to send the
	// first bytes that tell gossip from replication. Default 5s.
	PeekTimeout time.Duration
	// MaxPending bounds the connections still being told apart; more are
	// closed at once. Default 256.
	MaxPending int
	// Logger receives rate-limited reports of refused connections.
	// Default: slog.Default().
	Logger *slog.Logger
}

// TCPTransport listens on one host:port for UDP gossip packets and for TCP
// connections, which it demultiplexes by their first bytes: Magic for
// replication, anything else for memberlist's streams.
type TCPTransport struct {
	opts     TCPTransportOptions
	tcp      *net.TCPListener
	udp      *net.UDPConn
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	replCh   chan net.Conn
	pending  chan struct{} // semaphore for connections being peeked
	done     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	logs     *logLimiter
}

var _ Transport = (*TCPTransport)(nil)

// NewTCPTransport binds the listeners and starts serving them.
func NewTCPTransport(o TCPTransportOptions) (*TCPTransport, error) {
	if o.PeekTimeout == 0 {
		o.PeekTimeout = 5 * time.Second
	}
	if o.MaxPending == 0 {
		o.MaxPending = 256
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	tcpAddr, err := net.ResolveTCPAddr("tcp", o.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind address %q: %w", o.BindAddr, err)
	}
	tl, ul, err := listenBoth(tcpAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	_ = ul.SetReadBuffer(2 << 20) // best effort, as memberlist's own transport
	t := &TCPTransport{
		opts: o, tcp: tl, udp: ul,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		replCh:   make(chan net.Conn),
		pending:  make(chan struct{}, o.MaxPending),
		done:     make(chan struct{}),
		logs:     newLogLimiter(o.Logger, 10*time.Second),
	}
	t.wg.Add(2)
	go t.acceptLoop()
	go t.packetLoop()
	return t, nil
}

// Addr returns the bound address (with the chosen port when 0 was given).
// listenBoth listens on addr for TCP and UDP on the same port. With port
// 0 the kernel chooses the TCP port, which may be taken for UDP: then it
// tries again with another, a few times.
func listenBoth(addr *net.TCPAddr) (*net.TCPListener, *net.UDPConn, error) {
	for tries := 1; ; tries++ {
		tl, err := net.ListenTCP("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		udpAddr := &net.UDPAddr{IP: addr.IP, Port: tl.Addr().(*net.TCPAddr).Port, Zone: addr.Zone}
		ul, err := net.ListenUDP("udp", udpAddr)
		if err == nil {
			return tl, ul, nil
		}
		tl.Close()
		if addr.Port != 0 || tries == 10 {
			return nil, nil, err
		}
	}
}

func (t *TCPTransport) Addr() *net.TCPAddr { return t.tcp.Addr().(*net.TCPAddr) }

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *TCPTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		parsed := net.ParseIP(ip)
		if parsed == nil {
			return nil, 0, fmt.Errorf("cluster: advertise address %q is not an IP", ip)
		}
		if v4 := parsed.To4(); v4 != nil {
			parsed = v4
		}
		return parsed, port, nil
	}
	if t.opts.AdvertiseAddr != "" {
		host, p, err := net.SplitHostPort(t.opts.AdvertiseAddr)
		if err != nil {
			return nil, 0, fmt.Errorf("cluster: advertise address: %w", err)
		}
		pn, err := strconv.Atoi(p)
		if err != nil {
			return nil, 0, fmt.Errorf("cluster: advertise port %q: %w", p, err)
		}
		return t.FinalAdvertiseAddr(host, pn)
	}
	a := t.Addr()
	if a.IP.IsUnspecified() {
		return nil, 0, errors.New("cluster: listening on an unspecified address: set the advertise address")
	}
	ip4 := a.IP.To4()
	if ip4 == nil {
		ip4 = a.IP
	}
	return ip4, a.Port, nil
}

// WriteTo implements memberlist.Transport.
func (t *TCPTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteTo(b, ua)
	return time.Now(), err
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *TCPTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// PacketCh implements memberlist.Transport.
func (t *TCPTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout implements memberlist.Transport.
func (t *TCPTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.dialer(timeout).Dial("tcp", addr)
}

// dialer returns a dialer whose connections come from the address the
// transport is bound to, when that is one address (not 0.0.0.0 or ::), so
// that peers and firewalls see this node's own address on both its
// incoming and its outgoing connections (several nodes on one host, each
// on its own loopback address, can then be told apart).
func (t *TCPTransport) dialer(timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if a := t.tcp.Addr().(*net.TCPAddr); !a.IP.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: a.IP, Zone: a.Zone}
	}
	return d
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *TCPTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// StreamCh implements memberlist.Transport.
func (t *TCPTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// DialReplication implements Transport: it dials addr and writes Magic.
func (t *TCPTransport) DialReplication(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.dialer(timeout).Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, Magic); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// ReplicationCh implements Transport.
func (t *TCPTransport) ReplicationCh() <-chan net.Conn { return t.replCh }

// Shutdown implements memberlist.Transport: it closes the listeners and
// waits for the serving goroutines. It may be called more than once.
func (t *TCPTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.tcp.Close()
		t.udp.Close()
	})
	t.wg.Wait()
	return nil
}

func (t *TCPTransport) acceptLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.logs.warn("accept", "cluster: accept failed", "err", err)
			select {
			case <-time.After(delay): // back off a failing listener (e.g. out of descriptors)
			case <-t.done:
				return
			}
			continue
		}
		delay = 0
		select {
		case t.pending <- struct{}{}:
			t.wg.Add(1)
			go t.demux(c)
		default:
			t.logs.warn("pending", "cluster: too many connections being identified; closing one", "remote", c.RemoteAddr())
			c.Close()
		}
	}
}

// demux reads the first bytes of c and hands it to replication or to
// memberlist. A connection that sends nothing within PeekTimeout is closed.
func (t *TCPTransport) demux(c *net.TCPConn) {
	defer t.wg.Done()
	release := func() { <-t.pending }
	_ = c.SetReadDeadline(time.Now().Add(t.opts.PeekTimeout))
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		release()
		c.Close()
		return
	}
	var dst chan net.Conn
	var conn net.Conn
	if first[0] == Magic[0] {
		rest := make([]byte, len(Magic)-1)
		if _, err := io.ReadFull(c, rest); err != nil || string(first[:])+string(rest) != Magic {
			release()
			t.logs.warn("magic", "cluster: connection with a bad preamble closed", "remote", c.RemoteAddr())
			c.Close()
			return
		}
		_ = c.SetNoDelay(true)
		dst, conn = t.replCh, c
	} else {
		dst, conn = t.streamCh, &peekedConn{peeked: first[:], Conn: c}
	}
	_ = c.SetReadDeadline(time.Time{})
	release()
	select {
	case dst <- conn:
	case <-t.done:
		c.Close()
	}
}

func (t *TCPTransport) packetLoop() {
	defer t.wg.Done()
	for {
		buf := make([]byte, 65536)
		n, addr, err := t.udp.ReadFrom(buf)
		ts := time.Now()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n < 1 {
			continue
		}
		select {
		case t.packetCh <- &memberlist.Packet{Buf: buf[:n], From: addr, Timestamp: ts}:
		case <-t.done:
			return
		}
	}
}

// peekedConn replays bytes already read before the rest of the connection.
type peekedConn struct {
	peeked []byte
	net.Conn
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
