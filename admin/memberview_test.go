package admin

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer"
)

// TestMemberViewShowsSlowStartAndHealthReason: the member view carries a
// ramp under way and why the health last changed.
func TestMemberViewShowsSlowStartAndHealthReason(t *testing.T) {
	until := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	v := viewMember(balancer.Stats{Route: "n1", Healthy: true, HealthReason: "probe succeeded", SlowStart: &balancer.SlowStart{Until: until, Share: 0.12345}})
	b, _ := json.Marshal(v)
	for _, want := range []string{`"health_reason":"probe succeeded"`, `"slow_start":{"until":"2026-12-03T10:00:00Z","share":0.123}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	b, _ = json.Marshal(viewMember(balancer.Stats{Route: "n1"}))
	if strings.Contains(string(b), "slow_start") || strings.Contains(string(b), "health_reason") {
		t.Errorf("empty fields shown: %s", b)
	}
}

func TestBalancerViewShowsStickyMode(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	b, err := balancer.New(balancer.Options{Name: "php", Logger: slog.New(slog.DiscardHandler), Sticky: balancer.StickyPrefix},
		[]balancer.MemberConfig{{URL: u, Route: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if v := viewBalancer(b); v.StickyMode != "prefix" {
		t.Fatalf("sticky_mode %q", v.StickyMode)
	}
}
