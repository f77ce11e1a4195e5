package balancer

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer/health"
	"github.com/tetherlb/tether/internal/proctest"
)

// backend is a real HTTP member that behaves like a Tomcat with jvmRoute
// set: it answers with its route and hands out JSESSIONID=<hex>.<route>.
type backend struct {
	route string
	srv   *httptest.Server
	hits  atomic.Int64
	posts atomic.Int64
	// frozen makes every request block until hold is closed, like a
	// process stopped with SIGSTOP whose kernel still accepts connections.
	frozen atomic.Bool
	hold   chan struct{}
	// replicated makes it take over sessions of other routes, like a
	// cluster node rewriting the route suffix.
	replicated bool
	// plain makes it hand out ids without a route (JSESSIONID=<hex>), like
	// most applications; it then records every Cookie header it gets.
	plain bool
	mu    sync.Mutex
	seen  []string // Cookie headers received, when plain
}

// cookiesSeen returns the Cookie headers a plain backend received.
func (b *backend) cookiesSeen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

func newBackend(t *testing.T, route string) *backend {
	t.Helper()
	b := &backend{route: route, hold: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		select {
		case <-b.hold:
		default:
			close(b.hold)
		}
		b.srv.Close()
	})
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	if b.frozen.Load() {
		<-b.hold
	}
	w.Header().Set("X-Member", b.route)
	ck, err := r.Cookie("JSESSIONID")
	suffix := "." + b.route
	if b.plain {
		suffix = ""
		b.mu.Lock()
		b.seen = append(b.seen, r.Header.Values("Cookie")...)
		b.mu.Unlock()
	}
	switch {
	case r.URL.Path == "/healthz" || r.URL.Path == "/logout" || r.URL.Path == "/badlogout":
	case err != nil:
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: newID() + suffix, Path: "/"})
	case b.replicated && !strings.HasSuffix(ck.Value, "."+b.route):
		// A replicated node takes the session over: same id, its own route.
		id, _, _ := strings.Cut(ck.Value, ".")
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: id + "." + b.route, Path: "/"})
	}
	switch r.URL.Path {
	case "/logout": // a well-behaved logout: expire the cookie, create nothing
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "", Path: "/", MaxAge: -1})
	case "/badlogout": // the seeds' bad app: invalidate, then create a new session at once
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: newID() + suffix, Path: "/"})
	case "/hangup": // read the request, then drop the connection without answering
		if r.Method == http.MethodPost {
			b.posts.Add(1)
		}
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case "/echo":
		if r.Method == http.MethodPost {
			b.posts.Add(1)
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", b.route, r.Method, body)
		return
	case "/headers":
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Hop", "Connection"} {
			fmt.Fprintf(w, "%s: %s\n", k, strings.Join(r.Header.Values(k), " | "))
		}
		fmt.Fprintf(w, "Host: %s\n", r.Host)
		return
	case "/ws":
		b.websocket(w, r)
		return
	}
	fmt.Fprint(w, b.route)
}

// websocket accepts an upgrade and echoes lines prefixed with the route.
func (b *backend) websocket(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	for {
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(rw, "%s:%s", b.route, line)
		rw.Flush()
	}
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func memberOf(t *testing.T, b *backend, weight int, state State) MemberConfig {
	t.Helper()
	u, err := url.Parse(b.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return MemberConfig{URL: u, Route: b.route, Weight: weight, State: state}
}

// fastOptions are test options: short probes so recovery is quick.
func fastOptions() Options {
	return Options{
		Name:            "test",
		Logger:          slog.New(slog.DiscardHandler),
		ConnectTimeout:  time.Second,
		ResponseTimeout: 5 * time.Second,
		Health:          health.Options{ProbeInterval: 5 * time.Millisecond, Timeout: time.Second},
	}
}

// engine is one of the two ways a balancer serves clients.
type engine string

const (
	netHTTP engine = "nethttp" // http.Server with the Balancer as handler
	native  engine = "native"  // the balancer's own HTTP/1.1 Server
)

// eachEngine runs f once per engine, as subtests.
func eachEngine(t *testing.T, f func(*testing.T, engine)) {
	for _, e := range []engine{netHTTP, native} {
		t.Run(string(e), func(t *testing.T) { f(t, e) })
	}
}

// frontend is a balancer behind a real listener.
type frontend struct {
	URL    string // http://127.0.0.1:port
	Addr   string // 127.0.0.1:port
	client *http.Client
}

// Client returns a client for the frontend.
func (f *frontend) Client() *http.Client { return f.client }

// front starts a balancer over backends behind a real listener served by
// engine e.
func (e engine) front(t *testing.T, opts Options, members ...MemberConfig) (*Balancer, *frontend) {
	t.Helper()
	bal, err := New(opts, members)
	if err != nil {
		t.Fatal(err)
	}
	if e == netHTTP {
		srv := httptest.NewServer(bal)
		t.Cleanup(func() { srv.Close(); bal.Close() })
		return bal, &frontend{URL: srv.URL, Addr: srv.Listener.Addr().String(), client: srv.Client()}
	}
	return bal, serveNative(t, bal, ServerOptions{})
}

// serveNative serves bal with a native Server on a new listener.
func serveNative(t *testing.T, bal *Balancer, o ServerOptions) *frontend {
	t.Helper()
	return serveNativeOver(t, bal, o, &http.Transport{})
}

// serveNativeOver serves bal with a native Server on a new listener (TLS
// if o.TLS is set), with a frontend whose client uses tr.
func serveNativeOver(t *testing.T, bal *Balancer, o ServerOptions, tr *http.Transport) *frontend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(o, NewMux(map[string]*Balancer{"/": bal}))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
		tr.CloseIdleConnections()
		bal.Close()
	})
	scheme, addr := "http://", ln.Addr().String()
	if o.TLS != nil {
		scheme = "https://"
	}
	return &frontend{URL: scheme + addr, Addr: addr, client: &http.Client{Transport: tr}}
}

type result struct {
	status int
	member string
	cookie string // JSESSIONID set by the response, if any
	body   string
	header http.Header
}

// do sends one request through the balancer; cookie, if set, is sent as
// the JSESSIONID cookie.
func do(t *testing.T, c *http.Client, method, u, cookie string, body io.Reader) result {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", "JSESSIONID="+cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, member: resp.Header.Get("X-Member"), body: string(b), header: resp.Header}
	for _, ck := range resp.Cookies() {
		if ck.Name == "JSESSIONID" {
			r.cookie = ck.Value
		}
	}
	return r
}

// closedURL returns the URL of a port nothing listens on.
func closedURL(t *testing.T) *url.URL {
	t.Helper()
	addr := proctest.FreeAddr(t)
	u, _ := url.Parse("http://" + addr)
	return u
}

func waitHealthy(t *testing.T, bal *Balancer, route string, up bool) {
	t.Helper()
	proctest.Eventually(t, 10*time.Second, func() error {
		if m := bal.Pool().Lookup(route); m == nil || m.Healthy() != up {
			return fmt.Errorf("member %s healthy != %v", route, up)
		}
		return nil
	})
}

// rawUpgrade opens a WebSocket-style upgrade through the balancer and
// returns the connection after the 101.
func rawUpgrade(t *testing.T, addr, cookie string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nCookie: JSESSIONID=%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", addr, cookie)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: status %d", resp.StatusCode)
	}
	return conn, br
}

// putAfterContinue sends "PUT path" on c with "Expect: 100-continue",
// checks that 100 Continue comes before it sends body, and returns the
// final response's body.
func putAfterContinue(t *testing.T, c net.Conn, br *bufio.Reader, path, body string) string {
	t.Helper()
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", path, len(body))
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q %v", line, err)
	}
	br.ReadString('\n') // the blank line ending the interim response
	fmt.Fprint(c, body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}
