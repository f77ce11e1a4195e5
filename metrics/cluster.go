package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/cluster"
)

// ClusterCollector counts what a cluster node observes: its writes by level
// and outcome with their latency (acknowledgements included), takeovers,
// fenced writes, the replication lag of its peers, failed and refused
// replication connections. It implements cluster.Observer and is safe for
// concurrent use. RegisterClusterView adds the node's view of the majority.
type ClusterCollector struct {
	cluster.NopObserver
	writes       *prometheus.HistogramVec // level, outcome
	claims       *prometheus.CounterVec   // outcome
	fenced       *prometheus.CounterVec   // where
	acked        prometheus.Histogram
	connFailures prometheus.Counter
	authFailures prometheus.Counter
	repl         *replication // messages, takeover durations, state transfers, expiries
}

var _ cluster.Observer = (*ClusterCollector)(nil)

// NewClusterCollector registers the cluster metrics on reg. Give it to the
// node as cluster.Options.Observer.
func NewClusterCollector(reg prometheus.Registerer) (*ClusterCollector, error) {
	c := &ClusterCollector{
		writes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tether_cluster_write_seconds",
			Help:    "Owner writes (create, update, delete, expiry, takeover record) by acknowledgement level and outcome (ok, no_majority, not_acknowledged, fenced, conflict, error), with their duration.",
			Buckets: StoreBuckets}, []string{"level", "outcome"}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_cluster_claims_total",
			Help: "Takeovers this node ran, by outcome (ok, no_majority, timeout, not_found, error)."}, []string{"outcome"}),
		fenced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_cluster_fenced_total",
			Help: "Writes refused because another node owns the session under a newer epoch: this node's own (local) or a peer's (remote)."}, []string{"where"}),
		acked: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tether_cluster_ack_seconds",
			Help: "Time from sending a replication message to a peer until it acknowledged it.", Buckets: StoreBuckets}),
		connFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_cluster_connection_failures_total",
			Help: "Replication connections that failed or were closed for bad input."}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_cluster_auth_failures_total",
			Help: "Replication connections refused by authentication or cluster name."}),
	}
	c.repl = newReplication()
	for _, m := range append([]prometheus.Collector{c.writes, c.claims, c.fenced, c.acked, c.connFailures, c.authFailures}, c.repl.collectors()...) {
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// RegisterClusterView registers on reg the node's view of the majority,
// read from view at every scrape: tether_cluster_size,
// tether_cluster_quorum, tether_cluster_majority (1 while this node
// reaches a majority, else 0), tether_cluster_no_majority_total, and the
// lease counters tether_cluster_lease_reads_total,
// tether_cluster_confirmed_reads_total and tether_cluster_lease_waits_total.
func RegisterClusterView(reg prometheus.Registerer, view func() cluster.Quorum) error {
	gauge := func(name, help string, f func(cluster.Quorum) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(view()) })
	}
	counter := func(name, help string, f func(cluster.Quorum) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(view())) })
	}
	for _, m := range []prometheus.Collector{
		gauge("tether_cluster_size", "Nodes in the cluster (configured).", func(q cluster.Quorum) float64 { return float64(q.Size) }),
		gauge("tether_cluster_quorum", "Nodes that make a majority.", func(q cluster.Quorum) float64 { return float64(q.Needed) }),
		gauge("tether_cluster_majority", "1 while this node and the ready peers it reaches make a majority, else 0.", func(q cluster.Quorum) float64 {
			if q.Majority {
				return 1
			}
			return 0
		}),
		counter("tether_cluster_no_majority_total", "Writes, reads and takeovers refused for want of a majority.",
			func(q cluster.Quorum) uint64 { return q.Refused }),
		counter("tether_cluster_lease_reads_total", "Reads this owner confirmed under its lease, without a round trip.",
			func(q cluster.Quorum) uint64 { return q.LeaseReads }),
		counter("tether_cluster_confirmed_reads_total", "Reads this owner confirmed by a round trip to a majority (no lease held).",
			func(q cluster.Quorum) uint64 { return q.ConfirmedReads }),
		counter("tether_cluster_lease_waits_total", "Takeovers that waited for the previous owner's lease to end.",
			func(q cluster.Quorum) uint64 { return q.LeaseWaits }),
	} {
		if err := reg.Register(m); err != nil {
			return err
		}
	}
	return nil
}

// WriteDone implements cluster.Observer.
func (c *ClusterCollector) WriteDone(mode cluster.AckMode, latency time.Duration, err error) {
	c.writes.WithLabelValues(mode.String(), clusterOutcome(err)).Observe(latency.Seconds())
}

// Claimed implements cluster.Observer.
func (c *ClusterCollector) Claimed(_ string, _ int, latency time.Duration, err error) {
	c.claims.WithLabelValues(clusterOutcome(err)).Inc()
	c.repl.claimed(latency, err)
}

// Fenced implements cluster.Observer.
func (c *ClusterCollector) Fenced(_ string, local bool) {
	where := "remote"
	if local {
		where = "local"
	}
	c.fenced.WithLabelValues(where).Inc()
}

// Acked implements cluster.Observer.
func (c *ClusterCollector) Acked(_ string, latency time.Duration) { c.acked.Observe(latency.Seconds()) }

// ConnFailed implements cluster.Observer.
func (c *ClusterCollector) ConnFailed(string, error) { c.connFailures.Inc() }

// AuthFailed implements cluster.Observer.
func (c *ClusterCollector) AuthFailed(string, error) { c.authFailures.Inc() }

// clusterOutcome is the label of an operation's error.
func clusterOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, cluster.ErrNoMajority):
		return "no_majority"
	case errors.Is(err, cluster.ErrNotAcknowledged):
		return "not_acknowledged"
	case errors.Is(err, cluster.ErrFenced):
		return "fenced"
	case errors.Is(err, cluster.ErrConflict):
		return "conflict"
	case errors.Is(err, cluster.ErrClaimTimeout):
		return "timeout"
	case errors.Is(err, cluster.ErrNotFound):
		return "not_found"
	}
	return "error"
}
