package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/admin"
	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/proctest"
)

const testToken = "test-token-0123456789abcdef0123"

// node is an application node behind the balancer, like a Tomcat with a
// jvmRoute: /login creates a session "<id>.<route>", /logout invalidates
// it and expires the cookie (a well-behaved application), /logout-bad
// invalidates it and creates a new one in the same response (the
// application the seeds warn about). With replicated set, a request
// carrying another node's session takes it over: same id, own route.
func node(t *testing.T, rt string, replicated bool) *httptest.Server {
	t.Helper()
	newID := func() string {
		var b [16]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", rt)
		c, _ := r.Cookie("JSESSIONID")
		switch r.URL.Path {
		case "/login":
			w.Header().Add("Set-Cookie", "JSESSIONID="+newID()+"."+rt+"; Path=/; HttpOnly")
		case "/logout":
			w.Header().Add("Set-Cookie", "JSESSIONID=; Path=/; Max-Age=0")
		case "/logout-bad":
			w.Header().Add("Set-Cookie", "JSESSIONID=; Path=/; Max-Age=0")
			w.Header().Add("Set-Cookie", "JSESSIONID="+newID()+"."+rt+"; Path=/; HttpOnly")
		default:
			if id, owner, ok := strings.Cut(cookieValue(c), "."); ok && replicated && owner != rt {
				w.Header().Add("Set-Cookie", "JSESSIONID="+id+"."+rt+"; Path=/; HttpOnly")
			}
		}
		io.WriteString(w, rt)
	}))
	t.Cleanup(s.Close)
	return s
}

func cookieValue(c *http.Cookie) string {
	if c == nil {
		return ""
	}
	return c.Value
}

// visitor is one browser: it keeps the session cookie it is given.
type visitor struct {
	base   string
	cookie string
	member string // the member that answered last
}

func (v *visitor) get(path string) error {
	r, _ := http.NewRequest("GET", v.base+path, nil)
	if v.cookie != "" {
		r.Header.Set("Cookie", "JSESSIONID="+v.cookie)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	v.member = resp.Header.Get("X-Member")
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			v.cookie = c.Value
		}
	}
	return nil
}

// stack is tether serve in process: a balancer "shop" over three nodes,
// and its manager.
type stack struct {
	srv    *Server
	base   string // the balancer
	client *admin.Client
	dir    string
}

func startStack(t *testing.T, balancerExtra string, replicated bool) *stack {
	t.Helper()
	st := &stack{dir: t.TempDir()}
	var members []string
	for _, rt := range []string{"n1", "n2", "n3"} {
		members = append(members, fmt.Sprintf("{url: %q, route: %s}", node(t, rt, replicated).URL, rt))
	}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
manager:
  listen: 127.0.0.1:0
  token: %s
  state_file: %s
balancers:
  - name: shop
%s    members: [%s]
`, testToken, filepath.Join(st.dir, "state.json"), balancerExtra, strings.Join(members, ", "))
	cfg, err := config.Parse("tether.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	st.srv = serveInTest(t, cfg, ServeOptions{})
	st.base = "http://" + st.srv.Addr("127.0.0.1:0")
	st.client, err = admin.NewClient("http://"+st.srv.ManagerAddr(), testToken, admin.ClientOptions{Operator: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (st *stack) member(t *testing.T, rt string) admin.MemberView {
	t.Helper()
	v, err := st.client.Member(context.Background(), "shop", rt)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// usersOn logs in visitors until n of them have a session on member rt.
func usersOn(t *testing.T, st *stack, rt string, n int) []*visitor {
	t.Helper()
	var out []*visitor
	for tries := 0; len(out) < n; tries++ {
		if tries > 50*n {
			t.Fatalf("could not place %d users on %s", n, rt)
		}
		v := &visitor{base: st.base}
		if err := v.get("/login"); err != nil {
			t.Fatal(err)
		}
		if v.member == rt {
			out = append(out, v)
		}
	}
	return out
}

func remaining(t *testing.T, st *stack, rt string) int64 {
	t.Helper()
	v := st.member(t, rt)
	if v.Drain == nil {
		t.Fatalf("%s is %s, not draining", rt, v.State)
	}
	return v.Drain.Remaining
}

// TestDrainWithUserPopulation drains a node of a local-session cluster
// through the manager's API while its users behave as users do: some keep
// browsing, some log out and come back, one hits an application that
// re-creates a session on logout, some go idle. The API reports the right
// number of sessions left at each step, and the drain reaches zero.
func TestDrainWithUserPopulation(t *testing.T) {
	st := startStack(t, "    drain: {idle: 3s, done: stop}\n", false)
	ctx := context.Background()
	browsing := usersOn(t, st, "n1", 3)
	leaving := usersOn(t, st, "n1", 3)
	idle := usersOn(t, st, "n1", 3)
	sloppy := usersOn(t, st, "n1", 1)
	if live := st.member(t, "n1").LiveSessions; live != 10 {
		t.Fatalf("n1 has %d live sessions before the drain, want 10", live)
	}

	res, err := st.client.Change(ctx, "shop", "n1", admin.MemberChange{State: strp("draining"), Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Member.Drain; d == nil || d.StartSessions != 10 || d.Remaining != 10 {
		t.Fatalf("drain started with %+v, want 10 of 10", d)
	}

	// Users who keep browsing stay on n1: their sessions live there.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(browsing))
	for _, v := range browsing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond): // a user's think time
				}
				if err := v.get("/browse"); err != nil || v.member != "n1" {
					errs <- fmt.Errorf("browsing user on %q: %v", v.member, err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	// The idle users were last seen now; within the 3s idle window the
	// counts below are exact.
	for _, v := range idle {
		must(t, v.get("/browse"))
	}
	for _, v := range leaving {
		must(t, v.get("/logout"))
	}
	if r := remaining(t, st, "n1"); r != 7 {
		t.Errorf("after 3 logouts %d sessions left, want 7", r)
	}
	must(t, sloppy[0].get("/logout-bad"))
	v := st.member(t, "n1")
	if v.Drain.Remaining != 7 || v.CreatedWhileDraining != 1 {
		t.Errorf("after a logout that re-creates the session: %d left, %d created while draining; want 7 and 1",
			v.Drain.Remaining, v.CreatedWhileDraining)
	}
	// Users who logged out come back: their new sessions go elsewhere.
	for _, u := range leaving {
		must(t, u.get("/login"))
		if u.member == "n1" {
			t.Error("a returning user got a new session on the draining n1")
		}
	}

	// The idle users and the sloppy one time out; the browsing users remain.
	proctest.Eventually(t, 30*time.Second, func() error {
		if r := remaining(t, st, "n1"); r != 3 {
			return fmt.Errorf("%d sessions left, want the 3 browsing users", r)
		}
		return nil
	})
	v = st.member(t, "n1")
	if v.Drain.EstimatedEmpty == nil || v.Drain.Progress <= 0.5 || v.Drain.StartSessions != 10 {
		t.Errorf("drain progress %+v: want 7 of 10 gone and an estimate", v.Drain)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	// The browsing users finish and log out: n1 is empty, and drain.done
	// stops it.
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	for _, u := range browsing {
		must(t, u.get("/logout"))
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err = st.client.WaitDrained(wctx, "shop", "n1", 50*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("drain did not finish: %v (%+v)", err, v)
	}
	proctest.Eventually(t, 10*time.Second, func() error {
		if v := st.member(t, "n1"); v.State != "stopped" {
			return fmt.Errorf("n1 is %s", v.State)
		}
		return nil
	})
	entries, err := st.client.Audit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var byAPI, byBalancer bool
	for _, e := range entries {
		byAPI = byAPI || (e.Actor == "read-write token" && e.Operator == "test" && e.After.State == "draining" && e.Reason == "maintenance")
		byBalancer = byBalancer || (e.Actor == "balancer" && e.After.State == "stopped")
	}
	if !byAPI || !byBalancer {
		t.Errorf("audit log lacks the drain or its end: %+v", entries)
	}
}

// TestReplicatedDrainTakesOneRequestPerUser: with sessions: replicated,
// each user's next request moves the session to another node (which
// rewrites its route), so the drain is over after one request per user.
func TestReplicatedDrainTakesOneRequestPerUser(t *testing.T) {
	st := startStack(t, "    sessions: replicated\n    drain: {idle: 10m}\n", true)
	users := usersOn(t, st, "n1", 8)
	if _, err := st.client.Change(context.Background(), "shop", "n1", admin.MemberChange{State: strp("draining")}); err != nil {
		t.Fatal(err)
	}
	if r := remaining(t, st, "n1"); r != 8 {
		t.Fatalf("%d sessions at the start of the drain, want 8", r)
	}
	for i, u := range users {
		id, _, _ := strings.Cut(u.cookie, ".")
		must(t, u.get("/cart"))
		newID, newRoute, _ := strings.Cut(u.cookie, ".")
		if newID != id || newRoute == "n1" || u.member != newRoute {
			t.Fatalf("user %d: session %s.%s served by %s; want the same id on another node", i, newID, newRoute, u.member)
		}
		if r := remaining(t, st, "n1"); r != int64(len(users)-i-1) {
			t.Fatalf("after %d users' requests %d sessions left, want %d", i+1, r, len(users)-i-1)
		}
	}
	v := st.member(t, "n1")
	if v.Drain.Remaining != 0 || v.Drain.Progress != 1 || v.LiveSessions != 0 {
		t.Errorf("drain %+v live %d", v.Drain, v.LiveSessions)
	}
}

func TestServeRefusesAManagerWithoutToken(t *testing.T) {
	cfg := parse(t, "listen: 127.0.0.1:0\nmanager: {listen: 127.0.0.1:0}\nbalancers:\n  - {name: b, members: [{url: http://127.0.0.1:9, route: n1}]}\n")
	err := Serve(context.Background(), cfg, ServeOptions{Logger: quiet(), Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), "no token") || !strings.Contains(err.Error(), TokenEnv) {
		t.Fatalf("Serve without a token: %v", err)
	}
	// The environment variable is the third source.
	s := serveInTest(t, cfg, ServeOptions{Getenv: func(k string) string {
		if k == TokenEnv {
			return " env-token-0123456789abcdef \n"
		}
		return ""
	}})
	c, _ := admin.NewClient("http://"+s.ManagerAddr(), "env-token-0123456789abcdef", admin.ClientOptions{})
	if _, err := c.Balancers(context.Background()); err != nil {
		t.Errorf("token from the environment: %v", err)
	}
}

func TestManagerTokenSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	must(t, os.WriteFile(file, []byte("from-file\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	must(t, os.WriteFile(empty, []byte("\n"), 0o600))
	env := func(string) string { return "from-env" }
	none := func(string) string { return "" }
	tests := []struct {
		name   string
		m      config.Manager
		getenv func(string) string
		rw, ro string
		err    string
	}{
		{"token", config.Manager{Token: "t", ReadOnlyToken: "r"}, env, "t", "r", ""},
		{"token file", config.Manager{TokenFile: file}, env, "from-file", "", ""},
		{"environment", config.Manager{ReadOnlyTokenFile: file}, env, "from-env", "from-file", ""},
		{"none", config.Manager{}, none, "", "", "no token"},
		{"empty file", config.Manager{TokenFile: empty}, env, "", "", "empty"},
		{"missing file", config.Manager{TokenFile: filepath.Join(dir, "nope")}, env, "", "", "no such file"},
		{"same tokens", config.Manager{ReadOnlyToken: "from-env"}, env, "", "", "must differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw, ro, err := managerTokens(&tt.m, tt.getenv)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || rw != tt.rw || ro != tt.ro {
				t.Fatalf("got %q %q %v, want %q %q", rw, ro, err, tt.rw, tt.ro)
			}
		})
	}
}

// TestReloadKeepsRunTimeChangesUnlessTheFileChangesThem runs the state
// file rule through SIGHUP reloads of a real configuration file.
func TestReloadKeepsRunTimeChangesUnlessTheFileChangesThem(t *testing.T) {
	n1, n2 := named(t, "n1"), named(t, "n2")
	dir := t.TempDir()
	path := filepath.Join(dir, "tether.yaml")
	write := func(n1State string, n2Weight int) {
		y := fmt.Sprintf(`listen: 127.0.0.1:0
manager: {listen: 127.0.0.1:0, token: %s, state_file: %s, audit_file: %s}
balancers:
  - name: b
    members:
      - {url: %q, route: n1, state: %s}
      - {url: %q, route: n2, weight: %d}
`, testToken, filepath.Join(dir, "state.json"), filepath.Join(dir, "audit.jsonl"), n1.URL, n1State, n2.URL, n2Weight)
		must(t, os.WriteFile(path, []byte(y), 0o600))
	}
	write("active", 1)
	cfg, err := config.Load(path)
	must(t, err)
	reload := make(chan struct{})
	s := serveInTest(t, cfg, ServeOptions{ConfigPath: path, Reload: reload})
	c, _ := admin.NewClient("http://"+s.ManagerAddr(), testToken, admin.ClientOptions{})
	bg := context.Background()
	_, err = c.Change(bg, "b", "n1", admin.MemberChange{State: strp("stopped")})
	must(t, err)
	_, err = c.Change(bg, "b", "n2", admin.MemberChange{Weight: nump(4)})
	must(t, err)
	_, err = c.Add(bg, "b", admin.NewMember{MemberSpec: admin.MemberSpec{Route: "n3", URL: n2.URL}})
	must(t, err)
	member := func(rt string) (admin.MemberView, bool) {
		snap, err := c.Balancers(bg)
		must(t, err)
		for _, m := range snap.Balancers[0].Members {
			if m.Route == rt {
				return m, true
			}
		}
		return admin.MemberView{}, false
	}

	// A reload of an unchanged file keeps everything.
	reload <- struct{}{}
	write("active", 1)
	reload <- struct{}{} // the second send waits for the first reload
	if m, _ := member("n1"); m.State != "stopped" {
		t.Errorf("n1 is %s after a reload that did not touch it", m.State)
	}
	if m, _ := member("n2"); m.Weight != 4 {
		t.Errorf("n2 weight %d after a reload that did not touch it", m.Weight)
	}
	if _, ok := member("n3"); !ok {
		t.Error("the member added at run time is gone after a reload")
	}

	// The file changes n1's state: the file wins; n2's weight stays.
	write("draining", 1)
	reload <- struct{}{}
	proctest.Eventually(t, 10*time.Second, func() error {
		if m, _ := member("n1"); m.State != "draining" {
			return fmt.Errorf("n1 is %s, want the file's draining", m.State)
		}
		return nil
	})
	if m, _ := member("n2"); m.Weight != 4 {
		t.Errorf("n2 weight %d", m.Weight)
	}
	// The reload audits and writes the state file after it has applied
	// the new members, so both may lag the API by a moment.
	proctest.Eventually(t, 10*time.Second, func() error {
		entries, err := c.Audit(bg, 0, 100)
		if err != nil {
			return err
		}
		forgot := false
		for _, e := range entries {
			forgot = forgot || (e.Action == "forget" && e.Member == "n1" && e.Actor == "config")
		}
		if !forgot {
			return fmt.Errorf("no audit entry says the run-time state of n1 was forgotten: %+v", entries)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "state.json"))
		if strings.Contains(string(data), `"stopped"`) {
			return fmt.Errorf("the state file still holds the overridden state:\n%s", data)
		}
		// The audit file (manager.audit_file) has every entry, the
		// reload's among them.
		audit, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
		if n := strings.Count(string(audit), "\n"); n != len(entries) || !strings.Contains(string(audit), `"action":"forget"`) {
			return fmt.Errorf("the audit file has %d lines for %d entries:\n%s", n, len(entries), audit)
		}
		return nil
	})
}

func strp(s string) *string { return &s }
func nump(n int) *int       { return &n }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAnnouncedDrainThroughTheManager: a node answering its health check
// with Tether-State: draining is drained without an operator; the manager
// shows it, audits it, and does not keep it in the state file.
func TestAnnouncedDrainThroughTheManager(t *testing.T) {
	var draining atomic.Bool
	n1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && draining.Load() {
			w.Header().Set("Tether-State", "draining")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "n1")
	}))
	t.Cleanup(n1.Close)
	n2 := named(t, "n2")
	dir := t.TempDir()
	cfg := parse(t, fmt.Sprintf(`listen: 127.0.0.1:0
manager: {listen: 127.0.0.1:0, token: %s, state_file: %s}
balancers:
  - name: b
    health: {path: /healthz, interval: 20ms, timeout: 1s, rise: 1, fall: 1}
    members: [{url: %q, route: n1}, {url: %q, route: n2}]
`, testToken, filepath.Join(dir, "state.json"), n1.URL, n2.URL))
	s := serveInTest(t, cfg, ServeOptions{})
	c, _ := admin.NewClient("http://"+s.ManagerAddr(), testToken, admin.ClientOptions{})
	bg := context.Background()
	wait := func(state string, announced bool) {
		t.Helper()
		proctest.Eventually(t, 10*time.Second, func() error {
			v, err := c.Member(bg, "b", "n1")
			if err != nil {
				return err
			}
			if v.State != state || v.Announced != announced || v.Health != "up" {
				return fmt.Errorf("n1 is %s (announced %v, %s), want %s (announced %v)", v.State, v.Announced, v.Health, state, announced)
			}
			return nil
		})
	}
	draining.Store(true)
	wait("draining", true)
	draining.Store(false)
	wait("active", false)
	entries, err := c.Audit(bg, 0, 100)
	must(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+":"+e.Before.State+"->"+e.After.State)
	}
	if strings.Join(got, " ") != "member:active->draining member:draining->active" {
		t.Errorf("audit %v", got)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "state.json")); err != nil || strings.Contains(string(data), "n1") {
		t.Errorf("an announcement was written to the state file (%v):\n%s", err, data)
	}
}

// TestReloadRotatesTheToken: a new token in the file applies at the reload.
func TestReloadRotatesTheToken(t *testing.T) {
	n1 := named(t, "n1")
	dir := t.TempDir()
	path := filepath.Join(dir, "tether.yaml")
	write := func(token string) {
		y := fmt.Sprintf("listen: 127.0.0.1:0\nmanager: {listen: 127.0.0.1:0, token: %s}\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n", token, n1.URL)
		must(t, os.WriteFile(path, []byte(y), 0o600))
	}
	write("old-token-0123456789abcdef")
	cfg, err := config.Load(path)
	must(t, err)
	reload := make(chan struct{})
	s := serveInTest(t, cfg, ServeOptions{ConfigPath: path, Reload: reload})
	client := func(tok string) *admin.Client {
		c, err := admin.NewClient("http://"+s.ManagerAddr(), tok, admin.ClientOptions{})
		must(t, err)
		return c
	}
	bg := context.Background()
	if _, err := client("old-token-0123456789abcdef").Balancers(bg); err != nil {
		t.Fatal(err)
	}
	write("new-token-0123456789abcdef")
	reload <- struct{}{}
	proctest.Eventually(t, 10*time.Second, func() error {
		_, err := client("new-token-0123456789abcdef").Balancers(bg)
		return err
	})
	var ae *admin.APIError
	if _, err := client("old-token-0123456789abcdef").Balancers(bg); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("the old token after the rotation: %v", err)
	}
}

// TestReloadWarnsOfShortTokens: a reload that brings in a short token or
// read-only token logs the warning serve logs at start, without the
// token, and still applies it.
func TestReloadWarnsOfShortTokens(t *testing.T) {
	n1 := named(t, "n1")
	dir := t.TempDir()
	path := filepath.Join(dir, "tether.yaml")
	write := func(token, ro string) {
		y := fmt.Sprintf("listen: 127.0.0.1:0\nmanager: {listen: 127.0.0.1:0, token: %s, read_only_token: %s}\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n", token, ro, n1.URL)
		must(t, os.WriteFile(path, []byte(y), 0o600))
	}
	write("long-token-0123456789abcdef", "long-ro-0123456789abcdef")
	cfg, err := config.Load(path)
	must(t, err)
	var buf proctest.Buffer
	reload := make(chan struct{})
	s := serveInTest(t, cfg, ServeOptions{ConfigPath: path, Reload: reload, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if strings.Contains(buf.String(), "level=WARN") {
		t.Fatalf("a warning at start with long tokens:\n%s", buf.String())
	}
	const short, shortRO = "Sh0rt-rw", "Sh0rt-ro"
	write(short, shortRO)
	reload <- struct{}{}
	proctest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(buf.String(), "configuration reloaded") {
			return fmt.Errorf("not reloaded yet:\n%s", buf.String())
		}
		return nil
	})
	for _, want := range []string{
		`level=WARN msg="manager.token: the token is short; use at least 16 random bytes`,
		`level=WARN msg="manager.read_only_token: the read-only token is short; use at least 16 random bytes`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no warning %q after the reload:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), short) || strings.Contains(buf.String(), shortRO) {
		t.Errorf("a token is logged:\n%s", buf.String())
	}
	c, err := admin.NewClient("http://"+s.ManagerAddr(), short, admin.ClientOptions{})
	must(t, err)
	if _, err := c.Balancers(context.Background()); err != nil {
		t.Errorf("the short token after the reload: %v", err)
	}
}
