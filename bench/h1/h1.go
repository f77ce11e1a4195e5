// Package h1 holds the HTTP/1.1 wire-format helpers that the bench tools
// speaking raw HTTP/1.1 (bench/backend, bench/protoproxy) share. None of
// them allocates.
package h1

import "bytes"

// TrimEOL removes a trailing "\n" or "\r\n" from a line.
func TrimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// EqualFold reports whether b equals s, ASCII case-insensitively (header
// names and tokens such as "close" and "chunked").
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
