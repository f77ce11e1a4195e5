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
// docs/cluster.md describes the protocol, its guarantees and failure modes.
// The clustertest package runs nodes on an in-memory network with injected
// faults.
package cluster
