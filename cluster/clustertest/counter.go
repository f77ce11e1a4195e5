package clustertest

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/cluster"
)

// Counter is a cluster.Observer that counts events, for tests to check
// what happened (that a fault was exercised, a write fenced...).
type Counter struct {
	cluster.NopObserver
	Sent, Received, Acks, Writes, WriteErrors atomic.Int64
	Claims, ClaimErrors, ClaimRounds          atomic.Int64
	FencedLocal, FencedRemote                 atomic.Int64
	ConnFailures, AuthFailures                atomic.Int64

	mu      sync.Mutex
	expired []string
}

// MessageSent implements cluster.Observer.
func (c *Counter) MessageSent(string, cluster.MessageType, int) { c.Sent.Add(1) }

// MessageReceived implements cluster.Observer.
func (c *Counter) MessageReceived(string, cluster.MessageType, int) { c.Received.Add(1) }

// Acked implements cluster.Observer.
func (c *Counter) Acked(string, time.Duration) { c.Acks.Add(1) }

// WriteDone implements cluster.Observer.
func (c *Counter) WriteDone(_ cluster.AckMode, _ time.Duration, err error) {
	c.Writes.Add(1)
	if err != nil {
		c.WriteErrors.Add(1)
	}
}

// Claimed implements cluster.Observer.
func (c *Counter) Claimed(_ string, rounds int, _ time.Duration, err error) {
	c.Claims.Add(1)
	c.ClaimRounds.Add(int64(rounds))
	if err != nil {
		c.ClaimErrors.Add(1)
	}
}

// Fenced implements cluster.Observer.
func (c *Counter) Fenced(_ string, local bool) {
	if local {
		c.FencedLocal.Add(1)
	} else {
		c.FencedRemote.Add(1)
	}
}

// ConnFailed implements cluster.Observer.
func (c *Counter) ConnFailed(string, error) { c.ConnFailures.Add(1) }

// AuthFailed implements cluster.Observer.
func (c *Counter) AuthFailed(string, error) { c.AuthFailures.Add(1) }

// Expired implements cluster.Observer.
func (c *Counter) Expired(id string) {
	c.mu.Lock()
	c.expired = append(c.expired, id)
	c.mu.Unlock()
}

// ExpiredIDs returns the sessions this node expired, in order.
func (c *Counter) ExpiredIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.expired...)
}
