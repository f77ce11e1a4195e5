package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// role is what a request's token allows.
type role int

const (
	roleNone      role = iota // no valid token
	roleReadOnly              // may read
	roleReadWrite             // may read and change
)

func (r role) String() string {
	switch r {
	case roleReadOnly:
		return "read-only token"
	case roleReadWrite:
		return "read-write token"
	}
	return "no token"
}

// access holds the tokens and origins in effect; it is replaced as a
// whole when they change (configuration reload).
type access struct {
	rw      [sha256.Size]byte
	ro      [sha256.Size]byte
	hasRO   bool
	origins map[string]bool // allowed_origins, lower case, no trailing slash
}

func newAccess(token, readOnly string, origins []string) *access {
	a := &access{rw: sha256.Sum256([]byte(token)), origins: map[string]bool{}}
	if readOnly != "" {
		a.ro, a.hasRO = sha256.Sum256([]byte(readOnly)), true
	}
	for _, o := range origins {
		a.origins[normalOrigin(o)] = true
	}
	return a
}

func normalOrigin(o string) string { return strings.ToLower(strings.TrimSuffix(o, "/")) }

// roleOf checks the request's bearer token. Only the Authorization header
// is read: never a cookie, never the query string. Both tokens are compared
// in constant time, on digests, so that neither their content nor their
// length leaks through timing.
func (a *access) roleOf(r *http.Request) role {
	hs := r.Header.Values("Authorization")
	if len(hs) != 1 {
		return roleNone
	}
	scheme, tok, ok := strings.Cut(hs[0], " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return roleNone
	}
	d := sha256.Sum256([]byte(tok))
	rw := subtle.ConstantTimeCompare(d[:], a.rw[:])
	ro := subtle.ConstantTimeCompare(d[:], a.ro[:])
	switch {
	case rw == 1:
		return roleReadWrite
	case ro == 1 && a.hasRO:
		return roleReadOnly
	}
	return roleNone
}

// checkOrigin applies the Origin rule to a change (PATCH, POST, DELETE):
//
//   - a request with an Origin header is refused unless that origin is the
//     manager's own (the scheme and Host the request came to) or one of
//     allowed_origins; "Origin: null" is always refused;
//   - a request with a Sec-Fetch-Site header other than "same-origin" is
//     refused unless its Origin is one of allowed_origins;
//   - a request with neither header (curl, tether ctl, scripts) passes.
//
// Browsers set both headers themselves and pages cannot forge them, so no
// page of another site can make a browser change anything, even a browser
// that holds the token.
func (a *access) checkOrigin(r *http.Request) error {
	origins := r.Header.Values("Origin")
	if len(origins) > 1 {
		return ErrCrossOrigin
	}
	origin := ""
	if len(origins) == 1 {
		origin = normalOrigin(origins[0])
	}
	allowed := origin != "" && a.origins[origin]
	if origin != "" && !allowed && origin != ownOrigin(r) {
		return ErrCrossOrigin
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && !allowed {
		return ErrCrossOrigin
	}
	return nil
}

// ownOrigin is the origin the request was sent to.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return normalOrigin(scheme + "://" + r.Host)
}

// contentSecurityPolicy allows the page's own scripts, styles and
// requests and nothing else: no inline script or style, no framing, no
// form posts, and (Trusted Types) no assignment of strings to innerHTML
// and the like, so that data can only ever be rendered as text.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// secure sets the security headers every answer carries.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

// cors answers browsers of allowed_origins: it lets them read answers and
// send the Authorization header. It reports whether the request was a
// preflight, which it has answered.
func (a *access) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || !a.origins[normalOrigin(origin)] {
		if r.Method == http.MethodOptions {
			writeError(w, ErrCrossOrigin)
			return true
		}
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, PATCH, POST, DELETE")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Tether-Operator")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}
