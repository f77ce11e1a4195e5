package h1

import (
	"net/http"
	"testing"
)

// TestTokenBytesAgree: the parser's table of token bytes is RFC 9110's as
// net/http applies it (a method must be a token); package ajp checks its
// copy the same way.
func TestTokenBytesAgree(t *testing.T) {
	for c := range 256 {
		_, err := http.NewRequest(string([]byte{byte(c)}), "http://127.0.0.1/", nil)
		if want := err == nil; tchar[c] != want {
			t.Errorf("byte %#x: token %v, want %v (net/http: %v)", c, tchar[c], want, err)
		}
	}
}
