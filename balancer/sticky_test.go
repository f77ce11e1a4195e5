package balancer

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestPrefixSessionsCreatedWhileDraining: in prefix mode the balancer
// sees the application's ids, so an application that creates a session
// on logout while its node drains is counted, as in route mode.
func TestPrefixSessionsCreatedWhileDraining(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		_, ms := plainBackends(t, "n1", "n2")
		bal, srv := e.front(t, modeOptions(StickyPrefix), ms...)
		u := browsersOn(t, srv.URL, "n2", 1)[0]
		bal.Pool().SetState("n2", Draining, "")
		u.mustGet("/badlogout") // a new session at once: still pinned to n2
		if !strings.HasPrefix(u.cookie("JSESSIONID"), "n2~") {
			t.Fatalf("cookie %q", u.cookie("JSESSIONID"))
		}
		if s := statsOf(bal, "n2"); s.CreatedWhileDraining != 1 || s.LiveSessions != 1 {
			t.Fatalf("stats %+v, want 1 created while draining, 1 live", s)
		}
	})
}
