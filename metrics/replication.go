package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/cluster"
)

// replication is the part of a ClusterCollector that counts replication
// traffic by message type, the duration of takeovers, state transfers and
// expiries.
type replication struct {
	messages, bytes *prometheus.CounterVec   // direction, type
	claimSeconds    *prometheus.HistogramVec // outcome
	transferred     *prometheus.CounterVec   // direction
	transferBytes   *prometheus.CounterVec   // direction
	expired         prometheus.Counter
	// byType are the message counters resolved, by direction and type:
	// a message is counted by indexing, not by building labels.
	byType [2][256]struct{ messages, bytes atomic.Pointer[counter] }
}

// directions are the direction label values, by index.
var directions = [2]string{"sent", "received"}

func newReplication() *replication {
	return &replication{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_cluster_messages_total",
			Help: "Replication messages this node sent to or received from its peers, by direction (sent, received) and type (record, delta, touch, ack, prepare, promise, sync-chunk …)."},
			[]string{"direction", "type"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_cluster_message_bytes_total",
			Help: "Bytes of the replication messages this node sent or received (frames, before encryption), by direction and type."},
			[]string{"direction", "type"}),
		claimSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tether_cluster_claim_seconds",
			Help:    "Duration of the takeovers this node ran (every attempt included), by outcome (ok, no_majority, timeout, not_found, error).",
			Buckets: StoreBuckets}, []string{"outcome"}),
		transferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_cluster_transfer_sessions_total",
			Help: "Sessions in state transfers (a starting node pulls its peers' state): sent to peers or received from them."},
			[]string{"direction"}),
		transferBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_cluster_transfer_bytes_total",
			Help: "Encoded bytes of the sessions in state transfers, sent or received."},
			[]string{"direction"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_cluster_expired_total",
			Help: "Sessions this node expired as their owner."}),
	}
}

func (r *replication) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.messages, r.bytes, r.claimSeconds, r.transferred, r.transferBytes, r.expired}
}

// message counts one message of type t in direction d.
func (r *replication) message(d int, t cluster.MessageType, n int) {
	s := &r.byType[d][t]
	get(&s.messages, r.messages, directions[d], t.String()).Inc()
	get(&s.bytes, r.bytes, directions[d], t.String()).Add(float64(n))
}

// MessageSent implements cluster.Observer.
func (c *ClusterCollector) MessageSent(_ string, t cluster.MessageType, bytes int) {
	c.repl.message(0, t, bytes)
}

// MessageReceived implements cluster.Observer.
func (c *ClusterCollector) MessageReceived(_ string, t cluster.MessageType, bytes int) {
	c.repl.message(1, t, bytes)
}

// Transferred implements cluster.Observer.
func (c *ClusterCollector) Transferred(_ string, sent bool, sessions, bytes int) {
	d := directions[1]
	if sent {
		d = directions[0]
	}
	c.repl.transferred.WithLabelValues(d).Add(float64(sessions))
	c.repl.transferBytes.WithLabelValues(d).Add(float64(bytes))
}

// Expired implements cluster.Observer.
func (c *ClusterCollector) Expired(string) { c.repl.expired.Inc() }

// claimed records a takeover's duration.
func (r *replication) claimed(latency time.Duration, err error) {
	r.claimSeconds.WithLabelValues(clusterOutcome(err)).Observe(latency.Seconds())
}
