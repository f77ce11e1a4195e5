// Package sessiontest checks session.Store implementations against the
// contract of session.Store: run Run from a test of every store.
//
// The suite drives one Store value and expects read-your-writes through it:
// a Load after a Save, Delete or Claim returned sees its effect. That is what
// the Manager needs from the node it runs on. A replicated store passes it by
// running it on one node's Store; its replication to other nodes, visible
// later, is for its own tests. Touch may be lazy towards other nodes but not
// towards the caller. Expiry reports may come from the store's own
// goroutine, as session.ExpiryNotifier allows: the suite waits a few
// seconds for the ones it expects.
//
// CheckLinearizable sends concurrent requests through Managers and checks
// their history for linearizability per session (porcupine); CheckHistory
// checks a history recorded elsewhere — by clients of real processes —
// against the same model.
package sessiontest

import (
	"sync"
	"time"
)

// Clock is a manual clock for tests: time moves only when Advance says so.
// It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
