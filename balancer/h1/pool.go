package h1

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Conn is a connection to an origin server (a member), with its buffers
// and the storage for its response heads and bodies. While it is idle in
// its pool it holds no buffers: R and W are nil.
type Conn struct {
	net.Conn
	R *bufio.Reader
	W *bufio.Writer
	// Resp and Body hold the response being read.
	Resp Response
	Body Body
	// Reused: the connection came from the pool (it served a request
	// before), so it may have been closed by the server meanwhile.
	Reused bool

	pool      *ConnPool
	rc        syscall.RawConn
	plain     bool // the connection is the socket (not TLS over it)
	fresh     bool // FlushAndWait may skip the read before its wait
	sent      bool // FlushAndWait: the request went out
	werr      error
	waitFn    func(uintptr) bool // c.flushThenWait
	idleSince time.Time
	peekBuf   [1]byte
}

// Alive reports whether a connection just taken from the pool can take a
// request: the server has not closed it or sent anything unasked. It
// costs a system call on Linux; elsewhere it reports true. A read
// deadline left from the connection's last use is cleared.
func (c *Conn) Alive() bool {
	if c.rc == nil {
		return true
	}
	ready := true
	check := func(fd uintptr) bool {
		ready = peek(fd, c.peekBuf[:])
		return true
	}
	err := c.rc.Read(check)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The read deadline of the last response is still set (callers
		// need not clear it when they read no further): clear it, check.
		c.SetReadDeadline(time.Time{})
		err = c.rc.Read(check)
	}
	return err == nil && !ready
}

// ConnPoolOptions configures a ConnPool. Zero values mean the defaults.
type ConnPoolOptions struct {
	// MaxIdle is how many idle connections are kept. Default 1024.
	MaxIdle int
	// IdleTimeout closes a connection idle for that long. Default 90s.
	IdleTimeout time.Duration
	// ReadBufferSize and WriteBufferSize size each connection's buffers.
	// Default 16384 and 4096.
	ReadBufferSize, WriteBufferSize int
	// FreshFor is how long after its last use an idle connection is
	// presumed still open (servers keep idle connections for seconds),
	// so that a request sent on it with FlushAndWait waits for the
	// response without first reading for it. Default 1s; negative: never.
	FreshFor time.Duration
}

// ConnPool keeps the idle connections to one origin, the most recently
// used first, without their buffers. It does not dial: callers wrap the
// connections they make with NewConn. Its methods are safe for
// concurrent use.
type ConnPool struct {
	mu     sync.Mutex
	opts   ConnPoolOptions
	idle   []*Conn // oldest first
	timer  *time.Timer
	armed  bool
	closed bool

	readers, writers sync.Pool
}

// NewConnPool returns an empty pool.
func NewConnPool(o ConnPoolOptions) *ConnPool {
	p := &ConnPool{}
	p.SetOptions(o)
	return p
}

// SetOptions changes the options; idle connections over the new limits
// go at the next Put or sweep.
func (p *ConnPool) SetOptions(o ConnPoolOptions) {
	if o.MaxIdle <= 0 {
		o.MaxIdle = 1024 // idle connections cost no buffers
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 90 * time.Second // as net/http's DefaultTransport
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = 16 << 10 // a whole small response in one read, as HAProxy's buffers
	}
	if o.WriteBufferSize <= 0 {
		o.WriteBufferSize = 4 << 10
	}
	if o.FreshFor == 0 {
		o.FreshFor = time.Second
	}
	p.mu.Lock()
	if o.ReadBufferSize != p.opts.ReadBufferSize || o.WriteBufferSize != p.opts.WriteBufferSize {
		p.readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, o.ReadBufferSize) }}
		p.writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, o.WriteBufferSize) }}
	}
	p.opts = o
	p.mu.Unlock()
}

// NewConn wraps a new connection to the origin.
func (p *ConnPool) NewConn(nc net.Conn) *Conn {
	c := &Conn{Conn: nc, pool: p}
	if sc, ok := rawConnOf(nc); ok && canPeek {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			_, c.plain = nc.(syscall.Conn)
			c.fresh = c.plain && p.freshFor() >= 0
			c.waitFn = c.flushThenWait
		}
	}
	c.acquire()
	return c
}

func (p *ConnPool) freshFor() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opts.FreshFor
}

// FlushAndWait sends the request buffered in W, which must be whole (the
// connection is not written again before the response), and waits until
// the connection is readable — its response begins, or it ended — or its
// read deadline, which the caller sets first. The usual write-then-read
// reads once before it waits and finds nothing, since the response cannot
// have come yet; that read exists because Go's poller forgets a readiness
// reported before a wait begins, so a wait without a try could miss data
// that arrived in between. Here the wait begins before the request goes
// out, and only the response (or the end of the connection) can follow,
// so the try is skipped: one system call fewer per request. It is skipped
// only on a plaintext connection opened or last used less than FreshFor
// ago: one idle for longer may hold its server's close, which arrived
// before the wait began, and would then wait for its deadline; it is sent
// as usual, and the read that follows finds the close at once. (A server
// that closed a fresh connection resets it when the request arrives,
// which wakes the wait.) werr is the write's error; an error of the wait
// itself is met again by the read that follows.
func (c *Conn) FlushAndWait() error {
	if !c.fresh {
		return c.W.Flush()
	}
	c.sent, c.werr = false, nil
	c.rc.Read(c.waitFn)
	if !c.sent { // the wait could not begin (deadline passed, closed)
		return c.W.Flush()
	}
	err := c.werr
	c.werr = nil
	return err
}

// flushThenWait is FlushAndWait's callback (a method value made once, so
// that a request allocates nothing): the first call sends the request and
// declines, so that the poller waits; the next, once woken, ends the wait.
func (c *Conn) flushThenWait(uintptr) bool {
	if c.sent {
		return true // woken: the read that follows finds what came
	}
	c.sent = true
	c.werr = c.W.Flush()
	return c.werr != nil
}

func (c *Conn) acquire() {
	c.R = c.pool.readers.Get().(*bufio.Reader)
	c.R.Reset(c.Conn)
	c.W = c.pool.writers.Get().(*bufio.Writer)
	c.W.Reset(c.Conn)
}

func (c *Conn) release() {
	if c.R != nil {
		c.R.Reset(nil)
		c.pool.readers.Put(c.R)
		c.W.Reset(nil)
		c.pool.writers.Put(c.W)
		c.R, c.W = nil, nil
	}
}

// Close closes the connection; its buffers go back to the pool.
func (c *Conn) Close() error {
	c.release()
	return c.Conn.Close()
}

// rawConnOf finds the socket under nc, through TLS.
func rawConnOf(nc net.Conn) (syscall.Conn, bool) {
	if nu, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = nu.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	return sc, ok
}

// Get returns the most recently used idle connection, or nil if there is
// none younger than the idle timeout.
func (p *ConnPool) Get() *Conn {
	now := time.Now()
	p.mu.Lock()
	for n := len(p.idle); n > 0; n-- {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if idle := now.Sub(c.idleSince); idle < p.opts.IdleTimeout {
			c.fresh = c.plain && idle < p.opts.FreshFor
			p.mu.Unlock()
			c.Reused = true
			c.acquire()
			return c
		}
		// c is the youngest and too old: so are all the others.
		old := p.idle
		p.idle = p.idle[:0]
		p.mu.Unlock()
		c.Close()
		for i, o := range old {
			o.Close()
			old[i] = nil
		}
		return nil
	}
	p.mu.Unlock()
	return nil
}

// Put makes c idle, or closes it if the pool is full or closed, or if it
// holds unread input.
func (p *ConnPool) Put(c *Conn) {
	if c.R.Buffered() > 0 {
		c.Close()
		return
	}
	c.release()
	c.idleSince = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.opts.MaxIdle {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle = append(p.idle, c)
	if !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(p.opts.IdleTimeout, p.sweep)
		} else {
			p.timer.Reset(p.opts.IdleTimeout)
		}
	}
	p.mu.Unlock()
}

// Idle returns how many connections are idle.
func (p *ConnPool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// sweep closes the connections idle for longer than the timeout.
func (p *ConnPool) sweep() {
	now := time.Now()
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleSince) >= p.opts.IdleTimeout {
		n++
	}
	old := append([]*Conn(nil), p.idle[:n]...)
	p.idle = append(p.idle[:0], p.idle[n:]...)
	clear(p.idle[len(p.idle):cap(p.idle)])
	p.armed = len(p.idle) > 0 && !p.closed
	if p.armed {
		p.timer.Reset(p.opts.IdleTimeout - now.Sub(p.idle[0].idleSince))
	}
	p.mu.Unlock()
	for _, c := range old {
		c.Close()
	}
}

// CloseIdle closes the idle connections; the pool stays usable.
func (p *ConnPool) CloseIdle() {
	p.mu.Lock()
	old := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range old {
		c.Close()
	}
}

// Close closes the idle connections, and those Put later.
func (p *ConnPool) Close() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	p.CloseIdle()
}
