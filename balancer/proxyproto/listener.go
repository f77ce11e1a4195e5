package proxyproto

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configures a Listener.
type Options struct {
	// From are the sources that must send a header. Required: a Listener
	// trusting no one is a plain listener.
	From []netip.Prefix
	// Timeout bounds the reading of a header. Default 10s.
	Timeout time.Duration
	// Logger receives connections refused for a bad header. Default
	// slog.Default().
	Logger *slog.Logger
}

// Listener accepts connections whose trusted sources start with a PROXY
// header. It is safe for concurrent use.
type Listener struct {
	inner net.Listener
	opts  Options
	from  atomic.Pointer[[]netip.Prefix]
	ready chan accepted
	done  chan struct{}
	once  sync.Once
}

type accepted struct {
	c   net.Conn
	err error
}

// NewListener wraps ln. Connections are accepted from ln at once, and
// handed out by Accept once their header, if they owe one, is read.
func NewListener(ln net.Listener, o Options) *Listener {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second // as the clients' header timeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l := &Listener{inner: ln, opts: o, ready: make(chan accepted), done: make(chan struct{})}
	l.SetFrom(o.From)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if !l.deliver(accepted{err: err}) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !l.trusted(c.RemoteAddr()) {
			if !l.deliver(accepted{c: c}) {
				c.Close()
				return
			}
			continue
		}
		go l.readHeader(c)
	}
}

// deliver hands a connection or an error to Accept; false once closed.
func (l *Listener) deliver(a accepted) bool {
	select {
	case l.ready <- a:
		return true
	case <-l.done:
		return false
	}
}

func (l *Listener) trusted(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, p := range *l.from.Load() {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (l *Listener) readHeader(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(l.opts.Timeout))
	h, err := ReadHeader(c)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		l.opts.Logger.Warn("connection refused: no valid PROXY protocol header from a source that must send one", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	var out net.Conn = c
	if !h.Local {
		src := net.TCPAddrFromAddrPort(h.Source)
		dst := net.TCPAddrFromAddrPort(h.Destination)
		out = &Conn{Conn: c, remote: src, local: dst, Proxy: c.RemoteAddr()}
	}
	if !l.deliver(accepted{c: out}) {
		c.Close()
	}
}

// SetFrom replaces the sources that must send a header, for the
// connections accepted from now on.
func (l *Listener) SetFrom(from []netip.Prefix) {
	from = append([]netip.Prefix(nil), from...)
	l.from.Store(&from)
}

// Accept returns the next connection ready to be served.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case a := <-l.ready:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the listener; connections whose header is still being
// read are closed as they finish.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Conn is a connection that came with a PROXY header: RemoteAddr is the
// client's address the header gave, LocalAddr the address the client
// connected to. Nothing past the header was read from it.
type Conn struct {
	net.Conn
	remote, local net.Addr
	// Proxy is the address of the proxy that sent the header.
	Proxy net.Addr
}

// RemoteAddr returns the client's address, from the header.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr returns the address the client connected to, from the header.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// SyscallConn gives the underlying socket, for servers that poll it: the
// header was read exactly, so the socket holds what follows it.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// ReadFrom lets the kernel copy into the connection (splice, sendfile)
// when the underlying connection can.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
