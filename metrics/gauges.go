package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/balancer"
)

// gauges reads the members' current values from the balancers at scrape
// time: nothing is kept between scrapes, and nothing costs on the request
// path.
type gauges struct {
	src    Source
	forget func(members map[string]map[string]bool)
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append([]string{"balancer", "member"}, labels...), nil)
}

var (
	descUp        = desc("tether_member_up", "1 if health checks consider the member up, else 0.")
	descState     = desc("tether_member_state", "1 for the member's administrative state (active, draining, stopped, standby), 0 for the others.", "state")
	descWeight    = desc("tether_member_weight", "The member's weight for new sessions.")
	descInFlight  = desc("tether_member_in_flight_requests", "Requests being served by the member.")
	descQueued    = desc("tether_member_queued_requests", "Requests waiting for a free slot of the member (max_conns).")
	descQueueFull = desc("tether_member_queue_timeouts_total", "Requests answered 503 after waiting timeouts.queue for a slot of the member.")
	descLive      = desc("tether_member_live_sessions", "Sessions of the member seen within the balancer's drain idle window.")
	descAnnounced = desc("tether_member_announced_draining", "1 if the member itself announced it is draining (Tether-State: draining).")
	descFailures  = desc("tether_member_failures_total", "Connection failures and timeouts towards the member.")
	descRefused   = desc("tether_member_ajp_refused_total", "Requests an ajp:// member refused as Tomcat refuses a wrong or missing secret (403, connection closed).")
	descBytes     = desc("tether_member_bytes_total", "Request and response body bytes proxied to and from the member.")
	descDrainFrom = desc("tether_member_drain_start_sessions", "Live sessions the member had when its drain began (only while draining).")
	descDrainLeft = desc("tether_member_drain_remaining_sessions", "Live sessions left on a draining member (only while draining).")
	descDrainAt   = desc("tether_member_drain_started_timestamp_seconds", "When the member's drain began, Unix time (only while draining).")
	descDrainETA  = desc("tether_member_drain_estimated_empty_timestamp_seconds", "When the draining member should be empty at the rate sessions leave, Unix time (only once known).")
	descTracked   = prometheus.NewDesc("tether_balancer_tracked_sessions", "Sessions the balancer tracks for the live counts.", []string{"balancer"}, nil)
	descUntracked = prometheus.NewDesc("tether_balancer_untracked_sessions_total", "Sessions not tracked because the tracking limit was reached: live counts are then lower bounds.", []string{"balancer"}, nil)

	memberStates = []balancer.State{balancer.Active, balancer.Draining, balancer.Stopped, balancer.Standby}
)

// Describe implements prometheus.Collector.
func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descUp, descState, descWeight, descInFlight, descQueued, descQueueFull, descLive, descAnnounced, descFailures, descRefused, descBytes,
		descDrainFrom, descDrainLeft, descDrainAt, descDrainETA, descTracked, descUntracked,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It also tells the Collector
// which members exist, so that the series of removed ones are dropped.
func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	present := map[string]map[string]bool{}
	for _, b := range g.src.Balancers() {
		if b == nil {
			continue
		}
		name := b.Name()
		routes := map[string]bool{}
		present[name] = routes
		tracked, dropped := b.SessionCounts()
		ch <- prometheus.MustNewConstMetric(descTracked, prometheus.GaugeValue, float64(tracked), name)
		ch <- prometheus.MustNewConstMetric(descUntracked, prometheus.CounterValue, float64(dropped), name)
		for _, s := range b.Stats() {
			routes[s.Route] = true
			collectMember(ch, name, s)
		}
	}
	g.forget(present)
}

func collectMember(ch chan<- prometheus.Metric, bal string, s balancer.Stats) {
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{bal, s.Route}, extra...)...)
	}
	gauge(descUp, b2f(s.Healthy))
	for _, st := range memberStates {
		gauge(descState, b2f(s.State == st), st.String())
	}
	gauge(descWeight, float64(s.Weight))
	gauge(descInFlight, float64(s.InFlight))
	gauge(descQueued, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(descQueueFull, prometheus.CounterValue, float64(s.QueueFull), bal, s.Route)
	gauge(descLive, float64(max(s.LiveSessions, 0)))
	gauge(descAnnounced, b2f(s.Announced))
	ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(s.Failures), bal, s.Route)
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(s.AJPRefused), bal, s.Route)
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(s.Bytes), bal, s.Route)
	if d := s.Drain; d != nil {
		gauge(descDrainFrom, float64(d.StartSessions))
		gauge(descDrainLeft, float64(d.Remaining))
		gauge(descDrainAt, float64(d.Since.UnixNano())/1e9)
		if !d.EstimatedEmpty.IsZero() {
			gauge(descDrainETA, float64(d.EstimatedEmpty.UnixNano())/1e9)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
