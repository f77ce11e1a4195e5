package session

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tetherlb/tether/route"
)

// FuzzIDFormat checks that an id part accepted as well-formed never
// contains the separator or anything unsafe in a cookie or URL, and that
// generated ids are accepted.
func FuzzIDFormat(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAA", byte('.'))
	f.Add("0123456789ABCDEF0123456789ABCDEF", byte('-'))
	f.Add("AAAAAAAAAAAAAAAAAAAAAAA.n1", byte('.'))
	f.Fuzz(func(t *testing.T, id string, sep byte) {
		if !strings.ContainsRune(separators, rune(sep)) {
			return
		}
		fm := newIDFormat(sep, 16)
		if fm.valid(id) {
			if strings.IndexByte(id, sep) >= 0 {
				t.Fatalf("valid id %q contains separator %q", id, sep)
			}
			for i := 0; i < len(id); i++ {
				if c := id[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`;,="\%/?#&`, c) >= 0 {
					t.Fatalf("valid id %q contains %q", id, c)
				}
			}
			got, rt, ok := route.Split(route.Join(id, "n1", sep), sep)
			if !ok || got != id || rt != "n1" {
				t.Fatalf("round trip of %q: %q %q %v", id, got, rt, ok)
			}
		}
		gen, err := fm.generate(bytes.NewReader([]byte(id + strings.Repeat("x", 64))))
		if err != nil || !fm.valid(gen) {
			t.Fatalf("generated %q (%v) is not valid", gen, err)
		}
	})
}

func TestIDFormatValid(t *testing.T) {
	b64, hex := newIDFormat('.', 16), newIDFormat('_', 16)
	tests := []struct {
		name string
		f    idFormat
		id   string
		want bool
	}{
		{"128 bits base64", b64, strings.Repeat("A", 22), true},
		{"512 bits base64", b64, strings.Repeat("A", 86), true},
		{"too short", b64, strings.Repeat("A", 21), false},
		{"too long", b64, strings.Repeat("A", 87), false},
		{"impossible base64 length", b64, strings.Repeat("A", 25), false},
		{"padding", b64, strings.Repeat("A", 22) + "==", false},
		{"standard base64 '+'", b64, strings.Repeat("A", 21) + "+", false},
		{"hex", hex, strings.Repeat("F", 32), true},
		{"lower-case hex", hex, strings.Repeat("f", 32), false},
		{"odd hex", hex, strings.Repeat("F", 33), false},
		{"base64 where hex is due", hex, strings.Repeat("A", 21) + "z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.valid(tt.id); got != tt.want {
				t.Fatalf("valid(%q) = %v", tt.id, got)
			}
		})
	}
}

// FuzzStripPathParam checks that stripping leaves no parameter route
// finds, removes only, and is idempotent.
func FuzzStripPathParam(f *testing.F) {
	f.Add("/a;jsessionid=x.n1/b", "jsessionid")
	f.Add("/a;jsessionid=;jsessionid=y?q#f", "jsessionid")
	f.Add(";jsessionid", "jsessionid")
	f.Fuzz(func(t *testing.T, p, name string) {
		if !route.ValidName(name) {
			return
		}
		got := stripPathParam(p, name)
		if v, ok := route.PathParam(got, name); ok {
			t.Fatalf("strip(%q) = %q still has %q", p, got, v)
		}
		if again := stripPathParam(got, name); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
		if !subsequence(got, p) {
			t.Fatalf("strip(%q) = %q adds characters", p, got)
		}
	})
}

// subsequence reports whether s is t with some bytes removed.
func subsequence(s, t string) bool {
	i := 0
	for j := 0; j < len(t) && i < len(s); j++ {
		if s[i] == t[j] {
			i++
		}
	}
	return i == len(s)
}

func TestShortIDNeverWhole(t *testing.T) {
	tests := []struct{ id, want string }{
		{"osBleJ_D3kq9Vz2mXc81Qw", "osBleJ_D…"},
		{"ABCDEF12", "ABCD…"},
		{"x", "…"},
		{"", "…"},
	}
	for _, tt := range tests {
		if got := ShortID(tt.id); got != tt.want {
			t.Errorf("ShortID(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
