package session

import (
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherlb/tether/route"
)

// maxCandidates bounds how many presented ids one request may make the
// Manager look up, so that a request with a thousand cookies costs no more
// than one with a few.
const maxCandidates = 4

// presented holds the session ids a request presents, best first: every
// cookie of the session's name (browsers send one per matching Path, the
// most specific first), then the URL's path parameter. Fixed arrays: reading
// them allocates nothing.
type presented struct {
	n          int
	ids        [maxCandidates]string
	fromCookie [maxCandidates]bool
}

func (p *presented) add(id string, fromCookie bool) {
	if p.n < maxCandidates {
		p.ids[p.n], p.fromCookie[p.n] = id, fromCookie
		p.n++
	}
}

// addCookies adds the values of r's cookies called name.
func (p *presented) addCookies(r *http.Request, name string) {
	for _, h := range r.Header["Cookie"] {
		for p.n < maxCandidates {
			v, rest, ok := route.Cookie(h, name)
			if !ok {
				break
			}
			p.add(v, true)
			h = rest
		}
	}
}

// newCookie returns the session cookie for value, with the policy's
// attributes. A session cookie: no Max-Age, so it ends with the browser
// session; the server enforces the timeouts.
func (m *Manager) newCookie(r *http.Request, value string) *http.Cookie {
	c := m.o.Cookie
	return &http.Cookie{
		Name:     c.Name,
		Value:    value,
		Path:     c.Path,
		Domain:   c.Domain,
		HttpOnly: !c.NoHTTPOnly,
		SameSite: c.SameSite,
		Secure:   m.secure(r),
	}
}

// setCookie adds the Set-Cookie header carrying value.
func (m *Manager) setCookie(h http.Header, r *http.Request, value string) {
	h.Add("Set-Cookie", m.newCookie(r, value).String())
	// Shared caches must not hand one user's cookie to another.
	h.Add("Cache-Control", `no-cache="Set-Cookie"`)
}

// expireCookie adds the Set-Cookie header that deletes the session cookie:
// same Name, Path and Domain as it was set with (a browser keeps a cookie
// whose deletion names another Path), Max-Age=0 and an Expires in the past
// for old clients.
func (m *Manager) expireCookie(h http.Header, r *http.Request) {
	c := m.newCookie(r, "")
	c.MaxAge = -1 // "Max-Age=0"
	c.Expires = time.Unix(0, 0)
	h.Add("Set-Cookie", c.String())
	h.Add("Cache-Control", `no-cache="Set-Cookie"`)
}

// secure decides the Secure attribute for a cookie sent in response to r.
func (m *Manager) secure(r *http.Request) bool {
	switch m.o.Cookie.Secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	if r.TLS != nil {
		return true
	}
	if len(m.o.TrustedProxies) == 0 {
		return false
	}
	proto := r.Header.Get("X-Forwarded-Proto")
	if i := strings.IndexByte(proto, ','); i >= 0 {
		proto = proto[:i] // the first proxy's view: what the client used
	}
	if !strings.EqualFold(strings.TrimSpace(proto), "https") {
		return false
	}
	return m.trusted(r.RemoteAddr)
}

// trusted reports whether the peer at remoteAddr ("ip:port" or "ip") is one
// of the trusted proxies.
func (m *Manager) trusted(remoteAddr string) bool {
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		ip = ap.Addr()
	} else if a, err := netip.ParseAddr(remoteAddr); err == nil {
		ip = a
	} else {
		return false
	}
	ip = ip.Unmap()
	for _, p := range m.o.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
