package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/balancer"
)

// TestEveryOutcomeHasAMetricName: each balancer outcome is counted under
// the label value the access log writes (Outcome.String), and the metric's
// help text names it.
func TestEveryOutcomeHasAMetricName(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := New(Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for o := balancer.Outcome(0); int(o) < balancer.OutcomeCount; o++ {
		c.ObserveRequest(balancer.RequestInfo{Balancer: "web", Member: "n1", Outcome: o, Status: 200})
	}
	got := scrape(t, reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	help := ""
	for _, mf := range mfs {
		if mf.GetName() == "tether_requests_total" {
			help = mf.GetHelp()
		}
	}
	for o := balancer.Outcome(0); int(o) < balancer.OutcomeCount; o++ {
		name := o.String()
		if got["tether_requests_total{balancer=web,code=2xx,member=n1,outcome="+name+"}"] != 1 {
			t.Errorf("outcome %d (%s) is not counted under outcome=%q", o, name, name)
		}
		if !strings.Contains(help, name) {
			t.Errorf("tether_requests_total's help %q does not name outcome %q", help, name)
		}
	}
}
