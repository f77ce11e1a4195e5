// Package cluster replicates sessions between the nodes of an application,
// all to all, so that any node can take over the sessions of a node that
// died, froze or drains — without the failures of Tomcat's DeltaManager
// (lost acknowledged writes, deltas overtaking their session, split
// sessions after a takeover, stale replicas, stalled joins).
//
// A Node holds a copy of every session. Exactly one node owns a session
// and writes it; its writes are versioned deltas, sent in order to every
// peer over a replication channel of its own (persistent, length-framed,
// versioned TCP connections, optionally authenticated and encrypted with a
// pre-shared key or mutual TLS) that shares one address with the gossip
// (hashicorp/memberlist) that finds members and detects failures.
//
// Writes return when a majority of the cluster has applied them
// (AckMajority, the default with three nodes or more: a node cut off from
// the majority then refuses writes, reads and takeovers), when at least one
// ready peer has (AckOne, the default with two), when all live peers and a
// majority have (AckAll), or at once (AckNone). A request for a session
// owned elsewhere calls Claim, a single-decree Paxos round over the live
// peers (and at least a majority, at the majority levels) that makes this
// node the owner under a new epoch, starting from the newest copy; peers
// then reject the old owner's writes (fencing). A starting node pulls the
// state of its peers and is not Ready until it has.
//
// Typical use by a session store:
//
//	n, err := cluster.New(cluster.Options{Name: "n1", Addr: "127.0.0.1:7001",
//		Peers: []string{"127.0.0.1:7002", "127.0.0.1:7003"}})
//	...
//	<-n.Ready()                                  // or report n.IsReady() on /healthz
//	r, err := n.Find(ctx, id)                    // load: local copy, else the peers'
//	if err == nil && r.Owner != n.Name() {
//		r, err = n.Claim(ctx, id)                // take it over before answering
//	}
//	res, err := n.Update(ctx, cluster.Delta{ID: id, Base: r.Version, Set: changed})
//
// # Parts
//
// Each part owns its state; the others reach it through its methods.
//
//   - Node (node.go, members.go, info.go): membership as gossip reports it
//     (peers, their incarnations and readiness), the links, the requests in
//     flight to peers (queries, state pulls); it implements the small
//     interfaces the other parts use.
//   - store (store.go, record.go): the entries, one per session, each with
//     its record, the acceptor's promise, deltas waiting for their base and
//     the lease bookkeeping; an entry is changed only with its mutex held.
//   - The write path (write.go, waiters.go, find.go, sweep.go): an owner's
//     writes, confirmations, expiry, and the waiters that count
//     acknowledgements.
//   - ownership (ownership.go, claim.go, lease.go): who owns each session —
//     takeovers (the proposer side of a Paxos round per session), promises
//     (the acceptor side), read leases and fencing; it talks to the peers
//     through claimNet and replicates what it adopts through claimWriter.
//   - The replication channel (link.go: outgoing, inbound.go: incoming,
//     handshake.go, wire.go, codec.go, transport.go): ordered, exactly-once
//     delivery of messages to each peer; handlers.go applies what arrives.
//
// # Lock order
//
// A goroutine that holds several of these mutexes took them in this order,
// outermost first, and never the other way round:
//
//  1. peer.streaming: one state transfer to a peer at a time;
//  2. inbound.mu: the frames of one peer, processed one at a time (the
//     handlers run under it);
//  3. entry.mu: one session; never two entries at once;
//  4. ownership.mu: the claims in flight and the promises they wait for;
//  5. Node.mu: peers, links, pending queries and pulls, closing;
//  6. leaves, which take no other mutex: link.mu (but for the log
//     limiter's), waiters.mu, shard.mu (inside store.lock and store.remove
//     only), inbound.ackMu, Node.touchMu, logLimiter.mu.
//
// Observer methods may be called with any of these held, which is why they
// must return quickly and never call back into the Node; OnExpire runs on a
// goroutine of its own with none held.
//
// docs/cluster.md describes the protocol, its guarantees and failure modes.
// The clustertest package runs nodes on an in-memory network with injected
// faults.
package cluster
