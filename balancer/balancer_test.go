package balancer

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestStickyRouteSources(t *testing.T) { eachEngine(t, testStickyRouteSources) }

func testStickyRouteSources(t *testing.T, e engine) {
	n1, n2, n3 := newBackend(t, "n1"), newBackend(t, "n2"), newBackend(t, "n3")
	opts := fastOptions()
	_, srv := e.front(t, opts, memberOf(t, n1, 1, Active), memberOf(t, n2, 1, Active), memberOf(t, n3, 1, Active))
	tests := []struct {
		name   string
		path   string
		cookie string // raw Cookie header
		want   string // member, "" for "any (new session)"
	}{
		{"cookie", "/", "JSESSIONID=ABC.n2", "n2"},
		{"cookie among others", "/", "a=1; JSESSIONID=ABC.n3; b=2", "n3"},
		{"quoted cookie", "/", `JSESSIONID="ABC.n2"`, "n2"},
		{"second name as cookie", "/", "jsessionid=ABC.n3", "n3"},
		{"path parameter", "/app;jsessionid=ABC.n2", "", "n2"},
		{"path parameter before query", "/app;jsessionid=ABC.n3?x=1", "", "n3"},
		{"query parameter", "/app?x=1&jsessionid=ABC.n2", "", "n2"},
		{"cookie beats path", "/app;jsessionid=ABC.n3", "JSESSIONID=ABC.n2", "n2"},
		{"known route beats unknown", "/", "JSESSIONID=ABC.gone; JSESSIONID=DEF.n3", "n3"},
		{"route after first separator", "/", "JSESSIONID=A.B.n1", ""}, // route "B.n1" is unknown
		{"unknown route is new", "/", "JSESSIONID=ABC.n9", ""},
		{"no separator is new", "/", "JSESSIONID=ABC", ""},
		{"empty id is new", "/", "JSESSIONID=.n2", ""},
		{"hostile cookie is new", "/", "JSESSIONID=.; =x.n2; JSESSIONID; JSESSIONID==.n9;;=;", ""},
	}
	c := srv.Client()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < 6; i++ {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
				if tt.cookie != "" {
					req.Header["Cookie"] = []string{tt.cookie}
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				got := resp.Header.Get("X-Member")
				if resp.StatusCode != http.StatusOK || (tt.want != "" && got != tt.want) {
					t.Fatalf("request %d: status %d member %q, want 200 from %q", i, resp.StatusCode, got, tt.want)
				}
			}
		})
	}
}

func TestCustomSeparator(t *testing.T) { eachEngine(t, testCustomSeparator) }

func testCustomSeparator(t *testing.T, e engine) {
	n1, n2 := newBackend(t, "n1"), newBackend(t, "n2")
	opts := fastOptions()
	opts.Separator = '!'
	opts.StickyNames = []string{"PHPSESSID"}
	_, srv := e.front(t, opts, memberOf(t, n1, 1, Active), memberOf(t, n2, 1, Active))
	for i := 0; i < 4; i++ {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Cookie", "PHPSESSID=a.b.c!n2")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Member"); got != "n2" {
			t.Fatalf("member %q, want n2", got)
		}
	}
}

// TestNewSessionsSpreadAfterStickyBurst is the httpd byrequests flaw: sticky
// traffic must not count when spreading new sessions.
func TestNewSessionsSpreadAfterStickyBurst(t *testing.T) {
	eachEngine(t, testNewSessionsSpreadAfterStickyBurst)
}

func testNewSessionsSpreadAfterStickyBurst(t *testing.T, e engine) {
	for _, method := range []Method{ByRequests, ByBusyness, P2C} {
		t.Run(string(method), func(t *testing.T) {
			n1, n2, n3 := newBackend(t, "n1"), newBackend(t, "n2"), newBackend(t, "n3")
			opts := fastOptions()
			opts.Method = method
			_, srv := e.front(t, opts, memberOf(t, n1, 1, Active), memberOf(t, n2, 1, Active), memberOf(t, n3, 1, Active))
			c := srv.Client()
			for i := 0; i < 300; i++ { // one very busy user on n1
				if r := do(t, c, "GET", srv.URL, "BUSY.n1", nil); r.member != "n1" {
					t.Fatalf("sticky request went to %s", r.member)
				}
			}
			counts := map[string]int{}
			for i := 0; i < 300; i++ {
				counts[do(t, c, "GET", srv.URL, "", nil).member]++
			}
			lo, hi := 100, 100
			if method == P2C {
				lo, hi = 60, 140 // random pairs: even on average
			}
			for _, m := range []string{"n1", "n2", "n3"} {
				if counts[m] < lo || counts[m] > hi {
					t.Errorf("new sessions: %v, want %d to %d each", counts, lo, hi)
				}
			}
		})
	}
}

func TestWeightsShareNewSessions(t *testing.T) { eachEngine(t, testWeightsShareNewSessions) }

func testWeightsShareNewSessions(t *testing.T, e engine) {
	n1, n2 := newBackend(t, "n1"), newBackend(t, "n2")
	_, srv := e.front(t, fastOptions(), memberOf(t, n1, 1, Active), memberOf(t, n2, 3, Active))
	counts := map[string]int{}
	for i := 0; i < 200; i++ {
		counts[do(t, srv.Client(), "GET", srv.URL, "", nil).member]++
	}
	if counts["n1"] != 50 || counts["n2"] != 150 {
		t.Fatalf("counts %v, want n1 50, n2 150", counts)
	}
}

// TestFailoverKeepsSessionsTogether: when a session's member is down,
// every request of the session goes to the same new member, on every
// balancer instance.
func TestFailoverKeepsSessionsTogether(t *testing.T) {
	eachEngine(t, testFailoverKeepsSessionsTogether)
}

func testFailoverKeepsSessionsTogether(t *testing.T, e engine) {
	n1, n3, n4 := newBackend(t, "n1"), newBackend(t, "n3"), newBackend(t, "n4")
	dead := MemberConfig{URL: closedURL(t), Route: "n2"}
	ms := []MemberConfig{memberOf(t, n1, 1, Active), dead, memberOf(t, n3, 1, Active), memberOf(t, n4, 1, Active)}
	_, a := e.front(t, fastOptions(), ms...)
	_, b := e.front(t, fastOptions(), ms...) // a second, independent instance
	used := map[string]bool{}
	for i := 0; i < 40; i++ {
		id := newID()
		first := do(t, a.Client(), "GET", a.URL, id+".n2", nil)
		if first.status != http.StatusOK {
			t.Fatalf("status %d", first.status)
		}
		used[first.member] = true
		for j := 0; j < 4; j++ {
			srv := a
			if j%2 == 1 {
				srv = b
			}
			if r := do(t, srv.Client(), "GET", srv.URL, id+".n2", nil); r.member != first.member {
				t.Fatalf("session %s: request %d went to %s, first to %s", id, j, r.member, first.member)
			}
		}
	}
	if len(used) < 2 {
		t.Errorf("40 sessions of a dead member all failed over to %v: not spread", used)
	}
}

func TestNoFailoverRejectsAtOnceAndRecovers(t *testing.T) {
	eachEngine(t, testNoFailoverRejectsAtOnceAndRecovers)
}

func testNoFailoverRejectsAtOnceAndRecovers(t *testing.T, e engine) {
	n1 := newBackend(t, "n1")
	down := closedURL(t)
	opts := fastOptions()
	opts.NoFailover = true
	bal, srv := e.front(t, opts, memberOf(t, n1, 1, Active), MemberConfig{URL: down, Route: "n2"})
	c := srv.Client()

	r := do(t, c, "GET", srv.URL, "S1.n2", nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, `"test"`) {
		t.Fatalf("got %d %q Retry-After=%q; want 503 naming the balancer, with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
	if n1.hits.Load() != 0 {
		t.Fatal("a nofailover session was sent to another member")
	}
	waitHealthy(t, bal, "n2", false)
	// New sessions still work, on n1.
	if r := do(t, c, "GET", srv.URL, "", nil); r.status != http.StatusOK || r.member != "n1" {
		t.Fatalf("new session: %d from %s", r.status, r.member)
	}
	// The member comes back on its port: served again as soon as a probe sees it.
	back := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", "n2")
	}))
	l, err := netListen(down.Host)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	back.Listener = l
	back.Start()
	defer back.Close()
	waitHealthy(t, bal, "n2", true)
	if r := do(t, c, "GET", srv.URL, "S1.n2", nil); r.status != http.StatusOK || r.member != "n2" {
		t.Fatalf("after recovery: %d from %s", r.status, r.member)
	}
}

func TestStandbyOnlyWhenNoActive(t *testing.T) { eachEngine(t, testStandbyOnlyWhenNoActive) }

func testStandbyOnlyWhenNoActive(t *testing.T, e engine) {
	n1, sb := newBackend(t, "n1"), newBackend(t, "sb")
	bal, srv := e.front(t, fastOptions(), memberOf(t, n1, 1, Active), memberOf(t, sb, 1, Standby))
	for i := 0; i < 20; i++ {
		if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.member != "n1" {
			t.Fatalf("new session went to %s while n1 is active", r.member)
		}
	}
	if _, err := bal.Pool().SetState("n1", Stopped, ""); err != nil {
		t.Fatal(err)
	}
	if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.member != "sb" {
		t.Fatalf("no active member: went to %q, want the standby", r.member)
	}
	// The standby's own sessions stay there once n1 is back.
	bal.Pool().SetState("n1", Active, "")
	if r := do(t, srv.Client(), "GET", srv.URL, "X.sb", nil); r.member != "sb" {
		t.Fatalf("standby's session went to %q", r.member)
	}
}

func TestDrainingTakesOnlyStickyTraffic(t *testing.T) {
	eachEngine(t, testDrainingTakesOnlyStickyTraffic)
}

func testDrainingTakesOnlyStickyTraffic(t *testing.T, e engine) {
	n1, n2 := newBackend(t, "n1"), newBackend(t, "n2")
	bal, srv := e.front(t, fastOptions(), memberOf(t, n1, 1, Active), memberOf(t, n2, 1, Active))
	bal.Pool().SetState("n2", Draining, "")
	for i := 0; i < 10; i++ {
		if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.member != "n1" {
			t.Fatalf("new session went to draining %s", r.member)
		}
		if r := do(t, srv.Client(), "GET", srv.URL, "S.n2", nil); r.member != "n2" {
			t.Fatalf("sticky request of draining member went to %s", r.member)
		}
	}
}

func TestReplicatedDrainMovesSessions(t *testing.T) { eachEngine(t, testReplicatedDrainMovesSessions) }

func testReplicatedDrainMovesSessions(t *testing.T, e engine) {
	n1, n2, n3 := newBackend(t, "n1"), newBackend(t, "n2"), newBackend(t, "n3")
	opts := fastOptions()
	opts.Replicated = true
	bal, srv := e.front(t, opts, memberOf(t, n1, 1, Active), memberOf(t, n2, 1, Active), memberOf(t, n3, 1, Active))
	bal.Pool().SetState("n2", Draining, "")
	for i := 0; i < 20; i++ {
		id := newID()
		a := do(t, srv.Client(), "GET", srv.URL, id+".n2", nil)
		b := do(t, srv.Client(), "GET", srv.URL, id+".n2", nil)
		if a.member == "n2" || a.member != b.member {
			t.Fatalf("session of draining n2 went to %s then %s", a.member, b.member)
		}
	}
}

func TestAllDownIs503(t *testing.T) { eachEngine(t, testAllDownIs503) }

func testAllDownIs503(t *testing.T, e engine) {
	_, srv := e.front(t, fastOptions(), MemberConfig{URL: closedURL(t), Route: "n1"}, MemberConfig{URL: closedURL(t), Route: "n2"})
	r := do(t, srv.Client(), "GET", srv.URL, "", nil)
	if r.status != http.StatusBadGateway {
		t.Fatalf("first request: %d, want 502 (both refused)", r.status)
	}
	r = do(t, srv.Client(), "GET", srv.URL, "", nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" || !strings.Contains(r.body, `balancer "test"`) {
		t.Fatalf("all down: %d %q, want 503 with Retry-After naming the balancer", r.status, r.body)
	}
	if strings.Contains(r.body, "127.0.0.1") || strings.Contains(r.body, "refused") {
		t.Errorf("error page leaks internals: %q", r.body)
	}
}

// TestPostRetriedOnlyWhenNotSent: a POST whose connection was refused goes
// to the next member with its body intact; a POST that reached a member
// is never sent again.
func TestPostRetriedOnlyWhenNotSent(t *testing.T) { eachEngine(t, testPostRetriedOnlyWhenNotSent) }

func testPostRetriedOnlyWhenNotSent(t *testing.T, e engine) {
	n2 := newBackend(t, "n2")
	opts := fastOptions()
	_, srv := e.front(t, opts, MemberConfig{URL: closedURL(t), Route: "n1"}, memberOf(t, n2, 1, Active))
	r := do(t, srv.Client(), "POST", srv.URL+"/echo", "", strings.NewReader("item=apple"))
	if r.status != http.StatusOK || r.body != "n2 POST item=apple" {
		t.Fatalf("got %d %q", r.status, r.body)
	}

	h1, h2 := newBackend(t, "h1"), newBackend(t, "h2")
	_, srv2 := e.front(t, fastOptions(), memberOf(t, h1, 1, Active), memberOf(t, h2, 1, Active))
	r = do(t, srv2.Client(), "POST", srv2.URL+"/hangup", "S.h1", strings.NewReader("pay=100"))
	if r.status != http.StatusBadGateway {
		t.Fatalf("POST to a member that hung up: %d, want 502", r.status)
	}
	if h1.posts.Load() != 1 || h2.posts.Load() != 0 {
		t.Fatalf("POST sent %d times to h1 and %d to h2, want once, to h1", h1.posts.Load(), h2.posts.Load())
	}
}

func TestIdempotentGetRetriedAfterHangup(t *testing.T) {
	eachEngine(t, testIdempotentGetRetriedAfterHangup)
}

func testIdempotentGetRetriedAfterHangup(t *testing.T, e engine) {
	h1, h2 := newBackend(t, "h1"), newBackend(t, "h2")
	_, srv := e.front(t, fastOptions(), memberOf(t, h1, 1, Active), memberOf(t, h2, 1, Active))
	r := do(t, srv.Client(), "GET", srv.URL+"/hangup", "S.h1", nil)
	// h2 answers /hangup by hanging up too: both tried, then 502.
	if r.status != http.StatusBadGateway || h1.hits.Load() != 1 || h2.hits.Load() != 1 {
		t.Fatalf("status %d, hits h1=%d h2=%d; want 502 after one try on each", r.status, h1.hits.Load(), h2.hits.Load())
	}
}

func TestNoFailoverNeverRetriesElsewhere(t *testing.T) {
	eachEngine(t, testNoFailoverNeverRetriesElsewhere)
}

func testNoFailoverNeverRetriesElsewhere(t *testing.T, e engine) {
	h1, h2 := newBackend(t, "h1"), newBackend(t, "h2")
	opts := fastOptions()
	opts.NoFailover = true
	_, srv := e.front(t, opts, memberOf(t, h1, 1, Active), memberOf(t, h2, 1, Active))
	r := do(t, srv.Client(), "GET", srv.URL+"/hangup", "S.h1", nil)
	if r.status != http.StatusBadGateway || h2.hits.Load() != 0 {
		t.Fatalf("status %d, h2 hits %d: a sticky request was retried elsewhere under nofailover", r.status, h2.hits.Load())
	}
}

// TestFrozenMember: a member that accepts connections but never answers
// (SIGSTOP) costs one response timeout, then is down.
func TestFrozenMember(t *testing.T) { eachEngine(t, testFrozenMember) }

func testFrozenMember(t *testing.T, e engine) {
	frozen, ok := newBackend(t, "frozen"), newBackend(t, "ok")
	frozen.frozen.Store(true)
	opts := fastOptions()
	opts.ResponseTimeout = 300 * time.Millisecond
	opts.Health.ProbeInterval = time.Hour // stays down for the test
	bal, srv := e.front(t, opts, memberOf(t, frozen, 1, Active), memberOf(t, ok, 1, Active))

	// A GET is retried on the other member after the timeout.
	r := do(t, srv.Client(), "GET", srv.URL+"/", "S.frozen", nil)
	if r.status != http.StatusOK || r.member != "ok" {
		t.Fatalf("GET to frozen member: %d from %q, want 200 from ok", r.status, r.member)
	}
	if bal.Pool().Lookup("frozen").Healthy() {
		t.Fatal("frozen member still up after a timeout")
	}
	// Its sessions now fail over without waiting.
	if r := do(t, srv.Client(), "GET", srv.URL+"/", "T.frozen", nil); r.member != "ok" {
		t.Fatalf("after detection: %q", r.member)
	}

	// A POST is not retried: 504.
	frozen2 := newBackend(t, "f2")
	frozen2.frozen.Store(true)
	_, srv2 := e.front(t, opts, memberOf(t, frozen2, 1, Active), memberOf(t, ok, 1, Active))
	r = do(t, srv2.Client(), "POST", srv2.URL+"/", "S.f2", strings.NewReader("x=1"))
	if r.status != http.StatusGatewayTimeout {
		t.Fatalf("POST to frozen member: %d, want 504", r.status)
	}
}

func TestWebSocketIsProxiedAndSticky(t *testing.T) { eachEngine(t, testWebSocketIsProxiedAndSticky) }

func testWebSocketIsProxiedAndSticky(t *testing.T, e engine) {
	n1, n2 := newBackend(t, "n1"), newBackend(t, "n2")
	_, srv := e.front(t, fastOptions(), memberOf(t, n1, 1, Active), memberOf(t, n2, 1, Active))
	addr := strings.TrimPrefix(srv.URL, "http://")
	for i := 0; i < 3; i++ {
		conn, br := rawUpgrade(t, addr, "WS.n2")
		fmt.Fprintf(conn, "hello %d\n", i)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("n2:hello %d\n", i); line != want {
			t.Fatalf("echo %q, want %q", line, want)
		}
		conn.Close()
	}
}

func TestStreamingIsFlushed(t *testing.T) { eachEngine(t, testStreamingIsFlushed) }

func testStreamingIsFlushed(t *testing.T, e engine) {
	release := make(chan struct{})
	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-release
		fmt.Fprint(w, "data: second\n\n")
	}))
	defer stream.Close()
	defer close(release)
	u, _ := urlParse(stream.URL)
	_, srv := e.front(t, fastOptions(), MemberConfig{URL: u, Route: "s1"})
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event before the stream ended: %q %v", line, err)
	}
}

func TestForwardingHeaders(t *testing.T) { eachEngine(t, testForwardingHeaders) }

func testForwardingHeaders(t *testing.T, e engine) {
	n1 := newBackend(t, "n1")
	tests := []struct {
		name    string
		trusted bool
		want    []string
	}{
		{"untrusted client: replaced", false, []string{
			"X-Forwarded-For: 127.0.0.1\n", "X-Forwarded-Proto: http\n", "X-Forwarded-Host: shop.example\n",
			`Forwarded: for=127.0.0.1;host="shop.example";proto=http` + "\n", "X-Hop: \n", "Host: shop.example\n"}},
		{"trusted proxy: extended", true, []string{
			"X-Forwarded-For: 203.0.113.9, 127.0.0.1\n", "X-Forwarded-Proto: https\n", "X-Forwarded-Host: front.example\n",
			`Forwarded: for=203.0.113.9, for=127.0.0.1;host="front.example";proto=https` + "\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions()
			if tt.trusted {
				opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			_, srv := e.front(t, opts, memberOf(t, n1, 1, Active))
			req, _ := http.NewRequest("GET", srv.URL+"/headers", nil)
			req.Host = "shop.example"
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "front.example")
			req.Header.Set("Forwarded", "for=203.0.113.9")
			req.Header.Set("Connection", "X-Hop")
			req.Header.Set("X-Hop", "secret")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("member saw:\n%s\nwant line %q", body, w)
				}
			}
		})
	}
}

func TestRequestLimits(t *testing.T) { eachEngine(t, testRequestLimits) }

func testRequestLimits(t *testing.T, e engine) {
	n1 := newBackend(t, "n1")
	opts := fastOptions()
	opts.MaxURLBytes = 100
	opts.MaxBodyBytes = 10
	_, srv := e.front(t, opts, memberOf(t, n1, 1, Active))
	if r := do(t, srv.Client(), "GET", srv.URL+"/"+strings.Repeat("a", 200), "", nil); r.status != http.StatusRequestURITooLong {
		t.Errorf("long URI: %d, want 414", r.status)
	}
	if r := do(t, srv.Client(), "POST", srv.URL+"/echo", "", strings.NewReader(strings.Repeat("b", 11))); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("large body with Content-Length: %d, want 413", r.status)
	}
	// A chunked body without Content-Length is cut off when it passes the limit.
	r := do(t, srv.Client(), "POST", srv.URL+"/echo", "", io.MultiReader(strings.NewReader(strings.Repeat("c", 50))))
	if r.status == http.StatusOK && strings.Contains(r.body, strings.Repeat("c", 11)) {
		t.Errorf("chunked body over the limit reached the member: %d %q", r.status, r.body)
	}
	if n1.hits.Load() > 1 {
		t.Errorf("member hit %d times", n1.hits.Load())
	}
	if r := do(t, srv.Client(), "POST", srv.URL+"/echo", "", strings.NewReader("small")); r.status != http.StatusOK {
		t.Errorf("small body: %d", r.status)
	}
}

func TestMemberPathPrefix(t *testing.T) { eachEngine(t, testMemberPathPrefix) }

func testMemberPathPrefix(t *testing.T, e engine) {
	n1 := newBackend(t, "n1")
	u, _ := urlParse(n1.srv.URL + "/ctx/")
	_, srv := e.front(t, fastOptions(), MemberConfig{URL: u, Route: "n1"})
	// The backend echoes the route only; check the path it saw via a 404-free route.
	r := do(t, srv.Client(), "GET", srv.URL+"/echo", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if got := target(&Member{url: u}, mustURL("/a/b?x=1"), mustURL("/a/b?x=1")).String(); got != n1.srv.URL+"/ctx/a/b?x=1" {
		t.Fatalf("target = %s", got)
	}
}

// TestSlowBodyOutlastsResponseTimeout: the response timeout bounds the
// wait for a member's response head, not its body: a body that keeps
// coming after it has passed (a slow download, a stream) is relayed
// whole, and the member connection is reused afterwards.
func TestSlowBodyOutlastsResponseTimeout(t *testing.T) {
	eachEngine(t, testSlowBodyOutlastsResponseTimeout)
}

func testSlowBodyOutlastsResponseTimeout(t *testing.T, e engine) {
	const timeout = 100 * time.Millisecond
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", "10")
		}
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		// Time has to pass beyond the response timeout: that is what
		// this test is about.
		time.Sleep(3 * timeout)
		io.WriteString(w, "-last")
	})
	opts := fastOptions()
	opts.ResponseTimeout = timeout
	bal, f := e.front(t, opts, rec.member(t))
	for _, path := range []string{"/length", "/chunked", "/length"} {
		r := do(t, f.Client(), "GET", f.URL+path, "", nil)
		if r.status != http.StatusOK || r.body != "first-last" {
			t.Fatalf("GET %s: %d %q, want 200 %q", path, r.status, r.body, "first-last")
		}
	}
	if !bal.Pool().Lookup("r").Healthy() {
		t.Error("a member whose bodies are slow was marked down")
	}
}
