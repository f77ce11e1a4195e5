package config

import "testing"

func TestProbeErrors(t *testing.T) {
	const b = "balancers:\n  - {name: a, members: [{url: 'http://h:1', route: n1}]}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"valid", "probes: {ready_path: /-/ready, live_path: /-/live}\nshutdown_delay: 5s\n" + b, nil},
		{"not paths", "probes:\n  ready_path: ready\n  live_path: '/live?x=1'\n" + b,
			[]string{`2: probes.ready_path: "ready" must be a path`, `3: probes.live_path: "/live?x=1" must be a path`}},
		{"the same path", "probes: {ready_path: /p, live_path: /p}\n" + b, []string{`1: probes.live_path: "/p" is also ready_path`}},
		{"negative delay", "shutdown_delay: -1s\n" + b, []string{`1: shutdown_delay: -1s must not be negative`}},
		{"redirect", "redirect_https: {listen: '0.0.0.0:80'}\n" + b, nil},
		{"redirect on a balancer's listener", "redirect_https: {listen: '127.0.0.1:8080', port: 70000}\n" + b,
			[]string{`1: redirect_https.port: 70000 must be a port`, `1: redirect_https.listen: 127.0.0.1:8080 is also the listen of balancers[0]`}},
		{"proxy protocol", "proxy_protocol: {from: [10.0.0.0/8, 192.0.2.1]}\n" + b, nil},
		{"proxy protocol from no one", "proxy_protocol: {from: []}\n" + b, []string{`1: proxy_protocol.from: list the addresses`}},
		{"proxy protocol bad source", "proxy_protocol:\n  from: [10.0.0.0/33]\n" + b, []string{`2: proxy_protocol.from[0]: "10.0.0.0/33" is not an IP address`}},
		{"send_proxy", "balancers:\n  - {name: a, send_proxy: v2, members: [{url: 'http://h:1', route: n1}]}\n", nil},
		{"send_proxy v3", "balancers:\n  - {name: a, send_proxy: v3, members: [{url: 'http://h:1', route: n1}]}\n", []string{`2: balancers[0].send_proxy: unknown value "v3": use one of v1, v2`}},
		{"redirect without listen", "redirect_https: {port: 8443}\n" + b, []string{`1: redirect_https.listen: an address is required`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.yaml, tt.want) })
	}
}
