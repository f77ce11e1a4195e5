package balancer

import (
	"strings"

	"github.com/tetherlb/tether/route"
)

// Prefix mode: the route goes in front of the application's own session
// cookie. A response's "Set-Cookie: JSESSIONID=8F3A…" from member n2
// reaches the client as "JSESSIONID=n2~8F3A…"; the client's
// "Cookie: JSESSIONID=n2~8F3A…" reaches the member as "JSESSIONID=8F3A…".
// The application never sees a route; the session's id, as the balancer
// counts it, is the application's value. Only cookies carry the prefix:
// ids the application puts in URLs (";jsessionid=") are not rewritten.

// unprefix splits "<route><sep><value>", in double quotes or not, and
// returns value; ok is false when v does not start with a route and the
// separator, or has nothing after them.
func (a *attempt) unprefix(v string) (value string, ok bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1] // as route.Cookie unquotes
	}
	_, value, ok = a.splitPrefix(v)
	return value, ok
}

// splitPrefix splits "<route><sep><value>" (unquoted).
func (a *attempt) splitPrefix(v string) (rt, value string, ok bool) {
	i := strings.IndexByte(v, a.s.opts.Separator)
	if i < 0 || i == len(v)-1 || !route.Valid(v[:i]) {
		return "", "", false
	}
	return v[:i], v[i+1:], true
}

// prefixSession finds "<route><sep><value>" in the cookies of
// StickyNames; the value is the session's id.
func (a *attempt) prefixSession() (id, rt string, home *Member) {
	f := sessionFinder{pool: a.b.pool}
	a.eachCookie(a.s.opts.StickyNames, func(v string) bool {
		r, value, ok := a.splitPrefix(v)
		return ok && f.consider(value, r)
	})
	return f.id, f.route, f.home
}

// prefixSetCookie appends line, a Set-Cookie value, with the route of
// the member that answered put in front of the value, if it sets a
// cookie of StickyNames. It reports false, appending nothing, for any
// other line (or one that expires the cookie), which goes as it came.
func (a *attempt) prefixSetCookie(dst []byte, line string) ([]byte, bool) {
	if a.s.opts.Sticky != StickyPrefix || a.active == nil {
		return dst, false
	}
	if _, expired, ok := a.stickyCookie(line); !ok || expired {
		return dst, false
	}
	eq := strings.IndexByte(line, '=') + 1 // stickyCookie found one
	for eq < len(line) && (line[eq] == ' ' || line[eq] == '"') {
		eq++
	}
	dst = append(dst, line[:eq]...)
	dst = append(append(dst, a.active.route...), a.s.opts.Separator)
	return append(dst, line[eq:]...), true
}
