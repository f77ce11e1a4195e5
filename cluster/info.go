package cluster

import (
	"slices"
	"strings"
	"time"
)

// suspectAfter is how long unacknowledged messages may wait before a peer
// that gossip lists as alive is shown as suspect.
const suspectAfter = time.Second

// Info is a snapshot of the node and of its view of the cluster, for
// GET /cluster and for operators. It marshals to JSON as is.
type Info struct {
	// Node is this node's name.
	Node string `json:"node"`
	// Addr is its gossip and replication address.
	Addr string `json:"addr"`
	// Ready is false while it is still receiving the cluster's state.
	Ready bool `json:"ready"`
	// Mode is the acknowledgement mode of its writes.
	Mode string `json:"mode"`
	// Size is the number of nodes in the cluster (Options.Size) and
	// Quorum how many of them make a majority.
	Size   int `json:"size"`
	Quorum int `json:"quorum"`
	// Majority reports whether this node and the ready peers it reaches
	// make a majority: with the majority level, it refuses writes,
	// takeovers and reads while they do not.
	Majority bool `json:"majority"`
	// NoMajority counts the writes, reads and takeovers refused for want of
	// a majority (ErrNoMajority) since the node started.
	NoMajority uint64 `json:"no_majority"`
	// LeaseMillis is the read lease (Options.Lease; 0: no leases, as at the
	// levels that do not decide by majority).
	LeaseMillis float64 `json:"lease_ms"`
	// Leased counts the sessions it owns and holds a lease on now (reads
	// answered from its copy), and Granted those on which it granted
	// another owner a lease that still runs.
	Leased  int `json:"leased"`
	Granted int `json:"granted"`
	// LeaseReads counts the reads confirmed under a lease since the node
	// started, ConfirmedReads those confirmed by a round trip to a
	// majority, and LeaseWaits the takeovers that waited for a lease to end.
	LeaseReads     uint64 `json:"lease_reads"`
	ConfirmedReads uint64 `json:"confirmed_reads"`
	LeaseWaits     uint64 `json:"lease_waits"`
	// Sessions counts the live sessions it holds a copy of.
	Sessions int `json:"sessions"`
	// Owned counts the live sessions it owns.
	Owned int `json:"owned"`
	// Bytes approximates the memory the live sessions take.
	Bytes int64 `json:"bytes"`
	// Tombstones counts deleted sessions still remembered.
	Tombstones int `json:"tombstones"`
	// Pending counts sessions with deltas waiting for their base version.
	Pending int `json:"pending"`
	// Members lists every node this one knows, itself included, by name.
	Members []MemberInfo `json:"members"`
}

// MemberInfo is one member in Info.
type MemberInfo struct {
	Member
	// Owned counts the sessions this node's copy says the member owns.
	Owned int `json:"owned"`
	// Connected reports whether the replication connection to it is up.
	Connected bool `json:"connected"`
	// Unacked counts messages sent or queued to it and not acknowledged.
	Unacked int `json:"unacked"`
	// UnackedBytes is their size.
	UnackedBytes int `json:"unacked_bytes"`
	// LagMillis is the age of the oldest unacknowledged message.
	LagMillis float64 `json:"lag_ms"`
	// LastAckMillis is the send-to-acknowledgement time of the last
	// acknowledged message.
	LastAckMillis float64 `json:"last_ack_ms"`
	// LastAck is when it last acknowledged anything.
	LastAck time.Time `json:"last_ack,omitzero"`
	// Refused says why its last replication handshake was refused (wrong
	// key, certificate or cluster name); such a member is left out of
	// takeovers and acknowledgements. Empty when it was not.
	Refused string `json:"refused,omitempty"`
}

// Info returns a snapshot of the node. It walks every session: call it for
// monitoring, not per request.
func (n *Node) Info() Info {
	q := n.Quorum()
	info := Info{Node: n.name, Addr: n.Addr(), Ready: n.IsReady(), Mode: n.opts.Ack.String(),
		Size: q.Size, Quorum: q.Needed, Majority: q.Majority, NoMajority: q.Refused,
		LeaseMillis: float64(n.own.leases.d) / float64(time.Millisecond), LeaseReads: q.LeaseReads,
		ConfirmedReads: q.ConfirmedReads, LeaseWaits: q.LeaseWaits}
	now := n.own.leases.now()
	owned := map[string]int{}
	for _, id := range n.store.ids() {
		e := n.store.lock(id, false, 0)
		if e == nil {
			continue
		}
		if len(e.pending) > 0 {
			info.Pending++
		}
		switch r := e.rec; {
		case r == nil:
		case r.deleted:
			info.Tombstones++
		default:
			info.Sessions++
			info.Bytes += int64(r.size)
			owned[r.bal.node]++
			if e.owned(n.name) {
				info.Owned++
				if n.own.leases.held(e, n.name) {
					info.Leased++
				}
			}
			if n.own.leases.d != 0 && e.grantTo != "" && e.grantTo != n.name && now < e.grantUntil {
				info.Granted++
			}
		}
		e.mu.Unlock()
	}
	info.Members = n.memberInfos()
	for i := range info.Members {
		info.Members[i].Owned = owned[info.Members[i].Name]
	}
	return info
}

// Members returns the nodes this node knows, itself included, sorted by
// name, with their liveness and readiness. It is cheap.
func (n *Node) Members() []Member {
	infos := n.memberInfos()
	out := make([]Member, len(infos))
	for i, m := range infos {
		out[i] = m.Member
	}
	return out
}

// memberInfos returns the members with their link statistics.
func (n *Node) memberInfos() []MemberInfo {
	out := []MemberInfo{{Member: Member{Name: n.name, Addr: n.Addr(), State: MemberAlive, Ready: n.IsReady(), Self: true}}}
	n.mu.Lock()
	mems := make([]Member, 0, len(n.peers))
	links := make([]*link, 0, len(n.peers))
	refused := make([]string, 0, len(n.peers))
	for _, p := range n.peers {
		mems, links, refused = append(mems, p.view()), append(links, p.out), append(refused, p.refused)
	}
	n.mu.Unlock()
	for i, m := range mems {
		mi := MemberInfo{Member: m, Refused: refused[i]}
		if l := links[i]; l != nil {
			s := l.stats()
			mi.Connected, mi.Unacked, mi.UnackedBytes, mi.LastAck = s.connected, s.unacked, s.bytes, s.lastAck
			mi.LagMillis = float64(s.oldest) / float64(time.Millisecond)
			mi.LastAckMillis = float64(s.ackLag) / float64(time.Millisecond)
			if m.State == MemberAlive && (!s.connected || s.oldest > suspectAfter || mi.Refused != "") {
				mi.State = MemberSuspect
			}
		}
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b MemberInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Quorum is a node's view of the cluster's majority, cheap enough to read
// at every metrics scrape (Info walks every session).
type Quorum struct {
	// Size is the number of nodes (Options.Size), Needed how many make a
	// majority.
	Size, Needed int
	// Majority reports whether this node and the ready peers it reaches
	// make one.
	Majority bool
	// Refused counts operations refused with ErrNoMajority.
	Refused uint64
	// LeaseReads, ConfirmedReads and LeaseWaits are Info's counters of
	// the same names (see Options.Lease).
	LeaseReads, ConfirmedReads, LeaseWaits uint64
}

// Quorum returns the node's view of the majority.
func (n *Node) Quorum() Quorum {
	return Quorum{Size: n.opts.Size, Needed: n.opts.quorum(), Majority: len(n.ackTargets())+1 >= n.opts.quorum(),
		Refused: n.noMajority.Load(), LeaseReads: n.own.leases.local.Load(), ConfirmedReads: n.own.leases.trips.Load(),
		LeaseWaits: n.own.leases.waited.Load()}
}
