package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/group"
)

// Group is the group of instances the manager shares its changes with
// (a *group.Group; see package group). The rules, documented for users in
// docs/operations.md:
//
//   - A state, weight, add or remove made through this manager is applied
//     here, then written to the group as a record per member and field
//     (keys "state/BAL/ROUTE", "weight/BAL/ROUTE", "member/BAL/ROUTE"),
//     carrying the change's audit entry.
//   - A record another instance wrote is applied here when it wins (the
//     greater stamp: hybrid logical clock time, then instance name; see
//     group.Stamp), exactly as a change through this API: pool, state
//     file; its audit entry is added once, naming the instance it came
//     through, even when a later change had already won here.
//   - The configuration file stays the base: reloads and the balancers'
//     own changes (finished drains, announcements) are not shared.
type Group interface {
	Name() string
	Set(key string, value []byte) group.Record
	Get(key string) (group.Record, bool)
	Sessions(key string, local group.Tally) int64
	// Complete: the session counts cover every reachable instance.
	Complete() bool
	Status() group.Status
}

// sharedChange is the value of a group record.
type sharedChange struct {
	State  string `json:"state,omitempty"`
	Weight int    `json:"weight,omitempty"`
	// Member is the member added ("member" records); nil: removed.
	Member *MemberSpec `json:"member,omitempty"`
	Audit  AuditEntry  `json:"audit"`
}

// Record kinds: the first part of a record's key.
const (
	kindState  = "state"
	kindWeight = "weight"
	kindMember = "member"
)

func sharedKey(kind, bal, rt string) string { return kind + "/" + bal + "/" + rt }

// parseSharedKey splits a record key; balancer names and routes hold no
// '/'.
func parseSharedKey(k string) (kind, bal, rt string, ok bool) {
	parts := strings.Split(k, "/")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	switch parts[0] {
	case kindState, kindWeight, kindMember:
		return parts[0], parts[1], parts[2], true
	}
	return "", "", "", false
}

// share writes a change made here to the group. m.mu is held.
func (m *Manager) share(kind, bal, rt string, c sharedChange) {
	if m.o.Group == nil {
		return
	}
	b, err := json.Marshal(c)
	if err != nil {
		m.o.Logger.Error("group: a change could not be encoded; it applies here only", "err", err)
		return
	}
	m.o.Group.Set(sharedKey(kind, bal, rt), b)
}

// ApplyShared applies a record another instance of the group wrote: it
// is the group's Options.Apply. won says whether the record is the
// current one in the group's store.
func (m *Manager) ApplyShared(r group.Record, won bool) {
	kind, bal, rt, ok := parseSharedKey(r.Key)
	var c sharedChange
	if ok {
		ok = json.Unmarshal(r.Value, &c) == nil // lenient: a newer instance may add fields
	}
	if !ok {
		m.o.Logger.Warn("group: a record that is not a member change was ignored", "key", r.Key, "from", r.Stamp.Origin)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applyPending()
	m.audit.addShared(c.Audit, r.Stamp.Origin)
	if !won {
		return
	}
	if cur, _ := m.o.Group.Get(r.Key); cur.Stamp != r.Stamp {
		return // a later record won meanwhile; it is applied on its own
	}
	if err := m.applyRecord(kind, bal, rt, c); err != nil {
		m.o.Logger.Warn("group: a change from another instance could not be applied here", "key", r.Key, "from", r.Stamp.Origin, "err", err)
	}
}

// applyRecord applies a shared change like the API would. m.mu is held.
// Before the balancers run (while joining), only the state file changes:
// the balancers start with it.
func (m *Manager) applyRecord(kind, bal, rt string, c sharedChange) error {
	if _, ok := m.base[bal]; !ok {
		return fmt.Errorf("no balancer %q here", bal)
	}
	b := m.o.Source.Balancer(bal)
	next := m.doc.clone()
	var apply func(*balancer.Pool) error
	switch kind {
	case kindState:
		st, err := balancer.ParseState(c.State)
		if err != nil || c.State == "" {
			return fmt.Errorf("state %q", c.State)
		}
		next.setState(m.base, bal, rt, c.State)
		apply = func(p *balancer.Pool) error { _, err := p.SetState(rt, st, apiReason); return err }
	case kindWeight:
		if c.Weight < 1 || c.Weight > balancer.MaxWeight {
			return fmt.Errorf("weight %d", c.Weight)
		}
		next.setWeight(m.base, bal, rt, c.Weight)
		apply = func(p *balancer.Pool) error { _, err := p.SetWeight(rt, c.Weight); return err }
	case kindMember:
		var err error
		if apply, err = m.memberRecord(next, bal, rt, c.Member); err != nil {
			return err
		}
	}
	if b != nil && apply != nil {
		if err := apply(b.Pool()); err != nil {
			return err
		}
	}
	if err := m.save(next); err != nil {
		m.o.Logger.Error("manager: the state file could not be written after a change from the group", "err", err)
	}
	m.doc = next
	return nil
}

// memberRecord records in next a member added (spec) or removed (nil) by
// another instance, and returns how to change the pool (nil: nothing).
func (m *Manager) memberRecord(next *stateDoc, bal, rt string, spec *MemberSpec) (func(*balancer.Pool) error, error) {
	if spec == nil {
		next.remove(m.base, bal, rt)
		return func(p *balancer.Pool) error {
			if p.Lookup(rt) == nil {
				return nil
			}
			_, err := p.Remove(rt)
			return err
		}, nil
	}
	s := *spec
	if s.Route != rt {
		return nil, fmt.Errorf("member record for %q names route %q", rt, s.Route)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	if m.o.ValidateMember != nil {
		if err := m.o.ValidateMember(s); err != nil {
			return nil, err
		}
	}
	if f, ok := m.base.find(bal, rt); ok && f.URL != s.URL {
		return nil, fmt.Errorf("the configuration file here defines %q with url %s", rt, f.URL)
	}
	mc, err := s.Config()
	if err != nil {
		return nil, err
	}
	eff, ok := next.effective(m.base).find(bal, rt)
	if ok && eff.URL == s.URL {
		return nil, nil // already here (a record taken again after a restart)
	}
	replace := ok // a member added at run time, since added again with another url
	if replace {
		next.remove(m.base, bal, rt)
	}
	next.add(m.base, bal, s)
	return func(p *balancer.Pool) error {
		if replace && p.Lookup(rt) != nil {
			if _, err := p.Remove(rt); err != nil {
				return err
			}
		}
		if p.Lookup(rt) != nil {
			return nil
		}
		_, err := p.Add(mc)
		return err
	}, nil
}

// tallies is what this instance sees of every member's sessions, for the
// group: group.Options.Tallies. The sketches are kept for the views.
func (m *Manager) Tallies() map[string]group.Tally {
	out := map[string]group.Tally{}
	for _, b := range m.o.Source.Balancers() {
		if b == nil {
			continue
		}
		name := b.Name()
		for _, s := range b.Stats() {
			out[name+"/"+s.Route] = group.Tally{Count: max(s.LiveSessions, 0), Sketch: &group.Sketch{}}
		}
		b.EachSession(func(rt string, h uint64) {
			if t, ok := out[name+"/"+rt]; ok {
				t.Sketch.Add(h)
			}
		})
	}
	m.sketchMu.Lock()
	m.sketches = out
	m.sketchMu.Unlock()
	return out
}

// groupCounts replaces a member view's live sessions and drain progress
// with the group's union.
func (m *Manager) groupCounts(bal string, v *MemberView) {
	if m.o.Group == nil {
		return
	}
	key := bal + "/" + v.Route
	m.sketchMu.Lock()
	local := m.sketches[key]
	m.sketchMu.Unlock()
	local.Count = v.LiveSessions
	n := m.o.Group.Sessions(key, local)
	v.LocalSessions = v.LiveSessions
	v.LiveSessions = n
	if d := v.Drain; d != nil {
		d.Partial = !m.o.Group.Complete()
	}
	if d := v.Drain; d != nil && d.Remaining != n {
		d.Remaining = n
		d.EstimatedEmpty = nil // the rate is this instance's alone
		d.Progress = 1
		if n > 0 {
			d.Progress = 0
			if d.StartSessions > n {
				d.Progress = float64(d.StartSessions-n) / float64(d.StartSessions)
			}
		}
	}
}

// LiveElsewhere reports whether the group sees live sessions of member rt
// of balancer bal, or may (the tallies of a reachable instance have not
// arrived lately); false outside a group. A drain with drain.done: stop
// waits for them (balancer.Options.LiveElsewhere). It does not block.
func (m *Manager) LiveElsewhere(bal, rt string) bool {
	if m.o.Group == nil {
		return false
	}
	key := bal + "/" + rt
	m.sketchMu.Lock()
	local := m.sketches[key]
	m.sketchMu.Unlock()
	local.Count = 0 // the caller has checked its own count
	return !m.o.Group.Complete() || m.o.Group.Sessions(key, local) > 0
}

// GroupSessions yields the group's live sessions of every member (for the
// metrics); nothing outside a group.
func (m *Manager) GroupSessions(yield func(bal, rt string, n int64)) {
	if m.o.Group == nil {
		return
	}
	for _, b := range m.o.Source.Balancers() {
		if b == nil {
			continue
		}
		for _, s := range b.Stats() {
			v := MemberView{Route: s.Route, LiveSessions: max(s.LiveSessions, 0)}
			m.groupCounts(b.Name(), &v)
			yield(b.Name(), s.Route, v.LiveSessions)
		}
	}
}

func (m *Manager) viewBalancer(b *balancer.Balancer) BalancerView {
	v := viewBalancer(b)
	for i := range v.Members {
		m.groupCounts(v.Name, &v.Members[i])
	}
	return v
}

func (m *Manager) findMember(b *balancer.Balancer, r string) (MemberView, bool) {
	v, ok := findMember(b, r)
	if ok {
		m.groupCounts(b.Name(), &v)
	}
	return v, ok
}

// GroupView is the group as this instance sees it: GET /api/v1/group, and
// the "group" of a Snapshot.
type GroupView struct {
	// Instance is this instance's name.
	Instance string `json:"instance"`
	// Synced: this instance has taken the group's state since it started.
	Synced   bool       `json:"synced"`
	SyncedAt *time.Time `json:"synced_at,omitempty"`
	// Alone: no other instance is reachable now; this one serves with
	// the state it has.
	Alone     bool           `json:"alone"`
	Instances []InstanceView `json:"instances"`
}

// InstanceView is one instance of the group.
type InstanceView struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	// Health is "up" or "down" (unreachable: down, frozen, cut off).
	Health string    `json:"health"`
	Since  time.Time `json:"since,omitzero"`
	Self   bool      `json:"self,omitempty"`
	// LastTallies is when its session counts last arrived.
	LastTallies time.Time `json:"last_tallies,omitzero"`
}

func (m *Manager) groupView() *GroupView {
	if m.o.Group == nil {
		return nil
	}
	st := m.o.Group.Status()
	v := &GroupView{Instance: st.Name, Synced: st.Synced, Alone: st.Alone, Instances: []InstanceView{}}
	if st.Synced {
		t := st.SyncedAt
		v.SyncedAt = &t
	}
	for _, in := range st.Instances {
		h := "down"
		if in.Up {
			h = "up"
		}
		v.Instances = append(v.Instances, InstanceView{Name: in.Name, Addr: in.Addr, Health: h, Since: in.Since, Self: in.Name == st.Name, LastTallies: in.LastTallies})
	}
	return v
}

func (m *Manager) getGroup(w http.ResponseWriter, r *http.Request, _ caller) error {
	v := m.groupView()
	if v == nil {
		return fmt.Errorf("%w: this instance is in no group", ErrNotFound)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// sharedAudit remembers which shared audit entries the log has.
type sharedAudit struct {
	mu   sync.Mutex
	seen map[auditKey]bool
	fifo []auditKey
}

type auditKey struct {
	instance string
	id       uint64
}

// maxSharedAudit bounds the memory of shared entries seen.
const maxSharedAudit = 100_000

// Health is the answer of GET /healthz (no token needed).
type Health struct {
	// Status is "ok".
	Status string `json:"status"`
	// Group, in a group: "synced" (this instance took the group's state
	// since it started), "alone" (no other instance reachable: it serves
	// with the state it has) or "not synced" (others are reachable but
	// their state has not arrived yet).
	Group string `json:"group,omitempty"`
}

// healthz answers 200 while the manager runs; in a group it says whether
// this instance has the group's state.
func (m *Manager) healthz(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok"}
	if m.o.Group != nil {
		st := m.o.Group.Status()
		switch {
		case st.Alone:
			h.Group = "alone"
		case st.Synced:
			h.Group = "synced"
		default:
			h.Group = "not synced"
		}
	}
	writeJSON(w, http.StatusOK, h)
}
