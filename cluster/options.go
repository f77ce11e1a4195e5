package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/tetherlb/tether/route"
)

// AckMode says when a write (Create, Update, Delete, Claim) returns.
type AckMode int

const (
	// AckAuto, the zero value: AckMajority when the cluster has 3 nodes or
	// more (Size), where a majority survives the loss of a node; AckOne
	// with 2, where it would not. New resolves it; Info reports the result.
	AckAuto AckMode = iota
	// AckOne (sync): after the write is applied on at least one ready live
	// peer. A write that returned nil survives the death of any single
	// node, but not a network partition (see docs/cluster.md).
	AckOne
	// AckAll (sync): after every ready live peer has applied it, and at
	// least a majority of the cluster's Size nodes; takeovers and reads
	// need a majority, as with AckMajority. The one survivor of a cluster
	// holds every acknowledged write, and serves it once a majority is
	// back.
	AckAll
	// AckNone (async): at once; replication follows within milliseconds.
	// A write can be lost if its owner dies before it reached a peer, or
	// overwritten by a takeover while the owner was unreachable.
	AckNone
	// AckMajority (sync): after a majority of the cluster's Size nodes,
	// this one included, has applied it; and a takeover needs the promise
	// of a majority. A node cut off from the majority can neither
	// acknowledge a write (ErrNoMajority) nor take a session over, so no
	// acknowledged write is lost while a majority of the nodes is alive,
	// whatever the network does.
	AckMajority
)

// ParseAckMode parses "auto", "sync" (or "one"), "majority", "sync-all" (or
// "all") and "async" (or "none").
func ParseAckMode(s string) (AckMode, error) {
	switch strings.ToLower(s) {
	case "auto", "":
		return AckAuto, nil
	case "sync", "one", "sync-one":
		return AckOne, nil
	case "sync-all", "all":
		return AckAll, nil
	case "async", "none":
		return AckNone, nil
	case "majority", "sync-majority":
		return AckMajority, nil
	}
	return 0, fmt.Errorf("cluster: unknown replication mode %q (want auto, majority, sync, sync-all or async)", s)
}

// String returns "auto", "sync", "sync-all", "majority" or "async".
func (m AckMode) String() string {
	switch m {
	case AckAuto:
		return "auto"
	case AckOne:
		return "sync"
	case AckAll:
		return "sync-all"
	case AckNone:
		return "async"
	case AckMajority:
		return "majority"
	}
	return fmt.Sprintf("AckMode(%d)", int(m))
}

// Options configures a Node. The zero value of every field but Name and
// Addr (or Transport) means its default.
type Options struct {
	// Name is the node's name in the cluster, unique, and the route the
	// session layer puts in cookies: 1 to 64 of [A-Za-z0-9._-]. Required.
	Name string
	// Addr is the host:port the node listens on, for gossip (UDP and TCP)
	// and replication (TCP) alike. Required unless Transport is set.
	Addr string
	// AdvertiseAddr is the host:port other nodes reach this one at.
	// Default: Addr; required when Addr's host is 0.0.0.0 or ::.
	AdvertiseAddr string
	// Peers are the addresses of other nodes to join: the static member
	// list, or any one live member. The node's own address is skipped.
	// Nodes not reachable at start are retried every Gossip.RejoinInterval.
	// Empty: this node starts a cluster of its own.
	Peers []string
	// ClusterName keeps clusters sharing a network apart: gossip packets
	// are labelled with it and replication handshakes check it.
	// Default "tether".
	ClusterName string
	// GossipKey encrypts gossip with AES (16, 24 or 32 bytes). nil: gossip
	// in clear. It does not protect the replication channel (see PSK, TLS).
	GossipKey []byte
	// PSK is a pre-shared key (at least 16 bytes) authenticating both ends
	// of every replication connection by challenge–response and encrypting
	// it with AES-GCM. nil: no pre-shared key.
	PSK []byte
	// TLS, when set, wraps replication connections in mutual TLS; it must
	// hold this node's certificate and verify peers' (see TLSConfig).
	// nil: no TLS. It can be combined with PSK.
	TLS *tls.Config
	// Ack is when writes return. Default AckAuto: AckMajority with 3 nodes
	// or more, AckOne with 2.
	Ack AckMode
	// Size is the number of nodes in the cluster, this one included, of
	// which AckMajority needs a majority. Default: this node and the
	// distinct addresses in Peers (the static member list). Set it when
	// Peers names only some of the members.
	Size int
	// AckTimeout bounds how long a sync write waits for acknowledgements
	// before failing with ErrNotAcknowledged. Default 5s.
	AckTimeout time.Duration
	// FailWhenAlone makes sync writes fail with ErrAlone when no ready peer
	// is alive. Default false: a node left alone keeps writing, without a
	// copy (see docs/cluster.md on partitions).
	FailWhenAlone bool
	// ClaimTimeout bounds a takeover when the caller's context has no
	// earlier deadline. Default 5s.
	ClaimTimeout time.Duration
	// Lease is how long, at the majority levels, a peer that acknowledged
	// an owner's write of a session keeps another node from taking the
	// session over (a claimant waits for it when the owner does not answer),
	// so that the owner can answer reads from its copy, without a round trip,
	// for 90 % of it after the write (see docs/cluster.md, "Leases"). It must
	// be shorter than ClaimTimeout. Default 1s (half ClaimTimeout if that is
	// shorter than 2s); negative: no leases (every
	// read that writes nothing is confirmed by a round trip to a majority).
	Lease time.Duration
	// OwnerWait is how long a takeover waits for the answer of a previous
	// owner that gossip still lists as alive (it may be frozen), once every
	// other peer has answered. Default 300ms.
	OwnerWait time.Duration
	// JoinTimeout bounds how long a starting node waits for live peers to
	// answer before it is ready with what it has. Default 10s.
	JoinTimeout time.Duration
	// TouchInterval is how often last-access times are sent to peers, in
	// one batch. Default 500ms.
	TouchInterval time.Duration
	// SweepInterval is how often (on Clock) the owner expires idle
	// sessions and every node drops old tombstones. Default 1s.
	SweepInterval time.Duration
	// TombstoneTTL is how long a deleted session's tombstone is kept after
	// the session would have expired anyway (after the deletion, for
	// sessions that never expire), so that a late copy cannot bring it
	// back. Default 10m.
	TombstoneTTL time.Duration
	// MaxFrame is the largest replication message, and so the largest
	// session, in bytes. Default 4 MiB.
	MaxFrame int
	// MaxOutbox bounds the bytes queued for one peer; beyond it the queue is
	// dropped and the peer re-synchronizes its state. Default 64 MiB.
	MaxOutbox int
	// HandshakeTimeout bounds a replication handshake. Default 5s.
	HandshakeTimeout time.Duration
	// Gossip tunes failure detection. The defaults suit a LAN.
	Gossip GossipOptions
	// Transport carries gossip and replication. Default: a TCPTransport on
	// Addr. Tests use clustertest's in-memory network.
	Transport Transport
	// Clock gives session times and drives expiry. Default: the system clock.
	Clock Clock
	// Logger receives the node's logs. Default: slog.Default().
	Logger *slog.Logger
	// Observer receives metrics events. Default: none.
	Observer Observer
	// OnExpire is called once, on the owner, for each session it expires
	// (found by the sweep or by a read), with the record as it was, after
	// the expiry has been replicated (per Ack). It is not called when
	// another node took the session over meanwhile, nor for Delete. Calls
	// run on the node's goroutines, possibly concurrently for different
	// sessions, and must not block for long. Default: nothing.
	OnExpire func(Record)
}

// GossipOptions tune memberlist's failure detection. Zero fields take the
// defaults, which detect a dead node on a LAN in about 1–2 seconds.
type GossipOptions struct {
	// ProbeInterval is the time between failure-detection probes. Default 400ms.
	ProbeInterval time.Duration
	// ProbeTimeout is how long to wait for a probe's answer. Default 200ms.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspect node has to refute before it
	// is declared dead. Default 2.
	SuspicionMult int
	// GossipInterval is the time between gossip rounds. Default 100ms.
	GossipInterval time.Duration
	// PushPullInterval is the time between full state exchanges. Default 15s.
	PushPullInterval time.Duration
	// TCPTimeout bounds gossip's TCP exchanges. Default 2s.
	TCPTimeout time.Duration
	// RejoinInterval is how often configured peers that are not members
	// are joined again. Default 2s.
	RejoinInterval time.Duration
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	d := Options{
		ClusterName:      "tether",               // one cluster per network unless told otherwise
		AckTimeout:       5 * time.Second,        // well above failure detection
		ClaimTimeout:     5 * time.Second,        // same
		OwnerWait:        300 * time.Millisecond, // a live owner answers in a round trip
		Lease:            time.Second,            // at most one read round trip a second per session; a takeover of a dead owner's session waits at most this
		JoinTimeout:      10 * time.Second,       // peers that never answer do not stall a start
		TouchInterval:    500 * time.Millisecond, // last access at most this stale on replicas
		SweepInterval:    time.Second,            // expiry precision
		TombstoneTTL:     10 * time.Minute,       // outlives any delayed copy
		MaxFrame:         4 << 20,                // 4 MiB sessions are already too big
		MaxOutbox:        64 << 20,               // per peer
		HandshakeTimeout: 5 * time.Second,        // slow peers are not a reason to wedge
		Gossip: GossipOptions{
			ProbeInterval:    400 * time.Millisecond,
			ProbeTimeout:     200 * time.Millisecond,
			SuspicionMult:    2,
			GossipInterval:   100 * time.Millisecond,
			PushPullInterval: 15 * time.Second,
			TCPTimeout:       2 * time.Second,
			RejoinInterval:   2 * time.Second,
		},
		Clock:    systemClock{},
		Logger:   slog.Default(),
		Observer: NopObserver{},
	}
	setDefault(&o.ClusterName, d.ClusterName)
	setDefault(&o.AckTimeout, d.AckTimeout)
	setDefault(&o.ClaimTimeout, d.ClaimTimeout)
	setDefault(&o.OwnerWait, d.OwnerWait)
	setDefault(&o.Lease, min(d.Lease, o.ClaimTimeout/2)) // a claim must outlast the lease it waits for
	setDefault(&o.JoinTimeout, d.JoinTimeout)
	setDefault(&o.TouchInterval, d.TouchInterval)
	setDefault(&o.SweepInterval, d.SweepInterval)
	setDefault(&o.TombstoneTTL, d.TombstoneTTL)
	setDefault(&o.MaxFrame, d.MaxFrame)
	setDefault(&o.MaxOutbox, d.MaxOutbox)
	setDefault(&o.HandshakeTimeout, d.HandshakeTimeout)
	g := &o.Gossip
	setDefault(&g.ProbeInterval, d.Gossip.ProbeInterval)
	setDefault(&g.ProbeTimeout, d.Gossip.ProbeTimeout)
	setDefault(&g.SuspicionMult, d.Gossip.SuspicionMult)
	setDefault(&g.GossipInterval, d.Gossip.GossipInterval)
	setDefault(&g.PushPullInterval, d.Gossip.PushPullInterval)
	setDefault(&g.TCPTimeout, d.Gossip.TCPTimeout)
	setDefault(&g.RejoinInterval, d.Gossip.RejoinInterval)
	if o.Clock == nil {
		o.Clock = d.Clock
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.Observer == nil {
		o.Observer = d.Observer
	}
	return o
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Validate reports the first problem with o, without side effects.
func (o Options) Validate() error {
	switch {
	case !route.Valid(o.Name):
		return fmt.Errorf("cluster: node name %q: want 1 to %d of A-Z a-z 0-9 . _ -", o.Name, route.MaxLen)
	case o.Addr == "" && o.Transport == nil:
		return errors.New("cluster: Addr or Transport is required")
	case len(o.ClusterName) > maxNameLen:
		return fmt.Errorf("cluster: cluster name longer than %d bytes", maxNameLen)
	case o.GossipKey != nil && len(o.GossipKey) != 16 && len(o.GossipKey) != 24 && len(o.GossipKey) != 32:
		return fmt.Errorf("cluster: gossip key of %d bytes, want 16, 24 or 32", len(o.GossipKey))
	case o.PSK != nil && len(o.PSK) < 16:
		return fmt.Errorf("cluster: pre-shared key of %d bytes, want at least 16", len(o.PSK))
	case o.Ack < AckAuto || o.Ack > AckMajority:
		return fmt.Errorf("cluster: unknown ack mode %d", int(o.Ack))
	case o.MaxFrame < 0 || (o.MaxFrame > 0 && o.MaxFrame < 64<<10):
		return fmt.Errorf("cluster: MaxFrame %d, want at least 64 KiB", o.MaxFrame)
	}
	for _, d := range []time.Duration{o.AckTimeout, o.ClaimTimeout, o.OwnerWait, o.JoinTimeout,
		o.TouchInterval, o.SweepInterval, o.TombstoneTTL, o.HandshakeTimeout} {
		if d < 0 {
			return fmt.Errorf("cluster: negative duration %v", d)
		}
	}
	if d := o.withDefaults(); d.Lease > 0 && (d.Lease >= d.ClaimTimeout || d.Lease > maxLease) {
		return fmt.Errorf("cluster: Lease %v, want less than ClaimTimeout (%v) and at most %v", d.Lease, d.ClaimTimeout, maxLease)
	}
	if o.Size < 0 {
		return fmt.Errorf("cluster: Size %d, want the number of nodes (0: from Peers)", o.Size)
	}
	for _, p := range o.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return fmt.Errorf("cluster: peer %q: %w", p, err)
		}
	}
	if o.Addr != "" {
		if _, _, err := net.SplitHostPort(o.Addr); err != nil {
			return fmt.Errorf("cluster: address %q: %w", o.Addr, err)
		}
	}
	return nil
}

// maxLease bounds Options.Lease, and the lease a promise may carry.
const maxLease = time.Minute

// quorum is how many nodes, this one included, make a majority of Size.
func (o Options) quorum() int { return o.Size/2 + 1 }

// byMajority reports whether the level decides by majority: AckMajority,
// and AckAll, which waits for every live peer but never for fewer than a
// majority, so that its writes, takeovers and reads are as safe under a
// partition.
func (o Options) byMajority() bool { return o.Ack == AckMajority || o.Ack == AckAll }

// Clock tells the time. Session times and expiry use it, so tests can move
// time forward; network timeouts use real time.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker firing every d.
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of *time.Ticker that Clock needs.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) NewTicker(d time.Duration) Ticker {
	return sysTicker{time.NewTicker(d)}
}

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) C() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()               { t.t.Stop() }
