//go:build !linux

package ajp

// alive reports whether an idle connection is still open; without a way
// to check without reading, it is taken to be (a closed one fails the
// request's first read, and a request without a body is sent again).
func alive(*clientConn) bool { return true }
