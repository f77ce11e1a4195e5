package balancer

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawGet sends one request with the Cookie header given and returns the
// member that answered and Tether's Set-Cookie line, if any.
func rawGet(t *testing.T, c *http.Client, u, cookie string) (member, setCookie string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with %q: %d", cookie, resp.StatusCode)
	}
	for _, l := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(l, "TETHERID=") {
			setCookie = l
		}
	}
	return resp.Header.Get("X-Member"), setCookie
}

// cookieValue returns the value of a Set-Cookie line.
func cookieValue(line string) string {
	nv, _, _ := strings.Cut(line, ";")
	_, v, _ := strings.Cut(nv, "=")
	return v
}

// TestInsertCookieRejected: a forged, altered or expired cookie counts as
// none (a new session, a new cookie), and is counted.
func TestInsertCookieRejected(t *testing.T) { eachEngine(t, testInsertCookieRejected) }

func testInsertCookieRejected(t *testing.T, e engine) {
	_, ms := plainBackends(t, "n1", "n2", "n3")
	clk, events := newClock(), &sessionLog{}
	opts := modeOptions(StickyInsert)
	opts.Now, opts.Observer = clk.Now, events
	opts.Cookie.MaxIdle, opts.Cookie.MaxLife = 10*time.Minute, time.Hour
	_, srv := e.front(t, opts, ms...)
	c := srv.Client()
	member, line := rawGet(t, c, srv.URL, "")
	good := cookieValue(line)
	if line == "" || !strings.HasPrefix(good, member+"~") {
		t.Fatalf("first response: member %s, Set-Cookie %q", member, line)
	}
	other := map[string]string{"n1": "n2", "n2": "n3", "n3": "n1"}[member]
	parts := strings.Split(good, "~")
	flip := func(s string) string { // one character changed
		b := []byte(s)
		b[len(b)/2] ^= 1
		return string(b)
	}
	forged := map[string]string{
		"another member named":  other + strings.TrimPrefix(good, member),
		"id changed":            strings.Join([]string{parts[0], flip(parts[1]), parts[2], parts[3], parts[4]}, "~"),
		"issue time changed":    strings.Join([]string{parts[0], parts[1], "1", parts[3], parts[4]}, "~"),
		"mac changed":           strings.Join([]string{parts[0], parts[1], parts[2], parts[3], flip(parts[4])}, "~"),
		"no mac":                strings.Join(parts[:4], "~"),
		"route only":            other,
		"empty":                 "",
		"signed by another key": cookieValue(signedWith(t, newKey(), other, clk.Now())),
	}
	for name, v := range forged {
		before := events.count(SessionCookieInvalid)
		_, sc := rawGet(t, c, srv.URL, "TETHERID="+v)
		if sc == "" || strings.Contains(sc, parts[1]) {
			t.Errorf("%s: Set-Cookie %q, want a new session", name, sc)
		}
		if events.count(SessionCookieInvalid) != before+1 {
			t.Errorf("%s: not counted as an invalid cookie", name)
		}
	}
	// The genuine cookie still sticks, and is not renewed before a quarter
	// of max idle.
	clk.Add(time.Minute)
	if m, sc := rawGet(t, c, srv.URL, "TETHERID="+good); m != member || sc != "" {
		t.Fatalf("genuine cookie: served by %s (want %s), Set-Cookie %q", m, member, sc)
	}
	// Past a quarter of max idle it is renewed: same session, new time.
	clk.Add(2 * time.Minute)
	m, sc := rawGet(t, c, srv.URL, "TETHERID="+good)
	renewed := cookieValue(sc)
	if m != member || !strings.HasPrefix(renewed, member+"~"+parts[1]+"~"+parts[2]+"~") || renewed == good {
		t.Fatalf("after 3m: served by %s, Set-Cookie %q; want the same session renewed", m, sc)
	}
	// The old value is now past max idle (renewed 10m ago); the renewed
	// one is not, and is renewed again.
	clk.Add(7 * time.Minute)
	m, sc = rawGet(t, c, srv.URL, "TETHERID="+renewed)
	if m != member || !strings.Contains(sc, "~"+parts[1]+"~") {
		t.Fatalf("renewed cookie after 8m: served by %s, Set-Cookie %q; want the same session renewed", m, sc)
	}
	renewed = cookieValue(sc)
	before := events.count(SessionCookieExpired)
	if _, sc := rawGet(t, c, srv.URL, "TETHERID="+good); sc == "" || strings.Contains(sc, parts[1]) {
		t.Fatalf("a cookie idle for 10m was accepted: Set-Cookie %q", sc)
	}
	if events.count(SessionCookieExpired) != before+1 {
		t.Fatal("an idle cookie was not counted as expired")
	}
	// Renewed all along, a session still ends at max life.
	v := renewed
	for i := 0; i < 30; i++ {
		clk.Add(3 * time.Minute)
		_, sc := rawGet(t, c, srv.URL, "TETHERID="+v)
		if sc == "" {
			continue
		}
		if !strings.Contains(sc, "~"+parts[1]+"~") {
			if now := clk.Now().Unix(); now-mustIssued(t, good) < int64(time.Hour/time.Second) {
				t.Fatalf("session ended after %ds, before its max life", now-mustIssued(t, good))
			}
			if events.count(SessionCookieExpired) != before+2 {
				t.Fatal("a cookie past max life was not counted as expired")
			}
			return
		}
		v = cookieValue(sc)
	}
	t.Fatal("a session renewed every 3 minutes outlived its max life of an hour")
}

// mustIssued reads the issue time of a cookie value.
func mustIssued(t *testing.T, v string) int64 {
	t.Helper()
	parts := strings.Split(v, "~")
	n, err := strconv.ParseInt(parts[2], 36, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// signedWith returns a Set-Cookie line for a session on member rt, signed
// with key by a balancer named "test".
func signedWith(t testing.TB, key []byte, rt string, now time.Time) string {
	t.Helper()
	o := modeOptions(StickyInsert, key)
	s, err := buildSettings(o, &Balancer{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.checker.Close()
	a := &attempt{s: s}
	return string(a.appendInsert(nil, rt, "AAAAAAAAAAAAAAAA", now.Unix(), now.Unix()))
}

// TestInsertKeyRotation: a new key put first signs new cookies while the
// old one still verifies; once the old key is removed, its cookies count
// as none.
func TestInsertKeyRotation(t *testing.T) {
	_, ms := plainBackends(t, "n1", "n2")
	oldKey, newK := newKey(), newKey()
	opts := modeOptions(StickyInsert, oldKey)
	bal, srv := netHTTP.front(t, opts, ms...)
	c := srv.Client()
	member, line := rawGet(t, c, srv.URL, "")
	old := cookieValue(line)

	opts.Cookie.Keys = [][]byte{newK, oldKey}
	if err := bal.Update(opts, ms, ms); err != nil {
		t.Fatal(err)
	}
	if m, sc := rawGet(t, c, srv.URL, "TETHERID="+old); m != member || sc != "" {
		t.Fatalf("after adding a key: old cookie served by %s (want %s), Set-Cookie %q", m, member, sc)
	}
	_, line = rawGet(t, c, srv.URL, "")
	fresh := cookieValue(line)

	opts.Cookie.Keys = [][]byte{newK}
	if err := bal.Update(opts, ms, ms); err != nil {
		t.Fatal(err)
	}
	if _, sc := rawGet(t, c, srv.URL, "TETHERID="+old); sc == "" {
		t.Fatal("a cookie signed by a removed key was accepted")
	}
	if _, sc := rawGet(t, c, srv.URL, "TETHERID="+fresh); sc != "" {
		t.Fatalf("a cookie signed by the new key was replaced: %q", sc)
	}
}

// TestInsertCookieAttributes: the cookie's attributes follow the options;
// Secure is automatic behind TLS.
func TestInsertCookieAttributes(t *testing.T) {
	_, ms := plainBackends(t, "n1")
	tests := []struct {
		name  string
		tune  func(*InsertCookie)
		tls   bool
		want  []string
		avoid []string
	}{
		{"defaults", func(*InsertCookie) {}, false,
			[]string{"TETHERID=n1~", "; Path=/", "; HttpOnly", "; SameSite=Lax"}, []string{"Secure", "Domain", "Max-Age", "Expires"}},
		{"defaults behind TLS", func(*InsertCookie) {}, true, []string{"; Secure", "; HttpOnly"}, nil},
		{"set", func(c *InsertCookie) {
			c.Name, c.Path, c.Domain, c.Secure, c.SameSite, c.Script = "LB", "/shop", "example.com", SecureAlways, http.SameSiteStrictMode, true
		}, false, []string{"LB=n1~", "; Path=/shop", "; Domain=example.com", "; Secure", "; SameSite=Strict"}, []string{"HttpOnly", "TETHERID"}},
		{"never secure", func(c *InsertCookie) { c.Secure, c.SameSite = SecureNever, http.SameSiteDefaultMode }, true,
			[]string{"TETHERID=n1~"}, []string{"Secure", "SameSite"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := modeOptions(StickyInsert)
			tt.tune(&opts.Cookie)
			bal, err := New(opts, ms)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(bal)
			if tt.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer func() { srv.Close(); bal.Close() }()
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var line string
			for _, l := range resp.Header.Values("Set-Cookie") {
				if !strings.HasPrefix(l, "JSESSIONID=") {
					line = l
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("Set-Cookie %q lacks %q", line, w)
				}
			}
			for _, w := range tt.avoid {
				if strings.Contains(line, w) {
					t.Errorf("Set-Cookie %q has %q", line, w)
				}
			}
		})
	}
}

func TestStickyOptionsChecked(t *testing.T) {
	tests := []struct {
		name string
		tune func(*Options)
		want string
	}{
		{"insert without key", func(o *Options) { o.Sticky = StickyInsert }, "needs a cookie key"},
		{"short key", func(o *Options) { o.Sticky, o.Cookie.Keys = StickyInsert, [][]byte{[]byte("short")} }, "fewer than 32"},
		{"bad name", func(o *Options) { o.Sticky, o.Cookie.Keys, o.Cookie.Name = StickyInsert, [][]byte{testKey}, "a b" }, "not a cookie name"},
		{"bad path", func(o *Options) { o.Sticky, o.Cookie.Keys, o.Cookie.Path = StickyInsert, [][]byte{testKey}, "/;x" }, "path or domain"},
		{"unknown mode", func(o *Options) { o.Sticky = 9 }, "unknown sticky mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fastOptions()
			tt.tune(&o)
			_, err := New(o, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestInsertNoCache: with NoCache, the responses that set Tether's cookie,
// and only those, are marked private.
func TestInsertNoCache(t *testing.T) { eachEngine(t, testInsertNoCache) }

func testInsertNoCache(t *testing.T, e engine) {
	_, ms := plainBackends(t, "n1")
	opts := modeOptions(StickyInsert)
	opts.Cookie.NoCache = true
	_, srv := e.front(t, opts, ms...)
	first := do(t, srv.Client(), "GET", srv.URL, "", nil)
	var line string
	for _, l := range first.header.Values("Set-Cookie") {
		if strings.HasPrefix(l, "TETHERID=") {
			line = l
		}
	}
	if line == "" || first.header.Get("Cache-Control") != "private" {
		t.Fatalf("new session: Set-Cookie %q, Cache-Control %q", line, first.header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Cookie", "TETHERID="+cookieValue(line)+"; JSESSIONID=x")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "" {
		t.Fatalf("a response that sets no cookie got Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}
