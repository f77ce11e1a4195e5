package balancer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/ajp"
	"github.com/tetherlb/tether/internal/proctest"
)

const ajpTestSecret = "balancer-test-secret"

// ajpMember serves backend b over AJP13 (this module's ajp.Server, with a
// secret) and returns it as an ajp:// member, with a function that stops
// it.
func ajpMember(t *testing.T, b *backend) (MemberConfig, func()) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/client": // what the container learnt of the client
			i := ajp.RequestInfo(r)
			fmt.Fprintf(w, "%s secure=%v route=%s", r.RemoteAddr, i.Secure, i.Route)
			return
		case "/digest":
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		b.serve(w, r)
	})
	return serveAJP(t, h, b.route)
}

// serveAJP serves h over AJP13 (this module's ajp.Server, with a secret)
// and returns it as the ajp:// member called rt, with a function that
// stops it.
func serveAJP(t *testing.T, h http.Handler, rt string) (MemberConfig, func()) {
	t.Helper()
	srv, err := ajp.NewServer(h, ajp.Options{Secret: ajpTestSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	stop := func() { srv.Close(); <-done }
	t.Cleanup(stop)
	u, _ := url.Parse("ajp://" + ln.Addr().String())
	return MemberConfig{URL: u, Route: rt, Secret: ajpTestSecret}, stop
}

// TestAJPMembers runs the balancer's routing over ajp:// members, on both
// engines: stickiness, new sessions spread, what the container learns of
// the client, bodies both ways, failover when a member goes away.
func TestAJPMembers(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		b1, b2 := newBackend(t, "n1"), newBackend(t, "n2")
		m1, stop1 := ajpMember(t, b1)
		m2, _ := ajpMember(t, b2)
		_, f := e.front(t, fastOptions(), m1, m2)
		c := f.Client()

		seen := map[string]int{}
		var cookie string
		for range 4 {
			r := do(t, c, "GET", f.URL+"/", "", nil)
			if r.status != 200 || r.cookie == "" {
				t.Fatalf("new session: %+v", r)
			}
			seen[r.member]++
			cookie = r.cookie
		}
		if seen["n1"] != 2 || seen["n2"] != 2 {
			t.Errorf("new sessions: %v, want 2 each", seen)
		}
		home := cookie[strings.IndexByte(cookie, '.')+1:]
		for range 3 {
			if r := do(t, c, "GET", f.URL+"/", cookie, nil); r.member != home {
				t.Fatalf("sticky request went to %q, want %q", r.member, home)
			}
		}

		r := do(t, c, "GET", f.URL+"/client", cookie, nil)
		if !strings.HasPrefix(r.body, "127.0.0.1:") || strings.HasPrefix(r.body, "127.0.0.1:0 ") ||
			!strings.HasSuffix(r.body, "secure=false route="+home) {
			t.Errorf("the container saw %q", r.body)
		}

		big := make([]byte, 3<<20)
		rand.Read(big)
		sum := sha256.Sum256(big)
		want := fmt.Sprintf("%d %s", len(big), hex.EncodeToString(sum[:]))
		if r := do(t, c, "POST", f.URL+"/digest", cookie, bytes.NewReader(big)); r.body != want {
			t.Errorf("upload with length: %q, want %q", r.body, want)
		}
		if r := do(t, c, "POST", f.URL+"/digest", cookie, io.MultiReader(bytes.NewReader(big[:1000]), bytes.NewReader(big[1000:]))); r.body != want {
			t.Errorf("chunked upload: %q, want %q", r.body, want)
		}
		if r := do(t, c, "POST", f.URL+"/echo", cookie, strings.NewReader("hello")); r.body != home+" POST hello" {
			t.Errorf("echo: %q", r.body)
		}

		// n1 goes away: its sessions fail over to n2.
		stop1()
		c1 := "abc.n1"
		if r := do(t, c, "GET", f.URL+"/", c1, nil); r.status != 200 || r.member != "n2" {
			t.Errorf("after n1 stopped: %+v, want n2", r)
		}
	})
}

// TestAJPBadMember: a member that answers garbage, or the wrong secret,
// gets the client a 502 (or the container's 403), never a hang.
func TestAJPBadMember(t *testing.T) {
	garbage := func(reply string) *url.URL {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer nc.Close()
					nc.Read(make([]byte, 8192))
					io.WriteString(nc, reply)
				}()
			}
		}()
		u, _ := url.Parse("ajp://" + ln.Addr().String())
		return u
	}
	b := newBackend(t, "n1")
	good, _ := ajpMember(t, b)
	wrong := good
	wrong.Secret = "wrong"
	tests := []struct {
		name   string
		member MemberConfig
		status int
	}{
		{"not AJP", MemberConfig{URL: garbage("HTTP/1.1 200 OK\r\n\r\n"), Route: "n1"}, http.StatusBadGateway},
		{"bad packet", MemberConfig{URL: garbage("AB\x00\x01\x2a"), Route: "n1"}, http.StatusBadGateway},
		{"oversized header", MemberConfig{URL: garbage("AB\xff\xff\x04"), Route: "n1"}, http.StatusBadGateway},
		{"wrong secret", wrong, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachEngine(t, func(t *testing.T, e engine) {
				o := fastOptions()
				o.MaxAttempts = 1
				bal, f := e.front(t, o, tt.member)
				if r := do(t, f.Client(), "GET", f.URL+"/", "", nil); r.status != tt.status {
					t.Errorf("status %d, want %d (%q)", r.status, tt.status, r.body)
				}
				refused := uint64(0)
				if tt.status == http.StatusForbidden {
					refused = 1
				}
				// The refusal is known at End Response, which the balancer
				// may read after the client has the whole body.
				proctest.Eventually(t, 5*time.Second, func() error {
					if n := bal.Stats()[0].AJPRefused; n != refused {
						return fmt.Errorf("AJPRefused %d, want %d", n, refused)
					}
					return nil
				})
			})
		})
	}
}

// TestAJPPing: a member taken down by a failed request comes back once
// CPing answers, with no health path.
func TestAJPPing(t *testing.T) {
	b := newBackend(t, "n1")
	m, _ := ajpMember(t, b)
	bal, err := New(fastOptions(), []MemberConfig{m})
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	mem := bal.Pool().Lookup("n1")
	bal.cur.Load().checker.MarkDown(mem, "test")
	waitHealthy(t, bal, "n1", true)
	if err := mem.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	hb1 := newBackend(t, "h1")
	hm := memberOf(t, hb1, 1, Active)
	hb, err := New(fastOptions(), []MemberConfig{hm})
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	if err := hb.Pool().Lookup("h1").Ping(t.Context()); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Ping of an http member: %v", err)
	}
}

// TestAJPExpectContinue: a client that waits for 100 Continue gets it
// from the native engine when the AJP member's request needs the body
// (AJP has no interim responses), then its answer.
func TestAJPExpectContinue(t *testing.T) {
	m, _ := ajpMember(t, newBackend(t, "n1"))
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, m)
	c, err := net.Dial("tcp", f.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if b := putAfterContinue(t, c, br, "/echo", "hello"); b != "n1 PUT hello" {
		t.Fatalf("body %q", b)
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestAJPConnectionsReused: sequential requests through either engine
// reuse one AJP connection.
func TestAJPConnectionsReused(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		b := newBackend(t, "n1")
		srv, err := ajp.NewServer(http.HandlerFunc(b.serve), ajp.Options{Secret: ajpTestSecret, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cl := &countingListener{Listener: ln}
		go srv.Serve(cl)
		t.Cleanup(func() { srv.Close() })
		u, _ := url.Parse("ajp://" + ln.Addr().String())
		_, f := e.front(t, fastOptions(), MemberConfig{URL: u, Route: "n1", Secret: ajpTestSecret})
		for i := range 20 {
			path := "/"
			if i%2 == 1 {
				path = "/echo"
			}
			if r := do(t, f.Client(), "POST", f.URL+path, "x.n1", strings.NewReader("body")); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
		}
		if n := cl.n.Load(); n != 1 {
			t.Errorf("%d AJP connections for 20 requests in turn, want 1", n)
		}
	})
}

// TestAJPBehindTrustedProxy: behind a trusted proxy, the container learns
// the client its X-Forwarded-For names and whether it used TLS; from
// anyone else the headers change nothing.
func TestAJPBehindTrustedProxy(t *testing.T) {
	tests := []struct {
		name    string
		trusted string
		xff     string
		want    string
	}{
		{"trusted", "127.0.0.0/8", "198.51.100.4, 203.0.113.9", "203.0.113.9:0 secure=true"},
		{"trusted chain", "127.0.0.0/8", "203.0.113.9, 127.0.0.5", "203.0.113.9:0 secure=true"},
		{"untrusted", "10.0.0.0/8", "203.0.113.9", "127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachEngine(t, func(t *testing.T, e engine) {
				m, _ := ajpMember(t, newBackend(t, "n1"))
				o := fastOptions()
				o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(tt.trusted)}
				_, f := e.front(t, o, m)
				req, _ := http.NewRequest("GET", f.URL+"/client", nil)
				req.Header.Set("X-Forwarded-For", tt.xff)
				req.Header.Set("X-Forwarded-Proto", "https")
				resp, err := f.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasPrefix(string(b), tt.want) || (tt.name == "untrusted" && strings.Contains(string(b), "secure=true")) {
					t.Errorf("the container saw %q, want %q…", b, tt.want)
				}
			})
		})
	}
}
