package balancer

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/ajp"
	"github.com/tetherlb/tether/balancer/h1"
)

// State is a member's administrative state, set by configuration or the
// manager. It is separate from health: a member can be active and down.
type State int32

// The member states. Keep the order: states are stored as numbers.
const (
	// Active members take new sessions and their sticky traffic.
	Active State = iota
	// Draining members take only their sticky traffic (no new sessions).
	Draining
	// Stopped members take no traffic at all.
	Stopped
	// Standby members take new sessions only when no active member can.
	Standby
)

var stateNames = [...]string{"active", "draining", "stopped", "standby"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// ParseState parses "active", "draining", "stopped" or "standby"; "" is Active.
func ParseState(s string) (State, error) {
	if s == "" {
		return Active, nil
	}
	for i, n := range stateNames {
		if s == n {
			return State(i), nil
		}
	}
	return Active, fmt.Errorf("%w: unknown state %q", ErrInvalid, s)
}

// MemberConfig describes a member to add to a Pool.
type MemberConfig struct {
	// URL is the member's base URL; its path, if any, prefixes every
	// proxied path.
	URL *url.URL
	// Route is the member's name in session ids (Tomcat's jvmRoute).
	Route string
	// Weight is its share of new sessions. Zero means 1.
	Weight int
	// State is its initial administrative state.
	State State
	// MaxConns overrides Options.MaxConns for this member. Zero: the
	// balancer's.
	MaxConns int
	// Secret is sent with every request to an ajp:// member (Tomcat's
	// AJP connector secret). Default "": none.
	Secret string
	// TLS configures TLS towards an https member, for its traffic and its
	// health checks. Default nil: Options.MemberTLS. An empty ServerName
	// is the URL's host. Members at the same host and port must have the
	// same TLS configuration: connections are found by address.
	TLS *tls.Config
}

// Member is one backend of a Pool. Its counters and states are read and
// changed atomically; it is safe for concurrent use.
type Member struct {
	id        uint32 // unique in its pool, never reused
	route     string
	url       *url.URL
	routeHash uint64 // for rendezvous hashing, fixed at creation

	state  atomic.Int32
	weight atomic.Int32
	down   atomic.Bool

	inflight    atomic.Int64
	queue       queue         // in-flight slots and waiting requests, with Options.MaxConns
	maxConns    atomic.Int32  // MemberConfig.MaxConns
	queueFull   atomic.Uint64 // requests that waited QueueTimeout in vain
	requests    atomic.Uint64 // responses received from the member
	newSessions atomic.Uint64 // requests sent here by the lb method
	failovers   atomic.Uint64 // sticky requests of other members sent here
	failures    atomic.Uint64 // connection failures and timeouts
	consecutive atomic.Int32  // failures since the last success
	bytes       atomic.Uint64 // request and response body bytes

	live            atomic.Int64           // sessions seen within the idle window
	lastSeen        atomic.Int64           // unix nanoseconds a session of the member was last seen
	createdDraining atomic.Uint64          // sessions the member created while draining
	drainSince      atomic.Int64           // unix nanoseconds the current drain began, 0 if not draining
	drainStartLive  atomic.Int64           // live sessions when the drain began
	announced       atomic.Bool            // the member itself asked to drain (health check)
	healthReason    atomic.Pointer[string] // why its health last changed
	rampFrom        atomic.Int64           // slow start: unix nanoseconds the ramp began
	rampUntil       atomic.Int64           // slow start: when it ends; 0 if not ramping

	tlsConf atomic.Pointer[tls.Config] // MemberConfig.TLS

	pool *Pool
	swrr int64 // smooth weighted round robin credit, guarded by the picker's mutex

	// The native engine's connections to the member.
	conns      *h1.ConnPool
	addr       string // host:port to dial
	pathPrefix string // the URL's escaped path without a trailing slash
	tls        bool

	// An ajp:// member's client, replaced when the options change (both
	// engines use it); nil for http and https members.
	ajp    atomic.Pointer[ajp.Client]
	secret string
	// refused counts requests the AJP member refused as Tomcat refuses a
	// wrong or missing secret; refusedLogged is when that was last logged.
	refused       atomic.Uint64
	refusedLogged atomic.Int64
}

func newMember(c MemberConfig, p *Pool) *Member {
	m := &Member{id: p.ids.Add(1), route: c.Route, url: c.URL, routeHash: hashString(fnvOffset, c.Route), pool: p}
	m.conns = h1.NewConnPool(h1.ConnPoolOptions{})
	m.tls = c.URL.Scheme == "https"
	m.secret = c.Secret
	m.addr = c.URL.Host
	if c.URL.Port() == "" {
		port := "80"
		switch c.URL.Scheme {
		case "https":
			port = "443"
		case "ajp":
			port = "8009" // Tomcat's AJP connector
		}
		m.addr = net.JoinHostPort(c.URL.Hostname(), port)
	}
	m.pathPrefix = strings.TrimSuffix(c.URL.EscapedPath(), "/")
	w := c.Weight
	if w <= 0 {
		w = 1
	}
	m.weight.Store(int32(w))
	m.maxConns.Store(int32(max(c.MaxConns, 0)))
	m.tlsConf.Store(c.TLS)
	m.state.Store(int32(c.State))
	if c.State == Draining {
		m.drainSince.Store(p.now().UnixNano())
	}
	return m
}

// Route returns the member's route.
func (m *Member) Route() string { return m.route }

// URL returns the member's base URL. The caller must not modify it.
func (m *Member) URL() *url.URL { return m.url }

// State returns the administrative state.
func (m *Member) State() State { return State(m.state.Load()) }

// Weight returns the weight.
func (m *Member) Weight() int { return int(m.weight.Load()) }

// Healthy reports whether health checks consider the member up.
func (m *Member) Healthy() bool { return !m.down.Load() }

// SetHealthy records the outcome of health checks; it implements
// health.Target.
// A member that comes up again starts its slow start.
func (m *Member) SetHealthy(up bool) {
	if wasDown := m.down.Swap(!up); wasDown && up {
		m.startRamp()
	}
}

// HealthURL returns the URL health checks use as a base; it implements
// health.Target.
func (m *Member) HealthURL() *url.URL { return m.url }

// InFlight returns the number of requests being served by the member.
func (m *Member) InFlight() int64 { return m.inflight.Load() }

// MaxConns returns the member's own limit of requests at once
// (MemberConfig.MaxConns); 0 means the balancer's.
func (m *Member) MaxConns() int { return int(m.maxConns.Load()) }

// LiveSessions returns how many sessions of the member were seen within
// the idle window.
func (m *Member) LiveSessions() int64 { return m.live.Load() }

// Announce records a member's own request to drain (Tether-State:
// draining in its health check answer) or to take new sessions again; it
// implements health.Announcer. An announcement never overrides an
// operator: it moves an active member to draining, and back to active
// only a member it moved itself.
func (m *Member) Announce(draining bool) {
	switch {
	case draining && m.State() == Active:
		if m.pool.setState(m, Active, Draining, "the member announced it is draining") {
			m.announced.Store(true)
		}
	case !draining && m.announced.Load() && m.State() == Draining:
		if m.pool.setState(m, Draining, Active, "the member announced it is active again") {
			m.announced.Store(false)
		}
	}
}

// Stats is a copy of a member's counters.
type Stats struct {
	Route       string
	URL         string
	State       State
	Healthy     bool
	Weight      int
	InFlight    int64
	MaxConns    int    // requests it is sent at once at most (its own or the balancer's); 0: no limit
	Queued      int    // requests waiting for a slot (Options.MaxConns)
	QueueFull   uint64 // requests answered 503 after waiting QueueTimeout
	Requests    uint64 // responses received
	NewSessions uint64 // requests without a usable route sent here
	Failovers   uint64 // sticky requests of unavailable members sent here
	Failures    uint64 // connection failures and timeouts
	Bytes       uint64 // body bytes in both directions
	// AJPRefused counts requests an ajp:// member refused as Tomcat
	// refuses a wrong or missing secret (403, connection closed).
	AJPRefused uint64

	// LiveSessions are the sessions seen within the idle window.
	LiveSessions int64
	// CreatedWhileDraining counts sessions the member created while draining.
	CreatedWhileDraining uint64
	// Announced: the member itself asked to drain.
	Announced bool
	// Drain is set while the member is draining.
	Drain *DrainProgress
	// SlowStart is set while the member ramps up its share of new
	// sessions (Options.SlowStart).
	SlowStart *SlowStart
	// HealthReason says why its health last changed ("" if it never did):
	// the failed check, connection or TLS handshake, or the success that
	// brought it back.
	HealthReason string
}

// DrainProgress describes a drain under way.
type DrainProgress struct {
	Since time.Time
	// StartSessions is how many live sessions the member had when it began.
	StartSessions int64
	// Remaining is how many are left.
	Remaining int64
	// EstimatedEmpty is when the member should be empty at the rate
	// sessions have been leaving since the drain began; zero if none has
	// left yet.
	EstimatedEmpty time.Time
	// EmptyBy is when the member is empty at the latest if no user of it
	// sends another request: its most recent session's last request plus
	// the idle window.
	EmptyBy time.Time
	// CountingSince is when the balancer began counting sessions (when it
	// started). Exact is false until a whole idle window has passed since:
	// before that, a session that has not sent a request since the start
	// is not counted, so Remaining is a lower bound and a drain with
	// DrainStop does not end on a count of zero.
	CountingSince time.Time
	Exact         bool
}

// Stats returns the member's counters. now and idle (the session idle
// window) are used for the drain estimates.
func (m *Member) stats(now time.Time, idle time.Duration) Stats {
	st := Stats{
		Route: m.route, URL: m.url.String(), State: m.State(), Healthy: m.Healthy(), Weight: m.Weight(),
		InFlight: m.inflight.Load(), MaxConns: m.MaxConns(), Queued: m.queue.queued(), QueueFull: m.queueFull.Load(), Requests: m.requests.Load(), NewSessions: m.newSessions.Load(),
		Failovers: m.failovers.Load(), Failures: m.failures.Load(), Bytes: m.bytes.Load(), AJPRefused: m.refused.Load(),
		LiveSessions: m.live.Load(), CreatedWhileDraining: m.createdDraining.Load(), Announced: m.announced.Load(),
	}
	if r := m.healthReason.Load(); r != nil {
		st.HealthReason = *r
	}
	st.SlowStart = m.slowStart(now)
	if since := m.drainSince.Load(); since != 0 && st.State == Draining {
		d := &DrainProgress{Since: time.Unix(0, since), StartSessions: m.drainStartLive.Load(), Remaining: max(st.LiveSessions, 0)}
		if last := m.lastSeen.Load(); last != 0 && d.Remaining > 0 {
			d.EmptyBy = time.Unix(0, last).Add(idle)
		}
		gone, elapsed := d.StartSessions-d.Remaining, now.Sub(d.Since)
		if d.Remaining == 0 {
			d.EstimatedEmpty = now
		} else if gone > 0 && elapsed > 0 {
			d.EstimatedEmpty = now.Add(time.Duration(float64(elapsed) * float64(d.Remaining) / float64(gone)))
		}
		st.Drain = d
	}
	return st
}

// takesSticky reports whether the member serves requests of its own sessions.
func (m *Member) takesSticky() bool {
	return m.Healthy() && m.State() != Stopped
}

// takesNew reports whether the member is in tier for new sessions.
func (m *Member) takesNew(tier State) bool {
	return m.Healthy() && m.State() == tier
}
