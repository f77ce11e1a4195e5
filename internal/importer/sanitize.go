package importer

import (
	"fmt"
	"strings"

	"github.com/tetherlb/tether/config"
)

// sanitize makes the translation one that tether check accepts: what the
// source allows and Tether's configuration does not (a duplicate route, a
// URL without a host, a path without its leading slash…) is fixed or
// left out, with a note.
func (t *translation) sanitize() {
	if t.listen != "" {
		if _, err := config.ResolveListen(t.listen); err != nil {
			t.noteAt(t.listenAt, "listen %q is not host:port: left out", t.listen)
			t.listen = ""
		}
	}
	paths := map[string]string{}
	kept := t.balancers[:0]
	for _, b := range t.balancers {
		b.sanitize(t)
		if len(b.members) == 0 {
			t.noteAt(b.at, "balancer %s has no usable member: left out", b.src)
			continue
		}
		if b.path == "" {
			b.path = "/"
		}
		if !strings.HasPrefix(b.path, "/") {
			b.path = "/" + b.path
		}
		if other, dup := paths[b.path]; dup {
			p := "/" + b.name
			t.noteAt(b.at, "balancer %s: balancer %s already serves %s: served at %s here", b.src, other, b.path, p)
			b.path, b.pathAt = p, b.at
		}
		paths[b.path] = b.name
		kept = append(kept, b)
	}
	t.balancers = kept
}

// sanitize fixes one balancer's values and members.
func (b *balancer) sanitize(t *translation) {
	names := b.names[:0]
	for _, n := range b.names {
		if config.ValidCookieName(n) {
			names = append(names, n)
		} else {
			t.noteAt(b.at, "sticky session name %q is not a cookie name: left out", n)
		}
	}
	b.names = names
	if s := b.sep; s != "" && (len(s) != 1 || !separatorOK(s[0])) {
		t.noteAt(b.at, "session separator %q has no equivalent: the default '.'", s)
		b.sep = ""
	}
	routes, urls := map[string]bool{}, map[string]bool{}
	kept := b.members[:0]
	for _, m := range b.members {
		m.weight = min(max(m.weight, 0), config.MaxWeight)
		m.maxConns = max(m.maxConns, 0)
		if err := config.ValidateMember(&config.Member{URL: m.url, Route: "r"}); err != nil {
			t.noteAt(m.at, "member %s: %v: left out", m.url, err)
			continue
		}
		if urls[m.url] {
			t.noteAt(m.at, "member %s is listed twice: left out", m.url)
			continue
		}
		if m.route == "" {
			m.route = "node"
		}
		for i, base := 2, m.route; routes[m.route]; i++ {
			m.route = fmt.Sprintf("%s-%d", base[:min(len(base), 60)], i)
			if !routes[m.route] {
				t.noteAt(m.at, "route %s is used twice: named %s here", base, m.route)
			}
		}
		routes[m.route], urls[m.url] = true, true
		kept = append(kept, m)
	}
	b.members = kept
}

func (t *translation) noteAt(at, format string, args ...any) {
	at, _, _ = strings.Cut(at, ": ")
	file, line := splitAt(at)
	t.note(file, line, format, args...)
}

// separatorOK reports whether c can separate an id from its route.
func separatorOK(c byte) bool {
	return c > ' ' && c < 0x7F && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') && strings.IndexByte(`;,="`, c) < 0
}
