package admin

import (
	"math"
	"time"

	"github.com/tetherlb/tether/balancer"
)

// The JSON documents of the API. Fields are only ever added.

// Snapshot is the answer of GET /api/v1/balancers and the "snapshot"
// event of the live feed.
type Snapshot struct {
	// Time is when the counters were read; rates are computed between two
	// snapshots' times.
	Time      time.Time      `json:"time"`
	Balancers []BalancerView `json:"balancers"`
	// Group is the group of instances this one is in; absent if none.
	Group *GroupView `json:"group,omitempty"`
}

// BalancerView is a balancer with its members.
type BalancerView struct {
	Name string `json:"name"`
	// Sessions is "local" or "replicated" (a drain moves sessions).
	Sessions string `json:"sessions"`
	Method   string `json:"method"`
	// StickyMode is where sessions carry their route: "route", "insert"
	// or "prefix".
	StickyMode string `json:"sticky_mode"`
	// DrainIdle is how long a session may go unseen and still count as live.
	DrainIdle Duration `json:"drain_idle"`
	// DrainStop: a drained member is stopped when empty or at DrainDeadline.
	DrainStop     bool     `json:"drain_stop"`
	DrainDeadline Duration `json:"drain_deadline,omitempty"`
	// TrackedSessions is how many sessions are counted; UntrackedSessions
	// how many were left out because the tracking limit was reached (the
	// live counts are then lower bounds).
	TrackedSessions   int64        `json:"tracked_sessions"`
	UntrackedSessions uint64       `json:"untracked_sessions"`
	Members           []MemberView `json:"members"`
}

// MemberView is a member's configuration, state and counters.
type MemberView struct {
	Route   string `json:"route"`
	URL     string `json:"url"`
	State   string `json:"state"`
	Healthy bool   `json:"healthy"`
	// Health is "up" or "down", for people.
	Health   string `json:"health"`
	Weight   int    `json:"weight"`
	InFlight int64  `json:"in_flight"`
	// MaxConns is the most requests the member is sent at once (its own
	// max_conns or the balancer's); 0: no limit.
	MaxConns int `json:"max_conns"`
	// Queued is the requests waiting for a free slot (max_conns);
	// QueueTimeouts those answered 503 after waiting too long.
	Queued        int    `json:"queued"`
	QueueTimeouts uint64 `json:"queue_timeouts"`
	// Requests is the responses received from the member since it was
	// added; a rate is the difference between two snapshots.
	Requests    uint64 `json:"requests"`
	NewSessions uint64 `json:"new_sessions"`
	Failovers   uint64 `json:"failovers"`
	Failures    uint64 `json:"failures"`
	Bytes       uint64 `json:"bytes"`
	// AJPRefused counts requests an ajp:// member refused as Tomcat
	// refuses a wrong or missing secret (403, connection closed): more
	// than zero means its secret is likely wrong.
	AJPRefused uint64 `json:"ajp_refused"`
	// LiveSessions are the sessions seen within the balancer's drain idle
	// window; in a group, by any instance (a session seen by two counts
	// once).
	LiveSessions int64 `json:"live_sessions"`
	// LocalSessions, in a group, are those this instance sees.
	LocalSessions int64 `json:"local_sessions,omitempty"`
	// CreatedWhileDraining counts sessions the member created while
	// draining: users pinned again (an application that creates a session
	// on logout or on an expired session).
	CreatedWhileDraining uint64 `json:"created_while_draining"`
	// Announced: the member itself asked to drain (Tether-State: draining).
	Announced bool `json:"announced"`
	// Drain is set while the member is draining.
	Drain *DrainView `json:"drain,omitempty"`
	// HealthReason says why its health last changed: the failed check,
	// connection or TLS handshake (a certificate that does not verify),
	// or what brought it back. Empty if it never changed.
	HealthReason string `json:"health_reason,omitempty"`
	// SlowStart is set while the member ramps up its share of new
	// sessions after coming back (slow_start).
	SlowStart *SlowStartView `json:"slow_start,omitempty"`
}

// SlowStartView is a member's ramp up.
type SlowStartView struct {
	// Until is when it gets its whole share; Share is the part of its
	// weight it has now, from 0 to 1.
	Until time.Time `json:"until"`
	Share float64   `json:"share"`
}

// DrainView is the progress of a drain.
type DrainView struct {
	Since time.Time `json:"since"`
	// StartSessions were live when the drain began; Remaining are live now.
	StartSessions int64 `json:"start_sessions"`
	Remaining     int64 `json:"remaining"`
	// Progress is the share of StartSessions gone, 0 to 1 (1 when empty).
	Progress float64 `json:"progress"`
	// EstimatedEmpty is when the member should be empty at the rate
	// sessions have left so far; absent while none has left.
	EstimatedEmpty *time.Time `json:"estimated_empty,omitempty"`
	// EmptyBy is the latest time it is empty if no user comes back: the
	// last session seen plus the idle window.
	EmptyBy *time.Time `json:"empty_by,omitempty"`
	// Exact is false while the balancer has been counting (since
	// CountingSince, its start) for less than one idle window: users who
	// have not come back since are not counted yet, Remaining is a lower
	// bound, and a drain does not end on zero.
	Exact         bool      `json:"exact"`
	CountingSince time.Time `json:"counting_since"`
	// Partial, in a group: the count of a reachable instance has not
	// arrived lately (it has just joined, or it is frozen and not yet
	// declared down), so Remaining may be too low; a drain is not over
	// while it is set.
	Partial bool `json:"partial,omitempty"`
}

// Duration is a time.Duration that reads and writes as "1m30s".
type Duration time.Duration

// MarshalText writes d as Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration text.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// MemberChange is the body of PATCH …/members/{route}: a new state and/or
// weight, and an optional reason kept in the audit log.
type MemberChange struct {
	State  *string `json:"state,omitempty"`
	Weight *int    `json:"weight,omitempty"`
	Reason string  `json:"reason,omitempty"`
}

// NewMember is the body of POST …/members.
type NewMember struct {
	MemberSpec
	Reason string `json:"reason,omitempty"`
}

// ChangeResult is the answer to a change: the member after it, and the
// audit entry recording it.
type ChangeResult struct {
	Member MemberView `json:"member"`
	Audit  AuditEntry `json:"audit"`
}

// AuditPage is the answer of GET /api/v1/audit.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
}

func viewBalancer(b *balancer.Balancer) BalancerView {
	o := b.Options()
	tracked, dropped := b.SessionCounts()
	v := BalancerView{
		Name: b.Name(), Sessions: "local", Method: string(o.Method), StickyMode: o.Sticky.String(),
		DrainIdle: Duration(o.SessionIdle), DrainStop: o.DrainStop, DrainDeadline: Duration(o.DrainDeadline),
		TrackedSessions: tracked, UntrackedSessions: dropped,
	}
	if o.Replicated {
		v.Sessions = "replicated"
	}
	if v.Method == "" {
		v.Method = "byrequests"
	}
	stats := b.Stats()
	v.Members = make([]MemberView, len(stats))
	for i, s := range stats {
		v.Members[i] = viewMember(s)
	}
	return v
}

func viewMember(s balancer.Stats) MemberView {
	v := MemberView{
		Route: s.Route, URL: s.URL, State: s.State.String(), Healthy: s.Healthy, Health: "up", Weight: s.Weight,
		InFlight: s.InFlight, MaxConns: s.MaxConns, Queued: s.Queued, QueueTimeouts: s.QueueFull, Requests: s.Requests, NewSessions: s.NewSessions, Failovers: s.Failovers,
		Failures: s.Failures, Bytes: s.Bytes, AJPRefused: s.AJPRefused, LiveSessions: max(s.LiveSessions, 0),
		CreatedWhileDraining: s.CreatedWhileDraining, Announced: s.Announced, HealthReason: s.HealthReason,
	}
	if !s.Healthy {
		v.Health = "down"
	}
	if ss := s.SlowStart; ss != nil {
		v.SlowStart = &SlowStartView{Until: ss.Until, Share: math.Round(ss.Share*1000) / 1000}
	}
	if d := s.Drain; d != nil {
		dv := &DrainView{Since: d.Since, StartSessions: d.StartSessions, Remaining: d.Remaining, Progress: 1, Exact: d.Exact, CountingSince: d.CountingSince}
		if d.StartSessions > 0 && d.Remaining > 0 {
			dv.Progress = max(0, float64(d.StartSessions-d.Remaining)/float64(d.StartSessions))
		} else if d.Remaining > 0 {
			dv.Progress = 0
		}
		if !d.EstimatedEmpty.IsZero() {
			t := d.EstimatedEmpty
			dv.EstimatedEmpty = &t
		}
		if !d.EmptyBy.IsZero() {
			t := d.EmptyBy
			dv.EmptyBy = &t
		}
		v.Drain = dv
	}
	return v
}

func findMember(b *balancer.Balancer, r string) (MemberView, bool) {
	for _, s := range b.Stats() {
		if s.Route == r {
			return viewMember(s), true
		}
	}
	return MemberView{}, false
}
