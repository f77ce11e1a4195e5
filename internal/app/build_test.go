package app

import (
	"log/slog"
	"testing"
	"time"

	"github.com/tetherlb/tether/config"
)

// TestBalancerOptions: the keys of a balancer reach balancer.Options.
func TestBalancerOptions(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`balancers:
  - name: b
    max_attempts: 2
    max_conns: 4
    timeouts: {connect: 1s, response: 7s, idle: 30s, queue: 2s}
    drain: {idle: 10m, done: stop, deadline: 1h}
    members:
      - {url: 'http://127.0.0.1:1', route: n1}
`))
	if err != nil {
		t.Fatal(err)
	}
	o, err := balancerOptions(&cfg, &cfg.Balancers[0], slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxAttempts != 2 || o.MaxConns != 4 || o.ConnectTimeout != time.Second || o.ResponseTimeout != 7*time.Second ||
		o.IdleTimeout != 30*time.Second || o.QueueTimeout != 2*time.Second ||
		o.SessionIdle != 10*time.Minute || !o.DrainStop || o.DrainDeadline != time.Hour {
		t.Errorf("options %+v", o)
	}
}

// TestMemberMaxConns: a member's max_conns reaches the balancer, also
// through the manager's effective members.
func TestMemberMaxConns(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`balancers:
  - name: b
    members:
      - {url: 'http://127.0.0.1:1', route: n1, max_conns: 2}
      - {url: 'http://127.0.0.1:2', route: n2}
`))
	if err != nil {
		t.Fatal(err)
	}
	eff := withMembers(cfg, baselineOf(cfg))
	mcs, err := memberConfigs(&eff.Balancers[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(mcs) != 2 || mcs[0].MaxConns != 2 || mcs[1].MaxConns != 0 {
		t.Errorf("member configs %+v", mcs)
	}
}
