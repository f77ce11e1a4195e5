package balancer

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tetherlb/tether/route"
)

// Stickiness modes. In every mode the member of a session is found the
// same way once its route is known (sticky member, failover by
// rendezvous hashing, nofailover, drains, session tracking); the modes
// differ in where the route is carried:
//
//   - route: at the end of the application's own session id
//     ("JSESSIONID=8F3A….n2"), as Tomcat's jvmRoute or Tether's session
//     library write it; the balancer only reads it.
//   - insert: in a cookie of Tether's own naming the member, signed so
//     that clients cannot choose their member (HAProxy's "cookie SERVERID
//     insert", nginx's "sticky cookie"); see sticky_insert.go.
//   - prefix: in front of the application's own session cookie,
//     "JSESSIONID=n2~8F3A…", added on the way out and removed on the way
//     in, so the application never sees it (HAProxy's "cookie JSESSIONID
//     prefix"); see sticky_prefix.go.

// StickyMode says where a session's route is carried.
type StickyMode uint8

// The modes. Append only.
const (
	// StickyRoute: the route ends the application's session id.
	StickyRoute StickyMode = iota
	// StickyInsert: Tether's own signed cookie names the member.
	StickyInsert
	// StickyPrefix: Tether prefixes the application's session cookie with
	// the route.
	StickyPrefix
)

var stickyModeNames = [...]string{"route", "insert", "prefix"}

func (m StickyMode) String() string {
	if int(m) < len(stickyModeNames) {
		return stickyModeNames[m]
	}
	return fmt.Sprintf("StickyMode(%d)", m)
}

// ParseStickyMode parses "route", "insert" or "prefix"; "" is StickyRoute.
func ParseStickyMode(s string) (StickyMode, error) {
	if s == "" {
		return StickyRoute, nil
	}
	for i, n := range stickyModeNames {
		if s == n {
			return StickyMode(i), nil
		}
	}
	return StickyRoute, fmt.Errorf("%w: unknown sticky mode %q", ErrInvalid, s)
}

// DefaultPrefixSeparator separates the route from the application's value
// in StickyPrefix mode: "n2~8F3A…", as HAProxy writes it.
const DefaultPrefixSeparator = '~'

// CookieSecure says when Tether's cookie gets the Secure attribute.
type CookieSecure uint8

// The choices.
const (
	// SecureAuto: when the client's connection is TLS, or a trusted proxy
	// says it was (X-Forwarded-Proto: https).
	SecureAuto CookieSecure = iota
	// SecureAlways: always (clients on plain http then drop the cookie).
	SecureAlways
	// SecureNever: never.
	SecureNever
)

// InsertCookie configures Tether's own cookie in StickyInsert mode.
type InsertCookie struct {
	// Name is the cookie's name. Default "TETHERID".
	Name string
	// Keys authenticate the cookie's value (HMAC-SHA256): the first signs,
	// every one verifies, so that a new key can be put first while the
	// old one still accepts the cookies it signed. Required; each at least
	// MinCookieKeyLen bytes. Instances that share cookies share keys (and
	// the balancer's name, which the signature covers).
	Keys [][]byte
	// Path is the cookie's Path. Default "/".
	Path string
	// Domain is the cookie's Domain. Default "": the host only.
	Domain string
	// Secure says when the cookie is marked Secure. Default SecureAuto.
	Secure CookieSecure
	// SameSite is the cookie's SameSite attribute. Default (zero)
	// http.SameSiteLaxMode; http.SameSiteDefaultMode leaves it out.
	SameSite http.SameSite
	// Script lets scripts read the cookie. Default false: HttpOnly.
	Script bool
	// MaxIdle, if set, ends a session that sent no request for that long:
	// its cookie then counts as none. The cookie carries the time it was
	// last renewed, renewed once a quarter of MaxIdle has passed, so no
	// state is shared between instances. Default 0: no limit.
	MaxIdle time.Duration
	// MaxLife, if set, ends a session that long after its cookie was first
	// issued, whatever its activity. Default 0: no limit.
	MaxLife time.Duration
	// NoCache adds "Cache-Control: private" to the responses that set the
	// cookie, so that a shared cache in front keeps none of them for other
	// users (HAProxy's nocache). Default false.
	NoCache bool
}

// MinCookieKeyLen is the shortest key InsertCookie accepts.
const MinCookieKeyLen = 32

// checkSticky fills in the defaults of the stickiness options and checks
// them.
func checkSticky(o *Options) error {
	switch o.Sticky {
	case StickyRoute:
		if o.Separator == 0 {
			o.Separator = route.DefaultSeparator // Tomcat's jvmRoute separator
		}
	case StickyPrefix:
		if o.Separator == 0 {
			o.Separator = DefaultPrefixSeparator // HAProxy's
		}
	case StickyInsert:
		if o.Separator == 0 {
			o.Separator = route.DefaultSeparator
		}
		return checkInsert(&o.Cookie)
	default:
		return fmt.Errorf("%w: unknown sticky mode %d", ErrInvalid, o.Sticky)
	}
	return nil
}

func checkInsert(c *InsertCookie) error {
	if c.Name == "" {
		c.Name = "TETHERID"
	}
	if !route.ValidName(c.Name) {
		return fmt.Errorf("%w: %q is not a cookie name", ErrInvalid, c.Name)
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if strings.ContainsAny(c.Path, ";\r\n") || strings.ContainsAny(c.Domain, "; \r\n") {
		return fmt.Errorf("%w: cookie path or domain holds ';', a space or a line break", ErrInvalid)
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode // sent on top-level navigation, not on cross-site requests
	}
	if len(c.Keys) == 0 {
		return fmt.Errorf("%w: sticky mode insert needs a cookie key", ErrInvalid)
	}
	for i, k := range c.Keys {
		if len(k) < MinCookieKeyLen {
			return fmt.Errorf("%w: cookie key %d is %d bytes, fewer than %d", ErrInvalid, i+1, len(k), MinCookieKeyLen)
		}
	}
	if c.MaxIdle < 0 || c.MaxLife < 0 {
		return fmt.Errorf("%w: negative cookie max idle or max life", ErrInvalid)
	}
	return nil
}

// session finds the request's session id and route in the place the
// sticky mode says.
func (a *attempt) session() (id, rt string, home *Member) {
	switch a.s.opts.Sticky {
	case StickyInsert:
		return a.insertSession()
	case StickyPrefix:
		return a.prefixSession()
	}
	return a.routeSession()
}

// sessionFinder keeps the best session found so far among the values a
// request carries: the first whose route names a member wins; failing
// that, the first that parsed.
type sessionFinder struct {
	pool      *Pool
	id, route string
	home      *Member
	found     bool
}

// consider records a parsed id and route; it reports true once one names
// a member (the search is over).
func (f *sessionFinder) consider(id, rt string) bool {
	if m := f.pool.Lookup(rt); m != nil {
		f.id, f.route, f.home = id, rt, m
		return true
	}
	if !f.found {
		f.id, f.route, f.found = id, rt, true
	}
	return false
}

// eachCookie calls f with the value of every cookie called one of names
// in the request, in the order of names per header, until f returns true.
func (a *attempt) eachCookie(names []string, f func(string) bool) bool {
	for _, h := range a.req.cookies {
		for _, n := range names {
			for rest := h; ; {
				v, more, ok := route.Cookie(rest, n)
				if !ok {
					break
				}
				if f(v) {
					return true
				}
				rest = more
			}
		}
	}
	return false
}

// routeSession finds "<id><sep><route>" in cookies first, then path
// parameters, then query parameters, in the order of StickyNames. A
// value that does not parse is skipped.
func (a *attempt) routeSession() (id, rt string, home *Member) {
	names, sep := a.s.opts.StickyNames, a.s.opts.Separator
	f := sessionFinder{pool: a.b.pool}
	consider := func(v string) bool {
		i, r, ok := route.Split(v, sep)
		return ok && f.consider(i, r)
	}
	if a.eachCookie(names, consider) {
		return f.id, f.route, f.home
	}
	for _, n := range names {
		if v, ok := route.PathParam(a.req.target, n); ok && consider(v) {
			return f.id, f.route, f.home
		}
	}
	for _, n := range names {
		if v, ok := route.QueryParam(a.req.query, n); ok && consider(v) {
			return f.id, f.route, f.home
		}
	}
	return f.id, f.route, f.home
}

// rewritesCookies reports whether the request's Cookie headers go to
// the member changed: Tether's cookie removed (insert), the route
// prefixes removed (prefix).
func (s *settings) rewritesCookies() bool { return s.opts.Sticky != StickyRoute }

// appendCookieHeader appends header, a Cookie header value, as the member
// gets it: without Tether's cookie in insert mode, without the route
// prefixes in prefix mode; the other cookies as they came. It reports
// false when it would append nothing (the header is then left out).
func (a *attempt) appendCookieHeader(dst []byte, header string) ([]byte, bool) {
	start, n := len(dst), 0
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		part = strings.Trim(part, " \t") // as route.Cookie trims
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		name = strings.Trim(name, " \t")
		switch a.s.opts.Sticky {
		case StickyInsert:
			if name == a.s.opts.Cookie.Name {
				continue
			}
		case StickyPrefix:
			if a.isStickyName(name) {
				if v, ok := a.unprefix(strings.Trim(value, " \t")); ok {
					if n > 0 {
						dst = append(dst, "; "...)
					}
					dst = append(append(append(dst, name...), '='), v...)
					n++
					continue
				}
			}
		}
		if n > 0 {
			dst = append(dst, "; "...)
		}
		dst = append(dst, part...)
		n++
	}
	return dst, len(dst) > start
}

// isStickyName reports whether name is one of StickyNames.
func (a *attempt) isStickyName(name string) bool {
	for _, n := range a.s.opts.StickyNames {
		if n == name {
			return true
		}
	}
	return false
}
