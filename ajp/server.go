package ajp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAddr is where ListenAndServe listens when given no address: the
// AJP port on loopback only. AJP carries no encryption, and a connector
// reachable from outside is how Ghostcat (CVE-2020-1938) was exploited.
const DefaultAddr = "127.0.0.1:8009"

// Options configure a Server. The zero value of every field is usable and
// means the default it states, except that a Secret is required unless
// AllowNoSecret is set.
type Options struct {
	// Secret is the shared secret every request must carry (mod_jk's
	// worker.NAME.secret, mod_proxy_ajp's secret= parameter; Tomcat's
	// secret attribute of the AJP connector). A request without it, or with
	// another, gets 403 and its connection is closed. Required unless
	// AllowNoSecret.
	Secret string

	// AllowNoSecret lets the Server run without a Secret and serve any
	// request. Dangerous: whoever can connect to the port can then send
	// requests with any client address, TLS flag, authenticated user and
	// attributes. Use it only with a listener nothing but the web server
	// can reach. Default false.
	AllowNoSecret bool

	// PacketSize is the largest packet, its 4-byte header included, read
	// or written; it must match the web server's (mod_jk's
	// max_packet_size, mod_proxy_ajp's ProxyIOBufferSize). Zero means
	// DefaultPacketSize (8192); it must be between 8192 and 65536.
	PacketSize int

	// MaxHeaders bounds the number of request headers, and separately the
	// number of request attributes. Zero means 100 (Tomcat's
	// maxHeaderCount); negative is invalid.
	MaxHeaders int

	// MaxBodyBytes bounds the request body. A request declaring a larger
	// Content-Length gets 413 without the handler being called; a chunked
	// body that grows larger makes Body.Read fail with *http.MaxBytesError.
	// Zero means 32 MiB; negative means no bound.
	MaxBodyBytes int64

	// ReadTimeout bounds reading one packet once its first byte arrived,
	// and waiting for a body chunk the Server asked for. Zero means 30
	// seconds; negative means none.
	ReadTimeout time.Duration

	// WriteTimeout bounds writing one packet to the web server. Zero means
	// 30 seconds; negative means none.
	WriteTimeout time.Duration

	// IdleTimeout closes a connection that carried no packet for this
	// long. Set the web server's idle limit lower (mod_jk's
	// connection_pool_timeout, in seconds; mod_proxy_ajp's ttl=) so that
	// it is the one closing. Zero means 10 minutes; negative means never.
	IdleTimeout time.Duration

	// Logger logs refused requests, protocol errors and handler panics.
	// Nil means no logging.
	Logger *slog.Logger
}

// defaults returns the value every zero field of Options takes.
func defaults() Options {
	return Options{
		PacketSize:   DefaultPacketSize,             // mod_jk's and mod_proxy_ajp's default
		MaxHeaders:   100,                           // Tomcat's maxHeaderCount
		MaxBodyBytes: 32 << 20,                      // uploads up to 32 MiB
		ReadTimeout:  30 * time.Second,              // a stalled web server is dropped
		WriteTimeout: 30 * time.Second,              // a web server not reading is dropped
		IdleTimeout:  10 * time.Minute,              // above mod_jk's usual connection_pool_timeout
		Logger:       slog.New(slog.DiscardHandler), // quiet unless asked
	}
}

// ErrNoSecret is returned by NewServer for Options without a Secret and
// without AllowNoSecret.
var ErrNoSecret = errors.New("ajp: no secret: set Options.Secret (or, only on a private listener, AllowNoSecret)")

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("ajp: server closed")

// Validate reports the first invalid field of o.
func (o Options) Validate() error {
	switch {
	case o.Secret == "" && !o.AllowNoSecret:
		return ErrNoSecret
	case o.PacketSize != 0 && (o.PacketSize < DefaultPacketSize || o.PacketSize > MaxPacketSize):
		return fmt.Errorf("ajp: PacketSize %d: want %d to %d", o.PacketSize, DefaultPacketSize, MaxPacketSize)
	case o.MaxHeaders < 0:
		return fmt.Errorf("ajp: MaxHeaders %d: want 0 (default) or more", o.MaxHeaders)
	}
	return nil
}

func (o Options) withDefaults() Options {
	d := defaults()
	o.PacketSize = orDefault(o.PacketSize, d.PacketSize)
	o.MaxHeaders = orDefault(o.MaxHeaders, d.MaxHeaders)
	o.MaxBodyBytes = orDefault(o.MaxBodyBytes, d.MaxBodyBytes)
	o.ReadTimeout = orDefault(o.ReadTimeout, d.ReadTimeout)
	o.WriteTimeout = orDefault(o.WriteTimeout, d.WriteTimeout)
	o.IdleTimeout = orDefault(o.IdleTimeout, d.IdleTimeout)
	o.Logger = orDefault(o.Logger, d.Logger)
	return o
}

// orDefault returns v, or d if v is the zero value.
func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// A Server serves HTTP handlers over AJP13 connections from a web server:
// Apache httpd's mod_jk or mod_proxy_ajp, or anything speaking AJP13 like
// them. It is to AJP what http.Server is to HTTP, and plays the part of
// Tomcat's AJP connector.
//
// Each connection carries one request at a time and is reused for the
// next, as AJP does. Create a Server with NewServer; its methods are safe
// for concurrent use.
type Server struct {
	h   http.Handler
	o   Options
	log *slog.Logger

	closing atomic.Bool
	mu      sync.Mutex
	lns     map[*net.Listener]struct{}
	conns   map[*conn]struct{}
	gone    chan struct{} // closed when closing and the last connection ended
}

// NewServer returns a Server passing requests to h, or an error if o is
// invalid (ErrNoSecret without a secret).
func NewServer(h http.Handler, o Options) (*Server, error) {
	if h == nil {
		return nil, errors.New("ajp: nil handler")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	return &Server{
		h: h, o: o, log: o.Logger,
		lns:   map[*net.Listener]struct{}{},
		conns: map[*conn]struct{}{},
		gone:  make(chan struct{}),
	}, nil
}

// Serve serves h over the AJP13 connections accepted on ln with options
// o, until ln fails. It is the AJP form of http.Serve.
func Serve(ln net.Listener, h http.Handler, o Options) error {
	s, err := NewServer(h, o)
	if err != nil {
		ln.Close()
		return err
	}
	return s.Serve(ln)
}

// ListenAndServe listens on the TCP address addr (DefaultAddr if empty,
// loopback only) and serves h with options o.
func ListenAndServe(addr string, h http.Handler, o Options) error {
	s, err := NewServer(h, o)
	if err != nil {
		return err
	}
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln and serves each on its own goroutine.
// It always returns a non-nil error and closes ln: ErrServerClosed after
// Shutdown or Close, else the error that stopped accepting.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(&ln, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	if s.o.AllowNoSecret && s.o.Secret == "" && !isLoopback(ln.Addr()) {
		s.log.Warn("ajp: serving without a secret on a non-loopback address: anyone who reaches it can forge requests",
			"addr", ln.Addr().String())
	}
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("ajp: accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay) // back-off before retrying accept, as net/http does
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, rwc)
		if !s.trackConn(c, true) {
			rwc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops the Server gracefully: it closes the listeners and the
// idle connections, then waits for requests in progress to finish (their
// responses end with reuse off, so the web server closes them) or for ctx
// to end, whichever comes first, and returns ctx's error in the latter
// case. Serve returns ErrServerClosed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.startClosing()
	s.mu.Lock()
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()
	select {
	case <-s.gone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, interrupting
// requests in progress.
func (s *Server) Close() error {
	s.startClosing()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.rwc.Close()
	}
	return nil
}

func (s *Server) startClosing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Swap(true) {
		return
	}
	for ln := range s.lns {
		(*ln).Close()
	}
	if len(s.conns) == 0 {
		close(s.gone)
	}
}

func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.lns[ln] = struct{}{}
	} else {
		delete(s.lns, ln)
		(*ln).Close()
	}
	return true
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	if s.closing.Load() && len(s.conns) == 0 {
		select {
		case <-s.gone:
		default:
			close(s.gone)
		}
	}
	return true
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
