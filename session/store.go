package session

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// Store keeps session records. It is small on purpose, so that an in-memory
// map (session/memstore), a replicated cluster (session/clusterstore) or a
// remote database can implement it, and session/sessiontest.Run checks any
// implementation against this contract.
//
// Ids given to a Store are id parts only, never "<id>.<route>": the route is
// where a session lives, not what it is called. A Store serves one Manager.
//
// Concurrency: every method may be called from many goroutines at once,
// including several Saves of one session (one per concurrent request on it).
// A Store applies the Saves of one session one at a time, in an order of its
// choosing (for a replicated store: the order of the node that owns the
// session), and every node holding a replica applies them in that order.
//
// Durability: once Save, Delete or Claim has returned nil, the change
// survives what the store promises to survive (a replicated store: the
// death of its node, per its acknowledgement mode), and Load on any node
// never returns a state that a later Load could go back on.
//
// Blocking: methods may block on I/O (a replicated store in synchronous mode
// waits in Save until a peer acknowledges), but must bound that time
// themselves: the Manager's ctx carries the request's values, not its
// cancellation, and a deadline only if Options.StoreTimeout is set. They
// must return promptly once ctx is done, with an error wrapping ctx.Err();
// the change may or may not have been applied then. The Manager calls Load
// and Save on the request's goroutine, before the first byte of the response
// is written, so the time a Save takes is added to the response time.
//
// Read your writes: once Save, Delete or Claim has returned nil, a Load
// through the same Store value sees its effect. (Other nodes of a cluster may
// see it later.) Touch may be applied lazily: see Touch.
//
// Byte slices: a Store may keep the slices of Delta.Set, and the caller must
// not modify them after Save. Record.Values returned by Load may be shared
// with the Store and other callers: callers must not modify the map or its
// slices.
type Store interface {
	// Load returns the session with id part id. It returns an error
	// wrapping ErrNotFound when there is none, including when the session
	// has expired by the store's clock (Record.Expired): a Store never
	// returns an expired record. A Store that notifies expiry
	// (ExpiryNotifier) reports such a session exactly once, when Load finds
	// it expired or when its janitor removes it, whichever comes first.
	// Load does not change LastAccess: Save and Touch do.
	Load(ctx context.Context, id string) (Record, error)

	// Save applies d to the session d.ID and returns the new version.
	//
	// With d.BaseVersion == 0, Save creates the session from d (Route,
	// Created, IdleTimeout, Deadline, LastAccess, Set) at version 1, or
	// fails with ErrExists if the id is taken. A store may keep the id of
	// a deleted session taken for a while (a replicated store keeps a
	// tombstone, so that no late copy brings the session back); the
	// Manager then draws another id.
	//
	// With d.BaseVersion > 0, Save merges d key by key into the current
	// record: keys in d.Set take the given bytes, keys in d.Removed are
	// deleted (a missing key is not an error), and every other key keeps its
	// current value, whatever other Saves wrote since d.BaseVersion. So
	// concurrent requests writing different keys never lose each other's
	// writes. The version goes up by exactly one, LastAccess becomes the
	// later of its current value and d.LastAccess, and Route, Created,
	// IdleTimeout and Deadline are unchanged. It fails with ErrNotFound when
	// the session is gone (deleted, expired, evicted) and with ErrBadDelta
	// when d.BaseVersion is greater than the current version (a version
	// the store never handed out).
	//
	// Reads are checked: Save fails with an error wrapping ErrConflict, and
	// changes nothing, when the current value of a key in d.Read differs
	// from the bytes given there (a nil slice: the key must be absent), or
	// when d.ReadAll is set and any Save was applied after d.BaseVersion.
	// The check and the write are one atomic step in the store's order of
	// the session's Saves. So a read-modify-write never overwrites a write
	// it did not see, on any node.
	//
	// Blind writes: a key in d.Set or d.Removed but not in d.Read, that a
	// Save applied after d.BaseVersion also wrote, is a conflict that the
	// rule "last writer wins" settles: the Save applied later (in the
	// store's order) sets the value, and it reports the key in
	// SaveResult.Conflicts. Every replica thus ends with the same value.
	//
	// A bounded Store refuses a Save that would exceed its bounds with an
	// error wrapping ErrStoreFull and leaves the record as it was; it never
	// keeps part of a delta.
	Save(ctx context.Context, d Delta) (SaveResult, error)

	// Delete removes the session id (logout, renewal, expiry found by the
	// Manager). It returns an error wrapping ErrNotFound when there was no
	// such session, so that of two concurrent Deletes exactly one succeeds.
	// A Store does not report sessions removed by Delete to its
	// ExpiryNotifier: the caller of a successful Delete does.
	Delete(ctx context.Context, id string) error

	// Touch records that the session id was used at time at without
	// changing its values or version: LastAccess becomes the later of its
	// current value and at. It returns an error wrapping ErrNotFound when
	// the store knows the session is gone. A Store may apply touches lazily
	// or in batches (a replicated store sends them to its peers in bulk), as
	// long as the node that called Touch sees it at once; a lost Touch only
	// shortens a session's idle life.
	Touch(ctx context.Context, id string, at time.Time) error
}

// Record is a stored session.
type Record struct {
	// ID is the id part of the session id, without separator or route.
	ID string
	// Route is the route of the node that owns the session: the one that
	// serves its requests and whose Store reports its expiry.
	Route string
	// Version is 1 when the session is created and goes up by one with
	// every Save.
	Version uint64
	// Epoch is the ownership epoch of the copy, for stores whose sessions
	// change owners (clusterstore: raised by every takeover), so that a
	// Confirmer can tell this copy from another with the same Version and
	// Route; 0 for the others.
	Epoch uint64
	// Values holds the encoded values by key. Callers must not modify it.
	Values map[string][]byte
	// Created is when the session was created. RenewID keeps it.
	Created time.Time
	// LastAccess is the latest time a request used the session.
	LastAccess time.Time
	// IdleTimeout is how long the session lives after LastAccess; zero
	// means no idle timeout.
	IdleTimeout time.Duration
	// Deadline is when the session ends, however busy (absolute lifetime);
	// the zero time means never.
	Deadline time.Time
}

// ExpiresAt returns when r expires if it is not used again: the earlier of
// LastAccess+IdleTimeout and Deadline. The zero time means never.
func (r Record) ExpiresAt() time.Time {
	var t time.Time
	if r.IdleTimeout > 0 {
		t = r.LastAccess.Add(r.IdleTimeout)
	}
	if !r.Deadline.IsZero() && (t.IsZero() || r.Deadline.Before(t)) {
		t = r.Deadline
	}
	return t
}

// Expired reports whether r has expired at now, and why: ReasonLifetime
// when now is at or after Deadline, else ReasonIdleTimeout when now is at or
// after LastAccess+IdleTimeout. Stores and the Manager both use it, so that
// they agree on the rule.
func (r Record) Expired(now time.Time) (Reason, bool) {
	if !r.Deadline.IsZero() && !now.Before(r.Deadline) {
		return ReasonLifetime, true
	}
	if r.IdleTimeout > 0 && !now.Before(r.LastAccess.Add(r.IdleTimeout)) {
		return ReasonIdleTimeout, true
	}
	return 0, false
}

// Delta is one request's changes to a session, as given to Store.Save.
type Delta struct {
	// ID is the id part of the session.
	ID string
	// BaseVersion is the version the request loaded; 0 creates the session.
	BaseVersion uint64
	// Set holds the keys the request wrote, with their new encoded values.
	Set map[string][]byte
	// Removed lists the keys the request removed. A key is never in both
	// Set and Removed.
	Removed []string
	// Read lists the keys whose values the request read before writing
	// anything to them, each once, with the bytes it read (nil: it found
	// the key absent). Save refuses the delta with ErrConflict unless each
	// is still the stored value. Empty means the request read nothing the
	// check needs. A Store must not keep the slice after Save returns.
	Read []KeyValue
	// ReadAll means the request read the whole session (its list of keys):
	// Save refuses the delta with ErrConflict if any Save was applied after
	// BaseVersion.
	ReadAll bool
	// LastAccess is when the request used the session.
	LastAccess time.Time

	// The fields below are used only when BaseVersion is 0.

	// Route is the route of the node creating the session.
	Route string
	// Created is when the session was created (kept across RenewID).
	Created time.Time
	// IdleTimeout is the session's idle timeout; zero means none.
	IdleTimeout time.Duration
	// Deadline is the session's absolute end; the zero time means never.
	Deadline time.Time
}

// KeyValue is a key with its encoded value; a nil Value means the key is
// absent.
type KeyValue struct {
	Key   string
	Value []byte
}

// SaveResult is what Store.Save reports.
type SaveResult struct {
	// Version is the session's version after the Save.
	Version uint64
	// Conflicts lists the keys of the delta that another Save wrote after
	// the delta's BaseVersion (see Store.Save). Nil when there were none.
	Conflicts []string
}

// Claimer is implemented by stores that can move a session to another node:
// a replicated store, after the session's owner died or while it drains.
//
// When a request presents "<id>.<other route>" the Manager calls Claim to
// make its own node the owner before it responds, then rewrites the cookie to
// "<id>.<own route>" (same id part), so that the balancer sends the session's
// next requests here. With a Store that is not a Claimer, a foreign route is
// an unknown session.
type Claimer interface {
	// Claim makes route the owner of session id and returns the record as
	// it now stands (Record.Route == route), values unchanged; it may
	// increase Version. It returns an error wrapping ErrNotFound when the
	// store has no live session id. It may block like Save (the old owner or
	// the peers must agree) and must return when ctx is done.
	Claim(ctx context.Context, id, route string) (Record, error)
}

// Confirmer is implemented by stores whose node may hold a stale copy
// without knowing it: a replicated store on a node cut off from the
// majority of its cluster. Before answering a request that read its
// session and saved nothing, the Manager calls Confirm; an error (the
// store cannot confirm that the copy read is the session's current state)
// makes the answer an error (503). A request that saved confirms itself:
// its Save fails on a stale node.
type Confirmer interface {
	// Confirm returns nil once the store knows that rec, the session as
	// this Store returned it to the request (Load or Claim), is current:
	// not merely that the session as it stands now is. It may block like
	// Save.
	Confirm(ctx context.Context, rec Record) error
}

// StaleLoader is implemented by stores whose node keeps its own copy of
// sessions, which it can return when it cannot confirm it: a replicated
// store cut off from its majority. With Options.StaleReads the Manager
// serves read-only requests from it, marked stale (Session.Stale).
type StaleLoader interface {
	// LoadStale returns this node's own copy of session id as it last
	// knew it, asking no other node: possibly behind the session's current
	// state. It returns an error wrapping ErrNotFound when the node has no
	// live copy.
	LoadStale(ctx context.Context, id string) (Record, error)
}

// ExpiryNotifier is implemented by stores that remove sessions on their own:
// a janitor expiring idle sessions, a bounded store evicting the least
// recently used one. The Manager registers a function that fires the
// destroyed listeners and the observer.
type ExpiryNotifier interface {
	// NotifyExpiry registers fn, replacing any earlier function. The store
	// calls fn exactly once for every session it removes other than by
	// Delete — with ReasonIdleTimeout, ReasonLifetime or ReasonEvicted and
	// the record as last stored — and only on the node that owns the
	// session. It calls fn outside its locks, possibly from its own
	// goroutine; fn must not block for long.
	NotifyExpiry(fn func(Record, Reason))
}

// Readier is implemented by stores that are not ready at once, such as a
// replicated store still receiving the sessions of its peers. Manager.Ready
// reports it, typically in a /healthz handler, so that a balancer holds new
// traffic back until the node can serve its sessions.
type Readier interface {
	// Ready returns nil when the store can serve, or an error saying why
	// not. It must not block.
	Ready() error
}

// StatsReporter is implemented by stores that can count what they hold,
// for gauges and the manager's "live sessions" column.
type StatsReporter interface {
	// Stats returns the store's current counts. It must not block for long.
	Stats() StoreStats
}

// StoreStats are a store's counts.
type StoreStats struct {
	// Sessions is the number of live sessions held.
	Sessions int
	// Bytes approximates the memory the sessions take.
	Bytes int64
	// MaxSessions and MaxBytes are the store's bounds; 0 means unbounded.
	MaxSessions int
	MaxBytes    int64
}

// Reason says why a session was destroyed.
type Reason uint8

// The reasons a session is destroyed. Append only: metrics label by them.
const (
	// ReasonInvalidated: the application ended it (Invalidate, Logout).
	ReasonInvalidated Reason = iota + 1
	// ReasonIdleTimeout: it was not used for its idle timeout.
	ReasonIdleTimeout
	// ReasonLifetime: it reached its absolute lifetime.
	ReasonLifetime
	// ReasonEvicted: a full store dropped it to make room.
	ReasonEvicted
)

// String returns the reason as a metric label: "invalidated", "idle_timeout",
// "lifetime" or "evicted".
func (r Reason) String() string {
	switch r {
	case ReasonInvalidated:
		return "invalidated"
	case ReasonIdleTimeout:
		return "idle_timeout"
	case ReasonLifetime:
		return "lifetime"
	case ReasonEvicted:
		return "evicted"
	}
	return "unknown"
}

// CheckReads returns an error wrapping ErrConflict when d's reads (Read,
// ReadAll) no longer hold against cur, the record d is about to be applied
// to, as Store.Save specifies; nil when they hold. A Store calls it in the
// same atomic step as the write.
func CheckReads(d Delta, cur Record) error {
	if d.ReadAll && cur.Version != d.BaseVersion {
		return fmt.Errorf("the session is at version %d, the request read all of version %d: %w", cur.Version, d.BaseVersion, ErrConflict)
	}
	for _, r := range d.Read {
		got, ok := cur.Values[r.Key]
		if ok != (r.Value != nil) || !bytes.Equal(got, r.Value) {
			return fmt.Errorf("key %q changed since version %d: %w", r.Key, d.BaseVersion, ErrConflict)
		}
	}
	return nil
}
