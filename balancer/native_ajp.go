package balancer

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unsafe"

	"github.com/tetherlb/tether/ajp"
	"github.com/tetherlb/tether/balancer/h1"
)

// The native engine towards ajp:// members: the request head becomes an
// *http.Request for the member's ajp.Client, and the response is written
// to the client as the HTTP engine writes any response.

// sendAJP sends the request to an ajp:// member through c and keeps the
// response head in x.ajpResp.
func (x *exchange) sendAJP(m *Member, c *ajp.Client) error {
	a, req := x.a, x.req
	target := m.pathPrefix + string(req.Path)
	if len(req.Path) == 0 {
		target += "/"
	}
	if req.HasQuery {
		target += "?" + string(req.Query)
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		u = &url.URL{Path: "/"} // the strict h1 parser let it through: not expected
	}
	r := &http.Request{
		Method: string(req.Method), URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, len(req.Fields)), Host: string(req.Host),
	}
	if r.Host == "" || a.s.opts.RewriteHost {
		r.Host = m.url.Host
	}
	for i := range req.Fields {
		if f := &req.Fields[i]; x.forwardField(f) && f.Class != h1.Expect {
			k := http.CanonicalHeaderKey(string(f.Name))
			r.Header[k] = append(r.Header[k], string(f.Value))
		}
	}
	switch x.body.Framing() {
	case h1.Length:
		r.ContentLength, r.Body = req.ContentLength, ajpBody{x}
	case h1.Chunked:
		r.ContentLength, r.Body = -1, ajpBody{x}
	}
	resp, err := c.Do(r, a.forwardOf(wirePrior{req}))
	if err != nil {
		if errors.Is(err, h1.ErrBodyTooLarge) {
			return ErrBodyTooLarge
		}
		return err
	}
	x.ajpResp = resp
	x.setCookies = append(x.setCookies, resp.Header["Set-Cookie"]...)
	return nil
}

// ajpBody is the client's request body as the AJP client reads it: the
// first read sends 100 Continue to a client that waits for it.
type ajpBody struct{ x *exchange }

func (b ajpBody) Read(p []byte) (int, error) {
	x := b.x
	if x.req.Expect100 && !x.sent100 {
		if err := x.continue100(); err != nil {
			return 0, err
		}
	}
	x.a.bodyStarted = true
	q, err := x.body.Next()
	if err != nil {
		if bad := badBody(err); bad != nil {
			return 0, bad
		}
		if err != io.EOF && !errors.Is(err, h1.ErrBodyTooLarge) {
			x.a.clientFailed = true // the client's body broke off
		}
		return 0, err
	}
	n := copy(p, q)
	x.body.Consume(n)
	return n, nil
}

func (ajpBody) Close() error { return nil }

// relayAJP writes an AJP member's response to the client, streaming its
// body and flushing after every packet the member sent, so that the
// member's flushes reach the client.
func (x *exchange) relayAJP() {
	a, c, req, resp := x.a, x.c, x.req, x.ajpResp
	x.ajpResp = nil
	defer resp.Body.Close()
	noBody := string(req.Method) == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	w := c.Writer()
	_, reason, _ := strings.Cut(resp.Status, " ")
	h1.WriteStatusLine(w, req.Minor, resp.StatusCode, unsafeBytes(reason))
	for k, vs := range resp.Header {
		if hopByHop(k) || (k == "Content-Length" && !noBody) {
			continue
		}
		for _, v := range vs {
			h1.WriteField(w, unsafeBytes(k), unsafeBytes(v))
		}
	}
	chunked := false
	switch {
	case noBody:
	case resp.ContentLength >= 0:
		w.WriteString("Content-Length: ")
		h1.WriteInt(w, resp.ContentLength)
		w.WriteString("\r\n")
	case req.Minor == 1:
		w.WriteString("Transfer-Encoding: chunked\r\n")
		chunked = true
	default:
		c.SetClose(false)
	}
	writeConnection(c, req)
	w.WriteString("\r\n")
	a.status = resp.StatusCode
	err := x.copyAJP(w, resp.Body, chunked)
	if err == nil {
		err = flushTo(w)
	}
	if err != nil {
		a.err = err
		c.SetClose(false)
		var we *h1.WriteError
		a.clientFailed = errors.As(err, &we)
	}
}

// copyAJP copies an AJP response body to w, with chunked encoding if
// chunked, flushing after each read.
func (x *exchange) copyAJP(w interface {
	io.Writer
	io.StringWriter
	Flush() error
}, body io.Reader, chunked bool) error {
	buf := x.a.b.proxy.BufferPool.Get()
	defer x.a.b.proxy.BufferPool.Put(buf)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if chunked {
				writeHexLine(w, n)
			}
			w.Write(buf[:n])
			if chunked {
				w.WriteString("\r\n")
			}
			x.a.written += int64(n)
			if ferr := w.Flush(); ferr != nil {
				return &h1.WriteError{Err: ferr}
			}
		}
		if err == io.EOF {
			if chunked {
				w.WriteString("0\r\n\r\n")
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func writeHexLine(w io.StringWriter, n int) {
	const digits = "0123456789abcdef"
	var b [18]byte
	i := len(b) - 2
	b[i], b[i+1] = '\r', '\n'
	for {
		i--
		b[i] = digits[n&15]
		n >>= 4
		if n == 0 {
			break
		}
	}
	w.WriteString(string(b[i:]))
}

func flushTo(w interface{ Flush() error }) error {
	if err := w.Flush(); err != nil {
		return &h1.WriteError{Err: err}
	}
	return nil
}

// unsafeBytes views s as bytes without copying; they must not be changed.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// hopByHop reports whether a response header belongs to one connection.
func hopByHop(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}
