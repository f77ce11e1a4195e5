// Package h1 holds the HTTP/1.1 wire-format helpers that the bench tools
// speaking raw HTTP/1.1 (bench/backend, bench/protoproxy) share, besides
// those they take from balancer/h1 (EqualFold). None of them allocates.
package h1

import "bytes"

// TrimEOL removes a trailing "\n" or "\r\n" from a line.
func TrimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
