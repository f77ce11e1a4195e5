// Package redisstore is a session.Store in Redis or Valkey: a standalone
// server, a primary with replicas watched by Sentinel, or a Redis Cluster,
// through github.com/redis/go-redis/v9. Every node of an application
// reaches every session, so any node can serve any request: when a node
// dies, the balancer sends its sessions elsewhere and nothing is lost.
//
// Each session is one hash (see scripts.go for its fields), and each
// change is one Lua script that checks what the request read and applies
// the request's changes key by key, atomically: read-modify-writes from
// parallel requests on different nodes are applied one after another or
// refused with session.ErrConflict, never silently overwritten, and
// requests writing different keys never conflict. Expiry is by the key's
// TTL, set by the scripts from the session's idle timeout and deadline
// (no keyspace notifications, no CONFIG: managed Redis services allow
// neither). Besides session.Store the Store implements session.Claimer and
// session.Locker.
//
// Use:
//
//	c, o, err := redisstore.ParseURL("redis://127.0.0.1:6379/0")
//	st, err := redisstore.New(c, o)
//	m, err := session.New(session.Options{Store: st, Route: "n1"})
//
// Durability: a write is acknowledged once the primary has it. Redis
// replicates asynchronously, so a primary that dies may take its last
// writes with it; set Options.Replicas to wait for replicas (WAIT) before
// a write is acknowledged. See docs/sessions.md.
package redisstore
