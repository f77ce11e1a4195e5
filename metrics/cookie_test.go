package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherlb/tether/balancer"
)

// TestRejectedCookiesAreCounted: insert mode's invalid and expired
// cookies are session events; an invalid one names no member.
func TestRejectedCookiesAreCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := New(Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	c.ObserveSession(balancer.SessionEvent{Balancer: "web", Kind: balancer.SessionCookieInvalid})
	c.ObserveSession(balancer.SessionEvent{Balancer: "web", Kind: balancer.SessionCookieInvalid})
	c.ObserveSession(balancer.SessionEvent{Balancer: "web", Member: "n1", Kind: balancer.SessionCookieExpired})
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`tether_session_events_total{balancer="web",event="cookie_invalid",member=""} 2`,
		`tether_session_events_total{balancer="web",event="cookie_expired",member="n1"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), line+"\n") {
			t.Errorf("missing %s", line)
		}
	}
}
