package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/session"
)

// SessionCollector counts what a session.Manager observes on an
// application node: sessions created, destroyed, claimed and rejected,
// write conflicts, lock waits, and every store call with its duration and
// outcome. It implements session.Observer and session.StoreObserver and
// is safe for concurrent use.
type SessionCollector struct {
	session.NopObserver
	created, claimed, conflicts prometheus.Counter
	stale                       prometheus.Counter
	destroyed, rejected, errors *prometheus.CounterVec
	lockWait                    prometheus.Histogram
	lockBusy                    prometheus.Counter
	store                       *prometheus.HistogramVec // op, outcome
}

var (
	_ session.Observer      = (*SessionCollector)(nil)
	_ session.StoreObserver = (*SessionCollector)(nil)
)

// StoreBuckets cover a store call from 50 µs (memory, a local Redis) to
// the default store timeouts (seconds).
var StoreBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// NewSessionCollector registers the session metrics on reg.
func NewSessionCollector(reg prometheus.Registerer) (*SessionCollector, error) {
	c := &SessionCollector{
		created:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_session_created_total", Help: "Sessions created by this node."}),
		claimed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_session_claimed_total", Help: "Sessions this node took over from another route."}),
		stale:     prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_session_stale_reads_total", Help: "Read-only requests served this node's last known copy of their session, unconfirmed (StaleReads)."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_session_conflict_keys_total", Help: "Keys written blind over a concurrent write (the later one won)."}),
		destroyed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_session_destroyed_total", Help: "Sessions ended, by reason."}, []string{"reason"}),
		rejected:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_session_rejected_ids_total", Help: "Presented session ids not used, by reason."}, []string{"reason"}),
		errors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_session_store_errors_total", Help: "Failed store operations (other than an absent session), by operation."}, []string{"op"}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tether_session_lock_wait_seconds",
			Help: "Time requests waited for their session's lock.", Buckets: StoreBuckets}),
		lockBusy: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_session_lock_busy_total", Help: "Requests that gave up waiting for their session's lock."}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tether_session_store_seconds",
			Help: "Store calls by operation (load, save, delete, touch, claim, lock) and outcome (ok, not_found, conflict, busy, timeout, error), with their duration.", Buckets: StoreBuckets}, []string{"op", "outcome"}),
	}
	for _, m := range []prometheus.Collector{c.created, c.claimed, c.stale, c.conflicts, c.destroyed, c.rejected, c.errors, c.lockWait, c.lockBusy, c.store} {
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// SessionCreated counts a created session.
func (c *SessionCollector) SessionCreated() { c.created.Inc() }

// SessionDestroyed counts an ended session.
func (c *SessionCollector) SessionDestroyed(r session.Reason) {
	c.destroyed.WithLabelValues(r.String()).Inc()
}

// SessionClaimed counts a takeover.
func (c *SessionCollector) SessionClaimed() { c.claimed.Inc() }

// StaleRead counts a read served from an unconfirmed copy.
func (c *SessionCollector) StaleRead() { c.stale.Inc() }

// IDRejected counts a presented id that was not used.
func (c *SessionCollector) IDRejected(r session.Rejection) {
	c.rejected.WithLabelValues(r.String()).Inc()
}

// Conflict counts keys written blind over a concurrent write.
func (c *SessionCollector) Conflict(keys int) { c.conflicts.Add(float64(keys)) }

// LockWaited records a lock wait.
func (c *SessionCollector) LockWaited(wait time.Duration, err error) {
	c.lockWait.Observe(wait.Seconds())
	if errors.Is(err, session.ErrBusy) {
		c.lockBusy.Inc()
	}
}

// StoreError counts a failed store operation.
func (c *SessionCollector) StoreError(op session.Op, _ error) {
	c.errors.WithLabelValues(string(op)).Inc()
}

// StoreCalled records a store call's duration and outcome.
func (c *SessionCollector) StoreCalled(op session.Op, took time.Duration, err error) {
	c.store.WithLabelValues(string(op), outcome(err)).Observe(took.Seconds())
}

// outcome is a store call's outcome as a label.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, session.ErrNotFound):
		return "not_found"
	case errors.Is(err, session.ErrConflict), errors.Is(err, session.ErrExists):
		return "conflict"
	case errors.Is(err, session.ErrBusy):
		return "busy"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}
