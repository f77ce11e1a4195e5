package clustertest

import (
	"sync"
	"time"

	"github.com/tetherlb/tether/cluster"
)

// FakeClock is a cluster.Clock that moves only when told to.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

var _ cluster.Clock = (*FakeClock)(nil)

// NewFakeClock returns a clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now implements cluster.Clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker implements cluster.Clock: the ticker fires when Advance moves
// the clock past its next tick (once per Advance, like a slow reader of a
// time.Ticker).
func (c *FakeClock) NewTicker(d time.Duration) cluster.Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{c: c, d: d, next: c.now.Add(d), ch: make(chan time.Time), stop: make(chan struct{})}
	c.tickers = append(c.tickers, t)
	return t
}

// Advance moves the clock forward by d and fires the tickers that are due.
// It returns once each due tick has been received, so the work a previous
// tick started (a node's expiry sweep) has finished when the next Advance
// that fires the same ticker returns.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*fakeTicker
	for _, t := range c.tickers {
		if !t.stopped && !t.next.After(now) {
			for !t.next.After(now) {
				t.next = t.next.Add(t.d)
			}
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		select {
		case t.ch <- now:
		case <-t.stop:
		}
	}
}

type fakeTicker struct {
	c       *FakeClock
	d       time.Duration
	next    time.Time
	ch      chan time.Time
	stop    chan struct{}
	stopped bool
}

func (t *fakeTicker) C() <-chan time.Time { return t.ch }

func (t *fakeTicker) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		close(t.stop)
	}
}
