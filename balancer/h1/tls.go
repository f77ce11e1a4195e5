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
// An idle TLS connection holds no buffers of the server either: before
// it waits on the socket, a read that cannot reach the socket (see
// probeConn) tells whether crypto/tls still holds a decrypted request
// (pipelining, or a record larger than the read buffer). What crypto/tls
// keeps itself between records (its raw input buffer, sized by the
// largest record read so far) it does not let go of; see
// docs/benchmarks.md for the measured figure.

// handshake runs the TLS handshake of a new connection and hands the
// connection over if the client negotiated a protocol of NextProto. It
// reports whether the connection is to be served as HTTP/1.1 here.
func (c *ServerConn) handshake() bool {
	c.first = time.Now().Add(c.srv.opts.HeaderTimeout)
	c.raw.SetDeadline(c.first)
	// Idle while it shakes hands: Shutdown closes it rather than wait.
	c.state.Store(stateIdle)
	err := c.tc.Handshake()
	if !c.state.CompareAndSwap(stateIdle, stateActive) || err != nil {
		return false
	}
	c.raw.SetWriteDeadline(time.Time{})
	proto := c.tc.ConnectionState().NegotiatedProtocol
	if next := c.srv.opts.NextProto[proto]; next != nil {
		c.raw.SetReadDeadline(time.Time{})
		c.hijacked = true
		c.srv.track(c, false)
		next(c.tc)
		return false
	}
	return true
}

// tlsPending reports whether crypto/tls holds request bytes already
// read from the socket, taking the buffers to look. Reading without
// touching the socket: probeConn fails the read crypto/tls would make.
func (c *ServerConn) tlsPending() bool {
	c.acquire()
	c.probe.on = true
	_, err := c.br.Peek(1)
	c.probe.on = false
	return err != errProbe // data, or an error the request's read meets again
}

// IsTLS reports whether the client connection is TLS.
func (c *ServerConn) IsTLS() bool { return c.tc != nil }

// TLSState returns the client connection's TLS state, nil for a
// plaintext connection. It is computed on the first call and kept.
func (c *ServerConn) TLSState() *tls.ConnectionState {
	if c.tc == nil {
		return nil
	}
	if c.tlsState == nil {
		cs := c.tc.ConnectionState()
		c.tlsState = &cs
	}
	return c.tlsState
}

// probeConn is the socket under a server's *tls.Conn. While on is set
// its reads fail at once with errProbe, a temporary error crypto/tls
// does not keep, so that a read of the *tls.Conn returns only what
// crypto/tls has buffered. on is used by the connection's goroutine only.
type probeConn struct {
	net.Conn
	on bool
}

func (p *probeConn) Read(b []byte) (int, error) {
	if p.on {
		return 0, errProbe
	}
	return p.Conn.Read(b)
}

// errProbe is probeConn's read error: temporary, so crypto/tls reads
// again later.
var errProbe error = probeError{}

type probeError struct{}

func (probeError) Error() string   { return "h1: probing buffered TLS input" }
func (probeError) Timeout() bool   { return true }
func (probeError) Temporary() bool { return true }
