package balancer

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/route"
)

// The stickiness scenarios of route mode (stick, failover, nofailover,
// drain to zero, logout), in the modes where the balancer carries the
// route itself, against members that know nothing of routes.

// eachManagedMode runs f for insert and prefix mode, in both engines.
func eachManagedMode(t *testing.T, f func(*testing.T, engine, StickyMode)) {
	for _, m := range []StickyMode{StickyInsert, StickyPrefix} {
		t.Run(m.String(), func(t *testing.T) {
			eachEngine(t, func(t *testing.T, e engine) { f(t, e, m) })
		})
	}
}

func newKey() []byte {
	var b [32]byte
	rand.Read(b[:])
	return []byte(hex.EncodeToString(b[:]))
}

// testKey is the cookie key of the tests that do not rotate keys.
var testKey = newKey()

func modeOptions(m StickyMode, keys ...[]byte) Options {
	o := fastOptions()
	o.Sticky = m
	if m == StickyInsert {
		if len(keys) == 0 {
			keys = [][]byte{testKey}
		}
		o.Cookie.Keys = keys
	}
	return o
}

// plainBackends starts route-less members.
func plainBackends(t *testing.T, routes ...string) ([]*backend, []MemberConfig) {
	var bs []*backend
	var ms []MemberConfig
	for _, r := range routes {
		b := newBackend(t, r)
		b.plain = true
		bs = append(bs, b)
		ms = append(ms, memberOf(t, b, 1, Active))
	}
	return bs, ms
}

// checkClean fails if a member saw Tether's cookie or a route prefix:
// the application never sees either.
func checkClean(t *testing.T, m StickyMode, bs []*backend) {
	t.Helper()
	for _, b := range bs {
		for _, h := range b.cookiesSeen() {
			if m == StickyInsert && strings.Contains(h, "TETHERID") || m == StickyPrefix && strings.Contains(h, "~") {
				t.Fatalf("member %s got Cookie: %s", b.route, h)
			}
		}
	}
}

// browser is a client with a cookie jar, as a browser keeps cookies.
type browser struct {
	t      *testing.T
	c      *http.Client
	base   string
	member string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar}, base: base}
}

// get requests path and returns the status; member is who answered.
func (b *browser) get(path string) int {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	b.member = resp.Header.Get("X-Member")
	return resp.StatusCode
}

// mustGet requests path and fails unless the answer is 200.
func (b *browser) mustGet(path string) {
	b.t.Helper()
	if st := b.get(path); st != http.StatusOK {
		b.t.Fatalf("GET %s: %d", path, st)
	}
}

// cookie returns the value of the cookie name the browser holds.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// routeCookie is the cookie that carries the route in mode m.
func routeCookie(m StickyMode) string {
	if m == StickyInsert {
		return "TETHERID"
	}
	return "JSESSIONID"
}

// browsersOn opens sessions until n of them are on member route.
func browsersOn(t *testing.T, base, route string, n int) []*browser {
	var out []*browser
	for i := 0; len(out) < n; i++ {
		if i > 20*n {
			t.Fatalf("%d sessions, fewer than %d on %s", i, n, route)
		}
		b := newBrowser(t, base)
		b.mustGet("/")
		if b.member == route {
			out = append(out, b)
		}
	}
	return out
}

func TestManagedSessionsStick(t *testing.T) { eachManagedMode(t, testManagedSessionsStick) }

func testManagedSessionsStick(t *testing.T, e engine, m StickyMode) {
	bs, ms := plainBackends(t, "n1", "n2", "n3")
	bal, srv := e.front(t, modeOptions(m), ms...)
	var users []*browser
	for i := 0; i < 30; i++ {
		u := newBrowser(t, srv.URL)
		u.mustGet("/")
		if c := u.cookie(routeCookie(m)); !strings.HasPrefix(c, u.member+"~") {
			t.Fatalf("cookie %s=%q after a response from %s", routeCookie(m), c, u.member)
		}
		users = append(users, u)
	}
	for _, u := range users {
		first := u.member
		for j := 0; j < 4; j++ {
			if u.mustGet("/"); u.member != first {
				t.Fatalf("session of %s went to %s", first, u.member)
			}
		}
	}
	if live := liveOn(bal); live["n1"] != 10 || live["n2"] != 10 || live["n3"] != 10 {
		t.Fatalf("live sessions %v, want 10 on each member", live)
	}
	checkClean(t, m, bs)
}

// TestManagedFailover: the sessions of a member that went away go, every
// request of one session, to the same member, on two independent
// instances; in insert mode the cookie then names the new member.
func TestManagedFailover(t *testing.T) { eachManagedMode(t, testManagedFailover) }

func testManagedFailover(t *testing.T, e engine, m StickyMode) {
	bs, ms := plainBackends(t, "n1", "n2", "n3", "n4")
	_, a := e.front(t, modeOptions(m), ms...)
	_, b := e.front(t, modeOptions(m), ms...) // same name and key: cookies are valid on both
	users := browsersOn(t, a.URL, "n2", 12)
	bs[1].srv.Close()
	used := map[string]bool{}
	for i, u := range users {
		u.mustGet("/")
		first := u.member
		if first == "n2" || first == "" {
			t.Fatalf("user %d: served by %q after n2 went away", i, first)
		}
		used[first] = true
		for j := 0; j < 4; j++ {
			u.base = []string{a.URL, b.URL}[j%2]
			if u.mustGet("/"); u.member != first {
				t.Fatalf("user %d: request %d went to %s, first to %s", i, j, u.member, first)
			}
		}
		if m == StickyInsert && !strings.HasPrefix(u.cookie("TETHERID"), first+"~") {
			t.Fatalf("user %d: cookie %q does not name %s", i, u.cookie("TETHERID"), first)
		}
	}
	if len(used) < 2 {
		t.Errorf("12 sessions of a dead member all failed over to %v: not spread", used)
	}
	checkClean(t, m, bs)
}

func TestManagedNoFailover(t *testing.T) { eachManagedMode(t, testManagedNoFailover) }

func testManagedNoFailover(t *testing.T, e engine, m StickyMode) {
	bs, ms := plainBackends(t, "n1", "n2")
	opts := modeOptions(m)
	opts.NoFailover = true
	_, srv := e.front(t, opts, ms...)
	users := browsersOn(t, srv.URL, "n2", 3)
	hits := bs[0].hits.Load()
	bs[1].srv.Close()
	for _, u := range users {
		if st := u.get("/"); st != http.StatusServiceUnavailable {
			t.Fatalf("a session of a member gone got %d from %q, want 503", st, u.member)
		}
	}
	if bs[0].hits.Load() != hits {
		t.Fatal("a nofailover session was sent to another member")
	}
	for i := 0; i < 5; i++ {
		u := newBrowser(t, srv.URL)
		if u.mustGet("/"); u.member != "n1" {
			t.Fatalf("new session went to %q", u.member)
		}
	}
}

// TestManagedDrainToZero drains a member whose users keep browsing, log
// out and come back, or go idle: the count is right at each step and the
// drain ends at zero.
func TestManagedDrainToZero(t *testing.T) { eachManagedMode(t, testManagedDrainToZero) }

func testManagedDrainToZero(t *testing.T, e engine, m StickyMode) {
	bs, ms := plainBackends(t, "n1", "n2", "n3")
	clk, log := newClock(), &stateLog{}
	opts := modeOptions(m)
	opts.Now, opts.SessionIdle, opts.DrainStop, opts.OnStateChange = clk.Now, 10*time.Minute, true, log.record
	bal, srv := e.front(t, opts, ms...)
	var users, onN2 []*browser
	for i := 0; i < 30; i++ {
		u := newBrowser(t, srv.URL)
		u.mustGet("/")
		users = append(users, u)
		if u.member == "n2" {
			onN2 = append(onN2, u)
		}
	}
	if len(onN2) != 10 || liveOn(bal)["n2"] != 10 {
		t.Fatalf("setup: %d users on n2, live %v", len(onN2), liveOn(bal))
	}
	for i := 0; i < 3; i++ { // a whole idle window: counts are exact
		clk.Add(opts.SessionIdle / 2)
		for _, u := range users {
			u.mustGet("/")
		}
	}
	bal.tick(clk.Now())
	browsing, leaving := onN2[:4], onN2[4:7]

	bal.Pool().SetState("n2", Draining, "")
	clk.Add(time.Minute)
	for _, u := range browsing {
		if u.mustGet("/"); u.member != "n2" {
			t.Fatalf("a draining member's user was moved to %s", u.member)
		}
	}
	for _, u := range leaving {
		u.mustGet("/logout")
		if c := u.cookie(routeCookie(m)); c != "" {
			t.Fatalf("cookie %s=%q kept after logout", routeCookie(m), c)
		}
		if u.mustGet("/"); u.member == "n2" {
			t.Fatal("a returning user was balanced to the draining member")
		}
	}
	if got := statsOf(bal, "n2"); got.LiveSessions != 7 || got.Drain == nil || got.Drain.StartSessions != 10 || got.Drain.Remaining != 7 {
		t.Fatalf("after logouts: %+v, want 7 remaining of 10", got)
	}
	clk.Add(6 * time.Minute)
	for _, u := range browsing {
		u.mustGet("/")
	}
	bal.tick(clk.Add(5 * time.Minute)) // idle users last seen 11 minutes ago, browsing 5
	if got := liveOn(bal)["n2"]; got != 4 {
		t.Fatalf("after the idle window: %d live on n2, want the 4 browsing users", got)
	}
	for _, u := range browsing {
		u.mustGet("/logout")
	}
	bal.tick(clk.Now())
	if st := bal.Pool().Lookup("n2").State(); st != Stopped {
		t.Fatalf("state %v after the last session left, want stopped", st)
	}
	if c := log.last(); c.Member != "n2" || c.To != Stopped || !strings.Contains(c.Reason, "no live session") {
		t.Fatalf("state change %+v", c)
	}
	checkClean(t, m, bs)
}

// TestManagedReplicatedDrainMoves: with replicated sessions, a draining
// member's users are moved at their next request and the drain ends.
func TestManagedReplicatedDrainMoves(t *testing.T) {
	eachManagedMode(t, testManagedReplicatedDrainMoves)
}

func testManagedReplicatedDrainMoves(t *testing.T, e engine, m StickyMode) {
	_, ms := plainBackends(t, "n1", "n2", "n3")
	opts := modeOptions(m)
	opts.Replicated = true
	bal, srv := e.front(t, opts, ms...)
	users := browsersOn(t, srv.URL, "n2", 6)
	bal.Pool().SetState("n2", Draining, "")
	for i, u := range users {
		if u.mustGet("/"); u.member == "n2" {
			t.Fatalf("user %d stayed on the draining member", i)
		}
		moved := u.member
		if u.mustGet("/"); u.member != moved {
			t.Fatalf("user %d: moved to %s, then sent to %s", i, moved, u.member)
		}
	}
	if live := liveOn(bal)["n2"]; live != 0 {
		t.Fatalf("%d sessions still counted on n2 after every user moved", live)
	}
}

// sessionLog records session events.
type sessionLog struct {
	mu     sync.Mutex
	events []SessionEvent
}

func (l *sessionLog) ObserveRequest(RequestInfo) {}

func (l *sessionLog) ObserveSession(ev SessionEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *sessionLog) count(k SessionEventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

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

// stickyAttempt returns an attempt of a balancer in mode m with members
// n1 and n2, and routes for prefix mode answered by n1.
func stickyAttempt(t testing.TB, m StickyMode) *attempt {
	o := modeOptions(m)
	o.Logger = fastOptions().Logger
	u, _ := url.Parse("http://127.0.0.1:1")
	b, err := New(o, []MemberConfig{{URL: u, Route: "n1"}, {URL: u, Route: "n2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	a := &attempt{}
	a.begin(b, b.cur.Load())
	a.active = b.pool.Lookup("n1")
	return a
}

func TestCookieHeaderForMember(t *testing.T) {
	tests := []struct {
		mode     StickyMode
		in, want string // want "" : the header is left out
	}{
		{StickyInsert, "TETHERID=n1~x~y~z~m", ""},
		{StickyInsert, "a=1; TETHERID=n1~x; b=2", "a=1; b=2"},
		{StickyInsert, " a=1 ;; TETHERID=v;TETHERID=w ", "a=1"},
		{StickyInsert, "TETHERIDX=1; XTETHERID=2", "TETHERIDX=1; XTETHERID=2"},
		{StickyInsert, "flag; a=1", "flag; a=1"},
		{StickyPrefix, "JSESSIONID=n1~ABC", "JSESSIONID=ABC"},
		{StickyPrefix, `a=1; JSESSIONID="n2~ABC"; jsessionid=n1~x~y`, "a=1; JSESSIONID=ABC; jsessionid=x~y"},
		{StickyPrefix, "JSESSIONID=ABC; other=n1~ABC", "JSESSIONID=ABC; other=n1~ABC"},
		{StickyPrefix, "JSESSIONID=n1~; JSESSIONID=~ABC; JSESSIONID=bad route~x", "JSESSIONID=n1~; JSESSIONID=~ABC; JSESSIONID=bad route~x"},
		{StickyPrefix, "", ""},
	}
	for _, tt := range tests {
		a := stickyAttempt(t, tt.mode)
		got, ok := a.appendCookieHeader(nil, tt.in)
		if string(got) != tt.want || ok != (tt.want != "") {
			t.Errorf("%v %q: %q %v, want %q", tt.mode, tt.in, got, ok, tt.want)
		}
	}
}

func TestPrefixSetCookie(t *testing.T) {
	tests := []struct{ in, want string }{ // want "": passed as it came
		{"JSESSIONID=ABC; Path=/; HttpOnly", "JSESSIONID=n1~ABC; Path=/; HttpOnly"},
		{`JSESSIONID="ABC"; Path=/`, `JSESSIONID="n1~ABC"; Path=/`},
		{"JSESSIONID= ABC", "JSESSIONID= n1~ABC"},
		{"jsessionid=ABC", "jsessionid=n1~ABC"},
		{"JSESSIONID=; Max-Age=0", ""},
		{"JSESSIONID=ABC; Max-Age=0", ""},
		{"OTHER=ABC", ""},
		{"garbage", ""},
	}
	a := stickyAttempt(t, StickyPrefix)
	for _, tt := range tests {
		got, ok := a.prefixSetCookie(nil, tt.in)
		if string(got) != tt.want || ok != (tt.want != "") {
			t.Errorf("%q: %q %v, want %q", tt.in, got, ok, tt.want)
		}
	}
}

// FuzzStickyCookieHeader: whatever a client sends, finding the session
// and rewriting the Cookie header for the member do not fail, the member
// never gets Tether's cookie, and only a cookie Tether signed is valid.
func FuzzStickyCookieHeader(f *testing.F) {
	f.Add("TETHERID=n1~AAAAAAAAAAAAAAAA~tph4p7~tph4p7~bxd_3TRF0b1sv_8oNRh_5g; JSESSIONID=n2~ABC")
	f.Add(`a=1; JSESSIONID="n1~x~y"; TETHERID=~~~~; TETHERID`)
	f.Add(";;; =; TETHERID=n1~zzzzzzzzzzzzz~-1~0~")
	ins, pre := stickyAttempt(f, StickyInsert), stickyAttempt(f, StickyPrefix)
	f.Fuzz(func(t *testing.T, header string) {
		for _, a := range []*attempt{ins, pre} {
			a.req.cookies = []string{header}
			a.insert = insertCookie{}
			id, rt, _ := a.session()
			if a == ins && id != "" {
				t.Fatalf("unsigned %q accepted: %q %q", header, id, rt)
			}
			if a == pre && id != "" && !strings.Contains(header, rt+"~"+id) && !strings.Contains(header, `"`) {
				t.Fatalf("session %q %q not in %q", id, rt, header)
			}
			out, _ := a.appendCookieHeader(nil, header)
			if a == ins {
				if _, _, found := route.Cookie(string(out), "TETHERID"); found {
					t.Fatalf("%q went to the member as %q", header, out)
				}
			}
			if a == pre && id != "" && !strings.Contains(string(out), "="+id) {
				t.Fatalf("%q went to the member as %q, without the session's value %q", header, out, id)
			}
		}
	})
}

// TestManagedRoutingDoesNotAllocate: routing a sticky request costs no
// allocation in insert mode (the signature checked) or prefix mode.
func TestManagedRoutingDoesNotAllocate(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector drops pooled objects (the MACs of insert mode)")
	}
	now := time.Now()
	for _, tc := range []struct {
		mode   StickyMode
		cookie string
	}{
		{StickyInsert, "a=1; TETHERID=" + cookieValue(signedWith(t, testKey, "n2", now))},
		{StickyPrefix, "a=1; JSESSIONID=n2~8F3A2B9C1D4E5F60718293A4B5C6D7E8; b=2"},
	} {
		opts := modeOptions(tc.mode)
		opts.Now = func() time.Time { return now }
		bal, err := New(opts, []MemberConfig{cfg("n1", "http://127.0.0.1:1", 1, Active), cfg("n2", "http://127.0.0.1:2", 1, Active)})
		if err != nil {
			t.Fatal(err)
		}
		a := new(attempt)
		r := routingRequest(tc.cookie)
		if m := routeOnce(bal, a, r); m.route != "n2" {
			t.Fatalf("%v: routed to %s", tc.mode, m.route)
		}
		if n := testing.AllocsPerRun(200, func() { routeOnce(bal, a, r) }); n != 0 {
			t.Errorf("%v: %v allocations per request", tc.mode, n)
		}
		bal.Close()
	}
}

// BenchmarkManagedRouting is the routing cost of a sticky request in each
// mode (insert: the cookie's signature checked).
func BenchmarkManagedRouting(b *testing.B) {
	now := time.Now()
	for _, tc := range []struct {
		mode   StickyMode
		cookie string
	}{
		{StickyRoute, benchCookie},
		{StickyInsert, "_ga=GA1.2.3; theme=dark; TETHERID=" + cookieValue(signedWith(b, testKey, "n2", now)) + "; lang=en"},
		{StickyPrefix, "_ga=GA1.2.3; theme=dark; JSESSIONID=n2~8F3A2B9C1D4E5F60718293A4B5C6D7E8; lang=en"},
	} {
		b.Run(tc.mode.String(), func(b *testing.B) {
			opts := modeOptions(tc.mode)
			bal, err := New(opts, []MemberConfig{cfg("n1", "http://127.0.0.1:1", 1, Active), cfg("n2", "http://127.0.0.1:2", 1, Active)})
			if err != nil {
				b.Fatal(err)
			}
			defer bal.Close()
			a, r := new(attempt), routingRequest(tc.cookie)
			b.ReportAllocs()
			for b.Loop() {
				routeOnce(bal, a, r)
			}
		})
	}
}
