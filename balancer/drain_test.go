package balancer

import (
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// clock is a settable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// user is a browser: it keeps the cookie the balancer's members give it.
type user struct {
	t      *testing.T
	c      *http.Client
	base   string
	cookie string
	member string
}

func (u *user) get(path string) {
	u.t.Helper()
	r := do(u.t, u.c, "GET", u.base+path, u.cookie, nil)
	if r.status != http.StatusOK {
		u.t.Fatalf("GET %s: %d", path, r.status)
	}
	u.member = r.member
	for _, line := range r.header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(line, "JSESSIONID="); ok {
			u.cookie, _, _ = strings.Cut(v, ";")
		}
	}
}

func liveOn(bal *Balancer) map[string]int64 {
	out := map[string]int64{}
	for _, s := range bal.Stats() {
		out[s.Route] = s.LiveSessions
	}
	return out
}

func statsOf(bal *Balancer, route string) Stats {
	for _, s := range bal.Stats() {
		if s.Route == route {
			return s
		}
	}
	return Stats{}
}

type stateLog struct {
	mu      sync.Mutex
	changes []StateChange
}

func (l *stateLog) record(_ string, c StateChange) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.mu.Unlock()
}

func (l *stateLog) last() StateChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.changes) == 0 {
		return StateChange{}
	}
	return l.changes[len(l.changes)-1]
}

func drainSetup(t *testing.T, e engine, replicated bool, tune ...func(*Options)) (*Balancer, string, *clock, *stateLog) {
	t.Helper()
	var ms []MemberConfig
	for _, r := range []string{"n1", "n2", "n3"} {
		b := newBackend(t, r)
		b.replicated = replicated
		ms = append(ms, memberOf(t, b, 1, Active))
	}
	clk, log := newClock(), &stateLog{}
	opts := fastOptions()
	opts.Now = clk.Now
	opts.SessionIdle = 10 * time.Minute
	opts.DrainStop = true
	opts.Replicated = replicated
	opts.OnStateChange = log.record
	for _, f := range tune {
		f(&opts)
	}
	bal, srv := e.front(t, opts, ms...)
	return bal, srv.URL, clk, log
}

// TestDrainWithUserPopulation drains a member that holds users who keep
// browsing, who log out and come back, and who go idle; the remaining
// count is right at each step and the drain ends at zero.
func TestDrainWithUserPopulation(t *testing.T) { eachEngine(t, testDrainWithUserPopulation) }

func testDrainWithUserPopulation(t *testing.T, e engine) {
	bal, base, clk, log := drainSetup(t, e, false)
	var users []*user
	for i := 0; i < 30; i++ {
		u := &user{t: t, c: &http.Client{}, base: base}
		u.get("/")
		users = append(users, u)
	}
	var onN2 []*user
	for _, u := range users {
		if u.member == "n2" {
			onN2 = append(onN2, u)
		}
	}
	if len(onN2) != 10 || liveOn(bal)["n2"] != 10 {
		t.Fatalf("setup: %d users on n2, live %v", len(onN2), liveOn(bal))
	}
	warmUp(t, bal, clk, users)
	browsing, leaving, idle := onN2[:4], onN2[4:7], onN2[7:]

	bal.Pool().SetState("n2", Draining, "")
	clk.Add(time.Minute)
	for _, u := range browsing {
		u.get("/") // still sticky to n2
		if u.member != "n2" {
			t.Fatalf("a draining member's user was moved: %s", u.member)
		}
	}
	for _, u := range leaving {
		u.get("/logout") // cookie expired: no longer counted
		u.cookie = ""
		u.get("/") // comes back as a new session: never on the draining n2
		if u.member == "n2" {
			t.Fatal("a returning user was balanced to the draining member")
		}
	}
	if got := statsOf(bal, "n2"); got.LiveSessions != 7 || got.Drain == nil || got.Drain.StartSessions != 10 || got.Drain.Remaining != 7 {
		t.Fatalf("after logouts: %+v, want 7 remaining of 10", got)
	}
	if est := statsOf(bal, "n2").Drain.EstimatedEmpty; !est.After(clk.Now()) {
		t.Errorf("estimate %v is not in the future", est)
	}

	// The idle users' sessions age out of the window; the browsing ones stay.
	clk.Add(6 * time.Minute)
	for _, u := range browsing {
		u.get("/")
	}
	bal.tick(clk.Add(5 * time.Minute)) // idle users last seen 11 minutes ago, browsing 5
	_ = idle
	if got := liveOn(bal)["n2"]; got != 4 {
		t.Fatalf("after the idle window: %d live on n2, want the 4 browsing users", got)
	}
	if bal.Pool().Lookup("n2").State() != Draining {
		t.Fatal("stopped while sessions remain")
	}
	// The browsing users finish and log out: the drain is done.
	for _, u := range browsing {
		u.get("/logout")
	}
	bal.tick(clk.Now())
	if st := bal.Pool().Lookup("n2").State(); st != Stopped {
		t.Fatalf("state %v after the last session left, want stopped", st)
	}
	if c := log.last(); c.Member != "n2" || c.To != Stopped || !strings.Contains(c.Reason, "no live session") {
		t.Fatalf("state change %+v", c)
	}
}

// warmUp lets a whole idle window pass since the balancer started, the
// users staying active, so that session counts are exact.
func warmUp(t *testing.T, bal *Balancer, clk *clock, users []*user) {
	t.Helper()
	idle := bal.Options().SessionIdle
	for i := 0; i < 3; i++ {
		clk.Add(idle / 2)
		for _, u := range users {
			u.get("/")
		}
	}
	bal.tick(clk.Now())
}

// TestDrainAfterRestartWaitsForAWholeIdleWindow: a balancer that has just
// started has not seen the sessions of users who have not come back yet,
// so a count of zero does not end a drain until a whole idle window has
// passed.
func TestDrainAfterRestartWaitsForAWholeIdleWindow(t *testing.T) {
	eachEngine(t, testDrainAfterRestartWaitsForAWholeIdleWindow)
}

func testDrainAfterRestartWaitsForAWholeIdleWindow(t *testing.T, e engine) {
	bal, _, clk, _ := drainSetup(t, e, false)
	bal.Pool().SetState("n2", Draining, "")
	bal.tick(clk.Add(9 * time.Minute))
	st := statsOf(bal, "n2")
	if bal.Pool().Lookup("n2").State() != Draining || st.Drain == nil || st.Drain.Exact {
		t.Fatalf("a fresh balancer ended a drain on a count of zero: %v %+v", bal.Pool().Lookup("n2").State(), st.Drain)
	}
	bal.tick(clk.Add(time.Minute))
	if bal.Pool().Lookup("n2").State() != Stopped {
		t.Fatal("not stopped once the idle window passed with no session")
	}
}

// TestReplicatedDrainEndsAfterOneRequestPerUser: with replicated sessions,
// each user's next request moves them, so the drain ends at once.
func TestReplicatedDrainEndsAfterOneRequestPerUser(t *testing.T) {
	eachEngine(t, testReplicatedDrainEndsAfterOneRequestPerUser)
}

func testReplicatedDrainEndsAfterOneRequestPerUser(t *testing.T, e engine) {
	bal, base, clk, _ := drainSetup(t, e, true)
	var onN2 []*user
	for len(onN2) < 8 {
		u := &user{t: t, c: &http.Client{}, base: base}
		u.get("/")
		if u.member == "n2" {
			onN2 = append(onN2, u)
		}
	}
	warmUp(t, bal, clk, onN2)
	bal.Pool().SetState("n2", Draining, "")
	for i, u := range onN2 {
		id, _, _ := strings.Cut(u.cookie, ".")
		u.get("/")
		if u.member == "n2" || !strings.HasPrefix(u.cookie, id+".") || strings.HasSuffix(u.cookie, ".n2") {
			t.Fatalf("user %d: served by %s with cookie %s; want moved, same id, new route", i, u.member, u.cookie)
		}
		if want := int64(len(onN2) - i - 1); liveOn(bal)["n2"] != want {
			t.Fatalf("after %d users moved: %d live on n2, want %d", i+1, liveOn(bal)["n2"], want)
		}
	}
	bal.tick(clk.Now())
	if st := bal.Pool().Lookup("n2").State(); st != Stopped {
		t.Fatalf("state %v, want stopped after one request per user", st)
	}
}

func TestSessionsCreatedWhileDrainingAreCounted(t *testing.T) {
	eachEngine(t, testSessionsCreatedWhileDrainingAreCounted)
}

func testSessionsCreatedWhileDrainingAreCounted(t *testing.T, e engine) {
	bal, base, _, _ := drainSetup(t, e, false)
	var u *user
	for u == nil || u.member != "n2" {
		u = &user{t: t, c: &http.Client{}, base: base}
		u.get("/")
	}
	bal.Pool().SetState("n2", Draining, "")
	u.get("/badlogout") // the app creates a new session on logout: still pinned to n2
	if s := statsOf(bal, "n2"); s.CreatedWhileDraining != 1 || s.LiveSessions != 1 {
		t.Fatalf("stats %+v, want 1 created while draining, 1 live", s)
	}
}

func TestDrainDeadline(t *testing.T) { eachEngine(t, testDrainDeadline) }

func testDrainDeadline(t *testing.T, e engine) {
	bal, base, clk, log := drainSetup(t, e, false, func(o *Options) { o.DrainDeadline, o.SessionIdle = time.Hour, 2*time.Hour })
	u := &user{t: t, c: &http.Client{}, base: base}
	for u.member != "n2" {
		u.cookie = ""
		u.get("/")
	}
	bal.Pool().SetState("n2", Draining, "")
	bal.tick(clk.Add(59 * time.Minute))
	if bal.Pool().Lookup("n2").State() != Draining {
		t.Fatal("stopped before the deadline")
	}
	u.get("/")
	bal.tick(clk.Add(2 * time.Minute))
	if bal.Pool().Lookup("n2").State() != Stopped || !strings.Contains(log.last().Reason, "deadline") {
		t.Fatalf("state %v, change %+v", bal.Pool().Lookup("n2").State(), log.last())
	}
}

func TestTrackerIsBounded(t *testing.T) { eachEngine(t, testTrackerIsBounded) }

func testTrackerIsBounded(t *testing.T, e engine) {
	n1 := newBackend(t, "n1")
	opts := fastOptions()
	opts.MaxTrackedSessions = 5
	bal, srv := e.front(t, opts, memberOf(t, n1, 1, Active))
	for i := 0; i < 8; i++ {
		do(t, srv.Client(), "GET", srv.URL, "", nil)
	}
	tracked, dropped := bal.SessionCounts()
	if tracked != 5 || dropped != 3 || liveOn(bal)["n1"] != 5 {
		t.Fatalf("tracked %d dropped %d live %v", tracked, dropped, liveOn(bal))
	}
}

func TestMemberAnnouncesDrain(t *testing.T) { eachEngine(t, testMemberAnnouncesDrain) }

func testMemberAnnouncesDrain(t *testing.T, e engine) {
	var draining sync.Map
	var checks atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			checks.Add(1)
			if _, ok := draining.Load("yes"); ok {
				w.Header().Set("Tether-State", "draining")
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		w.Header().Set("X-Member", "a1")
	}))
	defer srv.Close()
	log := &stateLog{}
	opts := fastOptions()
	opts.Health.Path, opts.Health.Interval = "/healthz", 5*time.Millisecond
	opts.OnStateChange = log.record
	u, _ := urlParse(srv.URL)
	bal, _ := e.front(t, opts, MemberConfig{URL: u, Route: "a1"})
	draining.Store("yes", true)
	waitState(t, bal, "a1", Draining)
	if !statsOf(bal, "a1").Announced || !bal.Pool().Lookup("a1").Healthy() {
		t.Fatalf("stats %+v", statsOf(bal, "a1"))
	}
	draining.Delete("yes")
	waitState(t, bal, "a1", Active)

	// An operator's drain is not undone by the member's healthy answers.
	bal.Pool().SetState("a1", Draining, "api")
	seen := checks.Load()
	proctest.Eventually(t, 10*time.Second, func() error {
		if checks.Load() < seen+3 {
			return fmt.Errorf("%d checks", checks.Load()-seen)
		}
		return nil
	})
	if bal.Pool().Lookup("a1").State() != Draining || statsOf(bal, "a1").Announced {
		t.Fatal("the member's announcement overrode the operator")
	}
}

func waitState(t *testing.T, bal *Balancer, route string, want State) {
	t.Helper()
	proctest.Eventually(t, 10*time.Second, func() error {
		if got := bal.Pool().Lookup(route).State(); got != want {
			return fmt.Errorf("member %s: state %v, want %v", route, got, want)
		}
		return nil
	})
}

func TestStickyCookieParsing(t *testing.T) {
	a := &attempt{s: &settings{opts: Options{StickyNames: []string{"JSESSIONID", "jsessionid"}}}, start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		line           string
		value          string
		expired, match bool
	}{
		{"JSESSIONID=ABC.n1; Path=/; HttpOnly", "ABC.n1", false, true},
		{`JSESSIONID="ABC.n1"; Path=/`, "ABC.n1", false, true},
		{"JSESSIONID=; Path=/; Max-Age=0", "", true, true},
		{"JSESSIONID=ABC.n1; Max-Age=-1", "ABC.n1", true, true},
		{"JSESSIONID=ABC.n1; max-age=3600", "ABC.n1", false, true},
		{"JSESSIONID=ABC.n1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "ABC.n1", true, true},
		{"JSESSIONID=ABC.n1; Expires=Fri, 01 Jan 2100 00:00:00 GMT", "ABC.n1", false, true},
		{"JSESSIONID=ABC.n1; Expires=garbage", "ABC.n1", false, true},
		{"jsessionid=ABC.n1", "ABC.n1", false, true},
		{"OTHER=ABC.n1", "", false, false},
		{"JSESSIONIDX=ABC.n1", "", false, false},
		{"no equals sign", "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		v, exp, ok := a.stickyCookie(tt.line)
		if v != tt.value || exp != tt.expired || ok != tt.match {
			t.Errorf("%q: %q %v %v, want %q %v %v", tt.line, v, exp, ok, tt.value, tt.expired, tt.match)
		}
	}
}

func FuzzStickyCookie(f *testing.F) {
	f.Add("JSESSIONID=ABC.n1; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
	a := &attempt{s: &settings{opts: Options{StickyNames: []string{"JSESSIONID"}}}, start: time.Now()}
	f.Fuzz(func(t *testing.T, line string) {
		v, _, ok := a.stickyCookie(line)
		if ok && !strings.Contains(line, v) {
			t.Fatalf("value %q not in %q", v, line)
		}
	})
}

// TestEachSessionReportsTheTrackedSessionsWithTheGivenHash: the keys a
// group merges are Options.SessionHash of the ids, on their members.
func TestEachSessionReportsTheTrackedSessionsWithTheGivenHash(t *testing.T) {
	hash := func(id string) uint64 {
		h := fnv.New64a()
		h.Write([]byte("test key " + id))
		return h.Sum64()
	}
	bal, base, _, _ := drainSetup(t, native, false, func(o *Options) { o.SessionHash = hash })
	want := map[uint64]string{}
	for range 4 {
		u := &user{t: t, c: &http.Client{}, base: base}
		u.get("/login")
		id, _, _ := strings.Cut(u.cookie, ".")
		want[hash(id)] = u.member
	}
	if len(want) != 4 {
		t.Fatalf("4 logins gave %d sessions", len(want))
	}
	got := map[uint64]string{}
	bal.EachSession(func(route string, h uint64) { got[h] = route })
	if !maps.Equal(got, want) {
		t.Errorf("EachSession reported %v, want %v", got, want)
	}
}

// TestDrainWaitsForSessionsSeenElsewhere: with DrainStop, a member empty
// here stays draining while LiveElsewhere says other instances still see
// its sessions.
func TestDrainWaitsForSessionsSeenElsewhere(t *testing.T) {
	var elsewhere atomic.Bool
	elsewhere.Store(true)
	var asked atomic.Value
	bal, _, clk, log := drainSetup(t, native, false, func(o *Options) {
		o.SessionIdle = time.Minute
		o.LiveElsewhere = func(route string) bool { asked.Store(route); return elsewhere.Load() }
	})
	bal.Pool().SetState("n2", Draining, "")
	bal.tick(clk.Add(2 * time.Minute)) // warm, and nothing seen here
	if s := bal.Pool().Lookup("n2").State(); s != Draining || asked.Load() != "n2" {
		t.Fatalf("n2 is %v (asked about %v) while sessions are seen elsewhere", s, asked.Load())
	}
	elsewhere.Store(false)
	bal.tick(clk.Add(time.Second))
	if s := bal.Pool().Lookup("n2").State(); s != Stopped || !strings.Contains(log.last().Reason, "drained") {
		t.Fatalf("n2 is %v, change %+v, once no instance sees a session", s, log.last())
	}
}
