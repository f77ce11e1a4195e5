package ajp

import (
	"net/http"
	"testing"
)

// TestTokenBytesAgree: the token rule is RFC 9110's as net/http applies it
// (a method must be a token); package h1 checks its copy the same way.
func TestTokenBytesAgree(t *testing.T) {
	for c := range 256 {
		s := string([]byte{byte(c)})
		_, err := http.NewRequest(s, "http://127.0.0.1/", nil)
		if want := err == nil; validToken(s) != want {
			t.Errorf("byte %#x: token %v, want %v (net/http: %v)", c, validToken(s), want, err)
		}
	}
}
