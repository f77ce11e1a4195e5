package h1

import "testing"

func TestHelpers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want bool
	}{
		{"trim crlf", string(TrimEOL([]byte("x\r\n"))) == "x", true},
		{"trim lf", string(TrimEOL([]byte("x\n"))) == "x", true},
		{"trim none", string(TrimEOL([]byte("x\r"))) == "x", true},
		{"trim keeps inner", string(TrimEOL([]byte("a\rb\n"))) == "a\rb", true},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
