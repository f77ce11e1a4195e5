// Package group makes several balancer instances act as one: they find
// each other (a static list of peers, host names resolved again at every
// join), talk over memberlist with its keyring (AES-GCM on every packet
// and stream, key derived from a shared secret), share run-time records
// that converge the same way everywhere, and add up what each instance
// sees of live sessions.
//
// Records are last-writer-wins registers: every record carries a Stamp
// (hybrid logical clock time and the name of the instance it was written
// through), and a record replaces another of the same key only when its
// stamp is greater in Stamp.Less's order: wall time (ms), then the logical
// counter, then the instance name. Every instance applies that one order,
// so concurrent writes end with the same winner everywhere; nothing is
// ever split.
//
// A write is sent at once, over memberlist's reliable (TCP) channel, to
// every live instance; a full exchange of state (memberlist's push/pull)
// every SyncInterval repairs what a partition or a frozen process missed.
// An instance that joins takes the group's state during the join itself.
//
// Session counts: each instance publishes, every SyncInterval, a Tally per
// key (member) — its exact count and a HyperLogLog sketch of the keyed
// hashes of the session ids it sees. The group's count of a key is the
// cardinality of the union of the live instances' sketches (a session seen
// by two instances counts once), and never less than any instance's own
// exact count. A union is zero exactly when no instance sees a session.
//
// The package imports nothing from tether.
package group
