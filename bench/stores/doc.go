// Package stores compares the session stores side by side on this
// machine: memstore, clusterstore (three nodes over loopback TCP, sync and
// async), redisstore (a standalone redis-server, with and without WAIT
// for one replica, and a Redis Cluster of three primaries with a replica
// each) and memcachestore (one memcached). It has only a benchmark:
//
//	go test ./bench/stores -run '^$' -bench . -benchtime 20000x
//
// Each case has 16 goroutines, each on its own session, do what a request
// adding to a cart does: Load, then Save a delta that sets one 200-byte
// value on the condition that the value read is still there. It reports
// writes per second, the p50 and p99 of one Load+Save, and the heap the
// node's process holds per session (after a GC, with 2,000 sessions of
// 200 bytes; for clusterstore, per node: every node holds every session).
// The servers are the Debian packages, started on loopback by the
// benchmark (internal/dbproc); a missing one skips its cases.
package stores
