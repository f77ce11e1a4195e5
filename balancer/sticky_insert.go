package balancer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetherlb/tether/route"
)

// Insert mode: Tether's own cookie names the member.
//
// Its value is "<route>~<id>~<issued>~<renewed>~<mac>":
//   - route: the member's route, read by people debugging;
//   - id: 16 random URL-safe characters (96 bits), the session as the
//     balancer counts it for drains and failover;
//   - issued, renewed: Unix seconds in base 36, when the session began and
//     when its cookie was last renewed (MaxLife and MaxIdle are enforced
//     from them, so instances share no state);
//   - mac: HMAC-SHA256 of "tether-insert-1", the balancer's name and the
//     rest of the value, truncated to 128 bits, unpadded base64url.
//
// A cookie that does not verify with any key, or is past MaxIdle or
// MaxLife, counts as no cookie: the request is a new session, and the
// balancer tells the SessionObserver (SessionCookieInvalid,
// SessionCookieExpired).

const (
	insertSep    = '~'
	insertIDLen  = 16 // base64url characters of 12 random bytes
	insertMACLen = 22 // base64url characters of 16 bytes
	macDomain    = "tether-insert-1"
	// clockSkew is how far in the future an issue or renewal time may be
	// (instances' clocks differ a little).
	clockSkew = 5 * time.Minute
)

// insertCookie is what a valid cookie says.
type insertCookie struct {
	id, route        string
	issued, renewed  int64 // Unix seconds
	present, invalid bool  // a cookie was sent; none of them was valid
	expired          bool  // an authentic cookie was past its limits
	expiredRoute     string
}

// macs keeps one HMAC per key for a settings, reused between requests.
type macs struct {
	name string // the balancer's name, covered by the MAC
	keys [][]byte
	pool sync.Pool // *macSet
}

type macSet struct {
	h   []hash.Hash
	buf []byte // the MAC's input
	pl  []byte // a payload given as a string
	sum []byte
	enc [insertMACLen]byte
}

func newMACs(name string, keys [][]byte) *macs {
	m := &macs{name: name, keys: keys}
	m.pool.New = func() any {
		s := &macSet{sum: make([]byte, 0, sha256.Size)}
		for _, k := range keys {
			s.h = append(s.h, hmac.New(sha256.New, k))
		}
		return s
	}
	return m
}

// mac computes the encoded MAC of payload with key number k.
func (s *macSet) mac(m *macs, k int, payload []byte) []byte {
	s.buf = append(append(append(append(append(s.buf[:0], macDomain...), 0), m.name...), 0), payload...)
	h := s.h[k]
	h.Reset()
	h.Write(s.buf)
	s.sum = h.Sum(s.sum[:0])
	base64.RawURLEncoding.Encode(s.enc[:], s.sum[:16])
	return s.enc[:]
}

// verify reports whether mac authenticates payload under any key.
func (m *macs) verify(payload, mac string) bool {
	if len(mac) != insertMACLen {
		return false
	}
	s := m.pool.Get().(*macSet)
	defer m.pool.Put(s)
	var want [insertMACLen]byte
	copy(want[:], mac)
	s.pl = append(s.pl[:0], payload...)
	ok := false
	for k := range s.h {
		// Every key is tried, so the time taken does not say which matched.
		ok = hmac.Equal(s.mac(m, k, s.pl), want[:]) || ok
	}
	return ok
}

// sign appends the MAC of payload with the first key to dst.
func (m *macs) sign(dst, payload []byte) []byte {
	s := m.pool.Get().(*macSet)
	defer m.pool.Put(s)
	return append(dst, s.mac(m, 0, payload)...)
}

// insertSession finds the request's session in Tether's cookie.
func (a *attempt) insertSession() (id, rt string, home *Member) {
	c := &a.insert
	name := a.s.opts.Cookie.Name
	a.eachCookie([]string{name}, func(v string) bool {
		c.present = true
		switch ok, expired := a.parseInsert(v); {
		case ok:
			return true
		case expired:
			c.expired = true
		}
		return false
	})
	if c.id == "" {
		if c.present {
			c.invalid = !c.expired
			a.cookieRejected()
		}
		return "", "", nil
	}
	return c.id, c.route, a.b.pool.Lookup(c.route)
}

// parseInsert checks one value of Tether's cookie and, if it is valid,
// records it in a.insert. expired reports an authentic cookie past its
// limits.
func (a *attempt) parseInsert(v string) (ok, expired bool) {
	i := strings.LastIndexByte(v, insertSep)
	if i < 0 || !a.s.macs.verify(v[:i], v[i+1:]) {
		return false, false
	}
	rt, rest, _ := strings.Cut(v[:i], string(insertSep))
	id, rest, _ := strings.Cut(rest, string(insertSep))
	is, rs, _ := strings.Cut(rest, string(insertSep))
	issued, err1 := strconv.ParseInt(is, 36, 64)
	renewed, err2 := strconv.ParseInt(rs, 36, 64)
	if !route.Valid(rt) || len(id) != insertIDLen || err1 != nil || err2 != nil {
		return false, false // signed by us, so never: a key was leaked or reused
	}
	now, ck := a.start, &a.s.opts.Cookie
	skew := int64(clockSkew / time.Second)
	unix := now.Unix()
	switch {
	case issued > unix+skew || renewed > unix+skew || renewed < issued:
		return false, false
	case ck.MaxLife > 0 && unix-issued >= int64(ck.MaxLife/time.Second),
		ck.MaxIdle > 0 && unix-renewed >= int64(ck.MaxIdle/time.Second):
		a.insert.expiredRoute = rt
		return false, true
	}
	c := &a.insert
	c.id, c.route, c.issued, c.renewed = id, rt, issued, renewed
	return true, false
}

// cookieRejected tells the observer about a cookie that counted as none.
func (a *attempt) cookieRejected() {
	so, ok := a.s.opts.Observer.(SessionObserver)
	if !ok {
		return
	}
	ev := SessionEvent{Balancer: a.s.opts.Name, Kind: SessionCookieInvalid}
	if a.insert.expired {
		ev.Kind = SessionCookieExpired
		if m := a.b.pool.Lookup(a.insert.expiredRoute); m != nil {
			ev.Member = m.route // a route the balancer wrote, never the client's text
		}
	}
	so.ObserveSession(ev)
}

// trackInsert applies a response in insert mode: it decides Tether's
// cookie (a.setCookie) and counts the session. setCookies are the
// response's own Set-Cookie lines: one expiring a cookie of StickyNames
// is the application's logout, which ends the session.
func (b *Balancer) trackInsert(a *attempt, setCookies []string) {
	t, m, c := b.tracker, a.active, &a.insert
	for _, line := range setCookies {
		if _, expired, ok := a.stickyCookie(line); ok && expired {
			if c.id != "" {
				t.forget(c.id)
				b.sessionEvent(a, m, SessionExpired)
				a.setCookie = a.appendExpiredInsert(a.setCookie[:0])
			}
			return // a logout starts no session
		}
	}
	unix := a.start.Unix()
	switch {
	case c.id == "": // a new session
		var raw [12]byte
		rand.Read(raw[:])
		id := base64.RawURLEncoding.EncodeToString(raw[:])
		a.setCookie = a.appendInsert(a.setCookie[:0], m.route, id, unix, unix)
		t.touch(id, m, a.start)
		b.sessionEvent(a, m, SessionCreated)
		return
	case c.route != m.route: // failed over or moved: the new member's name
		a.setCookie = a.appendInsert(a.setCookie[:0], m.route, c.id, c.issued, unix)
		t.touch(c.id, m, a.start)
		b.sessionEvent(a, m, SessionRouteRewritten)
		return
	}
	if idle := int64(a.s.opts.Cookie.MaxIdle / time.Second); idle > 0 && unix-c.renewed >= max(idle/4, 1) {
		a.setCookie = a.appendInsert(a.setCookie[:0], m.route, c.id, c.issued, unix)
	}
	t.touch(c.id, m, a.start)
}

// appendInsert appends a Set-Cookie value for Tether's cookie.
func (a *attempt) appendInsert(dst []byte, rt, id string, issued, renewed int64) []byte {
	ck := &a.s.opts.Cookie
	dst = append(append(dst, ck.Name...), '=')
	from := len(dst)
	dst = append(append(dst, rt...), insertSep)
	dst = append(append(dst, id...), insertSep)
	dst = append(strconv.AppendInt(dst, issued, 36), insertSep)
	dst = strconv.AppendInt(dst, renewed, 36)
	end := len(dst)
	dst = a.s.macs.sign(append(dst, insertSep), dst[from:end])
	return a.appendCookieAttrs(dst)
}

// appendExpiredInsert appends a Set-Cookie value that removes Tether's
// cookie.
func (a *attempt) appendExpiredInsert(dst []byte) []byte {
	dst = append(append(dst, a.s.opts.Cookie.Name...), "=; Max-Age=0"...)
	return a.appendCookieAttrs(dst)
}

func (a *attempt) appendCookieAttrs(dst []byte) []byte {
	ck := &a.s.opts.Cookie
	dst = append(append(dst, "; Path="...), ck.Path...)
	if ck.Domain != "" {
		dst = append(append(dst, "; Domain="...), ck.Domain...)
	}
	secure := ck.Secure == SecureAlways || (ck.Secure == SecureAuto && a.https)
	if secure {
		dst = append(dst, "; Secure"...)
	}
	if !ck.Script {
		dst = append(dst, "; HttpOnly"...)
	}
	switch ck.SameSite {
	case http.SameSiteLaxMode:
		dst = append(dst, "; SameSite=Lax"...)
	case http.SameSiteStrictMode:
		dst = append(dst, "; SameSite=Strict"...)
	case http.SameSiteNoneMode:
		dst = append(dst, "; SameSite=None"...)
	}
	return dst
}
