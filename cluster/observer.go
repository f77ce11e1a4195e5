package cluster

import "time"

// Observer receives the events a metrics collector counts. Every method is
// called synchronously on the node's goroutines, possibly concurrently, and
// must return quickly without calling back into the Node.
//
// Embed NopObserver to implement only some methods and stay compatible when
// methods are added.
type Observer interface {
	// MessageSent reports a replication message written to peer.
	MessageSent(peer string, t MessageType, bytes int)
	// MessageReceived reports a replication message read from peer.
	MessageReceived(peer string, t MessageType, bytes int)
	// Acked reports the time from sending a message to peer until peer
	// acknowledged it (the replication lag of that peer).
	Acked(peer string, latency time.Duration)
	// WriteDone reports an owner's write (Create, Update, Delete, expiry)
	// and the time it took including the wait for acknowledgements.
	WriteDone(mode AckMode, latency time.Duration, err error)
	// Claimed reports a takeover attempt: err nil means this node owns id.
	Claimed(id string, attempts int, latency time.Duration, err error)
	// Fenced reports a write rejected because a newer ownership epoch
	// exists: local when this node's own write failed, else a peer's write
	// refused by this replica.
	Fenced(id string, local bool)
	// ConnFailed reports a replication connection that failed or was closed
	// for bad input (peer is "" when it was not identified).
	ConnFailed(peer string, err error)
	// AuthFailed reports a replication connection refused by authentication
	// or cluster name, from remote (an address).
	AuthFailed(remote string, err error)
	// MemberChanged reports a member's new state or readiness.
	MemberChanged(m Member)
	// Expired reports a session this node expired as its owner.
	Expired(id string)
	// Transferred reports part of a state transfer (a node pulling a
	// peer's full state when it starts): sessions records of bytes
	// (encoded) sent to peer when sent, else received from peer.
	Transferred(peer string, sent bool, sessions, bytes int)
}

// NopObserver implements Observer by doing nothing.
type NopObserver struct{}

// MessageSent implements Observer.
func (NopObserver) MessageSent(string, MessageType, int) {}

// MessageReceived implements Observer.
func (NopObserver) MessageReceived(string, MessageType, int) {}

// Acked implements Observer.
func (NopObserver) Acked(string, time.Duration) {}

// WriteDone implements Observer.
func (NopObserver) WriteDone(AckMode, time.Duration, error) {}

// Claimed implements Observer.
func (NopObserver) Claimed(string, int, time.Duration, error) {}

// Fenced implements Observer.
func (NopObserver) Fenced(string, bool) {}

// ConnFailed implements Observer.
func (NopObserver) ConnFailed(string, error) {}

// AuthFailed implements Observer.
func (NopObserver) AuthFailed(string, error) {}

// MemberChanged implements Observer.
func (NopObserver) MemberChanged(Member) {}

// Expired implements Observer.
func (NopObserver) Expired(string) {}

// Transferred implements Observer.
func (NopObserver) Transferred(string, bool, int, int) {}

// MemberState is a member's liveness as this node sees it.
type MemberState int

const (
	// MemberAlive: gossip lists it and its replication channel answers.
	MemberAlive MemberState = iota
	// MemberSuspect: gossip still lists it, but its replication channel is
	// down or has not acknowledged for a while.
	MemberSuspect
	// MemberDead: gossip declared it dead.
	MemberDead
	// MemberLeft: it left the cluster on purpose (Close).
	MemberLeft
)

// String returns "alive", "suspect", "dead" or "left".
func (s MemberState) String() string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberSuspect:
		return "suspect"
	case MemberDead:
		return "dead"
	case MemberLeft:
		return "left"
	}
	return "unknown"
}

// MarshalText makes states readable in JSON.
func (s MemberState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Member is a node of the cluster as this node sees it.
type Member struct {
	// Name is the node's name (its route).
	Name string `json:"name"`
	// Addr is its gossip and replication address.
	Addr string `json:"addr"`
	// State is its liveness.
	State MemberState `json:"state"`
	// Ready is false while it is still receiving the cluster's state.
	Ready bool `json:"ready"`
	// Self marks this node.
	Self bool `json:"self,omitempty"`
}
