package h1

import (
	"bytes"
	"errors"
	"os"
	"time"
)

// Serving from within the poller's wait.
//
// A plaintext keep-alive connection on Linux is served from within one
// syscall.RawConn.Read call that lasts as long as the connection: the
// callback reads the client's socket with read(2) itself, serves every
// body-less request it finds whole, and declines (returns false) to wait
// for the next. RawConn.Read resets the poller's record of readiness only
// when it begins, so a wait inside it needs no try first: readiness that
// arrived while a request was served is still recorded. The callback
// waits only when its last read found the socket empty (a short read or
// EAGAIN), so bytes left in the socket always have a readiness event to
// come. That saves the read that finds nothing before each wait: 4 system
// calls per proxied request instead of 5.
//
// What cannot be served inside the callback leaves it: a request with a
// body or an upgrade (its head read; run serves it and streams the body
// through net.Conn.Read), a head that is not whole in the buffer (run
// reads the rest with its deadline), a deadline (parking) or the end.
// Inside the callback the connection's read lock is held, so a handler
// must neither read from NetConn nor Hijack there; the server only hands
// it body-less requests without Upgrade, and Hijack panics.

// errWouldBlock: a raw read found the socket empty.
var errWouldBlock = errors.New("h1: would block")

// fdReader is what br reads on a polled connection: the socket itself
// while inside the callback, the net.Conn outside it.
type fdReader struct {
	conn    *ServerConn // outside the callback, its net.Conn is read
	fd      uintptr
	live    bool // inside the callback: read fd with read(2)
	drained bool // the last raw read emptied the socket
}

func (r *fdReader) Read(p []byte) (int, error) {
	if !r.live {
		return r.conn.nc.Read(p)
	}
	n, err := rawRead(r.fd, p)
	r.drained = err == errWouldBlock || (err == nil && n < len(p))
	return n, err
}

// servePolled serves the connection from within RawConn.Read until it
// ends, is parked, or has a request to serve outside (headRead: its head
// read; serveNext: its head begun in the buffer).
func (c *ServerConn) servePolled() step {
	c.nc.SetReadDeadline(c.idleDeadline(time.Now()))
	c.rewait = false
	for {
		if c.srv.closing.Load() && c.served > 0 {
			return closeConn
		}
		c.parks = c.srv.parkerFor() // before the callback: it takes s.mu the first time
		c.verdict = noStep
		err := c.rc.Read(c.readable)
		if c.verdict != noStep {
			return c.verdict
		}
		if !c.grace || !errors.Is(err, os.ErrDeadlineExceeded) {
			return closeConn // the idle or head deadline, the client's end, or Close
		}
		if !c.inputWaiting() {
			if c.parks != nil && c.parks.park(c, c.parkDeadline) {
				return parked
			}
			c.rewait = true // could not park: wait on here until the same deadline
		}
		c.nc.SetReadDeadline(c.parkDeadline)
	}
}

// polledReady is the callback of servePolled's RawConn.Read: it reports
// whether the call should end (c.verdict says why) or wait for input.
func (c *ServerConn) polledReady(fd uintptr) bool {
	c.fdr.fd, c.fdr.live = fd, true
	v := c.polledTurn()
	c.fdr.live = false
	if v == noStep {
		return false
	}
	c.verdict = v
	return true
}

// polledTurn reads and serves what the client sent, and says what comes
// next: noStep to wait for more (the socket was found empty, buffers
// released, the connection idle and its deadline set).
func (c *ServerConn) polledTurn() step {
	// The first call of a RawConn.Read, or input after a wait.
	if c.state.Load() != stateActive && !c.state.CompareAndSwap(stateIdle, stateActive) {
		return closeConn // Shutdown or Close took it while it waited
	}
	c.acquire()
	mustRead := true // readiness was reset or reported: the socket must be read
	for {
		if c.srv.closing.Load() && c.served > 0 {
			return closeConn
		}
		if c.br.Buffered() == 0 {
			if !mustRead {
				return c.idle()
			}
			_, err := c.br.Peek(1)
			if err == errWouldBlock {
				c.srv.emptyReads.Add(1)
				return c.idle()
			}
			if err != nil {
				return closeConn // the client's end or a network error
			}
		}
		b, _ := c.br.Peek(c.br.Buffered())
		if !wholeHead(b) {
			return serveNext // run reads the rest of the head, with its deadline
		}
		c.served++
		c.rewait = false
		if err := c.req.Read(c.br, c.srv.opts.Limits); err != nil {
			c.refuse(err)
			return closeConn
		}
		if c.req.BodyFraming() != NoBody || c.req.Upgrade != nil {
			return headRead
		}
		c.inPoll = true
		c.srv.h.ServeHTTP1(c, c.req)
		c.inPoll = false
		if err := c.bw.Flush(); err != nil || c.Closing() {
			return closeConn
		}
		mustRead = !c.fdr.drained
	}
}

// idle gives the buffers back, marks the connection idle and sets the
// deadline of its wait: ParkAfter, if the server can park it, then its
// idle deadline.
func (c *ServerConn) idle() step {
	c.release()
	c.state.Store(stateIdle)
	if c.srv.closing.Load() {
		return closeConn // Shutdown may have looked before it was idle
	}
	c.grace = false
	if c.rewait { // the wait goes on after a failed park: same deadline, no grace
		c.nc.SetReadDeadline(c.parkDeadline)
		return noStep
	}
	now := time.Now()
	c.parkDeadline = c.idleDeadline(now)
	d := c.parkDeadline
	if c.parks != nil {
		if g := now.Add(c.graceTime()); g.Before(d) {
			d, c.grace = g, true
		}
	}
	c.nc.SetReadDeadline(d)
	return noStep
}

// wholeHead reports whether b holds a whole request head as readLines
// reads it: lines ending in LF, empty lines before the request line
// skipped, up to the first empty line after it. Reading the head from a
// reader that buffers b then cannot ask for more input.
func wholeHead(b []byte) bool {
	started := false
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		empty := i == 0 || (i == 1 && b[0] == '\r')
		if empty && started {
			return true
		}
		started = started || !empty
		b = b[i+1:]
	}
}
