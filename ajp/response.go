package ajp

import (
	"net/http"
	"strconv"
	"strings"
)

// response is the http.ResponseWriter of one request. Body bytes are
// buffered up to one packet's worth; the headers go out with the first
// full packet, at Flush, or when the handler returns, so that a small
// response gets a Content-Length and a sniffed Content-Type as with
// net/http.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header

	status     int    // 0 until WriteHeader
	declared   int64  // Content-Length the handler set, -1 if none
	written    int64  // body bytes the handler wrote
	buf        []byte // body bytes not yet sent
	headerSent bool
	err        error // sticky: what every later Write returns
}

func newResponse(c *conn, r *http.Request) *response {
	return &response{
		c: c, req: r,
		header:   http.Header{},
		declared: -1,
		buf:      make([]byte, 0, c.s.o.PacketSize-bodyChunkOverhead),
	}
}

// Header returns the response headers; changes after the headers were
// sent have no effect.
func (w *response) Header() http.Header { return w.header }

// WriteHeader sets the status code. Informational codes (1xx) are ignored:
// AJP13 has no way to send them.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("ajp: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.status != 0 {
		w.c.s.log.Debug("ajp: superfluous WriteHeader call", "path", logPath(w.req.RequestURI), "code", code)
		return
	}
	if code < 200 {
		return
	}
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64); err == nil && n >= 0 {
			w.declared = n
		} else {
			w.header.Del("Content-Length")
		}
	}
}

// Write sends body bytes, committing the status (200 if none) first.
func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	n := 0
	for len(p) > 0 {
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		n += k
		if len(w.buf) == cap(w.buf) {
			if err := w.sendBuffered(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// WriteString is Write for a string.
func (w *response) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Flush sends the headers and the buffered body now, and asks the web
// server to flush them to the client.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush returning the write error, for
// http.ResponseController.
func (w *response) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.sendBuffered(); err != nil {
		return err
	}
	// A Send Body Chunk of length zero is an explicit flush for mod_jk and
	// mod_proxy_ajp, as Tomcat sends it.
	return w.record(w.c.send(func(b []byte) []byte { return appendBodyChunk(b, nil) }, true))
}

// sendBuffered sends the headers if not yet sent, then the buffered body.
func (w *response) sendBuffered() error {
	if w.err != nil {
		return w.err
	}
	if !w.headerSent {
		if err := w.sendHeader(); err != nil {
			return err
		}
	}
	if len(w.buf) == 0 {
		return nil
	}
	data := w.buf
	w.buf = w.buf[:0]
	return w.record(w.c.send(func(b []byte) []byte { return appendBodyChunk(b, data) }, false))
}

// sendHeader sends the Send Headers packet. If the headers do not fit in
// a packet, the client gets an empty 500 instead and later writes fail.
func (w *response) sendHeader() error {
	w.headerSent = true
	h := w.header
	h.Del("Transfer-Encoding") // the web server frames the body for the client
	if _, ok := h["Content-Type"]; !ok && len(w.buf) > 0 {
		h.Set("Content-Type", http.DetectContentType(w.buf))
	}
	var herr error
	err := w.c.send(func(b []byte) []byte {
		b, herr = appendSendHeaders(b, w.status, statusText(w.status), h, w.c.s.o.PacketSize)
		if herr != nil {
			b, _ = appendSendHeaders(b, http.StatusInternalServerError, statusText(500), http.Header{"Content-Length": {"0"}}, w.c.s.o.PacketSize)
		}
		return b
	}, false)
	if herr != nil {
		w.c.s.log.Error("ajp: response headers too large; sent 500", "path", logPath(w.req.RequestURI), "limit", w.c.s.o.PacketSize)
		w.buf = w.buf[:0]
		w.declared, w.written = 0, 0
		w.err = ErrHeadersTooLarge
		return w.err
	}
	return w.record(err)
}

func (w *response) record(err error) error {
	if err != nil && w.err == nil {
		w.err = err
	}
	return err
}

// finish completes the response after the handler returned and reports
// whether it is whole, so that an End Response may follow.
func (w *response) finish() bool {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent && w.declared < 0 && bodyAllowed(w.status) && w.header.Get("Transfer-Encoding") == "" {
		if w.req.Method != http.MethodHead || w.written > 0 {
			w.header.Set("Content-Length", strconv.FormatInt(w.written, 10))
			w.declared = w.written
		}
	}
	if err := w.sendBuffered(); err != nil && err != ErrHeadersTooLarge {
		return false
	}
	if w.err == ErrHeadersTooLarge {
		return true // the 500 is whole
	}
	complete := w.declared < 0 || w.written == w.declared || w.req.Method == http.MethodHead
	if !complete {
		w.c.s.log.Warn("ajp: handler wrote less than its Content-Length; connection closed",
			"path", logPath(w.req.RequestURI), "declared", w.declared, "written", w.written)
	}
	return complete
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Status " + strconv.Itoa(code)
}
