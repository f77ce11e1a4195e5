// Package route is the contract between the balancer and the session library:
// a session id of the form "<id><sep><route>", where route names the node that
// owns the session (Tomcat's jvmRoute, httpd's BalancerMember route=).
//
// As in Apache httpd's mod_proxy_balancer, the route is the text after the
// first separator. Nothing in this package allocates, and every function
// accepts any input: hostile or malformed text yields ok == false, never a
// panic.
package route

import "strings"

// DefaultSeparator separates the id part from the route: "8F3A….node2".
const DefaultSeparator = '.'

// MaxLen is the longest route Valid accepts.
const MaxLen = 64

// Split splits s at the first sep into the id part and the route.
// ok is false when s has no separator, the id part is empty, or the route
// is not Valid.
func Split(s string, sep byte) (id, route string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			id, route = s[:i], s[i+1:]
			if id == "" || !Valid(route) {
				return "", "", false
			}
			return id, route, true
		}
	}
	return "", "", false
}

// Join returns "<id><sep><route>". It does not validate its arguments.
func Join(id, route string, sep byte) string {
	return id + string(sep) + route
}

// Valid reports whether r is a usable route: 1 to MaxLen characters among
// ASCII letters, digits, '-', '_' and '.'.
func Valid(r string) bool {
	if len(r) == 0 || len(r) > MaxLen {
		return false
	}
	for i := 0; i < len(r); i++ {
		if !routeByte(r[i]) {
			return false
		}
	}
	return true
}

func routeByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '-' || c == '_' || c == '.':
		return true
	}
	return false
}

// ValidName reports whether s can name the place a session id travels in:
// a cookie name or a ";name=" path parameter, which must be a token
// (RFC 9110 §5.6.2, as RFC 6265 asks of cookie names). config has a copy
// of this rule (it imports nothing); a test in internal/app checks that
// they agree.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}
