package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"unsafe"

	wire "github.com/tetherlb/tether/balancer/h1"
	"github.com/tetherlb/tether/bench/h1"
)

// Buffer sizes: client connections are many (4 KiB each way, as net/http),
// member connections few (a 16 KiB reader, as HAProxy's buffers).
const (
	clientBuf  = 4 << 10
	memberRead = 16 << 10
	maxIdle    = 256 // idle connections kept per member
)

var (
	errHead    = errors.New("malformed or oversized message head")
	errUpgrade = errors.New("protocol upgrades are not supported")
)

// serveRaw serves every connection of ln with the raw engine.
func serveRaw(ln net.Listener, p *picker) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go newClientConn(p, c).serve()
	}
}

// bconn is a connection to a member.
type bconn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	pool *connPool // where it goes back when idle
}

// connPool keeps a member's idle connections, most recently used first.
type connPool struct {
	mu   sync.Mutex
	idle []*bconn
}

func (cp *connPool) get(addr string) (bc *bconn, reused bool, err error) {
	cp.mu.Lock()
	if n := len(cp.idle); n > 0 {
		bc = cp.idle[n-1]
		cp.idle[n-1] = nil
		cp.idle = cp.idle[:n-1]
		cp.mu.Unlock()
		return bc, true, nil
	}
	cp.mu.Unlock()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &bconn{c: c, br: bufio.NewReaderSize(c, memberRead), bw: bufio.NewWriterSize(c, clientBuf), pool: cp}, false, nil
}

func (cp *connPool) put(bc *bconn) {
	cp.mu.Lock()
	if len(cp.idle) < maxIdle {
		cp.idle = append(cp.idle, bc)
		bc = nil
	}
	cp.mu.Unlock()
	if bc != nil {
		bc.c.Close()
	}
}

// request is the parsed head of one client request; its slices point
// into buf, which is reused from request to request.
type request struct {
	buf     []byte
	method  []byte
	target  []byte
	host    []byte
	headers [][]byte // header lines without CRLF, in buf
	bodyLen int64    // -1: none or chunked
	chunked bool
	close   bool // the client wants the connection closed after this one
}

// clientConn is one client connection and its reused state.
type clientConn struct {
	p     *picker
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	ip    string
	req   request
	lines [][]byte // the request line and header lines, in req.buf
	ends  []int    // end offsets of the lines in req.buf
}

func newClientConn(p *picker, c net.Conn) *clientConn {
	ip := "unknown"
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip = a.IP.String()
	}
	return &clientConn{p: p, c: c, br: bufio.NewReaderSize(c, clientBuf), bw: bufio.NewWriterSize(c, clientBuf), ip: ip}
}

func (cc *clientConn) serve() {
	defer cc.c.Close()
	for {
		if err := cc.readRequest(); err != nil {
			if !errors.Is(err, io.EOF) {
				cc.answer("400 Bad Request")
			}
			return
		}
		keep, err := cc.proxy()
		if err != nil || !keep {
			cc.bw.Flush()
			return
		}
		if cc.br.Buffered() == 0 {
			if cc.bw.Flush() != nil {
				return
			}
		}
	}
}

// answer sends a short error response and asks to close the connection.
func (cc *clientConn) answer(status string) {
	cc.bw.WriteString("HTTP/1.1 " + status + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	cc.bw.Flush()
}

// readRequest reads and parses the next request head.
func (cc *clientConn) readRequest() error {
	r := &cc.req
	r.buf, r.headers = r.buf[:0], r.headers[:0]
	r.host, r.bodyLen, r.chunked, r.close = nil, -1, false, false
	ends := cc.ends[:0]
	for first := true; ; first = false {
		line, err := cc.br.ReadSlice('\n')
		if err != nil {
			if first && len(line) == 0 && err == io.EOF {
				return io.EOF
			}
			return errHead
		}
		line = h1.TrimEOL(line)
		if len(line) == 0 {
			if first {
				continue // tolerate a CRLF between requests
			}
			break
		}
		if len(r.buf)+len(line) > 64<<10 {
			return errHead
		}
		r.buf = append(r.buf, line...)
		ends = append(ends, len(r.buf))
	}
	cc.lines = cc.lines[:0]
	start := 0
	for _, e := range ends {
		cc.lines = append(cc.lines, r.buf[start:e])
		start = e
	}
	cc.ends = ends
	return cc.parseRequest()
}

func (cc *clientConn) parseRequest() error {
	r := &cc.req
	method, rest, ok1 := bytes.Cut(cc.lines[0], []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 {
		return errHead
	}
	r.method, r.target = method, target
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		r.close = true
	default:
		return errHead
	}
	for _, line := range cc.lines[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			return errHead
		}
		value = bytes.TrimSpace(value)
		switch {
		case wire.EqualFold(name, "host"):
			r.host = value
		case wire.EqualFold(name, "content-length"):
			n, err := strconv.ParseInt(unsafeString(value), 10, 64)
			if err != nil || n < 0 {
				return errHead
			}
			r.bodyLen = n
		case wire.EqualFold(name, "transfer-encoding"):
			r.chunked = wire.EqualFold(value, "chunked")
			if !r.chunked {
				return errHead
			}
		case wire.EqualFold(name, "connection"):
			if wire.EqualFold(value, "close") {
				r.close = true
			} else if wire.EqualFold(value, "keep-alive") {
				r.close = false
			}
		case wire.EqualFold(name, "upgrade"):
			return errUpgrade
		}
		r.headers = append(r.headers, line)
	}
	if r.chunked {
		r.bodyLen = -1
	}
	return nil
}

// proxy sends the request to a member and its response to the client. It
// reports whether the client connection can serve another request.
func (cc *clientConn) proxy() (keep bool, err error) {
	r := &cc.req
	m := cc.member()
	bc, reused, err := m.pool.get(m.addr)
	if err != nil {
		cc.answer("502 Bad Gateway")
		return false, err
	}
	err = cc.forward(bc)
	if err == nil {
		keep, err = cc.relay(bc)
	}
	if err != nil && reused && errors.Is(err, errStale) && r.bodyLen <= 0 && !r.chunked {
		// The member closed an idle connection: once more on a new one.
		bc.c.Close()
		if bc, _, err = m.pool.get(m.addr); err == nil {
			if err = cc.forward(bc); err == nil {
				keep, err = cc.relay(bc)
			}
		}
	}
	if err != nil {
		if bc != nil {
			bc.c.Close()
		}
		if errors.Is(err, errStale) || errors.Is(err, errHead) {
			cc.answer("502 Bad Gateway")
		}
		return false, err
	}
	return keep && !r.close, nil
}

// member picks the member for the current request.
func (cc *clientConn) member() *member {
	for _, line := range cc.req.headers {
		if name, value, _ := bytes.Cut(line, []byte(":")); wire.EqualFold(name, "cookie") {
			if m := cc.p.byCookie(unsafeString(bytes.TrimSpace(value))); m != nil {
				return m
			}
		}
	}
	return cc.p.roundRobin()
}

// hopByHop headers are not forwarded; X-Forwarded-* and Forwarded from the
// client are replaced.
var hopByHop = []string{"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
	"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded"}

func isHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if wire.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// forward writes the request head and body to the member.
func (cc *clientConn) forward(bc *bconn) error {
	r, w := &cc.req, bc.bw
	w.Write(r.method)
	w.WriteByte(' ')
	w.Write(r.target)
	w.WriteString(" HTTP/1.1\r\n")
	for _, line := range r.headers {
		name, _, _ := bytes.Cut(line, []byte(":"))
		if isHopByHop(name) {
			continue
		}
		w.Write(line)
		w.WriteString("\r\n")
	}
	w.WriteString("X-Forwarded-For: " + cc.ip + "\r\nX-Forwarded-Host: ")
	w.Write(r.host)
	w.WriteString("\r\nX-Forwarded-Proto: http\r\nForwarded: for=" + cc.ip + ";host=\"")
	w.Write(r.host)
	w.WriteString("\";proto=http\r\n\r\n")
	var err error
	switch {
	case r.chunked:
		err = copyChunked(w, cc.br)
	case r.bodyLen > 0:
		err = copyN(w, cc.br, r.bodyLen)
	}
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return errStale
	}
	return nil
}

var errStale = errors.New("member connection failed before answering")

// relay copies the member's response to the client and returns the member
// connection to its pool when it can be reused. It reports whether the
// client connection stays usable.
func (cc *clientConn) relay(bc *bconn) (bool, error) {
	r, w := &cc.req, cc.bw
	for {
		line, err := bc.br.ReadSlice('\n')
		if err != nil {
			if len(line) == 0 {
				return false, errStale
			}
			return false, errHead
		}
		status, ok := statusOf(h1.TrimEOL(line))
		if !ok {
			return false, errHead
		}
		w.Write(line)
		bodyLen, chunked, memberClose, err := cc.relayHeaders(bc.br)
		if err != nil {
			return false, err
		}
		if r.close {
			w.WriteString("Connection: close\r\n")
		}
		w.WriteString("\r\n")
		if status >= 100 && status < 200 {
			continue // 100 Continue and the like: the final response follows
		}
		noBody := string(r.method) == "HEAD" || status == 204 || status == 304
		switch {
		case noBody:
		case chunked:
			err = copyChunked(w, bc.br)
		case bodyLen >= 0:
			err = copyN(w, bc.br, bodyLen)
		default: // the body ends when the member closes
			_, err = io.Copy(w, bc.br)
			bc.c.Close()
			return false, err
		}
		if err != nil {
			return false, err
		}
		if memberClose {
			bc.c.Close()
		} else {
			bc.pool.put(bc)
		}
		return true, nil
	}
}

// relayHeaders copies response header lines up to the blank line, less
// the hop-by-hop ones, and reports the body's framing.
func (cc *clientConn) relayHeaders(br *bufio.Reader) (bodyLen int64, chunked, close bool, err error) {
	bodyLen = -1
	w := cc.bw
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, false, errHead
		}
		l := h1.TrimEOL(line)
		if len(l) == 0 {
			return bodyLen, chunked, close, nil
		}
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return 0, false, false, errHead
		}
		value = bytes.TrimSpace(value)
		switch {
		case wire.EqualFold(name, "content-length"):
			n, err := strconv.ParseInt(unsafeString(value), 10, 64)
			if err != nil || n < 0 {
				return 0, false, false, errHead
			}
			bodyLen = n
		case wire.EqualFold(name, "transfer-encoding"):
			chunked = wire.EqualFold(value, "chunked")
		case wire.EqualFold(name, "connection"):
			close = close || wire.EqualFold(value, "close")
			continue
		case isHopByHop(name):
			continue
		}
		w.Write(line)
	}
}

func statusOf(line []byte) (int, bool) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false
	}
	n, err := strconv.Atoi(unsafeString(line[9:12]))
	return n, err == nil
}

// copyN copies exactly n bytes without allocating.
func copyN(dst *bufio.Writer, src *bufio.Reader, n int64) error {
	for n > 0 {
		if src.Buffered() == 0 {
			if _, err := src.Peek(1); err != nil {
				return err
			}
		}
		k := int(min(int64(src.Buffered()), n))
		b, _ := src.Peek(k)
		if _, err := dst.Write(b); err != nil {
			return err
		}
		src.Discard(k)
		n -= int64(k)
	}
	return nil
}

// copyChunked copies a chunked body, framing included, up to and with
// its trailer.
func copyChunked(dst *bufio.Writer, src *bufio.Reader) error {
	for {
		line, err := src.ReadSlice('\n')
		if err != nil {
			return errHead
		}
		dst.Write(line)
		sz, _, _ := bytes.Cut(h1.TrimEOL(line), []byte(";"))
		n, err := strconv.ParseInt(unsafeString(bytes.TrimSpace(sz)), 16, 64)
		if err != nil || n < 0 {
			return errHead
		}
		if n == 0 {
			for {
				line, err := src.ReadSlice('\n')
				if err != nil {
					return errHead
				}
				dst.Write(line)
				if len(h1.TrimEOL(line)) == 0 {
					return nil
				}
			}
		}
		if err := copyN(dst, src, n+2); err != nil {
			return err
		}
	}
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
