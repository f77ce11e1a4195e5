package balancer

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/route"
)

// Pool is a balancer's set of members. Readers get an immutable snapshot
// from an atomic pointer and never lock; changes are serialized and publish
// a new snapshot (copy on write). A Member's state, weight and health change
// in place, atomically, without a new snapshot.
type Pool struct {
	mu      sync.Mutex // serializes Add, Remove and Replace
	snap    atomic.Pointer[snapshot]
	watch   func(added, removed []*Member) // health checker hook, may be nil
	now     func() time.Time
	changed func(StateChange) // state change hook, may be nil
	ids     atomic.Uint32     // the last Member.id given
	// slowStart is Options.SlowStart in nanoseconds, for members that
	// come back.
	slowStart atomic.Int64
}

// StateChange is a member's change of state, whoever made it.
type StateChange struct {
	Member   string
	From, To State
	// Reason says who or what made the change: "api", "config", "the member
	// announced it is draining", "drained: no live session" …
	Reason string
}

type snapshot struct {
	members []*Member
	byRoute map[string]*Member
}

func newPool(cfgs []MemberConfig, now func() time.Time) (*Pool, error) {
	p := &Pool{now: now}
	s := &snapshot{byRoute: make(map[string]*Member, len(cfgs))}
	for _, c := range cfgs {
		if err := checkMember(c, s); err != nil {
			return nil, err
		}
		m := newMember(c, p)
		s.members = append(s.members, m)
		s.byRoute[m.route] = m
	}
	p.snap.Store(s)
	return p, nil
}

func checkMember(c MemberConfig, s *snapshot) error {
	if c.URL == nil || c.URL.Host == "" || (c.URL.Scheme != "http" && c.URL.Scheme != "https" && c.URL.Scheme != "ajp") {
		return fmt.Errorf("%w: member %q needs an http, https or ajp URL with a host", ErrInvalid, c.Route)
	}
	if !route.Valid(c.Route) {
		return fmt.Errorf("%w: invalid route %q", ErrInvalid, c.Route)
	}
	if c.Weight < 0 {
		return fmt.Errorf("%w: negative weight %d", ErrInvalid, c.Weight)
	}
	if _, dup := s.byRoute[c.Route]; dup {
		return fmt.Errorf("%w: route %q already in the pool", ErrExists, c.Route)
	}
	return nil
}

// Members returns the members in configuration order. The slice is shared:
// the caller must not modify it.
func (p *Pool) Members() []*Member { return p.snap.Load().members }

// byID returns the member numbered id, or nil if it is no longer in the
// pool.
func (p *Pool) byID(id uint32) *Member {
	for _, m := range p.snap.Load().members {
		if m.id == id {
			return m
		}
	}
	return nil
}

// Lookup returns the member with route r, or nil.
func (p *Pool) Lookup(r string) *Member { return p.snap.Load().byRoute[r] }

// SetState changes a member's state and returns the previous one. reason
// is passed on to the state change hook ("api" if empty).
func (p *Pool) SetState(route string, s State, reason string) (State, error) {
	if s < Active || s > Standby {
		return 0, fmt.Errorf("%w: unknown state %d", ErrInvalid, s)
	}
	m := p.Lookup(route)
	if m == nil {
		return 0, fmt.Errorf("%w: %q", ErrNoSuchMember, route)
	}
	if reason == "" {
		reason = "api"
	}
	for {
		old := m.State()
		if p.setState(m, old, s, reason) {
			if s != Draining {
				m.announced.Store(false) // an operator's decision ends the member's own
			}
			return old, nil
		}
	}
}

// setState moves m from state from to state to, if it is still in from,
// stamping the start of a drain and telling the hook. It reports whether
// it did.
func (p *Pool) setState(m *Member, from, to State, reason string) bool {
	if !m.state.CompareAndSwap(int32(from), int32(to)) {
		return false
	}
	if from == to {
		return true
	}
	if to == Active && (from == Stopped || from == Standby) {
		m.startRamp() // back from maintenance: a cold node
	}
	if to == Draining {
		m.drainStartLive.Store(m.live.Load())
		m.drainSince.Store(p.now().UnixNano())
	} else {
		m.drainSince.Store(0)
	}
	if p.changed != nil {
		p.changed(StateChange{Member: m.route, From: from, To: to, Reason: reason})
	}
	return true
}

// SetWeight changes a member's weight (1 to MaxWeight) and returns the
// previous one.
func (p *Pool) SetWeight(route string, w int) (int, error) {
	if w < 1 || w > MaxWeight {
		return 0, fmt.Errorf("%w: weight %d is not from 1 to %d", ErrInvalid, w, MaxWeight)
	}
	m := p.Lookup(route)
	if m == nil {
		return 0, fmt.Errorf("%w: %q", ErrNoSuchMember, route)
	}
	return int(m.weight.Swap(int32(w))), nil
}

// Add adds a member. Its route must be new to the pool.
func (p *Pool) Add(c MemberConfig) (*Member, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.snap.Load()
	if err := checkMember(c, old); err != nil {
		return nil, err
	}
	m := newMember(c, p)
	if c.State == Active {
		m.startRamp() // a new node at run time is cold
	}
	s := old.with(len(old.members) + 1)
	s.members = append(s.members, m)
	s.byRoute[m.route] = m
	p.snap.Store(s)
	p.notify([]*Member{m}, nil)
	return m, nil
}

// Remove removes a member. Requests in flight to it finish.
func (p *Pool) Remove(route string) (*Member, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.snap.Load()
	m := old.byRoute[route]
	if m == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchMember, route)
	}
	s := &snapshot{byRoute: make(map[string]*Member, len(old.members))}
	for _, o := range old.members {
		if o != m {
			s.members = append(s.members, o)
			s.byRoute[o.route] = o
		}
	}
	p.snap.Store(s)
	p.notify(nil, []*Member{m})
	return m, nil
}

// Replace makes the pool hold exactly cfgs, for a configuration reload.
// A member whose route, URL and secret are unchanged keeps its counters, health and
// state; its state and weight are set from cfgs only where they differ from
// prev, the configuration being replaced, so a change made at run time (by
// the manager) survives a reload that does not touch that member. Every
// member is checked before anything changes: on error the pool is as it was.
func (p *Pool) Replace(prev, cfgs []MemberConfig) error {
	if err := checkMembers(cfgs); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replace(prev, cfgs)
	return nil
}

// checkMembers checks a member list as Replace does, changing nothing.
func checkMembers(cfgs []MemberConfig) error {
	seen := &snapshot{byRoute: make(map[string]*Member, len(cfgs))}
	for _, c := range cfgs {
		if err := checkMember(c, seen); err != nil {
			return err
		}
		seen.byRoute[c.Route] = nil
	}
	return nil
}

// replace is Replace once cfgs are checked; p.mu is held.
func (p *Pool) replace(prev, cfgs []MemberConfig) {
	old := p.snap.Load()
	before := make(map[string]MemberConfig, len(prev))
	for _, c := range prev {
		before[c.Route] = c
	}
	s := &snapshot{byRoute: make(map[string]*Member, len(cfgs))}
	var added []*Member
	for _, c := range cfgs {
		m := old.byRoute[c.Route]
		if m == nil || m.url.String() != c.URL.String() || m.secret != c.Secret {
			m = newMember(c, p)
			added = append(added, m)
		} else if b, ok := before[c.Route]; ok {
			m.tlsConf.Store(c.TLS) // from the file only: never changed at run time
			if b.State != c.State {
				p.setState(m, m.State(), c.State, "config")
			}
			if b.Weight != c.Weight {
				m.weight.Store(int32(max(c.Weight, 1)))
			}
			if b.MaxConns != c.MaxConns {
				m.maxConns.Store(int32(max(c.MaxConns, 0)))
			}
		}
		s.members = append(s.members, m)
		s.byRoute[m.route] = m
	}
	var removed []*Member
	for _, m := range old.members {
		if s.byRoute[m.route] != m {
			removed = append(removed, m)
		}
	}
	p.snap.Store(s)
	p.notify(added, removed)
}

func (p *Pool) notify(added, removed []*Member) {
	if p.watch != nil && (len(added) > 0 || len(removed) > 0) {
		p.watch(added, removed)
	}
}

func (s *snapshot) with(capacity int) *snapshot {
	n := &snapshot{members: make([]*Member, len(s.members), capacity), byRoute: make(map[string]*Member, capacity)}
	copy(n.members, s.members)
	for k, v := range s.byRoute {
		n.byRoute[k] = v
	}
	return n
}
