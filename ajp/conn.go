package ajp

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Connection states, for Shutdown.
const (
	stateActive int32 = iota // reading a request's packets or serving it
	stateIdle                // waiting for the next packet
	stateClosed              // closed by Shutdown while idle
)

// lingerTimeout bounds how long a connection closed after a response
// waits for the web server to close its end, so that unread input does not
// turn the close into a reset that could destroy the response.
const lingerTimeout = 2 * time.Second

// aLongTimeAgo is a deadline in the past, to interrupt a read at once.
var aLongTimeAgo = time.Unix(1, 0)

var (
	errMissingSecret = errors.New("no secret")
	errWrongSecret   = errors.New("wrong secret")
)

// conn is one AJP connection from the web server. Its goroutine reads the
// packets; while a handler runs, the request body reads packets instead,
// and once the body has ended a background read watches for the web
// server hanging up.
type conn struct {
	s      *Server
	rwc    net.Conn
	br     *bufio.Reader
	rbuf   []byte // payload of the last packet read
	ctx    context.Context
	cancel context.CancelCauseFunc
	state  atomic.Int32

	wmu  sync.Mutex // guards out and writes to rwc
	out  []byte     // packets not yet written
	werr error      // first write error

	broken atomic.Bool   // the connection cannot carry another request
	bgDone chan struct{} // non-nil while the background read runs
	bgStop atomic.Bool   // the background read is being stopped on purpose
	linger bool          // a response was sent before closing: close gently
}

func newConn(s *Server, rwc net.Conn) *conn {
	ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), http.LocalAddrContextKey, rwc.LocalAddr()))
	c := &conn{
		s: s, rwc: rwc,
		br:     bufio.NewReaderSize(rwc, s.o.PacketSize),
		rbuf:   make([]byte, s.o.PacketSize-headerLen),
		ctx:    ctx,
		cancel: cancel,
		out:    make([]byte, 0, s.o.PacketSize+64),
	}
	c.state.Store(stateActive)
	return c
}

// serve reads packets until the connection ends.
func (c *conn) serve() {
	defer func() {
		if v := recover(); v != nil {
			c.s.log.Error("ajp: internal error; connection closed", "remote", c.remote(), "panic", v, "stack", string(debug.Stack()))
		}
		c.cancel(errors.New("ajp: connection closed"))
		if c.linger {
			c.lingerClose()
		}
		c.rwc.Close()
		c.s.trackConn(c, false)
	}()
	for {
		c.state.Store(stateIdle)
		if c.s.closing.Load() {
			return
		}
		p, idle, err := c.readNext()
		if err != nil {
			c.logReadError(err, idle)
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // closed by Shutdown as the packet arrived; the web server retries
		}
		if len(p) == 0 {
			c.s.log.Warn("ajp: empty packet; connection closed", "remote", c.remote())
			return
		}
		switch p[0] {
		case typeCPing:
			if c.send(appendCPong, true) != nil {
				return
			}
		case typeShutdown:
			c.s.log.Debug("ajp: ignored a shutdown packet", "remote", c.remote())
		case typeForwardRequest:
			if !c.serveRequest(p) {
				return
			}
		default:
			c.s.log.Warn("ajp: unexpected packet; connection closed", "remote", c.remote(), "type", p[0])
			return
		}
	}
}

// readNext waits up to IdleTimeout for a packet to start, then up to
// ReadTimeout for the rest of it. idle reports whether the error came
// before any byte of the packet.
func (c *conn) readNext() (p []byte, idle bool, err error) {
	c.setReadDeadline(c.s.o.IdleTimeout)
	if _, err := c.br.Peek(1); err != nil {
		return nil, true, err
	}
	c.setReadDeadline(c.s.o.ReadTimeout)
	p, err = readPacket(c.br, c.rbuf, c.s.o.PacketSize)
	return p, false, err
}

func (c *conn) setReadDeadline(d time.Duration) {
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	c.rwc.SetReadDeadline(t)
}

func (c *conn) logReadError(err error, idle bool) {
	var ne net.Error
	switch {
	case idle && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)):
		// the web server or Shutdown closed an idle connection
	case idle && errors.As(err, &ne) && ne.Timeout():
		c.s.log.Debug("ajp: idle connection closed", "remote", c.remote())
	default:
		c.s.log.Warn("ajp: bad input; connection closed", "remote", c.remote(), "err", err)
	}
}

func (c *conn) remote() string { return c.rwc.RemoteAddr().String() }

// closeIfIdle closes the connection if it waits for a packet; the serve
// goroutine then ends.
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(stateIdle, stateClosed) {
		c.rwc.Close()
	}
}

// send appends a packet built by add to the output, and writes the output
// if flush is set or a packet's worth is waiting. It returns the first
// write error of the connection.
func (c *conn) send(add func([]byte) []byte, flush bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	c.out = add(c.out)
	if flush || len(c.out) >= c.s.o.PacketSize {
		c.writeOut()
	}
	return c.werr
}

// writeOut writes the pending packets; c.wmu must be held.
func (c *conn) writeOut() {
	if len(c.out) == 0 {
		return
	}
	if d := c.s.o.WriteTimeout; d > 0 {
		c.rwc.SetWriteDeadline(time.Now().Add(d))
	}
	if _, err := c.rwc.Write(c.out); err != nil {
		c.werr = fmt.Errorf("ajp: write to web server: %w", err)
		c.broken.Store(true)
	}
	c.out = c.out[:0]
}

// serveRequest serves one Forward Request (payload p) and reports whether
// the connection can carry another.
func (c *conn) serveRequest(p []byte) bool {
	f, err := decodeForwardRequest(p, c.s.o.MaxHeaders)
	if err != nil {
		c.s.log.Warn("ajp: bad forward request; connection closed", "remote", c.remote(), "err", err)
		c.refuse(http.StatusBadRequest)
		return false
	}
	if err := c.s.checkSecret(f); err != nil {
		c.s.log.Warn("ajp: request refused: "+err.Error()+" (set the same secret on the web server's worker)",
			"remote", c.remote(), "client", f.remoteAddr, "method", f.method, "uri", f.uri)
		c.refuse(http.StatusForbidden)
		return false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	r, err := newRequest(ctx, f)
	if err != nil {
		c.s.log.Warn("ajp: bad forward request; connection closed", "remote", c.remote(), "err", err)
		c.refuse(http.StatusBadRequest)
		return false
	}
	b := &body{c: c, remaining: r.ContentLength, limit: c.s.o.MaxBodyBytes}
	if r.ContentLength > 0 {
		// The web server sends the first chunk unasked, right after the
		// request: read it now, so that it is never left on the wire.
		b.mu.Lock()
		b.fetch(false)
		b.mu.Unlock()
		if c.broken.Load() {
			return false
		}
	}
	if b.limit >= 0 && r.ContentLength > b.limit {
		c.stopBackgroundRead()
		return c.respondStatus(http.StatusRequestEntityTooLarge)
	}
	if r.ContentLength == 0 {
		r.Body = http.NoBody
		c.startBackgroundRead()
	} else {
		r.Body = b
	}
	w := newResponse(c, r)
	panicked := c.runHandler(w, r)
	b.close()
	c.stopBackgroundRead()
	return c.finish(w, panicked)
}

func (s *Server) checkSecret(f *forwardRequest) error {
	switch {
	case s.o.Secret == "":
		return nil // AllowNoSecret
	case !f.hasSecret:
		return errMissingSecret
	case subtle.ConstantTimeCompare([]byte(f.secret), []byte(s.o.Secret)) != 1:
		return errWrongSecret
	}
	return nil
}

// runHandler calls the handler and reports whether it panicked.
func (c *conn) runHandler(w *response, r *http.Request) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			if v != http.ErrAbortHandler {
				c.s.log.Error("ajp: panic serving request", "remote", c.remote(), "method", r.Method,
					"path", logPath(r.RequestURI), "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	c.s.h.ServeHTTP(w, r)
	return false
}

// finish ends the response after the handler returned and reports whether
// the connection can carry another request.
func (c *conn) finish(w *response, panicked bool) bool {
	if panicked {
		if w.headerSent {
			// What was sent goes out, so that the web server sees a
			// response begun and cut, not a node to retry the request on.
			c.send(func(b []byte) []byte { return b }, true)
		} else {
			c.refuse(http.StatusInternalServerError)
		}
		return false
	}
	if !w.finish() {
		return false // truncated or not written: no End Response, the web server sees an error
	}
	reuse := !c.broken.Load() && !c.s.closing.Load()
	if c.send(func(b []byte) []byte { return appendEndResponse(b, reuse) }, true) != nil {
		return false
	}
	c.linger = !reuse
	return reuse
}

// respondStatus answers with an empty response of status code and reports
// whether the connection can carry another request.
func (c *conn) respondStatus(code int) bool {
	reuse := !c.broken.Load() && !c.s.closing.Load()
	c.sendStatus(code, reuse)
	c.linger = !reuse
	return reuse && c.werrNil()
}

// refuse answers with an empty response of status code and closes the
// connection after it.
func (c *conn) refuse(code int) {
	c.sendStatus(code, false)
	c.linger = true
}

func (c *conn) sendStatus(code int, reuse bool) {
	h := http.Header{"Content-Length": {"0"}}
	c.send(func(b []byte) []byte {
		b, _ = appendSendHeaders(b, code, http.StatusText(code), h, c.s.o.PacketSize)
		return appendEndResponse(b, reuse)
	}, true)
}

func (c *conn) werrNil() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.werr == nil
}

// startBackgroundRead watches the connection while the handler runs with
// nothing left to read, so that the request's context ends if the web
// server hangs up.
func (c *conn) startBackgroundRead() {
	c.rwc.SetReadDeadline(time.Time{})
	c.bgStop.Store(false)
	done := make(chan struct{})
	c.bgDone = done
	go func() {
		defer close(done)
		_, err := c.br.Peek(1)
		var ne net.Error
		switch {
		case err == nil:
			// The web server sent something while it should be waiting
			// for the response: it does not follow the protocol.
			c.s.log.Warn("ajp: unexpected input during a response; connection closed after it", "remote", c.remote())
			c.broken.Store(true)
		case c.bgStop.Load() && errors.As(err, &ne) && ne.Timeout():
			// stopped by stopBackgroundRead
		default:
			c.broken.Store(true)
			c.cancel(fmt.Errorf("ajp: connection to the web server lost: %w", err))
		}
	}()
}

// stopBackgroundRead interrupts the background read, if any, and waits
// for it to end.
func (c *conn) stopBackgroundRead() {
	if c.bgDone == nil {
		return
	}
	c.bgStop.Store(true)
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-c.bgDone
	c.bgDone = nil
}

// lingerClose half-closes the connection and reads what the web server
// still sends until it closes its end, for up to lingerTimeout.
func (c *conn) lingerClose() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.rwc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, c.br, 1<<20)
}
