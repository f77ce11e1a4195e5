package ajp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ClientOptions configures a Client. Zero values mean the defaults given.
type ClientOptions struct {
	// Addr is the container's AJP connector, host:port. Required.
	Addr string
	// Secret is sent with every request (Tomcat's secret, mod_jk's
	// worker.NAME.secret). Default "": none, which Tomcat 9.0.31 and later
	// refuse unless secretRequired="false".
	Secret string
	// Route is sent as the jvm_route attribute, as mod_jk sends its
	// worker's route. Default "": none.
	Route string
	// PacketSize is the largest packet, header included, sent or accepted:
	// it must match the connector's packetSize (mod_jk's
	// max_packet_size). Default 8192 (DefaultPacketSize); at most 65536.
	PacketSize int
	// ConnectTimeout bounds connecting, and a CPing's answer. Default 2s.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds each wait for the container once the request
	// is sent: for the response headers, and for every later packet.
	// Default 30s.
	ResponseTimeout time.Duration
	// IdleTimeout closes connections idle for that long. Default 90s.
	IdleTimeout time.Duration
	// PingIdle: a pooled connection idle for at least this long is checked
	// with CPing/CPong before it carries a request (mod_jk's ping_mode P,
	// for idle connections only). Default 10s; negative: never.
	PingIdle time.Duration
	// MaxIdle is how many idle connections are kept. Default 64.
	MaxIdle int
	// MaxHeaders bounds the response headers. Default 100.
	MaxHeaders int
	// Refused, if set, is called when the container refuses a request the
	// way Tomcat refuses a wrong or missing secret: status 403, then End
	// Response closing the connection (an application's 403 keeps it). It
	// must not block.
	Refused func()
	// Dial, if set, opens connections instead of a net.Dialer with
	// ConnectTimeout. An error that means nothing was sent should be a
	// *net.OpError with Op "dial", as net.Dialer's are.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Validate reports options that cannot work.
func (o ClientOptions) Validate() error {
	if o.Addr == "" {
		return errors.New("ajp: client needs an address")
	}
	if o.PacketSize != 0 && (o.PacketSize < 1024 || o.PacketSize > MaxPacketSize) {
		return fmt.Errorf("ajp: packet size %d, want 1024 to %d", o.PacketSize, MaxPacketSize)
	}
	return nil
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.PacketSize == 0 {
		o.PacketSize = DefaultPacketSize // mod_jk's and Tomcat's default
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.ResponseTimeout <= 0 {
		o.ResponseTimeout = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 90 * time.Second
	}
	if o.PingIdle == 0 {
		o.PingIdle = 10 * time.Second // below the idle timeouts of firewalls and of Tomcat's connectionTimeout
	}
	if o.MaxIdle <= 0 {
		o.MaxIdle = 64
	}
	if o.MaxHeaders <= 0 {
		o.MaxHeaders = 100
	}
	return o
}

// Errors of a Client. Any error about what the container sent wraps
// ErrBadPacket, ErrPacketTooLarge or ErrTooManyHeaders, and the
// connection is closed.
var (
	// ErrNoResponse: the container closed the connection before answering.
	ErrNoResponse = errors.New("ajp: the container closed the connection without answering")
	// ErrNoPong: a CPing got no CPong.
	ErrNoPong = errors.New("ajp: no CPong")
	// ErrRequestTooLarge: a request's line, headers and attributes do not
	// fit in one packet (PacketSize); nothing was sent.
	ErrRequestTooLarge = errors.New("ajp: request headers do not fit in one packet")
)

// Client sends HTTP requests to an AJP13 container (Tomcat's AJP
// connector) over a pool of kept connections, as mod_jk does. It is safe
// for concurrent use; each connection carries one request at a time.
type Client struct {
	o ClientOptions

	mu     sync.Mutex
	idle   []*clientConn // most recently used last
	closed bool
}

// NewClient returns a Client for o.
func NewClient(o ClientOptions) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Client{o: o.withDefaults()}, nil
}

// clientConn is one connection to the container.
type clientConn struct {
	nc     net.Conn
	br     *bufio.Reader
	rbuf   []byte // payload of the last packet read
	out    []byte // packet being written
	used   time.Time
	reused bool
	rc     syscall.RawConn // for alive, set at its first use
}

func (c *Client) dialConn(ctx context.Context) (*clientConn, error) {
	dial := c.o.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: c.o.ConnectTimeout, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", c.o.Addr)
	if err != nil {
		return nil, err // a *net.OpError with Op "dial": nothing was sent
	}
	return &clientConn{
		nc:   nc,
		br:   bufio.NewReaderSize(nc, c.o.PacketSize),
		rbuf: make([]byte, c.o.PacketSize-headerLen),
		out:  make([]byte, 0, c.o.PacketSize),
	}, nil
}

// getConn returns an idle connection, checked with CPing if it was idle
// for PingIdle, else a new one.
func (c *Client) getConn(ctx context.Context) (*clientConn, error) {
	now := time.Now()
	for {
		c.mu.Lock()
		n := len(c.idle)
		if n == 0 {
			c.mu.Unlock()
			return c.dialConn(ctx)
		}
		cc := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		idle := now.Sub(cc.used)
		switch {
		case idle >= c.o.IdleTimeout:
			cc.nc.Close()
			continue
		case c.o.PingIdle > 0 && idle >= c.o.PingIdle:
			if err := c.ping(cc); err != nil {
				cc.nc.Close()
				continue
			}
		case cc.br.Buffered() > 0 || !alive(cc):
			cc.nc.Close()
			continue
		}
		cc.reused = true
		return cc, nil
	}
}

// putConn keeps cc for another request.
func (c *Client) putConn(cc *clientConn) {
	cc.used = time.Now()
	cc.nc.SetDeadline(time.Time{})
	c.mu.Lock()
	if c.closed || len(c.idle) >= c.o.MaxIdle {
		c.mu.Unlock()
		cc.nc.Close()
		return
	}
	c.idle = append(c.idle, cc)
	c.mu.Unlock()
}

// CloseIdleConnections closes the idle connections; with close set, the
// client keeps none from now on (requests in flight end normally).
func (c *Client) CloseIdleConnections(close bool) {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.closed = c.closed || close
	c.mu.Unlock()
	for _, cc := range idle {
		cc.nc.Close()
	}
}

// Ping checks the container with CPing/CPong on a connection of the pool,
// or a new one; ctx bounds the connect.
func (c *Client) Ping(ctx context.Context) error {
	cc, err := c.dialConn(ctx)
	if err != nil {
		return err
	}
	if err := c.ping(cc); err != nil {
		cc.nc.Close()
		return err
	}
	c.putConn(cc)
	return nil
}

func (c *Client) ping(cc *clientConn) error {
	cc.nc.SetDeadline(time.Now().Add(c.o.ConnectTimeout))
	defer cc.nc.SetDeadline(time.Time{})
	if _, err := cc.nc.Write(appendCPing(cc.out[:0])); err != nil {
		return err
	}
	p, err := readFramed(cc.br, cc.rbuf, c.o.PacketSize, magicToServer)
	if err != nil {
		return err
	}
	if len(p) != 1 || p[0] != typeCPong {
		return fmt.Errorf("%w: got packet type %d", ErrNoPong, firstByte(p))
	}
	return nil
}

func firstByte(p []byte) int {
	if len(p) == 0 {
		return -1
	}
	return int(p[0])
}

// RoundTrip sends r and returns the response headers, implementing
// http.RoundTripper: the Forward fields come from r itself (see
// ForwardOf). The response body streams from the container; closing it
// before its end closes the connection.
func (c *Client) RoundTrip(r *http.Request) (*http.Response, error) {
	return c.Do(r, ForwardOf(r))
}

// ForwardOf describes the client of an incoming server request: its
// address, the local port it came to, and its TLS connection.
func ForwardOf(r *http.Request) *Forward {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ForwardFor(r.RemoteAddr, r.Host, la, r.TLS)
}

// ForwardFor describes a client connection: remoteAddr ("ip:port") is
// the client, host the request's Host, local (if not nil) the address it
// connected to, cs (if not nil) its TLS state.
func ForwardFor(remoteAddr, host string, local net.Addr, cs *tls.ConnectionState) *Forward {
	f := &Forward{}
	if h, port, err := net.SplitHostPort(remoteAddr); err == nil {
		f.RemoteAddr = h
		f.RemotePort, _ = strconv.Atoi(port)
	}
	f.ServerName, f.ServerPort = splitHost(host)
	if ta, ok := local.(*net.TCPAddr); ok {
		f.LocalAddr, f.ServerPort = ta.IP.String(), ta.Port
	} else if local != nil {
		if h, port, err := net.SplitHostPort(local.String()); err == nil {
			f.LocalAddr = h
			f.ServerPort, _ = strconv.Atoi(port)
		}
	}
	if cs != nil {
		SetTLS(f, cs)
	}
	if f.ServerPort == 0 {
		f.ServerPort = 80
		if f.Secure {
			f.ServerPort = 443
		}
	}
	return f
}

func splitHost(hostport string) (string, int) {
	if !strings.Contains(hostport, ":") { // no port: spare SplitHostPort's error
		return hostport, 0
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostName(hostport), 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// Do sends r with the client description f. r's URL gives the path and
// query, r.Host the Host header; r.Body, if any, is streamed to the
// container as it asks for it. A Get Body Chunk that comes before or
// while the response streams is answered from r.Body.
func (c *Client) Do(r *http.Request, f *Forward) (*http.Response, error) {
	out := &outRequest{
		method: r.Method, proto: r.Proto, uri: r.URL.EscapedPath(), host: r.Host,
		query: r.URL.RawQuery, hasQuery: r.URL.RawQuery != "" || r.URL.ForceQuery,
		header: r.Header, fwd: f, route: c.o.Route, secret: c.o.Secret,
	}
	if out.proto == "" || r.ProtoMajor > 1 {
		out.proto = "HTTP/1.1"
	}
	if out.uri == "" {
		out.uri = "/"
	}
	if out.host == "" {
		out.host = r.URL.Host
	}
	body := &reqBody{r: r.Body, left: r.ContentLength}
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		body.left = 0
	case r.ContentLength == 0:
		body.left = -1 // a body of unknown length (a client request's ContentLength is -1 then)
	}
	out.length = body.left
	ctx := r.Context()
	for {
		cc, err := c.getConn(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(ctx, cc, out, body, r)
		if err == nil {
			return resp, nil
		}
		cc.nc.Close()
		// A kept connection the container had closed: send again on a new
		// one if nothing of the body was consumed.
		if !cc.reused || body.started || !errors.Is(err, ErrNoResponse) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// exchange sends the request on cc and reads up to the response headers.
func (c *Client) exchange(ctx context.Context, cc *clientConn, out *outRequest, body *reqBody, r *http.Request) (*http.Response, error) {
	var err error
	cc.out, err = appendForwardRequest(cc.out[:0], out, c.o.PacketSize)
	if err != nil {
		return nil, err
	}
	if body.left > 0 {
		// mod_jk and mod_proxy_ajp send a known-length body's first chunk
		// unasked; a chunked one waits for the container's Get Body Chunk.
		if cc.out, err = body.appendChunk(cc.out, c.o.PacketSize-requestBodyOverhead); err != nil {
			return nil, err
		}
	}
	stop := noStop
	if ctx.Done() != nil { // a request that can be cancelled: stop waiting for the container then
		stop = context.AfterFunc(ctx, func() { cc.nc.SetDeadline(time.Now()) })
	}
	cc.nc.SetWriteDeadline(time.Now().Add(c.o.ResponseTimeout))
	if _, err := cc.nc.Write(cc.out); err != nil {
		stop()
		return nil, noAnswer(err)
	}
	rb := &respBody{c: c, cc: cc, body: body, stop: stop}
	for {
		p, err := rb.next()
		if err != nil {
			stop()
			if rb.packets == 0 {
				err = noAnswer(err)
			}
			return nil, err
		}
		if p[0] != typeSendHeaders {
			stop()
			return nil, badPacket("packet type %d before the response headers", p[0])
		}
		status, reason, h, err := decodeSendHeaders(p, c.o.MaxHeaders)
		if err != nil {
			stop()
			return nil, err
		}
		if status < 200 {
			continue // AJP has no interim responses; skip any
		}
		return rb.response(r, status, reason, h), nil
	}
}

func noStop() bool { return true }

// noAnswer marks an error met before any byte of a response.
func noAnswer(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNoResponse, err)
}

// reqBody is a request body sent as the container asks for it.
type reqBody struct {
	r       io.Reader
	left    int64 // bytes still to send; -1 unknown; 0 done
	started bool  // some was consumed: the request cannot be sent again
	buf     []byte
}

// appendChunk appends the next request body packet of at most max data
// bytes: the empty packet once the body has ended.
func (b *reqBody) appendChunk(out []byte, max int) ([]byte, error) {
	if b.left == 0 || b.r == nil {
		b.left = 0
		return appendRequestBody(out, nil), nil
	}
	if b.left > 0 {
		max = int(min(int64(max), b.left))
	}
	if cap(b.buf) < max {
		b.buf = make([]byte, max)
	}
	b.started = true
	n, err := readSome(b.r, b.buf[:max])
	switch {
	case err == io.EOF && b.left > 0:
		return out, fmt.Errorf("request body: %w", io.ErrUnexpectedEOF)
	case err != nil && err != io.EOF:
		return out, &BodyReadError{err}
	}
	if b.left > 0 {
		b.left -= int64(n)
	}
	if n == 0 { // the end of a body of unknown length
		b.left = 0
	}
	return appendRequestBody(out, b.buf[:n]), nil
}

// readSome reads at least one byte into p, or fails.
func readSome(r io.Reader, p []byte) (int, error) {
	for range 100 {
		n, err := r.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// BodyReadError: reading the request body (from the client) failed.
type BodyReadError struct{ Err error }

func (e *BodyReadError) Error() string { return "ajp: reading the request body: " + e.Err.Error() }
func (e *BodyReadError) Unwrap() error { return e.Err }
