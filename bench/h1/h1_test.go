package h1

import "testing"

func TestHelpers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want bool
	}{
		{"fold equal", EqualFold([]byte("Content-Length"), "content-length"), true},
		{"fold upper", EqualFold([]byte("CLOSE"), "close"), true},
		{"fold differs", EqualFold([]byte("closed"), "close"), false},
		{"fold non-letter", EqualFold([]byte("a-b"), "a_b"), false},
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
