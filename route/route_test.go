package route

import (
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name, in  string
		sep       byte
		id, route string
		ok        bool
	}{
		{"tomcat", "8F3A2B.node2", '.', "8F3A2B", "node2", true},
		{"route after first separator", "abc.n1.extra", '.', "abc", "n1.extra", true},
		{"custom separator", "abc!n1", '!', "abc", "n1", true},
		{"custom separator ignores dot", "a.b!n1", '!', "a.b", "n1", true},
		{"no separator", "8F3A2B", '.', "", "", false},
		{"empty", "", '.', "", "", false},
		{"empty id", ".n1", '.', "", "", false},
		{"empty route", "abc.", '.', "", "", false},
		{"bad route byte", "abc.n 1", '.', "", "", false},
		{"route with slash", "abc.n/1", '.', "", "", false},
		{"route too long", "abc." + strings.Repeat("r", MaxLen+1), '.', "", "", false},
		{"route at max length", "abc." + strings.Repeat("r", MaxLen), '.', "abc", strings.Repeat("r", MaxLen), true},
		{"non-ascii route", "abc.nœud", '.', "", "", false},
		{"NUL in route", "abc.n\x001", '.', "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, r, ok := Split(tt.in, tt.sep)
			if id != tt.id || r != tt.route || ok != tt.ok {
				t.Errorf("Split(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.in, tt.sep, id, r, ok, tt.id, tt.route, tt.ok)
			}
		})
	}
}

func TestJoinSplitRoundTrip(t *testing.T) {
	for _, r := range []string{"n1", "node-2", "app_03", "a.b"} {
		id, got, ok := Split(Join("Zm9vYmFy", r, '.'), '.')
		if !ok || id != "Zm9vYmFy" || got != r {
			t.Errorf("round trip of %q: %q %q %v", r, id, got, ok)
		}
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"n1", true}, {"Node_2-b.x", true}, {"", false}, {"a b", false},
		{"a;b", false}, {"a=b", false}, {"é", false}, {strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		if got := Valid(tt.in); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"JSESSIONID", true}, {"jsessionid", true}, {"__Host-id", true}, {"a.b_c~!#$%&'*+^`|", true},
		{"", false}, {"a b", false}, {"a=b", false}, {"a;b", false}, {`a"b`, false}, {"a\tb", false},
		{"a\x7f", false}, {"é", false}, {"a(b)", false}, {"a/b", false}, {"a,b", false}, {"a:b", false},
	} {
		if got := ValidName(tt.in); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
