package cluster

import (
	"errors"
	"fmt"
	"maps"
	"time"
)

// Record is a node's copy of one replicated session.
//
// Owner and Epoch together are the ownership ballot: every takeover raises
// Epoch, and a write carrying an older (Epoch, Owner) than a replica has
// promised is rejected (fenced). Version counts the writes of the session;
// a record orders after another when its (Epoch, Owner, Version) is greater.
//
// The byte slices in Values are shared with the node and must not be
// modified.
type Record struct {
	// ID is the session id, opaque to the cluster.
	ID string
	// Owner is the name of the node that owns the session: the only node
	// that writes it, and the route the session layer puts in the cookie.
	Owner string
	// Epoch is the ownership epoch, raised by every takeover.
	Epoch uint64
	// Version is the number of writes the session has had (1 after Create).
	Version uint64
	// Values are the session's encoded attributes.
	Values map[string][]byte
	// Created is when the session was created, on the owner's clock.
	Created time.Time
	// LastAccess is the last request time the owner reported.
	LastAccess time.Time
	// IdleTimeout expires the session this long after LastAccess; 0 means
	// never.
	IdleTimeout time.Duration
	// Deadline expires the session at this absolute time; zero means never.
	Deadline time.Time
}

// NewSession describes a session to create.
type NewSession struct {
	// ID is the session id; it must be unique (the session layer draws it
	// from >= 128 random bits) and at most 512 bytes.
	ID string
	// Values are the initial attributes; the node keeps the slices.
	Values map[string][]byte
	// IdleTimeout: see Record.IdleTimeout; 0 means never.
	IdleTimeout time.Duration
	// Deadline: see Record.Deadline; zero means never.
	Deadline time.Time
	// Created is the creation time to record (a renewed id keeps its
	// session's). Zero: now, on the node's clock.
	Created time.Time
	// LastAccess is the request's time. Zero: now, on the node's clock.
	LastAccess time.Time
}

// Delta is one request's write to a session it owns.
type Delta struct {
	// ID names the session.
	ID string
	// Base is the Version the request loaded. Keys another request changed
	// after Base and that this delta also writes are conflicts (see Result).
	Base uint64
	// Set maps keys to their new encoded values; the node keeps the slices.
	Set map[string][]byte
	// Remove lists keys to delete.
	Remove []string
	// Expect holds the values the write depends on, by key (a nil slice:
	// the key must be absent): the write fails with ErrConflict, changing
	// nothing, unless each is still the session's value when the owner
	// applies it. Nil means no condition.
	Expect map[string][]byte
	// ExpectBase makes the write fail with ErrConflict when the session
	// is no longer at version Base (any write came in between).
	ExpectBase bool
	// IdleTimeout, when non-zero, replaces the session's idle timeout.
	IdleTimeout time.Duration
	// Deadline, when non-zero, replaces the session's absolute deadline.
	Deadline time.Time
	// LastAccess is the request's time; the session's LastAccess becomes
	// the later of it and its current value. Zero: now, on the node's clock.
	LastAccess time.Time
}

// Result is the outcome of an applied Delta.
type Result struct {
	// Record is the session after the write.
	Record Record
	// Conflicts lists the keys of the delta that a write newer than
	// Delta.Base had also changed. The merge is key-wise: keys the delta
	// does not mention keep their newest values, so concurrent requests
	// writing different keys both survive; for a key both wrote, the write
	// applied last (this one) wins, deterministically, on the owner.
	Conflicts []string
}

// Expected outcomes, to be tested with errors.Is.
var (
	// ErrNotFound: no such session, or it was deleted or expired.
	ErrNotFound = errors.New("cluster: session not found")
	// ErrExists: Create with the id of an existing (or deleted) session.
	ErrExists = errors.New("cluster: session already exists")
	// ErrNotOwner: a write on a node that does not own the session. The
	// error is a *NotOwnerError naming the owner.
	ErrNotOwner = errors.New("cluster: not the owner of the session")
	// ErrFenced: another node has taken the session over (a newer
	// ownership epoch exists); this node's write was rejected and must be
	// reported as failed.
	ErrFenced = errors.New("cluster: fenced by a newer ownership epoch")
	// ErrNotAcknowledged: in a sync mode, the peers the write was sent to
	// did not acknowledge it in time (or left). The write is applied on
	// this node and may have reached peers: it is not known to be durable.
	ErrNotAcknowledged = errors.New("cluster: write not acknowledged by peers")
	// ErrNoMajority: with AckMajority, fewer than a majority of the
	// cluster's nodes are reachable and ready: the write or takeover was
	// refused (nothing was written), or it was sent but a majority did not
	// acknowledge it in time. The session layer answers 503.
	ErrNoMajority = errors.New("cluster: no majority of the nodes reachable")
	// ErrAlone: Options.FailWhenAlone is set and no ready peer is alive.
	ErrAlone = errors.New("cluster: no ready peer to replicate to")
	// ErrBadBase: Delta.Base is newer than the session's version (a
	// version this node never handed out).
	ErrBadBase = errors.New("cluster: delta base newer than the session")
	// ErrConflict: a write's condition (Delta.Expect, Delta.ExpectBase)
	// did not hold; nothing was written.
	ErrConflict = errors.New("cluster: the session changed; condition not met")
	// ErrTooLarge: the session would not fit in one frame (Options.MaxFrame).
	ErrTooLarge = errors.New("cluster: session too large")
	// ErrClosed: the node is closed.
	ErrClosed = errors.New("cluster: node closed")
)

// NotOwnerError is returned, wrapping ErrNotOwner, by writes on a node that
// does not own the session.
type NotOwnerError struct {
	ID    string
	Owner string // the owner this node knows of
	Epoch uint64
}

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("cluster: session %.8s… is owned by %q (epoch %d)", e.ID, e.Owner, e.Epoch)
}

// Unwrap makes errors.Is(err, ErrNotOwner) true.
func (e *NotOwnerError) Unwrap() error { return ErrNotOwner }

// ballot is an ownership epoch: (n, node), ordered by n then node. Only
// node writes under it, so it names the owner too.
type ballot struct {
	n    uint64
	node string
}

func (a ballot) cmp(b ballot) int {
	switch {
	case a.n < b.n:
		return -1
	case a.n > b.n:
		return 1
	case a.node < b.node:
		return -1
	case a.node > b.node:
		return 1
	}
	return 0
}

func (a ballot) String() string { return fmt.Sprintf("%d/%s", a.n, a.node) }

// record is the stored form of a session. Times are Unix nanoseconds so
// that they survive the wire unchanged.
type record struct {
	id        string
	bal       ballot // owner and epoch
	version   uint64
	promised  ballot // highest ballot this acceptor promised (>= bal)
	deleted   bool   // a tombstone: deleted or expired
	created   int64
	access    int64
	idle      int64
	deadline  int64
	deletedAt int64
	vals      map[string][]byte
	kver      map[string]uint64 // version of the last write of each key, removals included
	size      int               // approximate encoded size
}

// cmpVersion orders records by (ballot, version).
func (r *record) cmpVersion(bal ballot, version uint64) int {
	if c := r.bal.cmp(bal); c != 0 {
		return c
	}
	switch {
	case r.version < version:
		return -1
	case r.version > version:
		return 1
	}
	return 0
}

// clone copies r; value slices are shared (they are never modified).
func (r *record) clone() *record {
	c := *r
	c.vals = maps.Clone(r.vals)
	c.kver = maps.Clone(r.kver)
	if c.vals == nil {
		c.vals = map[string][]byte{}
	}
	if c.kver == nil {
		c.kver = map[string]uint64{}
	}
	return &c
}

func (r *record) computeSize() int {
	n := 64 + len(r.id) + len(r.bal.node) + len(r.promised.node)
	for k := range r.kver {
		n += len(k) + 12 + len(r.vals[k])
	}
	return n
}

// public returns the Record view of r.
func (r *record) public() Record {
	return Record{
		ID: r.id, Owner: r.bal.node, Epoch: r.bal.n, Version: r.version,
		Values:      maps.Clone(r.vals),
		Created:     fromNanos(r.created),
		LastAccess:  fromNanos(r.access),
		IdleTimeout: time.Duration(r.idle),
		Deadline:    fromNanos(r.deadline),
	}
}

// expiresAt is ExpiresAt in nanoseconds; 0 means never.
func (r *record) expiresAt() int64 {
	var t int64
	if r.idle > 0 {
		t = r.access + r.idle
	}
	if r.deadline != 0 && (t == 0 || r.deadline < t) {
		t = r.deadline
	}
	return t
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
