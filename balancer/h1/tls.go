package h1

import (
	"crypto/tls"
	"net"
	"time"
)

// TLS on the server: each connection's handshake runs on the
// connection's own goroutine, within HeaderTimeout from the accept. A
// client that negotiates a protocol of ServerOptions.NextProto by ALPN
// (HTTP/2) is handed over; the others are served as HTTP/1.1 over the
// *tls.Conn, with the same buffers as plaintext connections.
//
// An idle TLS connection holds no buffers of the server either. Before
// it waits on the socket it must know that crypto/tls holds no request
// bytes (pipelining, or a record larger than the read buffer): it does
// when every record read from the socket was drained by a read that
// asked for more than it got (counted by probeConn and tlsReader), else
// a read that cannot reach the socket (a probe, see probeConn) tells. The
// count spares most requests the probe, and its allocation in crypto/tls. What crypto/tls
// keeps itself between records (its raw input buffer, sized by the
// largest record read so far) it does not let go of; see
// docs/benchmarks.md for the measured figure.

// tlsSide is what a TLS connection holds beyond a plaintext one, in one
// allocation: the socket under crypto/tls, the *tls.Conn, the reader
// over it, and the state of the handshake.
type tlsSide struct {
	probe     probeConn            // under tc
	tc        *tls.Conn            // over probe
	tr        tlsReader            // over tc: what the read buffer reads
	state     *tls.ConnectionState // made by TLSState
	shaken    bool                 // the handshake was done
	mustProbe bool                 // tlsPending must probe
}

func newTLSSide(nc net.Conn, cfg *tls.Config) *tlsSide {
	t := &tlsSide{probe: probeConn{Conn: nc}}
	t.tc = tls.Server(&t.probe, cfg)
	t.tr.tc = t.tc
	return t
}

// handshake runs the TLS handshake of a new connection and hands the
// connection over if the client negotiated a protocol of NextProto. It
// reports whether the connection is to be served as HTTP/1.1 here.
func (c *ServerConn) handshake() bool {
	c.first = time.Now().Add(c.srv.opts.HeaderTimeout)
	c.raw.SetDeadline(c.first)
	// Idle while it shakes hands: Shutdown closes it rather than wait.
	c.state.Store(stateIdle)
	err := c.tls.tc.Handshake()
	if !c.state.CompareAndSwap(stateIdle, stateActive) || err != nil {
		return false
	}
	c.raw.SetWriteDeadline(time.Time{})
	c.tls.mustProbe = true // the client's first request may have come with its Finished
	proto := c.tls.tc.ConnectionState().NegotiatedProtocol
	if next := c.srv.opts.NextProto[proto]; next != nil {
		c.raw.SetReadDeadline(time.Time{})
		c.hijacked = true
		c.srv.track(c, false)
		next(c.tls.tc)
		return false
	}
	return true
}

// tlsPending reports whether crypto/tls holds request bytes already
// read from the socket, taking the buffers to look. Reading without
// touching the socket: probeConn fails the read crypto/tls would make.
func (c *ServerConn) tlsPending() bool {
	t := c.tls
	p := &t.probe
	if !t.mustProbe && p.hdrN == 0 && p.records == t.tr.drained {
		p.records, t.tr.drained = 0, 0
		return false
	}
	c.acquire()
	p.on = true
	_, err := c.br.Peek(1)
	p.on = false
	if err != errProbe {
		return true // data, or an error the request's read meets again
	}
	t.mustProbe = false
	p.records, t.tr.drained = 0, 0
	return false
}

// tlsReader is the *tls.Conn as the connection's read buffer sees it: it
// counts the reads that drained a record (each read returns the
// plaintext of one record at most; it drained it if it returned less
// than asked).
type tlsReader struct {
	tc      *tls.Conn
	drained int
}

func (r *tlsReader) Read(p []byte) (int, error) {
	n, err := r.tc.Read(p)
	if n > 0 && n < len(p) {
		r.drained++
	}
	return n, err
}

// IsTLS reports whether the client connection is TLS.
func (c *ServerConn) IsTLS() bool { return c.tls != nil }

// TLSState returns the client connection's TLS state, nil for a
// plaintext connection. It is computed on the first call and kept.
func (c *ServerConn) TLSState() *tls.ConnectionState {
	if c.tls == nil {
		return nil
	}
	if c.tls.state == nil {
		cs := c.tls.tc.ConnectionState()
		c.tls.state = &cs
	}
	return c.tls.state
}

// probeConn is the socket under a server's *tls.Conn. While on is set
// its reads fail at once with errProbe, a temporary error crypto/tls
// does not keep, so that a read of the *tls.Conn returns only what
// crypto/tls has buffered. on is used by the connection's goroutine only.
type probeConn struct {
	net.Conn
	on bool

	// The framing of what was read: the header of the record in
	// progress, how many of its bytes came (0: at a record boundary),
	// how many payload bytes are still to come, and how many records
	// came whole since the count was last reset.
	hdr     [recordHeaderLen]byte
	hdrN    int
	left    int
	records int
}

// recordHeaderLen is the length of a TLS record header: type, version,
// payload length.
const recordHeaderLen = 5

func (p *probeConn) Read(b []byte) (int, error) {
	if p.on {
		return 0, errProbe
	}
	n, err := p.Conn.Read(b)
	p.frame(b[:n])
	return n, err
}

// frame follows the record framing over b, just read.
func (p *probeConn) frame(b []byte) {
	for len(b) > 0 {
		if p.hdrN < recordHeaderLen {
			k := copy(p.hdr[p.hdrN:], b)
			p.hdrN += k
			b = b[k:]
			if p.hdrN < recordHeaderLen {
				return
			}
			p.left = int(p.hdr[3])<<8 | int(p.hdr[4])
		} else {
			k := min(p.left, len(b))
			p.left -= k
			b = b[k:]
		}
		if p.left == 0 {
			p.records++
			p.hdrN = 0
		}
	}
}

// errProbe is probeConn's read error: temporary, so crypto/tls reads
// again later.
var errProbe error = probeError{}

type probeError struct{}

func (probeError) Error() string   { return "h1: probing buffered TLS input" }
func (probeError) Timeout() bool   { return true }
func (probeError) Temporary() bool { return true }
