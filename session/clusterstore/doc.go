// Package clusterstore is a session.Store over a replication cluster
// (package cluster): every node of an application holds every session, so
// that when a node dies, freezes or drains another one serves its sessions
// under the same id. It is the one place where sessions meet the cluster.
//
// The store runs the cluster node itself (New takes the node's Options),
// so that it can turn the node's expiries into session expiry reports.
// Besides session.Store it implements the optional capabilities the
// Manager looks for:
//
//   - session.Claimer: a request presenting "<id>.<other route>" makes this
//     node the session's owner (a takeover, cluster.Node.Claim) before it
//     answers; the Manager rewrites the cookie to "<id>.<own route>".
//   - session.ExpiryNotifier: expiries decided by the owner, reported once.
//   - session.Readier: not ready while the node receives its peers' state,
//     so that /healthz answers 503.
//   - session.StatsReporter: the sessions this node holds a copy of.
//
// Use:
//
//	st, err := clusterstore.New(clusterstore.Options{Cluster: cluster.Options{
//		Name: "n1", Addr: "127.0.0.1:7001", Peers: []string{"127.0.0.1:7002", "127.0.0.1:7003"}}})
//	m, err := session.New(session.Options{Store: st, Route: "n1"}) // Route = Cluster.Name
//	...
//	st.Handover(ctx) // on shutdown, once no request runs: flush, then leave
//
// Errors: the cluster's expected outcomes map onto the session package's
// sentinels (ErrNotFound, ErrExists, ErrBadDelta, ErrStoreFull); every
// other failure (a write not acknowledged by a peer in sync mode, a
// session another node has taken over, a takeover that timed out) is a
// store error, which the Manager answers with 503: a write a client saw
// succeed was replicated as the mode promises, and one that was not is
// never reported as a success.
package clusterstore
