package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("h1: server closed")

// Handler serves the requests of client connections.
type Handler interface {
	// ServeHTTP1 serves req, just read from c. It writes a complete
	// response to c.Writer() (the server flushes it) and consumes the
	// request body, or calls c.SetClose. It may Hijack the connection.
	// Requests of one connection are served in order, one at a time.
	ServeHTTP1(c *ServerConn, req *Request)
}

// ServerOptions configures a Server. Zero values mean the defaults.
type ServerOptions struct {
	// Limits bounds request heads; see Limits for its defaults.
	Limits Limits
	// HeaderTimeout is how long a client may take to send a request head,
	// from its first byte (from the accept for the first request).
	// Default 10s.
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request
	// for that long. Default 120s.
	IdleTimeout time.Duration
	// ParkAfter is how long an idle keep-alive connection waits for its
	// next request on its goroutine; then (on Linux) the goroutine ends
	// and the connection waits in the server's epoll instance, costing no
	// stack, until the client sends again. Default 10ms: a connection
	// whose client sends again within it keeps its goroutine, and one
	// that waits longer costs no stack (10,000 connections opened in
	// 0.6 s hold about 170 goroutines in their grace, not 1,700: their
	// stacks were most of the memory such a burst leaves, measured in
	// docs/benchmarks.md); negative: never. A connection whose grace ran
	// out with its next request already waiting (the proxy was too busy
	// to see it) is served, not parked, and its grace doubles, up to 128
	// times ParkAfter, until it parks.
	ParkAfter time.Duration
	// ReadBufferSize and WriteBufferSize size the buffers a connection
	// holds while it serves a request. Default 4096 each.
	ReadBufferSize, WriteBufferSize int
	// Logger receives accept errors. Default slog.Default().
	Logger *slog.Logger
	// TLS, if set, makes every connection TLS with this configuration
	// (its NextProtos should offer "http/1.1"). The handshake must end
	// within HeaderTimeout. Default nil: plaintext.
	TLS *tls.Config
	// NextProto takes over a TLS connection whose client negotiated one
	// of its protocols by ALPN (for HTTP/2: "h2"), as
	// http.Server.TLSNextProto does; the server then forgets the
	// connection. Other protocols, or none, are served as HTTP/1.1.
	// Default nil.
	NextProto map[string]func(*tls.Conn)
}

// Server serves HTTP/1.x on listeners, one goroutine per connection.
// While a keep-alive connection waits for its next request it holds no
// buffers (on Linux), over TLS too. Its methods are safe for concurrent
// use.
type Server struct {
	h    Handler
	opts ServerOptions

	closing   atomic.Bool
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*ServerConn]struct{}

	readers, writers, requests sync.Pool
	peeks                      sync.Pool // of *peekOp (inputWaiting)
	// parker is made when the first connection would park (so a server
	// with no idle connection holds no epoll descriptor); nil until then,
	// and for good once closing or when it could not be made (noPark).
	parker atomic.Pointer[parker]
	noPark atomic.Bool

	emptyReads atomic.Int64 // reads of polled connections that found nothing (for tests)
	parks      atomic.Int64 // connections parked (for tests)
	lateInput  atomic.Int64 // grace deadlines that found input to read (for tests)
}

// NewServer returns a Server that hands requests to h.
func NewServer(h Handler, o ServerOptions) *Server {
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 10 * time.Second // slow clients cannot hold connections forever
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = 4096 // as net/http: heads of common requests fit
	}
	if o.WriteBufferSize <= 0 {
		o.WriteBufferSize = 4096
	}
	if o.ParkAfter == 0 {
		o.ParkAfter = 10 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Limits = o.Limits.withDefaults()
	s := &Server{h: h, opts: o, listeners: map[net.Listener]struct{}{}, conns: map[*ServerConn]struct{}{}}
	s.readers.New = func() any { return bufio.NewReaderSize(nil, o.ReadBufferSize) }
	s.writers.New = func() any { return bufio.NewWriterSize(nil, o.WriteBufferSize) }
	s.requests.New = func() any { return new(Request) }
	s.peeks.New = newPeekOp
	return s
}

// Serve accepts connections on ln until Shutdown or Close, and returns
// ErrServerClosed then, or the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("accept failed; retrying", "addr", ln.Addr().String(), "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := s.newConn(nc)
		if !s.track(c, true) {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) track(c *ServerConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

// Shutdown stops accepting connections, closes those waiting for a
// request, and waits for the others to finish the request they serve,
// until ctx is done (then it returns ctx's error and leaves them be; call
// Close). Hijacked connections are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	wait := time.Millisecond
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// Close stops accepting connections and closes all of them at once.
func (s *Server) Close() error {
	s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		// Over TLS: no close_notify, which could wait for the client.
		c.closeRaw(c.state.Swap(stateClosed) == stateParked)
	}
	return nil
}

// closeRaw closes the accepted connection. A polled connection's
// descriptor is only closed once the request served from within the
// poller's wait returns, and net.Conn.Close waits for that: unless it is
// parked (out of the poller's wait), the socket is shut down at once (the
// client sees the end, the handler's writes fail) and closed on another
// goroutine.
func (c *ServerConn) closeRaw(parked bool) {
	if !c.polled || parked {
		c.raw.Close()
		return
	}
	c.rc.Control(shutdownFD)
	go c.raw.Close()
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	s.closing.Store(true)
	p := s.parker.Load()
	if p != nil {
		p.close()
	}
	for ln := range s.listeners {
		ln.Close()
		delete(s.listeners, ln)
	}
	s.mu.Unlock()
	if p != nil {
		p.wait() // its descriptors are closed when Shutdown or Close returns
	}
}

// closeIdle closes the connections waiting for a request and returns how
// many connections are left.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.closeRaw(false)
		}
		if c.state.CompareAndSwap(stateParked, stateClosed) {
			c.raw.Close() // no goroutine ends it: forget it here
			delete(s.conns, c)
		}
	}
	return len(s.conns)
}

// Connection states, for Shutdown.
const (
	stateActive int32 = iota // reading or serving a request
	stateIdle                // waiting for a request
	stateClosed              // closed by Shutdown or Close
	stateParked              // waiting for a request in the parker, without goroutine
)

// What a connection does next.
type step uint8

const (
	serveNext step = iota // a request is coming: buffers taken
	closeConn             // the connection ends
	parked                // the parker has it: its goroutine must end
	headRead              // polled: a request's head is read, to serve outside the poller's wait
	noStep                // polled: nothing decided yet (wait for input)
)

// ServerConn is one client connection as a Handler sees it.
type ServerConn struct {
	srv   *Server
	nc    net.Conn        // the connection requests are read from: raw, or the *tls.Conn
	raw   net.Conn        // the accepted connection
	tls   *tlsSide        // set on TLS connections
	rc    syscall.RawConn // raw's; nil: wait for requests with the buffers held
	br    *bufio.Reader
	bw    *bufio.Writer
	req   *Request
	parks *parker // the parker to use when the grace ends
	state atomic.Int32

	closeAfter bool // close once this response is sent
	linger     bool // close gently: input may be left unread
	hijacked   bool
	addrOK     bool
	waited     bool
	peekBuf    [1]byte
	longer     uint8 // the grace is ParkAfter << longer (see inputWaiting, woken)

	// Plaintext connections on Linux are polled: served from within one
	// RawConn.Read (inpoll.go).
	polled  bool
	inPoll  bool // a handler runs inside the callback
	grace   bool // the read deadline set is ParkAfter's
	rewait  bool // a park failed: the wait goes on to parkDeadline
	verdict step // why the callback ended the RawConn.Read

	served int // requests read

	remote string
	ip     string // the client's address, formatted once
	addr   netip.Addr

	readable func(fd uintptr) bool // RawConn.Read's callback: peekReadable, or polledReady when polled

	parkDeadline time.Time // when a parked, or polled and idle, connection is closed
	first        time.Time // the first request head's deadline

	fdr fdReader // polled: what br reads
}

func (s *Server) newConn(nc net.Conn) *ServerConn {
	c := &ServerConn{srv: s, nc: nc, raw: nc, remote: nc.RemoteAddr().String()}
	if s.opts.TLS != nil {
		c.tls = newTLSSide(nc, s.opts.TLS)
		c.nc = c.tls.tc
	}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.addr, c.addrOK = ta.AddrPort().Addr().Unmap(), true
	}
	if sc, ok := nc.(syscall.Conn); ok && canPeek {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			if c.tls == nil {
				c.polled = true
				c.fdr.conn = c
				c.readable = c.polledReady
			} else {
				c.readable = c.peekReadable
			}
		}
	}
	return c
}

// Reader returns the buffered reader of the connection, positioned at
// the request body.
func (c *ServerConn) Reader() *bufio.Reader { return c.br }

// Writer returns the buffered writer for the response.
func (c *ServerConn) Writer() *bufio.Writer { return c.bw }

// NetConn returns the client connection (a *tls.Conn over TLS), for a
// handler that writes to it directly after flushing the writer.
func (c *ServerConn) NetConn() net.Conn { return c.nc }

// RemoteAddr returns the client's "ip:port".
func (c *ServerConn) RemoteAddr() string { return c.remote }

// ClientAddr returns the client's IP address, and false if it is not a
// TCP peer.
func (c *ServerConn) ClientAddr() (netip.Addr, bool) { return c.addr, c.addrOK }

// ClientIP returns the client's IP address as text ("" if unknown),
// formatted once per connection.
func (c *ServerConn) ClientIP() string {
	if c.ip == "" && c.addrOK {
		c.ip = c.addr.String()
	}
	return c.ip
}

// SetClose closes the connection once the response is sent. linger says
// that request bytes may be left unread: the connection then stops
// sending and drains its input briefly before closing, so that the client
// reads the response rather than a reset.
func (c *ServerConn) SetClose(linger bool) {
	c.closeAfter = true
	c.linger = c.linger || linger
}

// Closing reports whether the connection will close after this response:
// the request or the handler asked for it, or the server is shutting down.
// A response should then say Connection: close.
func (c *ServerConn) Closing() bool {
	return c.closeAfter || (c.req != nil && c.req.Close) || c.srv.closing.Load()
}

// Hijack takes the connection from the server, which will neither read
// from it, nor close it, nor wait for it in Shutdown. The reader holds any
// bytes the client sent beyond the request head. The reader and writer
// stay valid until the handler returns.
//
// Only a request with a body or an Upgrade field may be hijacked: the
// others may be served from within the poller's wait on the client's
// connection, where reading it would never return, and Hijack panics.
func (c *ServerConn) Hijack() (net.Conn, *bufio.Reader, *bufio.Writer) {
	if c.inPoll {
		panic("h1: Hijack of a request without body or Upgrade")
	}
	c.hijacked = true
	c.srv.track(c, false)
	return c.nc, c.br, c.bw
}

// serve serves the connection until it ends, or until it is parked: the
// parker calls serve again when the client sends. It runs on a goroutine
// of its own, whose stack it first grows to what serving takes (stack.go).
func (c *ServerConn) serve() {
	growStack(c.tls != nil && !c.tls.shaken)
	if c.run() == parked {
		return // c is the parker's now (or another goroutine's): hands off
	}
	c.end()
}

// run serves requests until the connection ends or is parked.
func (c *ServerConn) run() (last step) {
	defer func() {
		// A handler's bug costs its connection, not the process (as net/http).
		if r := recover(); r != nil {
			c.closeAfter = true
			c.fdr.live, c.inPoll = false, false // it may have panicked inside the poller's wait
			buf := make([]byte, 16<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.opts.Logger.Error("panic serving a connection", "remote", c.remote, "panic", fmt.Sprint(r), "stack", string(buf))
			last = closeConn
		}
	}()
	if c.tls != nil && !c.tls.shaken {
		c.tls.shaken = true
		if !c.handshake() {
			return closeConn
		}
	}
	for {
		if c.polled {
			last = c.servePolled()
		} else {
			last = c.next()
		}
		if last != serveNext && last != headRead {
			return last
		}
		if last == serveNext {
			// The first head's time counts from the accept, as net/http's.
			// A head that is already whole in the buffer needs no deadline
			// (the one of the wait may have passed: reading would fail).
			if c.served++; !c.headBuffered() {
				d := c.first
				if c.served > 1 {
					d = time.Now().Add(c.srv.opts.HeaderTimeout)
				}
				c.nc.SetReadDeadline(d)
			}
			if err := c.req.Read(c.br, c.srv.opts.Limits); err != nil {
				c.refuse(err)
				return closeConn
			}
		}
		if c.req.BodyFraming() != NoBody || c.req.Upgrade != nil {
			c.nc.SetReadDeadline(time.Time{}) // no limit on reading a body
		}
		c.srv.h.ServeHTTP1(c, c.req)
		if c.hijacked {
			return closeConn
		}
		if err := c.bw.Flush(); err != nil || c.Closing() {
			return closeConn
		}
	}
}

// headBuffered reads what the client has sent (the connection is
// readable: this does not wait) and reports whether a whole request head
// is in the buffer, so that reading it cannot wait for the client.
func (c *ServerConn) headBuffered() bool {
	if c.br.Buffered() == 0 && c.tls != nil {
		return false // a readable socket may hold part of a record only
	}
	if c.br.Buffered() == 0 {
		if _, err := c.br.Peek(1); err != nil {
			return false // Read meets the error again
		}
	}
	b, _ := c.br.Peek(c.br.Buffered())
	return wholeHead(b)
}

// next waits for the next request: at once if its bytes are buffered
// (pipelining), else without buffers until the connection is readable.
// It says whether to serve the request (buffers taken), end the
// connection, or leave it parked.
func (c *ServerConn) next() step {
	if c.srv.closing.Load() && c.served > 0 {
		return closeConn
	}
	if c.br != nil && c.br.Buffered() > 0 {
		return serveNext
	}
	if c.tls != nil && c.tlsPending() {
		return serveNext
	}
	deadline := c.idleDeadline(time.Now())
	if c.rc != nil {
		c.release()
	} else {
		c.acquire()
	}
	c.state.Store(stateIdle)
	if c.srv.closing.Load() {
		return closeConn
	}
	err := c.wait(deadline)
	if err == errParked {
		return parked
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) || err != nil {
		return closeConn
	}
	c.acquire()
	return serveNext
}

// idleDeadline is when a connection waiting for a request is closed: the
// first head's deadline (HeaderTimeout from the accept, unless a TLS
// handshake set it), then IdleTimeout after the last response.
func (c *ServerConn) idleDeadline(now time.Time) time.Time {
	if c.served == 0 {
		if c.first.IsZero() {
			c.first = now.Add(c.srv.opts.HeaderTimeout)
		}
		return c.first
	}
	return now.Add(c.srv.opts.IdleTimeout)
}

// errParked: wait handed the connection to the parker.
var errParked = errors.New("h1: parked")

// parkerFor returns the server's parker, made at the first call; nil when
// connections cannot be parked here, or once the server closes.
func (s *Server) parkerFor() *parker {
	if !canPeek || !canPark || s.opts.ParkAfter <= 0 || s.noPark.Load() {
		return nil
	}
	if p := s.parker.Load(); p != nil {
		return p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.parker.Load(); p != nil || s.closing.Load() {
		return p
	}
	p := newParker(s)
	if p == nil {
		s.noPark.Store(true)
		return nil
	}
	s.parker.Store(p)
	return p
}

// ParkAfter is ServerOptions.ParkAfter with its default applied.
func (s *Server) ParkAfter() time.Duration { return s.opts.ParkAfter }

// wait waits until the connection is readable or deadline; after
// ParkAfter it parks the connection (and returns errParked) if it can.
// The read deadline it leaves may be earlier than deadline: reading the
// head sets its own (see run).
func (c *ServerConn) wait(deadline time.Time) error {
	if c.rc == nil {
		c.nc.SetReadDeadline(deadline)
		_, err := c.br.Peek(1)
		return err
	}
	if p := c.srv.parkerFor(); p != nil {
		if grace := time.Now().Add(c.graceTime()); grace.Before(deadline) {
			c.nc.SetReadDeadline(grace)
			c.waited = false
			err := c.rc.Read(c.readable)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			if !c.inputWaiting() && p.park(c, deadline) {
				return errParked
			}
		}
	}
	c.nc.SetReadDeadline(deadline)
	c.waited = false
	return c.rc.Read(c.readable)
}

// inputWaiting reports whether the client's socket has input (or its end)
// to read once a grace deadline has passed. The deadline's timer can end
// the wait after the input came: with its P busy the runtime polls the
// network only between goroutines (or every 10 ms, from sysmon), so under
// load a request can sit unnoticed past a short grace, and parking the
// connection then would cost a park and a wake-up for nothing, on every
// request, just when the proxy has the least time for them. When input
// was waiting, the connection's grace doubles (up to maxLonger times),
// so that a loaded proxy stops running out of graces, and with them the
// timers and this check. (When there was none the connection is parked,
// and woken says what its grace is next.)
func (c *ServerConn) inputWaiting() bool {
	op := c.srv.peeks.Get().(*peekOp)
	op.ready = false
	c.rc.Control(op.fn)
	ready := op.ready
	c.srv.peeks.Put(op)
	if ready {
		c.srv.lateInput.Add(1)
		c.longer = min(c.longer+1, maxLonger)
	}
	return ready
}

// peekOp is inputWaiting's check under RawConn.Control, with its
// callback made once: a closure passed to Control would escape, an
// allocation per grace that runs out.
type peekOp struct {
	ready bool
	buf   [1]byte
	fn    func(fd uintptr)
}

func newPeekOp() any {
	op := &peekOp{}
	op.fn = func(fd uintptr) { op.ready = peek(fd, op.buf[:]) }
	return op
}

// woken sets the grace of a parked connection whose client sent again,
// from how long it was idle (its grace, then parked). A client that came
// back within wakeSoon graces sends at a steady pace a little slower than
// the grace — 1,000 connections each sending every 15 to 40 ms, say — and
// would otherwise be parked and woken on every request: its grace
// doubles (up to maxLonger times), so that after a few requests it waits
// on its goroutine instead. After a longer idle time the grace is
// ParkAfter again. A connection that has not had its first request yet
// keeps its grace.
func (c *ServerConn) woken(now time.Time) {
	if c.served == 0 {
		return
	}
	idle := now.Sub(c.parkDeadline.Add(-c.srv.opts.IdleTimeout))
	if idle < wakeSoon*c.graceTime() {
		c.longer = min(c.longer+1, maxLonger)
	} else {
		c.longer = 0
	}
}

// wakeSoon: a connection woken within this many graces of going idle has
// its grace doubled (see woken).
const wakeSoon = 4

// maxLonger bounds the doubling of a connection's grace: ParkAfter × 2^7,
// 1.28 s at the default 10 ms.
const maxLonger = 7

// graceTime is how long the connection waits on its goroutine before it
// is parked: ParkAfter, doubled for each grace in a row that ended with
// input waiting, and for each wake-up soon after a park (see woken).
func (c *ServerConn) graceTime() time.Duration {
	g := c.srv.opts.ParkAfter << c.longer
	if g>>c.longer != c.srv.opts.ParkAfter {
		return c.srv.opts.ParkAfter // a ParkAfter of centuries
	}
	return g
}

// peekReadable is the callback of the wait for a request: the first call
// checks for input without reading; if there is none the poller waits,
// and the second call ends the wait.
func (c *ServerConn) peekReadable(fd uintptr) bool {
	if c.waited {
		return true
	}
	c.waited = true
	return peek(fd, c.peekBuf[:])
}

// source is what br reads: on a polled connection the socket itself
// inside the poller's callback (fdReader), on a TLS connection the
// *tls.Conn through the tlsReader that counts drained records, else the
// connection.
func (c *ServerConn) source() io.Reader {
	switch {
	case c.polled:
		return &c.fdr
	case c.tls != nil:
		return &c.tls.tr
	}
	return c.nc
}

func (c *ServerConn) acquire() {
	if c.br == nil {
		c.br = c.srv.readers.Get().(*bufio.Reader)
		c.br.Reset(c.source())
	}
	if c.bw == nil {
		c.bw = c.srv.writers.Get().(*bufio.Writer)
		c.bw.Reset(c.nc)
	}
	if c.req == nil {
		c.req = c.srv.requests.Get().(*Request)
	}
}

// release returns the buffers to the server's pools.
func (c *ServerConn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		c.srv.readers.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		c.srv.writers.Put(c.bw)
		c.bw = nil
	}
	if c.req != nil {
		if cap(c.req.buf) > 64<<10 {
			c.req = new(Request) // do not pool a huge head
		}
		c.srv.requests.Put(c.req)
		c.req = nil
	}
}

func (c *ServerConn) end() {
	if c.hijacked {
		c.release()
		return
	}
	if c.bw != nil {
		c.bw.Flush()
	}
	if c.linger {
		lingerClose(c.nc)
	}
	c.nc.Close()
	c.release()
	c.srv.track(c, false)
}

// refuse answers a request that could not be read with its error's
// status, unless the client just went away or was too slow.
func (c *ServerConn) refuse(err error) {
	var e *Error
	if !errors.As(err, &e) {
		return // EOF, timeout or a network error: nobody to answer
	}
	body := e.Error() + "\n"
	w := c.bw
	WriteStatusLine(w, 1, e.Status, nil)
	w.WriteString("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ")
	WriteInt(w, int64(len(body)))
	w.WriteString("\r\n\r\n")
	w.WriteString(body)
	c.linger = true
}

// lingerClose stops sending and reads what the client still sends, for
// up to half a second or 256 KiB, so that closing does not reset the
// connection before the client read the response.
func lingerClose(nc net.Conn) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok {
		return
	}
	if cw.CloseWrite() != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, nc, 256<<10)
}
