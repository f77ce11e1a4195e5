package balancer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/tetherlb/tether/balancer/h1"
)

// writeHead writes the request head for member m: the target under the
// member's path, the Host (the client's, or the member's with
// RewriteHost), the client's fields less the hop-by-hop and forwarding
// ones, then the forwarding fields and the body's framing.
func (x *exchange) writeHead(w *bufio.Writer, m *Member) {
	a, req := x.a, x.req
	w.Write(req.Method)
	w.WriteByte(' ')
	if string(req.Path) == "*" {
		w.WriteByte('*')
	} else {
		w.WriteString(m.pathPrefix)
		if len(req.Path) == 0 {
			w.WriteByte('/')
		}
		w.Write(req.Path)
		if req.HasQuery {
			w.WriteByte('?')
			w.Write(req.Query)
		}
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	if a.s.opts.RewriteHost || len(req.Host) == 0 {
		w.WriteString(m.url.Host)
	} else {
		w.Write(req.Host)
	}
	w.WriteString("\r\n")
	for i := range req.Fields {
		f := &req.Fields[i]
		switch {
		case !x.forwardField(f):
		case f.Class == h1.Cookie && a.s.rewritesCookies():
			var ok bool
			if a.scratch, ok = a.appendCookieHeader(a.scratch[:0], unsafeString(f.Value)); ok {
				h1.WriteField(w, f.Name, a.scratch)
			}
		default:
			h1.WriteField(w, f.Name, f.Value)
		}
	}
	if req.TrailersOK {
		w.WriteString("TE: trailers\r\n")
	}
	if req.Upgrade != nil {
		w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		w.Write(req.Upgrade)
		w.WriteString("\r\n")
	}
	x.writeForwarding(w)
	switch req.BodyFraming() {
	case h1.Length:
		w.WriteString("Content-Length: ")
		h1.WriteInt(w, req.ContentLength)
		w.WriteString("\r\n")
	case h1.Chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		switch string(req.Method) {
		case http.MethodPost, http.MethodPut, http.MethodPatch: // as net/http's Transport
			w.WriteString("Content-Length: 0\r\n")
		default:
			if req.ContentLength == 0 {
				w.WriteString("Content-Length: 0\r\n")
			}
		}
	}
	w.WriteString("\r\n")
}

// forwardField reports whether a request field goes to the member as it is.
func (x *exchange) forwardField(f *h1.Field) bool {
	switch f.Class {
	case h1.Host, h1.ContentLength, h1.XForwardedFor, h1.XForwardedHost, h1.XForwardedProto, h1.Forwarded:
		return false // written by writeHead
	case h1.Expect:
		return x.expect
	case h1.Trailer:
		return x.req.Chunked && !f.Hop // trailers are passed on
	}
	return !f.Class.HopByHop() && !f.Hop
}

// writeForwarding writes X-Forwarded-For/-Host/-Proto and Forwarded.
func (x *exchange) writeForwarding(w *bufio.Writer) {
	a := x.a
	in := wirePrior{x.req}
	f := a.forwarding(in)
	w.WriteString("X-Forwarded-For: ")
	w.Write(a.appendXFF(w.AvailableBuffer(), &f, in))
	w.WriteString("\r\nX-Forwarded-Host: ")
	w.WriteString(f.host)
	w.WriteString("\r\nX-Forwarded-Proto: ")
	w.WriteString(f.proto)
	w.WriteString("\r\nForwarded: ")
	w.Write(a.appendForwarded(w.AvailableBuffer(), &f, in))
	w.WriteString("\r\n")
}

// wirePrior gives the incoming forwarding fields of a request head.
type wirePrior struct{ req *h1.Request }

func (p wirePrior) values(name string) []string {
	var c h1.Class
	switch name {
	case "X-Forwarded-For":
		c = h1.XForwardedFor
	case "X-Forwarded-Host":
		c = h1.XForwardedHost
	case "X-Forwarded-Proto":
		c = h1.XForwardedProto
	case "Forwarded":
		c = h1.Forwarded
	}
	var out []string
	for i := range p.req.Fields {
		if f := &p.req.Fields[i]; f.Class == c {
			out = append(out, unsafeString(f.Value))
		}
	}
	return out
}

// relay writes the member's response to the client, streaming its body,
// and gives the member connection back to its pool when it can serve
// another request. A response without a length goes to an HTTP/1.1
// client chunked, so that the client connection stays open; to an
// HTTP/1.0 client it ends with the connection.
func (x *exchange) relay() {
	a, c, mc, req := x.a, x.c, x.mc, x.req
	x.mc = nil
	resp := &mc.Resp
	framing := resp.BodyFraming(string(req.Method) == http.MethodHead)
	mc.Body.Reset(mc.R, framing, resp.ContentLength, h1.Limits{})
	enc := h1.Raw
	if framing == h1.Chunked || framing == h1.UntilClose {
		if req.Minor == 1 {
			enc = h1.Chunk
		} else {
			c.SetClose(false)
		}
	}
	w := c.Writer()
	h1.WriteStatusLine(w, req.Minor, resp.Status, resp.Reason)
	for i := range resp.Fields {
		if f := &resp.Fields[i]; responseField(f, framing, enc) {
			x.writeResponseField(w, f)
		}
	}
	x.writeInsertCookie(w)
	switch {
	case framing == h1.Length:
		w.WriteString("Content-Length: ")
		h1.WriteInt(w, resp.ContentLength)
		w.WriteString("\r\n")
	case enc == h1.Chunk:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	writeConnection(c, req)
	w.WriteString("\r\n")
	a.status = resp.Status
	if f := mc.Body.Framing(); f != h1.NoBody && (f != h1.Length || mc.Body.Left() > int64(mc.R.Buffered())) {
		// The body is not all in the buffer: reading it has no time limit
		// (the response deadline was for the head). A connection put back
		// with the deadline still set gets it renewed or cleared at its
		// next use (readResponse, Alive).
		mc.SetReadDeadline(time.Time{})
	}
	var err error
	if mc.Body.Left()-int64(mc.R.Buffered()) >= spliceMin {
		err = x.splice(w, mc)
	} else {
		err = h1.CopyBody(w, &mc.Body, enc, keepTrailer)
	}
	a.written = mc.Body.N()
	if err != nil || resp.Close || framing == h1.UntilClose || x.early || a.s.opts.SendProxy != 0 {
		mc.Close()
	} else {
		a.active.conns.Put(mc)
	}
	if err != nil {
		// The response is cut short: the client sees the connection end
		// before the body does.
		a.err = err
		c.SetClose(false)
		var we *h1.WriteError
		a.clientFailed = errors.As(err, &we)
	}
}

// spliceMin is the body size from which a Content-Length body goes from
// member to client with splice(2) (Linux; a plain copy elsewhere): the
// kernel moves the data without copying it through the balancer.
const spliceMin = 32 << 10

// splice writes a Length body: the bytes already buffered through w, the
// rest from the member's socket to the client's directly. A failure may be
// on either side.
func (x *exchange) splice(w *bufio.Writer, mc *h1.Conn) error {
	if n := min(int64(mc.R.Buffered()), mc.Body.Left()); n > 0 {
		p, _ := mc.R.Peek(int(n))
		if _, err := w.Write(p); err != nil {
			return &h1.WriteError{Err: err}
		}
		mc.Body.Consume(int(n))
	}
	if err := w.Flush(); err != nil {
		return &h1.WriteError{Err: err}
	}
	dst, ok := x.c.NetConn().(io.ReaderFrom)
	if _, tcp := mc.Conn.(*net.TCPConn); !ok || !tcp {
		return h1.CopyBody(w, &mc.Body, h1.Raw, nil)
	}
	x.limited = io.LimitedReader{R: mc.Conn, N: mc.Body.Left()}
	n, err := dst.ReadFrom(&x.limited)
	mc.Body.Advance(n)
	if err == nil && mc.Body.Left() > 0 {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// responseField reports whether a response field goes to the client as
// it is.
func responseField(f *h1.Field, framing h1.Framing, enc h1.Encoding) bool {
	switch f.Class {
	case h1.ContentLength:
		return framing == h1.NoBody // HEAD and 304 keep the member's
	case h1.Trailer:
		return enc == h1.Chunk && !f.Hop
	}
	return !f.Class.HopByHop() && !f.Hop
}

// tunnel completes a protocol switch (WebSocket and the like): the
// member's 101 goes to the client, then bytes are copied both ways until
// both sides have finished, each end's half-close passed on.
func (x *exchange) tunnel() {
	a, c, mc, req := x.a, x.c, x.mc, x.req
	resp := &mc.Resp
	if !h1.EqualFold(resp.Upgrade, unsafeString(req.Upgrade)) {
		x.fail(fmt.Errorf("%w: switched to %q when %q was asked for", errBadResponse, resp.Upgrade, req.Upgrade))
		return
	}
	x.mc = nil
	w := c.Writer()
	h1.WriteStatusLine(w, 1, resp.Status, resp.Reason)
	for i := range resp.Fields {
		if f := &resp.Fields[i]; !f.Class.HopByHop() && !f.Hop {
			x.writeResponseField(w, f)
		}
	}
	x.writeInsertCookie(w)
	w.WriteString("Connection: Upgrade\r\nUpgrade: ")
	w.Write(resp.Upgrade)
	w.WriteString("\r\n\r\n")
	a.status = resp.Status
	if err := w.Flush(); err != nil {
		mc.Close()
		a.clientFailed = true
		return
	}
	nc, br, _ := c.Hijack()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(mc.Conn, br)
		closeWrite(mc.Conn)
	}()
	io.Copy(nc, mc.R)
	closeWrite(nc)
	<-done
	nc.Close()
	mc.Close()
}

func closeWrite(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	nc.Close()
}

// writeResponseField writes a response field to the client: a Set-Cookie
// of the application's session in prefix mode with the route put in
// front of its value, any other as it came.
func (x *exchange) writeResponseField(w *bufio.Writer, f *h1.Field) {
	a := x.a
	if f.Class == h1.SetCookie {
		var ok bool
		var v []byte
		if v, ok = a.prefixSetCookie(a.scratch[:0], unsafeString(f.Value)); ok {
			a.scratch = v
			h1.WriteField(w, f.Name, v)
			return
		}
	}
	h1.WriteField(w, f.Name, f.Value)
}

// writeInsertCookie writes Tether's own cookie (insert mode), if the
// response sets it.
func (x *exchange) writeInsertCookie(w *bufio.Writer) {
	if sc := x.a.setCookie; len(sc) > 0 {
		w.WriteString("Set-Cookie: ")
		w.Write(sc)
		w.WriteString("\r\n")
		if x.a.s.opts.Cookie.NoCache {
			w.WriteString("Cache-Control: private\r\n")
		}
	}
}
