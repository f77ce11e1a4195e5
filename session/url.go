package session

import (
	"net/url"
	"strings"
)

// EncodeURL returns u with ";<PathParam>=<session id>" added to its path,
// for clients that do not keep cookies, as a servlet container's encodeURL.
// It returns u unchanged when Options.URLRewriting is off, when the request
// has no session, when the session id came in a cookie (the client keeps
// cookies), when u points to another host (the id must not leak there), or
// when u does not parse.
func (s *Session) EncodeURL(u string) string {
	if !s.m.o.URLRewriting {
		return u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resolve() != nil || s.id == "" || s.fromCookie && !s.isNew && !s.renewed {
		return u
	}
	p, err := url.Parse(u)
	if err != nil || p.Opaque != "" || (p.Host != "" && !strings.EqualFold(p.Host, s.req.Host)) {
		return u
	}
	end := len(u)
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		end = i
	}
	path := stripPathParam(u[:end], s.m.o.PathParam)
	if p.Host != "" && p.Path == "" {
		path += "/"
	}
	return path + ";" + s.m.o.PathParam + "=" + s.m.canonical(s.id) + u[end:]
}
