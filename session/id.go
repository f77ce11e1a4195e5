package session

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// idFormat makes and checks id parts: n random bytes, in URL-safe base64
// without padding ([A-Za-z0-9_-]) or, when the separator is one of its
// characters, upper-case hex ([0-9A-F], as Tomcat's ids). Either way an id
// part never contains the separator.
type idFormat struct {
	hex bool
	n   int
}

func newIDFormat(sep byte, n int) idFormat {
	return idFormat{hex: sep == '-' || sep == '_', n: n}
}

// generate returns a fresh id part read from rand.
func (f idFormat) generate(rand io.Reader) (string, error) {
	var buf [64]byte
	b := buf[:f.n]
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", fmt.Errorf("session: reading random id: %w", err)
	}
	if f.hex {
		return strings.ToUpper(hex.EncodeToString(b)), nil
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// valid reports whether id could be an id part this format issued, for any
// IDBytes from 16 to 64: ids issued before a change of IDBytes stay valid.
func (f idFormat) valid(id string) bool {
	if f.hex {
		if len(id) < 32 || len(id) > 128 || len(id)%2 != 0 {
			return false
		}
		for i := 0; i < len(id); i++ {
			if c := id[i]; !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		return true
	}
	// RawURLEncoding of 16 to 64 bytes: 22 to 86 characters, never 1 mod 4.
	if len(id) < 22 || len(id) > 86 || len(id)%4 == 1 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ShortID abbreviates a session id for logs and error messages, which
// never hold a whole id (an id is a credential): at most its first 8
// characters, never more than half of it, then "…".
func ShortID(id string) string {
	return id[:min(8, len(id)/2)] + "…"
}
