package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLogAndMetricsErrors(t *testing.T) {
	token := filepath.Join(t.TempDir(), "metrics.token")
	os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty.token")
	os.WriteFile(empty, []byte("\n"), 0o600)
	const balancer = "balancers:\n  - name: b\n    listen: 127.0.0.1:8080\n    members: [{url: 'http://h:1', route: n1}]\n"
	tests := []struct {
		name, section string // from line 1, before the balancer
		want          []string
	}{
		{"log json debug", "log: {level: debug, format: json}\n", nil},
		{"log defaults", "log: {}\n", nil},
		{"log unknown level and format", "log:\n  level: verbose\n  format: xml\n",
			[]string{`2: log.level: unknown value "verbose": use one of debug, info, warn, error`, `3: log.format: unknown value "xml": use one of text, json`}},
		{"metrics on loopback", "metrics: {listen: 127.0.0.1:9090}\n", nil},
		{"metrics with token file and allow", "metrics:\n  listen: 0.0.0.0:9090\n  token_file: " + token + "\n  allow: [10.0.0.0/8, 192.168.1.7]\n", nil},
		{"metrics without listen", "metrics:\n  allow: [10.0.0.0/8]\n", []string{`1: metrics.listen: an address is required`}},
		{"metrics bad allow and missing token file", "metrics:\n  listen: 0.0.0.0:9090\n  token_file: /nonexistent/metrics.token\n  allow: [10.0.0.0/33, nope]\n",
			[]string{`3: metrics.token_file: stat /nonexistent/metrics.token`, `4: metrics.allow[0]: "10.0.0.0/33" is not an IP address or CIDR prefix`, `4: metrics.allow[1]: "nope"`}},
		{"empty token file", "metrics:\n  listen: 127.0.0.1:9090\n  token_file: " + empty + "\n", []string{`3: metrics.token_file: ` + empty + ` is empty`}},
		{"token file is a directory", "metrics:\n  listen: 127.0.0.1:9090\n  token_file: " + filepath.Dir(empty) + "\n", []string{`3: metrics.token_file: ` + filepath.Dir(empty) + ` is not a regular file`}},
		{"metrics on the balancer's listener", "metrics: {listen: 127.0.0.1:8080}\n", []string{`1: metrics.listen: 127.0.0.1:8080 is also the listen of balancers[0]`}},
		{"metrics on the manager's listener", "manager: {token: x}\nmetrics: {listen: 127.0.0.1:8081}\n", []string{`2: metrics.listen: 127.0.0.1:8081 is also manager.listen`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrors(t, tt.section+balancer, tt.want)
		})
	}
}
