package session

import "time"

// Observer receives the Manager's events, for metrics: package metrics
// implements it with Prometheus counters. Methods are called synchronously,
// on request goroutines or a store's janitor goroutine, possibly from many at
// once: they must be safe for concurrent use and fast (increment a counter).
//
// Embed NopObserver in an implementation so that it keeps compiling when
// methods are added.
type Observer interface {
	// SessionCreated: a new session was stored.
	SessionCreated()
	// SessionDestroyed: a session ended, exactly once per session on the
	// owning node.
	SessionDestroyed(Reason)
	// SessionClaimed: a session owned by another route was taken over.
	SessionClaimed()
	// StaleRead: a read-only request was served the node's last known copy
	// of its session, which the store could not confirm (StaleReads).
	StaleRead()
	// IDRejected: a request presented a session id that could not be used.
	IDRejected(Rejection)
	// Conflict: a commit wrote keys that a concurrent request on the same
	// session had also written without reading them; keys is how many (the
	// later write won). A commit refused because what it read had changed
	// is a StoreError with ErrConflict.
	Conflict(keys int)
	// LockWaited: an Exclusive request waited wait for its session's lock
	// (zero when nobody held it); err is ErrBusy or the client's
	// cancellation when it gave up.
	LockWaited(wait time.Duration, err error)
	// StoreError: a store operation failed for a reason other than the
	// session being absent.
	StoreError(op Op, err error)
}

// Rejection says why a presented session id was not used.
type Rejection uint8

// The rejections. Append only: metrics label by them.
const (
	// RejectMalformed: not "<id><sep><route>" with a well-formed id part.
	RejectMalformed Rejection = iota + 1
	// RejectUnknown: the store has no such session (never existed, expired,
	// invalidated, or lost with a node that did not replicate it).
	RejectUnknown
	// RejectExpired: the store returned it, but it had expired by the
	// Manager's clock.
	RejectExpired
	// RejectForeign: another node's route, and the store cannot claim it.
	RejectForeign
)

// String returns the rejection as a metric label.
func (r Rejection) String() string {
	switch r {
	case RejectMalformed:
		return "malformed"
	case RejectUnknown:
		return "unknown"
	case RejectExpired:
		return "expired"
	case RejectForeign:
		return "foreign"
	}
	return "unknown_rejection"
}

// Op names a store operation in Observer.StoreError.
type Op string

// The store operations.
const (
	OpLoad   Op = "load"
	OpSave   Op = "save"
	OpDelete Op = "delete"
	OpTouch  Op = "touch"
	OpClaim  Op = "claim"
)

// NopObserver is an Observer that does nothing, to embed.
type NopObserver struct{}

// SessionCreated does nothing.
func (NopObserver) SessionCreated() {}

// SessionDestroyed does nothing.
func (NopObserver) SessionDestroyed(Reason) {}

// SessionClaimed does nothing.
func (NopObserver) SessionClaimed() {}

// StaleRead implements Observer.
func (NopObserver) StaleRead() {}

// IDRejected does nothing.
func (NopObserver) IDRejected(Rejection) {}

// Conflict does nothing.
func (NopObserver) Conflict(int) {}

// LockWaited does nothing.
func (NopObserver) LockWaited(time.Duration, error) {}

// StoreError does nothing.
func (NopObserver) StoreError(Op, error) {}
