// Package session is a session library for Go backends behind a sticky
// load balancer: Tether, Apache httpd's mod_proxy_balancer or mod_jk, HAProxy.
//
// A session id is "<id>.<route>" (package route): at least 128 random bits,
// URL-safe, then the separator and the route of the node that owns the
// session, as Tomcat's jvmRoute. A balancer routes on the suffix; the
// Manager never trusts an id it cannot use — malformed, unknown, expired,
// or another node's that its Store cannot take over — and expires such a
// cookie, so that the browser's next request is balanced anew.
//
// Use:
//
//	m, err := session.New(session.Options{Store: store, Route: "n1"})
//	http.ListenAndServe(addr, m.Handler(mux))
//
//	// in a handler
//	s := session.From(r)
//	cart, err := session.Get[*Cart](s, "cart") // nil, nil: no cart yet
//	err = s.Put("cart", &Cart{Items: []string{"apple"}})
//	m.Logout(w, r, "/")
//
// The lifecycle is "well-behaved" in the sense the httpd and Tomcat write-ups
// use the word:
//   - nothing is created until something is stored: reading a session that
//     does not exist creates none;
//   - Invalidate and Logout expire the cookie with the Name, Path and Domain
//     it was set with, and create no new session in that response unless the
//     handler stores something afterwards;
//   - a request presenting an unusable id gets that cookie expired;
//   - RenewID (on login) changes the id part, keeps the data and the route;
//   - idle timeout and absolute lifetime are enforced by the server.
//
// Values are encoded at Put by a deterministic Codec (JSON by default), so a
// value that cannot be stored fails there, not at replication time. Values a
// request read or stored and then changed in place are found at commit by
// re-encoding and saved like a Put. The Manager commits before the first
// byte of the response; a commit that fails replaces the response with an
// error (503 when the store is full or failing).
//
// A 2xx answer means the write is there. Concurrent requests on one session
// (tabs, AJAX, double clicks) run one after another on a node, from their
// first access to their commit (Options.LockWait, Options.LockHold bound the
// wait and the hold; ReadOnly and Optimistic handlers skip it; Update is an
// atomic read-modify-write). Each commit saves only the keys the request
// changed, as a delta on the version it loaded, with what it read: the
// Store applies it only if those reads still hold (ErrConflict, 409), so a
// read-modify-write never overwrites a write it did not see, on any node.
// A change that could not be saved makes the answer an error, whatever the
// handler writes.
//
// A Store keeps the records: session/memstore in process, a replicated store
// for sessions that survive a node. Optional capabilities — Claimer
// (takeover after failover), ExpiryNotifier, Readier, StatsReporter — are
// found by type assertion. session/sessiontest checks any Store against the
// contract.
package session
