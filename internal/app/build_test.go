package app

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	o, err := balancerOptions(&cfg, 0, slog.New(slog.DiscardHandler), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxAttempts != 2 || o.MaxConns != 4 || o.ConnectTimeout != time.Second || o.ResponseTimeout != 7*time.Second ||
		o.IdleTimeout != 30*time.Second || o.QueueTimeout != 2*time.Second ||
		o.SessionIdle != 10*time.Minute || !o.DrainStop || o.DrainDeadline != time.Hour {
		t.Errorf("options %+v", o)
	}
}

// TestMemberMaxConns: a member's max_conns and AJP secret reach the
// balancer, also through the manager's effective members.
func TestMemberMaxConns(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`balancers:
  - name: b
    members:
      - {url: 'http://127.0.0.1:1', route: n1, max_conns: 2}
      - {url: 'ajp://127.0.0.1:2', route: n2, secret_env: S}
`))
	if err != nil {
		t.Fatal(err)
	}
	eff := withMembers(cfg, baselineOf(cfg))
	mcs, err := memberConfigs(&eff.Balancers[0], "balancers[0]", func(string) string { return "s" })
	if err != nil {
		t.Fatal(err)
	}
	if len(mcs) != 2 || mcs[0].MaxConns != 2 || mcs[1].MaxConns != 0 || mcs[1].Secret != "s" {
		t.Errorf("member configs %+v", mcs)
	}
}

// TestAJPSecrets: an ajp member's secret comes from its own file or
// variable, else the balancer's; a variable that is not set is an error.
func TestAJPSecrets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ajp.secret")
	os.WriteFile(file, []byte("  from-file\n"), 0o600)
	env := map[string]string{"AJP_B": "from-balancer-env", "AJP_M": "from-member-env"}
	tests := []struct {
		name, yaml, want, err string
	}{
		{"member file", "members: [{url: 'ajp://10.0.0.1:8009', route: n1, secret_file: " + file + "}]", "from-file", ""},
		{"member env", "members: [{url: 'ajp://10.0.0.1:8009', route: n1, secret_env: AJP_M}]", "from-member-env", ""},
		{"balancer env", "ajp: {secret_env: AJP_B}\n    members: [{url: 'ajp://10.0.0.1:8009', route: n1}]", "from-balancer-env", ""},
		{"member overrides balancer", "ajp: {secret_env: AJP_B}\n    members: [{url: 'ajp://10.0.0.1:8009', route: n1, secret_env: AJP_M}]", "from-member-env", ""},
		{"loopback without secret", "members: [{url: 'ajp://127.0.0.1:8009', route: n1}]", "", ""},
		{"unset variable", "members: [{url: 'ajp://10.0.0.1:8009', route: n1, secret_env: AJP_NOPE}]", "", "AJP_NOPE is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.yaml", []byte("balancers:\n  - name: b\n    "+tt.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			mcs, err := memberConfigs(&cfg.Balancers[0], "balancers[0]", func(k string) string { return env[k] })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mcs[0].Secret != tt.want {
				t.Errorf("secret %q, want %q", mcs[0].Secret, tt.want)
			}
		})
	}
}
