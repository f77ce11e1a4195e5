package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/balancer/proxyproto"
	"github.com/tetherlb/tether/config"
)

// Defaults of the client-facing servers, for zero values in the file.
const (
	defaultMaxHeaderBytes = 64 << 10         // request line and headers; larger gets 431
	defaultHeaderTimeout  = 10 * time.Second // slow clients cannot hold connections forever
	defaultIdleTimeout    = 120 * time.Second
)

// Server runs the balancers of a configuration on their listeners.
type Server struct {
	logger *slog.Logger
	access io.WriteCloser // access log file, nil for none or stdout/stderr

	mu        sync.Mutex // serializes Start, Reload and Shutdown
	cfg       config.Config
	balancers map[string]*balancer.Balancer
	members   map[string][]balancer.MemberConfig // as last configured, for Reload
	listeners map[string]*listener
	hooks     hooks       // attached to every balancer
	mgr       *managed    // the manager, if one runs
	stopping  atomic.Bool // SIGTERM received: the readiness probe answers 503
}

// listener is one address with the balancers it serves.
type listener struct {
	addr   string
	tls    *config.TLS
	engine string           // "native" or "nethttp"
	srv    server           // the engine's server
	native *balancer.Server // set when engine is native
	ln     net.Listener
	mux    atomic.Pointer[balancer.Mux]
	certs  atomic.Pointer[[]tls.Certificate] // the default first; see certificate
	proxy  *proxyproto.Listener              // set when the PROXY protocol is on
	// tlsConfig is the TLS listener's configuration, one for its life:
	// certificates come from certs, session tickets stay valid.
	tlsConfig *tls.Config
	// serving is set once Serve runs on ln; done is closed when it returns.
	serving bool
	done    chan struct{}
}

// server is what both engines' servers do: *http.Server and
// *balancer.Server.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mux.Load().ServeHTTP(w, r)
}

// engineOf returns the engine serving a listener: the configured one, with
// auto meaning native (whose TLS listeners hand HTTP/2 clients to
// net/http).
func engineOf(cfg *config.Config) string {
	if cfg.Engine == "nethttp" {
		return "nethttp"
	}
	return "native"
}

// NewServer builds the balancers of cfg. Nothing listens until Start.
func NewServer(cfg config.Config, logger *slog.Logger) (*Server, error) {
	return newServer(cfg, logger, hooks{})
}

func newServer(cfg config.Config, logger *slog.Logger, h hooks) (*Server, error) {
	s := &Server{logger: logger, hooks: h, balancers: map[string]*balancer.Balancer{}, members: map[string][]balancer.MemberConfig{}, listeners: map[string]*listener{}}
	c, err := s.plan(cfg, planStart)
	if err != nil {
		return nil, err
	}
	s.commit(c)
	return s, nil
}

// accessLogger opens the access log the file names.
func (s *Server) accessLogger(dest string) (*slog.Logger, io.WriteCloser, error) {
	var w io.Writer
	var c io.WriteCloser
	switch dest {
	case "", "off":
		return nil, nil, nil
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("access log: %w", err)
		}
		w, c = f, f
	}
	return slog.New(slog.NewJSONHandler(w, nil)), c, nil
}

// probes returns the probes of cfg, nil if none.
func (s *Server) probes(cfg *config.Config) *balancer.Probes {
	p := cfg.Probes
	if p.ReadyPath == "" && p.LivePath == "" {
		return nil
	}
	return &balancer.Probes{ReadyPath: p.ReadyPath, LivePath: p.LivePath, Ready: func() bool { return !s.stopping.Load() }}
}

// BeginShutdown makes the readiness probes answer 503; the listeners
// keep serving until Shutdown.
func (s *Server) BeginShutdown() { s.stopping.Store(true) }

func (s *Server) newListener(cfg config.Config, addr string, t *config.TLS) *listener {
	l := &listener{addr: addr, tls: t, engine: engineOf(&cfg), done: make(chan struct{})}
	lim := cfg.Limits
	if t != nil {
		l.tlsConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"h2", "http/1.1"},
			GetCertificate: l.certificate,
			// Session tickets: on, with keys crypto/tls makes and rotates
			// itself (a new one every day, each valid for a week), kept
			// across reloads since the listener and its Config stay.
		}
	}
	if l.engine == "native" {
		l.native = balancer.NewServer(balancer.ServerOptions{
			MaxHeaderBytes: orDefault(lim.MaxHeaderBytes, defaultMaxHeaderBytes),
			HeaderTimeout:  orDefault(lim.HeaderTimeout, defaultHeaderTimeout),
			IdleTimeout:    orDefault(lim.IdleTimeout, defaultIdleTimeout),
			ParkAfter:      lim.ParkAfter, // 0: h1's default
			Logger:         s.logger,
			TLS:            l.tlsConfig,
		}, nil)
		l.srv = l.native
		return l
	}
	hs := &http.Server{
		Handler:           l,
		ReadHeaderTimeout: orDefault(lim.HeaderTimeout, defaultHeaderTimeout),
		IdleTimeout:       orDefault(lim.IdleTimeout, defaultIdleTimeout),
		MaxHeaderBytes:    orDefault(lim.MaxHeaderBytes, defaultMaxHeaderBytes),
		ErrorLog:          log.New(io.Discard, "", 0), // TLS handshake noise from scanners
	}
	l.srv = hs
	hs.TLSConfig = l.tlsConfig
	return l
}

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// Start opens every listener and serves. It returns once all listen.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if l.ln == nil {
			if err := s.bind(l, &s.cfg); err != nil {
				return err
			}
		}
	}
	for _, l := range s.listeners {
		s.serve(l)
	}
	return nil
}

// bind opens l's socket (and its PROXY protocol reader when cfg says so),
// without serving it yet.
func (s *Server) bind(l *listener, cfg *config.Config) error {
	// Client connections get no TCP keep-alive probes, as in HAProxy (no
	// clitcpka) and nginx (no so_keepalive): limits.idle_timeout already
	// ends an idle client, and Go's default, a probe every 15 s on every
	// accepted connection, costs a timer and two packets per idle
	// connection for as long as it lives. Sent in bursts (connections
	// opened together probe together), they also overflow the kernel's
	// input backlog, and a connection whose probes are all lost that way is
	// aborted as dead after the ninth: measured with 10,000 idle clients on
	// loopback (docs/benchmarks.md, "Idle clients and TCP keep-alive").
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", l.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", l.addr, err)
	}
	l.ln = ln
	if pp := cfg.ProxyProtocol; pp != nil {
		from, _ := proxySources(cfg) // checked by plan
		l.proxy = proxyproto.NewListener(ln, proxyproto.Options{
			From: from, Timeout: orDefault(cfg.Limits.HeaderTimeout, defaultHeaderTimeout), Logger: s.logger,
		})
	}
	return nil
}

// unbind closes the socket of a listener that bind opened and that never
// served.
func (l *listener) unbind() {
	if l.ln != nil {
		l.ln.Close()
		l.ln, l.proxy = nil, nil
	}
}

// serve serves a bound listener, once.
func (s *Server) serve(l *listener) {
	if l.serving {
		return
	}
	l.serving = true
	var ln net.Listener = l.ln
	if l.proxy != nil {
		ln = l.proxy
	}
	if l.tls != nil && l.native == nil {
		ln = tls.NewListener(ln, l.tlsConfig)
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("listener stopped", "addr", l.addr, "err", err)
		}
	}()
	scheme := "http"
	if l.tls != nil {
		scheme = "https"
	}
	s.logger.Info("listening", "url", scheme+"://"+l.ln.Addr().String(), "engine", l.engine)
}

// Addr returns the address a configured listen address is bound to (its
// real port when the file said :0), or "" if it is not listening.
func (s *Server) Addr(configured string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.listeners[configured]; l != nil && l.ln != nil {
		return l.ln.Addr().String()
	}
	return ""
}

// Balancer returns the running balancer called name, or nil.
func (s *Server) Balancer(name string) *balancer.Balancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.balancers[name]
}

// Balancers returns the running balancers in configuration order.
func (s *Server) Balancers() []*balancer.Balancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*balancer.Balancer, 0, len(s.cfg.Balancers))
	for _, b := range s.cfg.Balancers {
		out = append(out, s.balancers[b.Name])
	}
	return out
}

// Reload applies cfg to the running server, all or nothing: every change
// is planned first (balancers and members built, the access log opened,
// certificates loaded, new addresses bound), then put in effect at once.
// If anything in cfg cannot be applied, the running configuration, its
// files and its sockets stay exactly as they were and the error says why.
// Listeners no longer used are shut down gracefully within timeout.
func (s *Server) Reload(cfg config.Config, timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.plan(cfg, planReload)
	if err != nil {
		return err
	}
	unused := s.commit(c)
	for _, l := range s.listeners {
		s.serve(l)
	}
	s.shutdownListeners(unused, timeout)
	return nil
}

func (s *Server) uses(addr string) bool {
	if rd := s.cfg.RedirectHTTPS; rd != nil && rd.Listen == addr {
		return true
	}
	return slices.ContainsFunc(s.cfg.Balancers, func(b config.Balancer) bool { return s.cfg.ListenOf(&b) == addr })
}

// Shutdown stops accepting connections, waits up to timeout for requests
// in flight, then stops the balancers.
func (s *Server) Shutdown(timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.shutdownListeners(ls, timeout)
	s.closeAll()
	if s.access != nil {
		s.access.Close()
	}
}

func (s *Server) shutdownListeners(ls []*listener, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			if err := l.srv.Shutdown(ctx); err != nil {
				s.logger.Warn("requests still in flight at shutdown were cut off", "addr", l.addr, "err", err)
				l.srv.Close()
			}
			if l.serving {
				<-l.done
			} else {
				l.unbind()
			}
		}(l)
	}
	wg.Wait()
}

// closeAll closes every balancer.
func (s *Server) closeAll() {
	for _, b := range s.balancers {
		b.Close()
	}
}

// proxySources returns the sources of PROXY protocol headers, nil if
// the protocol is off.
func proxySources(cfg *config.Config) ([]netip.Prefix, error) {
	pp := cfg.ProxyProtocol
	if pp == nil {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(pp.From))
	for _, f := range pp.From {
		p, err := config.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("proxy_protocol.from: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// loadCertificates loads a listener's certificates: the default first,
// then the others in file order. field is t's in the file ("tls",
// "balancers[0].tls"); the error is config.FieldErrors, one for each pair
// that does not load.
func loadCertificates(t *config.TLS, field string) ([]tls.Certificate, error) {
	files := append([]config.Certificate{{Cert: t.Cert, Key: t.Key}}, t.Certificates...)
	out := make([]tls.Certificate, 0, len(files))
	var ps problems
	for i, f := range files {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			at := field + ".cert"
			if i > 0 {
				at = fmt.Sprintf("%s.certificates[%d].cert", field, i-1)
			}
			ps.add(at, fmt.Errorf("%s: %w", f.Cert, err))
			continue
		}
		out = append(out, c)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// certificate chooses the certificate for a TLS handshake, in the
// listener's order (the default first, then the others in file order):
// the first whose names match the client's server name (SNI) and whose
// key and signature the client supports, so that an ECDSA and an RSA
// certificate for the same names give each client the one it can use;
// else the first the client supports whatever its names; else the
// default one.
func (l *listener) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cs := *l.certs.Load()
	for i := range cs {
		if hello.SupportsCertificate(&cs[i]) == nil {
			return &cs[i], nil
		}
	}
	if hello.ServerName != "" {
		anyName := *hello
		anyName.ServerName = ""
		for i := range cs {
			if anyName.SupportsCertificate(&cs[i]) == nil {
				return &cs[i], nil
			}
		}
	}
	return &cs[0], nil
}
