package balancer

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tetherlb/tether/balancer/h1"
)

// The native engine: Tether's own HTTP/1.1 server and client, for
// plaintext and TLS listeners (HTTP/2 clients of a TLS listener are
// handed to net/http's server). It reads each request head into a reused
// buffer, routes on it with the same code as the net/http engine, writes
// the head to a pooled member connection and relays the response,
// streaming bodies in both directions, with one goroutine per busy client
// connection (none for an idle one, on Linux) and no other per request (a
// WebSocket or other upgraded connection gets one more for its tunnel).

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
	// ParkAfter is how long an idle keep-alive connection keeps its
	// goroutine before it is parked (h1.ServerOptions.ParkAfter). Default
	// 10ms; negative: never.
	ParkAfter time.Duration
	// Logger receives accept errors. Default slog.Default().
	Logger *slog.Logger
	// TLS, if set, makes the listener TLS with this configuration: its
	// NextProtos decide what clients may negotiate by ALPN. HTTP/1.1
	// (negotiated, or no ALPN) is served by the native engine over
	// crypto/tls; "h2" by net/http's HTTP/2 server, with the same Mux.
	// Default nil: plaintext.
	TLS *tls.Config
}

// Server serves HTTP/1.x clients with the native engine, dispatching each
// request to a balancer through a Mux; on a TLS listener, clients that
// negotiate HTTP/2 are served by net/http's server with the Mux as its
// handler. Its methods are safe for concurrent use.
type Server struct {
	srv *h1.Server
	mux atomic.Pointer[Mux]

	h2     *http.Server // TLS only: serves the clients that negotiate h2
	h2conn *connQueue   // the h2 connections handed over, h2's listener
	h2once sync.Once    // starts h2's Serve
}

// NewServer returns a Server dispatching through mux.
func NewServer(o ServerOptions, mux *Mux) *Server {
	s := &Server{}
	s.mux.Store(mux)
	h := h1.ServerOptions{
		Limits:        h1.Limits{MaxHeadBytes: o.MaxHeaderBytes, MaxFields: o.MaxHeaderFields},
		HeaderTimeout: o.HeaderTimeout,
		IdleTimeout:   o.IdleTimeout,
		ParkAfter:     o.ParkAfter,
		Logger:        o.Logger,
		TLS:           o.TLS,
	}
	if o.TLS != nil {
		s.h2conn = newConnQueue()
		s.h2 = &http.Server{
			Handler:           http.HandlerFunc(s.serveHTTP),
			TLSConfig:         o.TLS.Clone(), // makes Serve set up HTTP/2 (and changes it)
			ReadHeaderTimeout: o.HeaderTimeout,
			IdleTimeout:       o.IdleTimeout,
			MaxHeaderBytes:    cmp.Or(o.MaxHeaderBytes, 64<<10), // h1's default too
			ErrorLog:          log.New(io.Discard, "", 0),       // protocol noise from clients
		}
		h.NextProto = map[string]func(*tls.Conn){"h2": s.h2conn.put}
	}
	s.srv = h1.NewServer(dispatcher{s}, h)
	return s
}

// serveHTTP serves a request net/http read (HTTP/2).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if m := s.mux.Load(); m != nil {
		m.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// ParkAfter is how long an idle keep-alive connection keeps its
// goroutine before it is parked, the default applied.
func (s *Server) ParkAfter() time.Duration { return s.srv.ParkAfter() }

// SetMux replaces the Mux, for a configuration reload. Requests read
// after it returns use the new one.
func (s *Server) SetMux(m *Mux) { s.mux.Store(m) }

// Serve accepts connections on ln until Shutdown or Close, then returns
// http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if s.h2 != nil {
		s.h2once.Do(func() { go s.h2.Serve(s.h2conn) })
	}
	err := s.srv.Serve(ln)
	if errors.Is(err, h1.ErrServerClosed) {
		return http.ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections, closes idle ones and waits for
// requests in flight until ctx is done. Upgraded (WebSocket) connections
// are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.h2 == nil {
		return s.srv.Shutdown(ctx)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.h2.Shutdown(ctx) }()
	err := s.srv.Shutdown(ctx)
	s.h2conn.Close() // h2 may not have started: handovers must not wait
	return errors.Join(err, <-errc)
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	err := s.srv.Close()
	if s.h2 != nil {
		s.h2.Close()
		s.h2conn.Close()
	}
	return err
}

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
