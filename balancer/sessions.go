package balancer

import (
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/route"
)

// The balancer counts, per member, the sessions it has seen go by within
// an idle window: ids in request cookies, new ids in Set-Cookie, cookies
// being expired (logout). That count is what a drain waits for: unlike
// connections, it says how many users are still pinned to a member.
//
// Memory is bounded: the tracker holds at most a fixed number of ids (a
// 64-bit hash and 8 bytes each); past it, new ids are not tracked and the
// counts are lower bounds (Dropped says how many were left out). Its maps
// hold no pointers (members by number), so the garbage collector does
// not scan a million entries at every cycle.

const trackerShards = 64

type sessionTracker struct {
	limit  int64
	hash   func(id string) uint64
	epoch  time.Time
	member func(id uint32) *Member // finds a member by number; nil if gone

	total   atomic.Int64
	dropped atomic.Uint64
	shards  [trackerShards]trackerShard
}

type trackerShard struct {
	mu sync.Mutex
	m  map[uint64]tracked
	_  [40]byte // keep shards on separate cache lines
}

type tracked struct {
	member uint32 // Member.id
	seen   uint32 // seconds since the tracker's epoch
}

// newSessionTracker returns a tracker of at most limit sessions; hash
// keys them (nil: maphash with a seed of its own).
func newSessionTracker(limit int, now time.Time, member func(uint32) *Member, hash func(string) uint64) *sessionTracker {
	if hash == nil {
		seed := maphash.MakeSeed()
		hash = func(id string) uint64 { return maphash.String(seed, id) }
	}
	t := &sessionTracker{limit: int64(limit), hash: hash, epoch: now, member: member}
	for i := range t.shards {
		t.shards[i].m = map[uint64]tracked{}
	}
	return t
}

func (t *sessionTracker) stamp(now time.Time) uint32 {
	return uint32(max(now.Sub(t.epoch)/time.Second, 0))
}

func (t *sessionTracker) shard(id string) (*trackerShard, uint64) {
	k := t.hash(id)
	return &t.shards[k%trackerShards], k
}

// touch records that session id of member m was seen at now. It reports
// whether the session was new to the tracker and whether it moved from
// another member (a takeover rewrote its route).
func (t *sessionTracker) touch(id string, m *Member, now time.Time) (added, moved bool) {
	s, k := t.shard(id)
	stamp := t.stamp(now)
	s.mu.Lock()
	e, ok := s.m[k]
	switch {
	case !ok:
		if t.total.Load() >= t.limit {
			s.mu.Unlock()
			t.dropped.Add(1)
			return false, false
		}
		t.total.Add(1)
		m.live.Add(1)
		added = true
	case e.member != m.id:
		t.left(e.member)
		m.live.Add(1)
		moved = true
	}
	s.m[k] = tracked{member: m.id, seen: stamp}
	s.mu.Unlock()
	m.lastSeen.Store(now.UnixNano())
	return added, moved
}

// forget removes session id: it was invalidated.
func (t *sessionTracker) forget(id string) {
	s, k := t.shard(id)
	s.mu.Lock()
	if e, ok := s.m[k]; ok {
		delete(s.m, k)
		t.left(e.member)
		t.total.Add(-1)
	}
	s.mu.Unlock()
}

// left counts one live session less on member number id, if it is still
// in the pool.
func (t *sessionTracker) left(id uint32) {
	if m := t.member(id); m != nil {
		m.live.Add(-1)
	}
}

// each calls f with the route and key of every tracked session.
func (t *sessionTracker) each(f func(route string, key uint64)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if m := t.member(e.member); m != nil {
				f(m.route, k)
			}
		}
		s.mu.Unlock()
	}
}

// sweep forgets the sessions not seen within the idle window.
func (t *sessionTracker) sweep(now time.Time, idle time.Duration) {
	cutoff := int64(t.stamp(now)) - int64(idle/time.Second)
	if cutoff <= 0 {
		return
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if int64(e.seen) < cutoff {
				delete(s.m, k)
				t.left(e.member)
				t.total.Add(-1)
			}
		}
		s.mu.Unlock()
	}
}

// SessionEvent is something the balancer saw happen to a session.
type SessionEvent struct {
	Balancer string
	Member   string // route of the member holding the session now
	Kind     SessionEventKind
}

// SessionEventKind says what happened. Append only.
type SessionEventKind uint8

const (
	// SessionCreated: a member set a new session id.
	SessionCreated SessionEventKind = iota
	// SessionCreatedWhileDraining: a draining member set a new session id,
	// the sign of an application that re-creates sessions (on logout, say)
	// and keeps users pinned to it.
	SessionCreatedWhileDraining
	// SessionRouteRewritten: a member took a session over and rewrote its
	// route, keeping the id.
	SessionRouteRewritten
	// SessionExpired: a member expired the session's cookie (logout).
	SessionExpired
	// SessionCookieInvalid: a request's sticky cookie (insert mode) did
	// not verify: forged, altered, or signed with a key no longer
	// configured. It counted as no cookie. Member is "".
	SessionCookieInvalid
	// SessionCookieExpired: a request's sticky cookie (insert mode) was
	// authentic but past its max idle or max life. It counted as no
	// cookie. Member is the route it named, if still in the pool.
	SessionCookieExpired
)

var sessionEventNames = [...]string{"created", "created_while_draining", "route_rewritten", "expired", "cookie_invalid", "cookie_expired"}

func (k SessionEventKind) String() string {
	if int(k) < len(sessionEventNames) {
		return sessionEventNames[k]
	}
	return "unknown"
}

// SessionObserver is an optional interface of an Observer: it is told
// about session events. It must be fast and must not block.
type SessionObserver interface {
	ObserveSession(SessionEvent)
}

// trackSessions applies what one response says about sessions: the
// application's session cookies it sets or expires (route and prefix
// mode), or Tether's own cookie (insert mode, trackInsert).
func (b *Balancer) trackSessions(a *attempt, setCookies []string) {
	if a.s.opts.Sticky == StickyInsert {
		b.trackInsert(a, setCookies)
		return
	}
	t, now, handled := b.tracker, a.start, false
	for _, line := range setCookies {
		value, expired, ok := a.stickyCookie(line)
		if !ok {
			continue
		}
		handled = true
		if expired {
			if a.id != "" {
				t.forget(a.id)
				b.sessionEvent(a, a.active, SessionExpired)
			}
			continue
		}
		id, m := a.setSession(value)
		if m == nil {
			continue
		}
		if id == a.id {
			if _, moved := t.touch(id, m, now); moved || m.route != a.route {
				b.sessionEvent(a, m, SessionRouteRewritten)
			}
			continue
		}
		if a.id != "" {
			t.forget(a.id) // the member replaced the request's session
		}
		t.touch(id, m, now)
		b.sessionEvent(a, m, SessionCreated)
		if m.State() == Draining {
			m.createdDraining.Add(1)
			b.sessionEvent(a, m, SessionCreatedWhileDraining)
		}
	}
	if m := a.sessionMember(); !handled && a.id != "" && m != nil {
		t.touch(a.id, m, now)
	}
}

// setSession reads the value of a session cookie a response sets: the
// session's id and its member, nil if none. In route mode the value is
// "<id><sep><route>"; in prefix mode it is the id, on the member that
// answered.
func (a *attempt) setSession(value string) (id string, m *Member) {
	if a.s.opts.Sticky == StickyPrefix {
		return value, a.active
	}
	id, r, ok := route.Split(value, a.s.opts.Separator)
	if !ok {
		return "", nil
	}
	return id, a.b.pool.Lookup(r)
}

// sessionMember is where the request's session is counted when the
// response does not set its cookie: on its own member in route mode (a
// failover member without the session does not own it); in prefix mode
// on the member that served it (after a failover or a move, even before
// the application sets its cookie again, which then carries the new
// route).
func (a *attempt) sessionMember() *Member {
	if a.s.opts.Sticky == StickyPrefix {
		return a.active
	}
	return a.home
}

func (b *Balancer) sessionEvent(a *attempt, m *Member, k SessionEventKind) {
	if so, ok := a.s.opts.Observer.(SessionObserver); ok {
		so.ObserveSession(SessionEvent{Balancer: a.s.opts.Name, Member: m.route, Kind: k})
	}
}

// stickyCookie parses a Set-Cookie line and reports the value of a cookie
// named in StickyNames, and whether the line expires it (Max-Age <= 0, an
// Expires in the past, or an empty value).
func (a *attempt) stickyCookie(line string) (value string, expired, ok bool) {
	nv, attrs, _ := strings.Cut(line, ";")
	name, value, found := strings.Cut(nv, "=")
	if !found {
		return "", false, false
	}
	name = strings.TrimSpace(name)
	named := false
	for _, n := range a.s.opts.StickyNames {
		named = named || n == name
	}
	if !named {
		return "", false, false
	}
	value = strings.Trim(strings.TrimSpace(value), `"`)
	expired = value == ""
	for attrs != "" {
		var attr string
		attr, attrs, _ = strings.Cut(attrs, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(attr), "=")
		switch {
		case strings.EqualFold(k, "Max-Age"):
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n <= 0 {
				expired = true
			}
		case strings.EqualFold(k, "Expires"):
			if t, err := http.ParseTime(strings.TrimSpace(v)); err == nil && t.Before(a.start) {
				expired = true
			}
		}
	}
	return value, expired, true
}
