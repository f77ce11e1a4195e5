package balancer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tetherlb/tether/balancer/h1"
)

// The native engine: Tether's own HTTP/1.1 server and client, for
// plaintext listeners. It reads each request head into a reused buffer,
// routes on it with the same code as the net/http engine, writes the head
// to a pooled member connection and relays the response, streaming bodies
// in both directions, with one goroutine per client connection and no
// other per request (a WebSocket or other upgraded connection gets one
// more for its tunnel).

// ServerOptions configures a Server. Zero values mean the defaults.
type ServerOptions struct {
	// MaxHeaderBytes caps a request's line and header fields together.
	// Default 65536; larger gets 431 (414 if the request line alone is).
	MaxHeaderBytes int
	// MaxHeaderFields caps the number of header fields. Default 256 (431).
	MaxHeaderFields int
	// HeaderTimeout is how long a client may take to send a request head.
	// Default 10s.
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive client connection that sends no new
	// request for that long. Default 120s.
	IdleTimeout time.Duration
	// Logger receives accept errors. Default slog.Default().
	Logger *slog.Logger
}

// Server serves HTTP/1.x clients with the native engine, dispatching each
// request to a balancer through a Mux. Use it for plaintext listeners;
// TLS listeners (HTTP/2) use the net/http engine: an http.Server with the
// Mux as its handler. Its methods are safe for concurrent use.
type Server struct {
	srv *h1.Server
	mux atomic.Pointer[Mux]
}

// NewServer returns a Server dispatching through mux.
func NewServer(o ServerOptions, mux *Mux) *Server {
	s := &Server{}
	s.mux.Store(mux)
	s.srv = h1.NewServer(dispatcher{s}, h1.ServerOptions{
		Limits:        h1.Limits{MaxHeadBytes: o.MaxHeaderBytes, MaxFields: o.MaxHeaderFields},
		HeaderTimeout: o.HeaderTimeout,
		IdleTimeout:   o.IdleTimeout,
		Logger:        o.Logger,
	})
	return s
}

// SetMux replaces the Mux, for a configuration reload. Requests read
// after it returns use the new one.
func (s *Server) SetMux(m *Mux) { s.mux.Store(m) }

// Serve accepts connections on ln until Shutdown or Close, then returns
// http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, h1.ErrServerClosed) {
		return http.ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections, closes idle ones and waits for
// requests in flight until ctx is done. Upgraded (WebSocket) connections
// are not waited for.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close closes the listeners and every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

// dispatcher hands each request to the balancer serving its host and path.
type dispatcher struct{ s *Server }

func (d dispatcher) ServeHTTP1(c *h1.ServerConn, req *h1.Request) {
	path := unsafeString(req.Path)
	for _, ch := range req.Path {
		if ch == '%' {
			path, _ = url.PathUnescape(path) // escapes were checked by the parser
			break
		}
	}
	var b *Balancer
	status := http.StatusNotFound
	if m := d.s.mux.Load(); m != nil {
		if st, body, ok := m.probe(unsafeString(req.Method), path); ok {
			writeNative(c, req, st, []byte(noStore), body)
			return
		}
		if st, loc, ok := m.redirect(unsafeString(req.Method), unsafeString(req.Host), unsafeString(req.Target)); ok {
			writeRedirect(c, req, st, loc)
			return
		}
		b, status = m.Route(unsafeString(req.Host), path)
	}
	if b == nil {
		writeNative(c, req, status, []byte(noStore), statusBody(status))
		return
	}
	b.serveConn(c, req)
}

// noStore is the header line of answers no cache may keep.
const noStore = "Cache-Control: no-store\r\n"

// writeNative writes a short plain-text response of the balancer's own;
// extra are more header lines, each ending in CRLF. The connection closes
// after it if the request body was not read.
func writeNative(c *h1.ServerConn, req *h1.Request, status int, extra []byte, body string) {
	unread := req.BodyFraming() != h1.NoBody
	if unread {
		c.SetClose(true)
	}
	w := c.Writer()
	h1.WriteStatusLine(w, req.Minor, status, nil)
	w.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
	w.Write(extra)
	writeConnection(c, req)
	w.WriteString("Content-Length: ")
	h1.WriteInt(w, int64(len(body)))
	w.WriteString("\r\n\r\n")
	if string(req.Method) != http.MethodHead {
		w.WriteString(body)
	}
}

// writeRedirect answers with a redirect to loc, or 400 if loc is "".
func writeRedirect(c *h1.ServerConn, req *h1.Request, status int, loc string) {
	if loc == "" {
		writeNative(c, req, status, nil, noHostBody)
		return
	}
	writeNative(c, req, status, []byte("Location: "+loc+"\r\n"), redirectBody)
}

// writeConnection writes the Connection field a response needs: close
// when the connection ends after it, keep-alive for an HTTP/1.0 client
// that keeps it.
func writeConnection(c *h1.ServerConn, req *h1.Request) {
	switch {
	case c.Closing():
		c.Writer().WriteString("Connection: close\r\n")
	case req.Minor == 0:
		c.Writer().WriteString("Connection: keep-alive\r\n")
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
