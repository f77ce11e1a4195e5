package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer"
)

const (
	rwToken = "rw-0123456789abcdef0123456789abcdef"
	roToken = "ro-fedcba9876543210fedcba9876543210"
)

// source is a fixed set of balancers.
type source []*balancer.Balancer

func (s source) Balancers() []*balancer.Balancer { return s }

func (s source) Balancer(name string) *balancer.Balancer {
	for _, b := range s {
		if b.Name() == name {
			return b
		}
	}
	return nil
}

// appBackend is a member: /login creates a session "<id>.<route>",
// /logout expires it, anything else answers with the member's route.
func appBackend(t testing.TB, rt string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", rt)
		switch r.URL.Path {
		case "/login":
			var b [16]byte
			rand.Read(b[:])
			http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: hex.EncodeToString(b[:]) + "." + rt, Path: "/"})
		case "/logout":
			w.Header().Add("Set-Cookie", "JSESSIONID=; Path=/; Max-Age=0")
		}
		io.WriteString(w, rt)
	}))
	t.Cleanup(s.Close)
	return s
}

// env is a manager over one or more real balancers with real members.
type env struct {
	t       testing.TB
	bals    []*balancer.Balancer
	mgr     *Manager
	srv     *httptest.Server
	opts    Options
	base    Baseline
	front   map[string]*httptest.Server // balancer name -> its proxy
	backend map[string]string           // route -> member URL
}

type envConfig struct {
	balancers   map[string][]string // name -> routes; default web: n1 n2 n3
	tune        func(*balancer.Options)
	opts        func(*Options)
	stateFile   string
	noStateFile bool
}

func newEnv(t testing.TB, ec envConfig) *env {
	t.Helper()
	if ec.balancers == nil {
		ec.balancers = map[string][]string{"web": {"n1", "n2", "n3"}}
	}
	e := &env{t: t, base: Baseline{}, front: map[string]*httptest.Server{}, backend: map[string]string{}}
	for name, routes := range ec.balancers {
		for _, rt := range routes {
			if _, ok := e.backend[rt]; !ok {
				e.backend[rt] = appBackend(t, rt).URL
			}
			e.base[name] = append(e.base[name], MemberSpec{Route: rt, URL: e.backend[rt]})
		}
	}
	if ec.stateFile == "" && !ec.noStateFile {
		ec.stateFile = filepath.Join(t.TempDir(), "state.json")
	}
	e.opts = Options{
		Token: rwToken, ReadOnlyToken: roToken, AllowedOrigins: []string{"https://ops.example.com"},
		StateFile: ec.stateFile, Baseline: e.base, Logger: slog.New(slog.DiscardHandler),
		FeedInterval: 50 * time.Millisecond,
	}
	if ec.opts != nil {
		ec.opts(&e.opts)
	}
	e.start(ec.tune)
	return e
}

// start builds the balancers from the manager's effective members (as a
// restart does) and serves the manager.
func (e *env) start(tune func(*balancer.Options)) {
	t := e.t
	t.Helper()
	src := &lazySource{}
	e.opts.Source = src
	m, err := New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.bals = nil
	eff := m.Effective()
	for _, name := range slices.Sorted(maps.Keys(e.base)) {
		var mcs []balancer.MemberConfig
		for _, s := range eff[name] {
			mc, err := s.Config()
			if err != nil {
				t.Fatal(err)
			}
			mcs = append(mcs, mc)
		}
		o := balancer.Options{Name: name, Logger: slog.New(slog.DiscardHandler), OnStateChange: m.OnStateChange, SessionIdle: time.Minute}
		if tune != nil {
			tune(&o)
		}
		b, err := balancer.New(o, mcs)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		e.bals = append(e.bals, b)
		f := httptest.NewServer(b)
		t.Cleanup(f.Close)
		e.front[name] = f
	}
	src.s = e.bals
	e.mgr = m
	e.srv = httptest.NewServer(m)
	t.Cleanup(func() { m.Close(); e.srv.Close() })
}

// restart stops the manager and builds everything again from the state
// file, as a process restart does.
func (e *env) restart(tune func(*balancer.Options)) {
	e.mgr.Close()
	e.srv.Close()
	for _, b := range e.bals {
		b.Close()
	}
	e.start(tune)
}

type lazySource struct{ s source }

func (l *lazySource) Balancers() []*balancer.Balancer         { return l.s.Balancers() }
func (l *lazySource) Balancer(name string) *balancer.Balancer { return l.s.Balancer(name) }

func (e *env) bal(name string) *balancer.Balancer { return source(e.bals).Balancer(name) }

func (e *env) member(bal, rt string) *balancer.Member {
	if b := e.bal(bal); b != nil {
		return b.Pool().Lookup(rt)
	}
	return nil
}

// answer is an API response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) errorText() string {
	var eb errorBody
	json.Unmarshal(a.body, &eb)
	return eb.Error
}

func (a answer) field() string {
	var eb errorBody
	json.Unmarshal(a.body, &eb)
	return eb.Field
}

func (a answer) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

type req struct {
	method, path, token string
	body                any // JSON-encoded unless a string
	header              map[string]string
}

func (e *env) do(r req) answer {
	e.t.Helper()
	var rd io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if rd != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, body}
}

func (e *env) patch(rt string, body any) answer {
	e.t.Helper()
	return e.do(req{method: "PATCH", path: "/api/v1/balancers/web/members/" + url.PathEscape(rt), token: rwToken, body: body})
}

func (e *env) audit() []AuditEntry {
	e.t.Helper()
	entries, _ := e.mgr.audit.since(0, 1000)
	return entries
}

// browse sends a request through balancer bal with cookie (may be "") and
// returns the member that answered and the new cookie value, if any.
func (e *env) browse(bal, path, cookie string) (member, newCookie string) {
	e.t.Helper()
	r, _ := http.NewRequest("GET", e.front[bal].URL+path, nil)
	if cookie != "" {
		r.Header.Set("Cookie", "JSESSIONID="+cookie)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			newCookie = c.Value
		}
	}
	return resp.Header.Get("X-Member"), newCookie
}

func str(s string) *string { return &s }
func num(n int) *int       { return &n }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
