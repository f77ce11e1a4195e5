package config

import "testing"

func TestHostErrors(t *testing.T) {
	const m = ", members: [{url: 'http://h:1', route: n1}]}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"hosts and a default", "balancers:\n  - {name: a, hosts: [shop.example.com, '*.example.com', localhost, 127.0.0.1]" + m + "  - {name: b" + m, nil},
		{"same path, other hosts", "balancers:\n  - {name: a, hosts: [a.example]" + m + "  - {name: b, hosts: [b.example]" + m, nil},
		{"same host, other paths", "balancers:\n  - {name: a, hosts: [a.example]" + m + "  - {name: b, path: /api, hosts: [a.example]" + m, nil},
		{"bad names", "balancers:\n  - {name: a, hosts: ['shop.example.com:443', '*', 'a.*.example', '-a.example', 'a..example', '']" + m,
			[]string{`2: balancers[0].hosts[0]: "shop.example.com:443" is not a host name`, `2: balancers[0].hosts[1]`, `2: balancers[0].hosts[2]`,
				`2: balancers[0].hosts[3]`, `2: balancers[0].hosts[4]`, `2: balancers[0].hosts[5]`}},
		{"duplicate in a list", "balancers:\n  - {name: a, hosts: [a.example, A.Example.]" + m, []string{`2: balancers[0].hosts[1]: "A.Example." is already hosts[0]`}},
		{"same host and path", "balancers:\n  - {name: a, hosts: [a.example]" + m + "  - {name: b, hosts: [x.example, A.example]" + m,
			[]string{`3: balancers[1].path: balancers[0] already serves path "/" on A.example on 127.0.0.1:8080`}},
		{"unknown_host", "unknown_host: 500\nbalancers:\n  - {name: a" + m, []string{`1: unknown_host: 500: use 421 or 404`}},
		{"missing certificate", "tls: {cert: /nonexistent/a.pem, key: /nonexistent/a.key, certificates: [{cert: /nonexistent/b.pem}]}\nbalancers:\n  - {name: a" + m,
			[]string{`1: tls.cert`, `1: tls.key`, `1: tls.certificates[0].cert`, `1: tls.certificates[0].key: a PEM key file is required`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.yaml, tt.want) })
	}
}
