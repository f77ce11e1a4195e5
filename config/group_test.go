package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGroup(t *testing.T) {
	key := filepath.Join(t.TempDir(), "group.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const rest = "manager: {token: t0123456789abcdef}\nbalancers:\n  - name: b\n    members: [{url: 'http://127.0.0.1:1', route: n1}]\n"
	tests := []struct {
		name, group string
		want        []string // "LINE: substring"; none: valid
	}{
		{"valid", "group: {listen: 127.0.0.1:7946, peers: [127.0.0.1:7947, 'b.example:7946'], key_file: " + key + ", name: a, join_timeout: 2s}\n", nil},
		{"no listen", "group: {key_file: " + key + "}\n", []string{"1: group.listen: an address is required"}},
		{"port zero", "group: {listen: 127.0.0.1:0, key_file: " + key + "}\n", []string{"1: group.listen: \"127.0.0.1:0\": the peers need a fixed port"}},
		{"bad peer", "group:\n  listen: 127.0.0.1:7946\n  key_file: " + key + "\n  peers: [nowhere]\n", []string{"4: group.peers[0]: \"nowhere\" is not host:port"}},
		{"no key", "group: {listen: 127.0.0.1:7946}\n", []string{"1: group.key_file: a file with the group's shared secret is required"}},
		{"missing key", "group: {listen: 127.0.0.1:7946, key_file: /nonexistent/k}\n", []string{"1: group.key_file: stat /nonexistent/k"}},
		{"bad name", "group: {listen: 127.0.0.1:7946, key_file: " + key + ", name: 'a b'}\n", []string{"1: group.name: \"a b\""}},
		{"negative timeout", "group: {listen: 127.0.0.1:7946, key_file: " + key + ", join_timeout: -1s}\n", []string{"1: group.join_timeout: -1s must not be negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("g.yaml", []byte(tc.group+rest))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if g := cfg.Group; g.Name != "a" || len(g.Peers) != 2 || g.JoinTimeout != 2*time.Second {
					t.Errorf("decoded %+v", g)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), "g.yaml:"+w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("needs a manager", func(t *testing.T) {
		_, err := Parse("g.yaml", []byte("group: {listen: 127.0.0.1:7946, key_file: "+key+"}\nbalancers:\n  - name: b\n    drain: {done: stop}\n    members: [{url: 'http://127.0.0.1:1', route: n1}]\n"))
		for _, w := range []string{"g.yaml:1: group: a group needs a manager"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v does not contain %q", err, w)
			}
		}
	})
}
