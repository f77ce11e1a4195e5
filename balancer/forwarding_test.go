package balancer

import "testing"

func TestAppendQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"shop.example", `"shop.example"`},
		{"127.0.0.1:8080", `"127.0.0.1:8080"`},
		{"[::1]:8080", `"[::1]:8080"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"caf\xc3\xa9.example", "\"caf\xc3\xa9.example\""}, // obs-text stays as it is
		{"a\tb", "\"a\tb\""},
		{"a\x00b\x1fc\x7f", `"abc"`},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := string(appendQuoted(nil, tt.in)); got != tt.want {
			t.Errorf("appendQuoted(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
