// Package balancer is a sticky-session reverse proxy: it routes a request
// to the member whose route ends the request's session id
// ("JSESSIONID=8F3A….n2" goes to member n2), spreads new sessions with an lb
// method, and fails a session over to one and the same member, chosen by
// rendezvous hashing, when its own member is unavailable.
//
// A Balancer serves requests through one of two engines that share all
// of its routing, retry, limit, error and observation code: as an
// http.Handler over httputil.ReverseProxy (the net/http engine, for TLS
// listeners and HTTP/2), and through a Server, Tether's own HTTP/1.1
// engine built on balancer/h1 (for plaintext listeners: about a third of
// the CPU per request, no allocation per request, no buffers held by idle
// connections). A Mux dispatches a listener's requests to its balancers by
// host and path prefix, for both engines. Members live in a Pool whose snapshot is
// read without locks; health comes from the balancer/health package.
package balancer

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/ajp"
	"github.com/tetherlb/tether/balancer/h1"
	"github.com/tetherlb/tether/balancer/health"
)

// Options configures a Balancer. Zero values mean the defaults given.
type Options struct {
	// Name names the balancer in error pages, logs and metrics. Required.
	Name string
	// Sticky says where a session's route is carried (see sticky.go).
	// Default StickyRoute: at the end of the application's session id.
	Sticky StickyMode
	// StickyNames are the application's session cookies. StickyRoute
	// looks them up as cookies, then as ";name=" path parameters, then as
	// query parameters; StickyPrefix as cookies; StickyInsert watches
	// responses for their expiry (a logout ends the session). Default
	// ["JSESSIONID", "jsessionid"].
	StickyNames []string
	// Separator separates the id from the route (StickyRoute), or the
	// route from the application's value (StickyPrefix). Default '.' for
	// StickyRoute, '~' for StickyPrefix.
	Separator byte
	// Cookie configures Tether's own cookie in StickyInsert mode, which
	// needs at least a key.
	Cookie InsertCookie
	// NoFailover answers a sticky request whose member is unavailable with
	// 503 and Retry-After instead of sending it to another member.
	NoFailover bool
	// Replicated says that any member can take over any session (the
	// members replicate sessions): sticky requests of a draining member
	// are then moved to another member, so a drain ends in about one
	// request per user.
	Replicated bool
	// Method picks members for new sessions. Default ByRequests.
	Method Method
	// MaxAttempts is how many members one request may be tried on. Default 3.
	MaxAttempts int
	// ConnectTimeout bounds connecting to a member. Default 2s.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds the wait for a member's response headers once
	// the request is sent. Default 30s.
	ResponseTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections to members. Default 90s.
	IdleTimeout time.Duration
	// MaxConns, if set, is how many requests each member is sent at once;
	// more wait in the member's queue, in order, for up to QueueTimeout
	// (see queue.go). Default 0: no limit.
	MaxConns int
	// QueueTimeout bounds a request's wait for a slot when MaxConns is
	// set; then it gets 503 with Retry-After. Default 5s.
	QueueTimeout time.Duration
	// MaxIdlePerMember is how many idle connections are kept per member.
	// Default 1024: fewer than the requests in flight at busy times makes
	// connections churn (closed when they go idle, opened again at once).
	MaxIdlePerMember int
	// SlowStart, if set, is how long a member that comes back (up again
	// after being down, active again after stopped or standby, added at
	// run time) takes to ramp its share of new sessions from almost
	// nothing to its weight (see slowstart.go). Default 0: at once.
	SlowStart time.Duration
	// Failures is how many connection failures or timeouts in a row take a
	// member down (passive health). Default 1.
	Failures int
	// Health configures active checks and the probing of members taken down
	// by failures; see health.Options for its defaults.
	Health health.Options
	// MaxURLBytes caps the request target. Default 8192; longer gets 414.
	MaxURLBytes int
	// MaxBodyBytes caps request bodies. Default 0: no limit; larger gets 413.
	MaxBodyBytes int64
	// TrustedProxies are the peers whose X-Forwarded-* and Forwarded
	// headers are kept and extended; from anyone else they are replaced.
	// Default: none.
	TrustedProxies []netip.Prefix
	// RewriteHost sends the member's host in the Host header instead of the
	// client's (httpd's ProxyPreserveHost Off). Default false: the client's
	// Host is kept, and X-Forwarded-Host is set either way.
	RewriteHost bool
	// MemberTLS configures TLS towards https members, in both engines.
	// Default nil: the system's root certificates, and the member URL's
	// host as the server name.
	MemberTLS *tls.Config
	// AJPPacketSize is the AJP13 packet size towards ajp:// members, 1024
	// to 65536; it must match the connectors' packetSize. Default 8192.
	AJPPacketSize int
	// AJPPingIdle: a kept AJP connection idle for at least this long is
	// checked with CPing/CPong before it carries a request. Default 10s;
	// negative: never.
	AJPPingIdle time.Duration
	// SendProxy, if 1 or 2, starts every connection to a member with a
	// PROXY protocol header of that version naming the client (health
	// checks send a LOCAL one), for members behind which the client's
	// address matters at the TCP level. A member connection then serves
	// one request only: it names one client. Default 0: none.
	SendProxy int
	// Transport, if set, replaces the transport built from the options
	// above in the net/http engine (tests use it). The native engine does
	// not use it.
	Transport http.RoundTripper
	// Logger receives health changes and unexpected errors. Default slog.Default().
	Logger *slog.Logger
	// AccessLog, if set, receives one record per request (message
	// "request"): balancer, method, uri, remote, status, member, sticky
	// (the Outcome), attempts, duration (seconds, a float), bytes,
	// user_agent, referer, route, and error when the balancer answered
	// itself. Session ids in uri and referer (";name=…" path parameters
	// and "name=…" query parameters named like StickyNames or jsessionid)
	// are replaced by route.Redacted. Default: none.
	AccessLog *slog.Logger
	// Observer, if set, is told about every request when it ends, and
	// about session events if it implements SessionObserver.
	Observer Observer

	// SessionIdle is how long a session may go unseen before it stops
	// counting as live on its member. Default 30m (Tomcat's session timeout).
	SessionIdle time.Duration
	// MaxTrackedSessions bounds the memory of the live-session count: past
	// it, new sessions are not counted (Balancer.Sessions says how many
	// were left out). Default 1,000,000 (about 60 MB).
	MaxTrackedSessions int
	// SessionHash, if set, hashes session ids for the live-session count:
	// the keys EachSession reports. The instances of a group pass one
	// keyed hash, so that the sessions each sees can be merged. Default:
	// maphash with a seed of this process. Only New reads it.
	SessionHash func(id string) uint64
	// DrainStop moves a draining member to stopped once it has no live
	// session, or when DrainDeadline has passed since the drain began.
	DrainStop bool
	// DrainDeadline bounds a drain when DrainStop is set. Default 0: none.
	DrainDeadline time.Duration
	// LiveElsewhere, if set, says whether sessions of member route are
	// seen beyond this balancer (other instances of a group): a drain
	// with DrainStop does not end while it reports true. It is called by
	// the janitor and must not block. Default nil: only this balancer's
	// count matters.
	LiveElsewhere func(route string) bool
	// OnStateChange, if set, is called after every change of a member's
	// state, by whoever made it (the API, a reload, a finished drain, the
	// member's own announcement). It must not block.
	OnStateChange func(balancer string, c StateChange)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// settings is the part of a Balancer that Update replaces as a whole.
type settings struct {
	opts      Options
	picker    Picker
	transport http.RoundTripper
	checker   *health.Checker
	stickyLen int   // len(opts.StickyNames)
	macs      *macs // insert mode: the cookie's keys
	// redactNames are the parameters the access log redacts: StickyNames
	// and jsessionid (servlet containers' URL parameter, in any mode).
	redactNames []string
}

// buildSettings fills in the defaults of o and builds what they imply for
// balancer b, whose pool may not exist yet (it is used when dialing).
func buildSettings(o Options, b *Balancer) (*settings, error) {
	if o.Name == "" {
		return nil, fmt.Errorf("%w: a balancer needs a name", ErrInvalid)
	}
	if len(o.StickyNames) == 0 {
		o.StickyNames = []string{"JSESSIONID", "jsessionid"} // Tomcat's cookie, then its URL parameter
	}
	if err := checkSticky(&o); err != nil {
		return nil, err
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3 // the chosen member and two more
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second // a healthy member on a LAN connects in microseconds
	}
	if o.ResponseTimeout <= 0 {
		o.ResponseTimeout = 30 * time.Second // a frozen member costs this, not httpd's 60s+
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 90 * time.Second // as net/http's DefaultTransport
	}
	if o.QueueTimeout <= 0 {
		o.QueueTimeout = 5 * time.Second // a user waits this long at most for a busy member
	}
	if o.MaxIdlePerMember <= 0 {
		o.MaxIdlePerMember = 1024 // as many as requests in flight at 1,000 concurrent clients
	}
	if o.Failures <= 0 {
		o.Failures = 1 // a refused connection is proof enough
	}
	if o.MaxURLBytes <= 0 {
		o.MaxURLBytes = 8192 // httpd's LimitRequestLine
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 30 * time.Minute // Tomcat's default session timeout
	}
	if o.MaxTrackedSessions <= 0 {
		o.MaxTrackedSessions = 1_000_000 // about 60 MB of tracking at most
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := (ajp.ClientOptions{Addr: "-", PacketSize: o.AJPPacketSize}).Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	picker, err := NewPicker(o.Method)
	if err != nil {
		return nil, err
	}
	s := &settings{opts: o, picker: picker, transport: o.Transport, stickyLen: len(o.StickyNames),
		redactNames: append(slices.Clip(o.StickyNames), "jsessionid")}
	if o.Sticky == StickyInsert {
		s.macs = newMACs(o.Name, o.Cookie.Keys)
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return s.dialAddr(ctx, b.pool, addr) }
	if s.transport == nil {
		s.transport = newTransport(o, dial)
	}
	ho := o.Health
	if ho.Logger == nil {
		ho.Logger = o.Logger.With("balancer", o.Name)
	}
	if ho.DialTLS == nil {
		ho.DialTLS = dial // checks verify certificates as the traffic does
	}
	if ho.Dial == nil && o.SendProxy != 0 {
		ho.Dial = dial // checks send the PROXY header members expect
	}
	ho.OnChange = healthReason(ho.OnChange)
	s.checker = health.New(ho)
	return s, nil
}

// healthReason records on the member why its health changed, then calls
// next, if set.
func healthReason(next func(health.Target, bool, string)) func(health.Target, bool, string) {
	return func(t health.Target, up bool, reason string) {
		if m, ok := t.(*Member); ok {
			m.healthReason.Store(&reason)
		}
		if next != nil {
			next(t, up, reason)
		}
	}
}

// connOptions are the options of the native engine's member connection
// pools.
func (s *settings) connOptions() h1.ConnPoolOptions {
	return h1.ConnPoolOptions{MaxIdle: s.opts.MaxIdlePerMember, IdleTimeout: s.opts.IdleTimeout}
}

// newTransport returns the net/http engine's transport; dial connects to
// members (TCP, PROXY header, TLS).
func newTransport(o Options, dial func(context.Context, string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never send member traffic through an environment proxy
		DialContext:           func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) },
		ResponseHeaderTimeout: o.ResponseTimeout,
		IdleConnTimeout:       o.IdleTimeout,
		MaxIdleConnsPerHost:   o.MaxIdlePerMember,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass Accept-Encoding and bodies through untouched
		DialTLSContext:        func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) },
		DisableKeepAlives:     o.SendProxy != 0, // a connection's PROXY header names one client
	}
}

// Balancer proxies requests to the members of its Pool.
type Balancer struct {
	pool    *Pool
	cur     atomic.Pointer[settings]
	mu      sync.Mutex // serializes Update and health watching
	proxy   *httputil.ReverseProxy
	reqs    sync.Pool // *attempt
	tracker *sessionTracker
	stop    chan struct{}
	done    chan struct{}
	start   sync.Once // runs Start's work, or marks a Balancer closed unstarted
}

// New returns a Balancer over members. Call Close to stop its health checks.
func New(opts Options, members []MemberConfig) (*Balancer, error) {
	b, err := Prepare(opts, members)
	if err != nil {
		return nil, err
	}
	b.Start()
	return b, nil
}

// Prepare returns a Balancer over members, as New does, but idle: nothing
// runs (no health check, no janitor) until Start, so a configuration
// reload can build its new balancers and still drop them without a trace.
// Close drops a Balancer that was never started.
func Prepare(opts Options, members []MemberConfig) (*Balancer, error) {
	b := &Balancer{stop: make(chan struct{}), done: make(chan struct{})}
	s, err := buildSettings(opts, b)
	if err != nil {
		return nil, err
	}
	pool, err := newPool(members, s.opts.Now)
	if err != nil {
		s.checker.Close()
		return nil, err
	}
	b.pool = pool
	pool.slowStart.Store(int64(s.opts.SlowStart))
	b.tracker = newSessionTracker(s.opts.MaxTrackedSessions, s.opts.Now(), pool.byID, s.opts.SessionHash)
	b.cur.Store(s)
	pool.now = func() time.Time { return b.cur.Load().opts.Now() }
	pool.changed = func(c StateChange) {
		if f := b.cur.Load().opts.OnStateChange; f != nil {
			f(b.cur.Load().opts.Name, c)
		}
	}
	b.reqs.New = func() any { return new(attempt) }
	b.proxy = &httputil.ReverseProxy{
		Rewrite:        b.rewrite,
		ModifyResponse: b.modifyResponse,
		Transport:      roundTripper{b},
		ErrorHandler:   b.proxyError,
		BufferPool:     newBufferPool(),
		ErrorLog:       slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	pool.watch = b.watch
	for _, m := range pool.Members() {
		s.setUp(m)
	}
	return b, nil
}

// Start starts the health checks and the janitor of a Balancer made by
// Prepare. It does nothing after the first call, or after Close.
func (b *Balancer) Start() {
	b.start.Do(func() {
		b.mu.Lock()
		s := b.cur.Load()
		for _, m := range b.pool.Members() {
			s.checker.Watch(m)
		}
		b.mu.Unlock()
		go b.janitor()
	})
}

// janitor forgets idle sessions and ends finished drains.
func (b *Balancer) janitor() {
	defer close(b.done)
	for {
		s := b.cur.Load()
		every := min(max(s.opts.SessionIdle/10, 10*time.Millisecond), 5*time.Second)
		t := time.NewTimer(every)
		select {
		case <-b.stop:
			t.Stop()
			return
		case <-t.C:
			b.tick(s.opts.Now())
		}
	}
}

// tick runs the janitor's work once.
func (b *Balancer) tick(now time.Time) {
	s := b.cur.Load()
	b.tracker.sweep(now, s.opts.SessionIdle)
	if !s.opts.DrainStop {
		return
	}
	// Until the balancer has watched for a whole idle window, a session
	// that has not sent a request since it started is not counted: zero
	// does not yet mean empty (after a restart, say).
	warm := now.Sub(b.tracker.epoch) >= s.opts.SessionIdle
	for _, m := range b.pool.Members() {
		since := m.drainSince.Load()
		if m.State() != Draining || since == 0 {
			continue
		}
		switch {
		case m.live.Load() <= 0 && warm && (s.opts.LiveElsewhere == nil || !s.opts.LiveElsewhere(m.route)):
			b.pool.setState(m, Draining, Stopped, "drained: no live session left")
		case s.opts.DrainDeadline > 0 && now.Sub(time.Unix(0, since)) >= s.opts.DrainDeadline:
			b.pool.setState(m, Draining, Stopped, fmt.Sprintf("drain deadline of %v passed with %d live sessions", s.opts.DrainDeadline, m.live.Load()))
		}
	}
}

// Stats returns the counters of every member, in configuration order.
func (b *Balancer) Stats() []Stats {
	s := b.cur.Load()
	now := s.opts.Now()
	ms := b.pool.Members()
	out := make([]Stats, len(ms))
	for i, m := range ms {
		out[i] = m.stats(now, s.opts.SessionIdle)
		if out[i].MaxConns == 0 {
			out[i].MaxConns = s.opts.MaxConns
		}
		if d := out[i].Drain; d != nil {
			d.CountingSince = b.tracker.epoch
			d.Exact = now.Sub(b.tracker.epoch) >= s.opts.SessionIdle
		}
	}
	return out
}

// EachSession calls f with the member's route and the hash
// (Options.SessionHash) of every session counted live. It holds one shard
// of the tracker at a time: f must be quick and must not call the
// balancer.
func (b *Balancer) EachSession(f func(route string, hash uint64)) {
	b.tracker.each(f)
}

// SessionCounts says how many sessions are tracked, and how many were
// left out because MaxTrackedSessions was reached.
func (b *Balancer) SessionCounts() (tracked int64, dropped uint64) {
	return b.tracker.total.Load(), b.tracker.dropped.Load()
}

// Name returns the balancer's name.
func (b *Balancer) Name() string { return b.cur.Load().opts.Name }

// Options returns the options in effect, with defaults filled in.
func (b *Balancer) Options() Options { return b.cur.Load().opts }

// Pool returns the balancer's members, to inspect and change at run time.
func (b *Balancer) Pool() *Pool { return b.pool }

func (b *Balancer) watch(added, removed []*Member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.cur.Load()
	for _, m := range removed {
		s.checker.Unwatch(m)
		m.closeConns()
	}
	for _, m := range added {
		s.checker.Watch(m)
		s.setUp(m)
	}
}

// Update replaces the options and the members, for a configuration
// reload; see Pool.Replace for how run-time changes are kept. prev is the
// member list of the configuration being replaced. On error nothing
// changed. It is Plan, then Commit.
func (b *Balancer) Update(opts Options, prev, members []MemberConfig) error {
	c, err := b.Plan(opts, prev, members)
	if err != nil {
		return err
	}
	c.Commit()
	return nil
}

// Change is an Update that Plan checked and built, not yet in effect.
// Either Commit or Discard it.
type Change struct {
	b             *Balancer
	s             *settings
	prev, members []MemberConfig
}

// Plan checks and builds what Update(opts, prev, members) would put in
// effect, changing nothing: the balancer serves on as it was until
// Commit, so a reload can prepare every balancer's change before it
// applies any.
func (b *Balancer) Plan(opts Options, prev, members []MemberConfig) (*Change, error) {
	if err := checkMembers(members); err != nil {
		return nil, err
	}
	s, err := buildSettings(opts, b)
	if err != nil {
		return nil, err
	}
	return &Change{b: b, s: s, prev: prev, members: members}, nil
}

// Discard drops a planned change that will not be committed.
func (c *Change) Discard() { c.s.close() }

// Commit puts the planned change in effect. It cannot fail.
func (c *Change) Commit() {
	b, s := c.b, c.s
	b.mu.Lock()
	old := b.cur.Swap(s)
	b.pool.slowStart.Store(int64(s.opts.SlowStart))
	for _, m := range b.pool.Members() {
		s.checker.Watch(m)
		s.setUp(m) // connection options, and the AJP client of an ajp:// member
		if m.tls || old.opts.SendProxy != s.opts.SendProxy {
			// Idle connections were made with the old TLS settings or
			// PROXY header: the next requests connect anew.
			m.conns.CloseIdle()
		}
	}
	b.mu.Unlock()
	old.close()
	b.pool.mu.Lock()
	b.pool.replace(c.prev, c.members)
	b.pool.mu.Unlock()
}

// close stops the settings' health checks and closes their idle member
// connections.
func (s *settings) close() {
	s.checker.Close()
	if t, ok := s.transport.(*http.Transport); ok && s.opts.Transport == nil {
		t.CloseIdleConnections()
	}
}

// Close stops health checks and closes idle member connections (those of
// requests in flight close when they end). Requests in flight are not
// interrupted.
func (b *Balancer) Close() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.start.Do(func() { close(b.done) }) // never started: no janitor to wait for
	<-b.done
	b.cur.Load().close()
	for _, m := range b.pool.Members() {
		m.closeConns()
	}
}
