package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/group"
)

// groupCollector reads a group's status at every scrape.
type groupCollector struct {
	status                            func() group.Status
	sessions                          func(yield func(balancer, member string, n int64))
	instance, synced, alone, sessDesc *prometheus.Desc
}

// RegisterGroup registers the metrics of a group of instances on reg:
// every instance this one has seen and whether it is up, whether this
// instance has taken the group's state, whether it is alone (no other
// instance reachable), and, if sessions is not nil, the group's live
// sessions of each member (sessions yields them; admin.Manager's
// GroupSessions). status is usually (*group.Group).Status.
func RegisterGroup(reg prometheus.Registerer, status func() group.Status, sessions func(yield func(balancer, member string, n int64))) error {
	return reg.Register(&groupCollector{
		status: status, sessions: sessions,
		sessDesc: prometheus.NewDesc("tether_group_member_live_sessions",
			"Live sessions of the member seen by any instance of the group (a session seen by two counts once); tether_member_live_sessions is this instance's own.", []string{"balancer", "member"}, nil),
		instance: prometheus.NewDesc("tether_group_instance_up",
			"1 for every instance of the group this one reaches (itself included), 0 for one it has seen and no longer reaches.", []string{"instance", "self"}, nil),
		synced: prometheus.NewDesc("tether_group_synced",
			"1 once this instance has taken the group's state since it started (always 1 without peers).", nil, nil),
		alone: prometheus.NewDesc("tether_group_alone",
			"1 while this instance reaches no other instance of the group and serves with the state it has.", nil, nil),
	})
}

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.instance
	ch <- c.synced
	ch <- c.alone
	ch <- c.sessDesc
}

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	for _, in := range st.Instances {
		self := "false"
		if in.Name == st.Name {
			self = "true"
		}
		ch <- prometheus.MustNewConstMetric(c.instance, prometheus.GaugeValue, bit(in.Up), in.Name, self)
	}
	ch <- prometheus.MustNewConstMetric(c.synced, prometheus.GaugeValue, bit(st.Synced))
	ch <- prometheus.MustNewConstMetric(c.alone, prometheus.GaugeValue, bit(st.Alone))
	if c.sessions != nil {
		c.sessions(func(bal, member string, n int64) {
			ch <- prometheus.MustNewConstMetric(c.sessDesc, prometheus.GaugeValue, float64(n), bal, member)
		})
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
