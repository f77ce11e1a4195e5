package session_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// TestLifecycle is the well-behaved lifecycle a balancer relies on: no
// session until something is stored, and every unusable or ended session's
// cookie expired with the Path and Domain it was set with.
func TestLifecycle(t *testing.T) {
	const (
		none = iota
		valid
		expired
		unknown
		malformed
		foreign
	)
	tests := []struct {
		name      string
		presented int
		action    string
		cookie    string // "none", "new" (a session other than the presented one), "expire"
		sessions  int
		status    int
	}{
		{"get without cookie creates nothing", none, "get", "none", 0, 200},
		{"put without cookie creates a session", none, "put", "new", 1, 200},
		{"get with a valid cookie sets nothing", valid, "get", "none", 1, 200},
		{"put with a valid cookie keeps the id", valid, "put", "none", 1, 200},
		{"a stale cookie on a request that ignores the session is left alone", unknown, "ignore", "none", 0, 200},
		{"expired id: cookie expired", expired, "get", "expire", 0, 200},
		{"unknown id: cookie expired", unknown, "get", "expire", 0, 200},
		{"malformed id: cookie expired", malformed, "get", "expire", 0, 200},
		{"other node's route: cookie expired", foreign, "get", "expire", 1, 200},
		{"expired id then put: a new session", expired, "put", "new", 1, 200},
		{"invalidate: cookie expired, nothing created", valid, "invalidate", "expire", 0, 200},
		{"invalidate then put: a new id", valid, "invalidate+put", "new", 1, 200},
		{"invalidate without a session", none, "invalidate", "none", 0, 200},
		{"logout: 303, cookie expired, nothing created", valid, "logout", "expire", 0, 303},
		{"logout with an unknown id: cookie expired", unknown, "logout", "expire", 0, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, session.Options{Cookie: session.CookieOptions{Path: "/app", Domain: "example.com"}})
			var cookie string
			switch tt.presented {
			case valid, expired, foreign:
				cookie = sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/app/"))
				if tt.presented == expired {
					e.clock.Advance(30 * time.Minute)
				}
				if tt.presented == foreign {
					cookie = strings.TrimSuffix(cookie, ".n1") + ".n2"
				}
			case unknown:
				cookie = "JSESSIONID=AAAAAAAAAAAAAAAAAAAAAA.n1"
			case malformed:
				cookie = "JSESSIONID=../etc/passwd"
			}
			var cookies []string
			if cookie != "" {
				cookies = append(cookies, cookie)
			}
			resp := e.do(action(t, e.m, tt.action), "GET", "/app/page", cookies...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			checkCookie(t, resp, tt.cookie, cookie, "Path=/app", "Domain=example.com")
			if n := e.sessions(); n != tt.sessions {
				t.Fatalf("%d sessions stored, want %d", n, tt.sessions)
			}
		})
	}
}

// action returns the handler doing what a TestLifecycle case names.
func action(t *testing.T, m *session.Manager, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		var err error
		switch name {
		case "get":
			_, err = session.Get[string](s, "k")
		case "put":
			err = s.Put("k", "new")
		case "invalidate":
			err = s.Invalidate()
		case "invalidate+put":
			if err = s.Invalidate(); err == nil {
				err = s.Put("k", "after")
			}
		case "logout":
			m.Logout(w, r, "/app/bye")
			return
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// checkCookie checks the response's Set-Cookie against want ("none", "new",
// "expire"), given the cookie the request presented.
// For "expire" it checks the attributes attrs too.
func checkCookie(t *testing.T, resp *http.Response, want, presented string, attrs ...string) {
	t.Helper()
	sc := setCookies(resp)
	switch want {
	case "none":
		if len(sc) != 0 {
			t.Fatalf("Set-Cookie %q, want none", sc)
		}
	case "new":
		got := sessionCookie(t, resp)
		if got == presented || presented != "" && idPart(got) == idPart(presented) {
			t.Fatalf("Set-Cookie %q reuses the presented id %q", got, presented)
		}
	case "expire":
		if len(sc) != 1 {
			t.Fatalf("Set-Cookie %q, want one expiring the cookie", sc)
		}
		for _, attr := range append(attrs, "JSESSIONID=;", "Max-Age=0", "Expires=Thu, 01 Jan 1970 00:00:00 GMT") {
			if !strings.Contains(sc[0], attr) {
				t.Fatalf("Set-Cookie %q lacks %q: a browser would keep the cookie", sc[0], attr)
			}
		}
	}
}

func TestNewSessionCookie(t *testing.T) {
	e := newEnv(t, session.Options{})
	resp := e.do(put(t, "k", "v"), "POST", "/")
	sc := setCookies(resp)
	if len(sc) != 1 {
		t.Fatalf("Set-Cookie %q", sc)
	}
	// JSESSIONID=<22 URL-safe base64 characters: 128 bits>.n1; Path=/; HttpOnly; SameSite=Lax
	name, rest, _ := strings.Cut(sc[0], "=")
	value, attrs, _ := strings.Cut(rest, "; ")
	id, rt, _ := strings.Cut(value, ".")
	if name != "JSESSIONID" || rt != "n1" || len(id) != 22 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("Set-Cookie %q: want JSESSIONID=<22 base64url chars>.n1", sc[0])
	}
	if attrs != "Path=/; HttpOnly; SameSite=Lax" {
		t.Fatalf("attributes %q, want exactly Path=/; HttpOnly; SameSite=Lax", attrs)
	}
	if !strings.Contains(resp.Header.Get("Cache-Control"), `no-cache="Set-Cookie"`) || resp.Header.Get("Vary") != "Cookie" {
		t.Fatalf("caching headers: Cache-Control %q, Vary %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Vary"))
	}
	created, _ := e.lis.snapshot()
	if len(created) != 1 || created[0] != id || e.obs.created != 1 {
		t.Fatalf("created listener %v, observer %d; want once for %s", created, e.obs.created, id)
	}
	// The next requests see the session and fire nothing more.
	for i := 0; i < 3; i++ {
		if got := body(t, e.do(get(t, "k"), "GET", "/", "JSESSIONID="+value)); got != `v` {
			t.Fatalf("read back %q", got)
		}
	}
	if created, _ := e.lis.snapshot(); len(created) != 1 {
		t.Fatalf("created fired %d times", len(created))
	}
}

func TestIDsAreDistinct(t *testing.T) {
	e := newEnv(t, session.Options{})
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		c := sessionCookie(t, e.do(put(t, "k", i), "POST", "/"))
		if seen[c] {
			t.Fatalf("id %s issued twice", c)
		}
		seen[c] = true
	}
}

func TestHexIDsWhenSeparatorIsBase64(t *testing.T) {
	e := newEnv(t, session.Options{Separator: '-'})
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	id, rt, _ := strings.Cut(strings.TrimPrefix(c, "JSESSIONID="), "-")
	if rt != "n1" || len(id) != 32 || strings.Trim(id, "0123456789ABCDEF") != "" {
		t.Fatalf("cookie %q: want 32 upper-case hex digits, '-', n1", c)
	}
	if got := body(t, e.do(get(t, "k"), "GET", "/", c)); got != "v" {
		t.Fatalf("read back %q", got)
	}
}

// TestUnusedSessionCostsNothing checks that a request whose handler never
// touches its session reads nothing from the store, writes nothing and
// leaves its cookie alone.
func TestUnusedSessionCostsNothing(t *testing.T) {
	fs := &failingStore{fail: map[session.Op]error{session.OpLoad: errBroken, session.OpSave: errBroken}}
	e := newEnv(t, session.Options{Store: fs})
	resp := e.do(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("static")) }, "GET", "/",
		"JSESSIONID=AAAAAAAAAAAAAAAAAAAAAA.n1")
	if resp.StatusCode != 200 || len(setCookies(resp)) != 0 || resp.Header.Get("Vary") != "" {
		t.Fatalf("status %d, Set-Cookie %q, Vary %q", resp.StatusCode, setCookies(resp), resp.Header.Get("Vary"))
	}
}

func TestMultipleCookiesFirstStale(t *testing.T) {
	e := newEnv(t, session.Options{})
	good := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	// Browsers send one cookie per matching Path, the most specific first.
	resp := e.do(get(t, "k"), "GET", "/", "JSESSIONID=AAAAAAAAAAAAAAAAAAAAAA.n1; "+good)
	if got := body(t, resp); got != "v" {
		t.Fatalf("read %q through the second cookie", got)
	}
	if sc := setCookies(resp); len(sc) != 0 {
		t.Fatalf("Set-Cookie %q: the valid session's cookie must not be expired", sc)
	}
}

func TestAbsoluteLifetime(t *testing.T) {
	e := newEnv(t, session.Options{IdleTimeout: time.Hour, MaxLifetime: 2 * time.Hour})
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	for i := 0; i < 3; i++ { // busy: a request every 35 minutes
		e.clock.Advance(35 * time.Minute)
		if got := body(t, e.do(get(t, "k"), "GET", "/", c)); got != "v" {
			t.Fatalf("after %d requests: %q", i, got)
		}
	}
	e.clock.Advance(20 * time.Minute) // 2h05 after creation, 20 minutes after the last request
	resp := e.do(get(t, "k"), "GET", "/", c)
	if got := body(t, resp); got != "" {
		t.Fatalf("read %q after the absolute lifetime", got)
	}
	checkCookie(t, resp, "expire", c, "Path=/")
	if _, destroyed := e.lis.snapshot(); len(destroyed) != 1 || !strings.HasSuffix(destroyed[0], " lifetime") {
		t.Fatalf("destroyed %v, want once for lifetime", destroyed)
	}
}

func TestTouchInterval(t *testing.T) {
	e := newEnv(t, session.Options{IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute})
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	created := e.clock.Now()
	lastAccess := func() time.Time {
		rec, err := e.store.Load(t.Context(), idPart(c))
		if err != nil {
			t.Fatal(err)
		}
		return rec.LastAccess
	}
	e.clock.Advance(30 * time.Second)
	e.do(get(t, "k"), "GET", "/", c)
	if got := lastAccess(); !got.Equal(created) {
		t.Fatalf("touched within TouchInterval: last access %v", got)
	}
	e.clock.Advance(30 * time.Second)
	e.do(get(t, "k"), "GET", "/", c)
	if got := lastAccess(); !got.Equal(created.Add(time.Minute)) {
		t.Fatalf("not touched after TouchInterval: last access %v", got)
	}
	// Idle timeout counts from the last touch: 9 minutes later it lives.
	e.clock.Advance(9 * time.Minute)
	if got := body(t, e.do(get(t, "k"), "GET", "/", c)); got != "v" {
		t.Fatalf("session lost %v after the last touch", 9*time.Minute)
	}
}

func TestRenewID(t *testing.T) {
	e := newEnv(t, session.Options{})
	old := sessionCookie(t, e.do(put(t, "cart", []string{"apple"}), "POST", "/"))
	oldRec, _ := e.store.Load(t.Context(), idPart(old))
	e.clock.Advance(time.Minute)
	resp := e.do(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		if err := s.RenewID(); err != nil {
			t.Error(err)
		}
		if err := s.Put("user", "alice"); err != nil {
			t.Error(err)
		}
	}, "POST", "/login", old)
	renewed := sessionCookie(t, resp)
	if idPart(renewed) == idPart(old) || !strings.HasSuffix(renewed, ".n1") {
		t.Fatalf("renewed cookie %q from %q: want a new id part, same route", renewed, old)
	}
	rec, err := e.store.Load(t.Context(), idPart(renewed))
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Values["cart"]) != `["apple"]` || string(rec.Values["user"]) != `"alice"` {
		t.Fatalf("renewed session values %q", rec.Values)
	}
	if !rec.Created.Equal(oldRec.Created) || !rec.Deadline.Equal(oldRec.Deadline) {
		t.Fatalf("renewal moved created/deadline: %v/%v, was %v/%v", rec.Created, rec.Deadline, oldRec.Created, oldRec.Deadline)
	}
	// The old id is worthless: its cookie gets expired.
	checkCookie(t, e.do(get(t, "cart"), "GET", "/", old), "expire", old, "Path=/")
	if created, destroyed := e.lis.snapshot(); len(created) != 1 || len(destroyed) != 0 {
		t.Fatalf("renewal fired listeners: created %v, destroyed %v", created, destroyed)
	}
}
