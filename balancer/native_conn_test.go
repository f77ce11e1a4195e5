package balancer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

func TestNativeLimits(t *testing.T) {
	rec := newRecorder(t, nil)
	opts := fastOptions()
	opts.MaxURLBytes, opts.MaxBodyBytes = 100, 10
	_, f := nativeFront(t, opts, ServerOptions{MaxHeaderBytes: 1000, MaxHeaderFields: 20}, rec.member(t))
	tests := []struct {
		name, req string
		status    int
	}{
		{"target over max_url_bytes", "GET /" + strings.Repeat("a", 200) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"request line over the head limit", "GET /" + strings.Repeat("a", 2000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"head over the limit", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("b", 2000) + "\r\n\r\n", 431},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", 21) + "\r\n", 431},
		{"declared body over the limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world", 413},
		{"chunked body over the limit", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", 413},
		{"body within the limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := rawExchange(t, f.Addr, tt.req)
			if got := statuses(out); len(got) != 1 || got[0] != tt.status {
				t.Fatalf("statuses %v, want %d: %q", got, tt.status, out)
			}
		})
	}
	for _, r := range rec.requests() {
		if strings.Contains(r, "world") {
			t.Errorf("a body over the limit reached the member: %q", r)
		}
	}
}

// TestNativeSlowHeaders: a client that sends its head too slowly is cut
// off at the header timeout (slowloris); one that is idle between
// requests at the idle timeout.
func TestNativeSlowHeaders(t *testing.T) {
	rec := newRecorder(t, nil)
	_, f := nativeFront(t, fastOptions(), ServerOptions{HeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, rec.member(t))
	for _, sent := range []string{"GET / HTTP/1.1\r\nHost: a\r\nX-", "", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"} {
		c, err := net.Dial("tcp", f.Addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, sent)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(c) // ends when the balancer closes
		c.Close()
		if err != nil {
			t.Fatalf("after %q: %v", sent, err)
		}
		if sent == "" || strings.HasSuffix(sent, "X-") {
			if len(out) != 0 {
				t.Fatalf("after %q the balancer answered %q", sent, out)
			}
		} else if got := statuses(string(out)); len(got) != 1 || got[0] != 200 {
			t.Fatalf("an idle connection: %q", out)
		}
	}
}

// TestNativeSlowSecondHead: on a keep-alive connection the header
// timeout applies to every request head, not only the first; a whole
// head is served at once (the balancer sets no deadline for a head it
// already has in full).
func TestNativeSlowSecondHead(t *testing.T) {
	rec := newRecorder(t, nil)
	// The idle timeout is far longer than the test may take: only the
	// header timeout can close the connection in time.
	_, f := nativeFront(t, fastOptions(), ServerOptions{HeaderTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour}, rec.member(t))
	for _, second := range []string{"GET /2 HTTP/1.1\r\nHost: a\r\nX-", "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"} {
		c, err := net.Dial("tcp", f.Addr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v %v", resp, err)
		} else {
			io.Copy(io.Discard, resp.Body)
		}
		io.WriteString(c, second)
		if !strings.HasSuffix(second, "X-") {
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
				t.Fatalf("a whole second head: %v %v", resp, err)
			}
			c.Close()
			continue
		}
		out, err := io.ReadAll(br) // ends when the balancer closes
		c.Close()
		if err != nil {
			t.Fatalf("after a partial second head: %v (the header timeout did not close the connection)", err)
		}
		if len(out) != 0 {
			t.Fatalf("a partial second head was answered: %q", out)
		}
	}
}

// TestNativeHalfClose: a client that sends its request and shuts its
// sending side gets the whole response.
func TestNativeHalfClose(t *testing.T) {
	release := make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "late but whole")
	})
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	done := make(chan string)
	go func() { done <- rawExchange(t, f.Addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") }()
	proctest.Eventually(t, 5*time.Second, func() error {
		if len(rec.requests()) == 0 {
			return errors.New("not at the member yet")
		}
		return nil
	})
	close(release)
	if out := <-done; !strings.HasSuffix(out, "late but whole") {
		t.Fatalf("got %q", out)
	}
}

func TestNativeHTTP10KeepAlive(t *testing.T) {
	rec := newRecorder(t, nil)
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	out := rawExchange(t, f.Addr, "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\nGET /3 HTTP/1.0\r\n\r\n")
	if strings.Count(out, "HTTP/1.0 200 OK\r\n") != 2 || !strings.Contains(out, "Connection: keep-alive\r\n") || !strings.Contains(out, "Connection: close\r\n") {
		t.Fatalf("got %q", out)
	}
	if got := rec.requests(); len(got) != 2 {
		t.Fatalf("the member got %v", got)
	}
}

// TestNativeRequestRewriting: what the member gets for an absolute-form
// target, fields named by Connection, TE and a member path prefix.
func TestNativeRequestRewriting(t *testing.T) {
	rec := newRecorder(t, nil)
	m := rec.member(t)
	m.URL.Path = "/ctx/"
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, m)
	rawExchange(t, f.Addr, "GET http://shop.example:8080/a%2Fb?x=1 HTTP/1.1\r\nHost: ignored\r\nConnection: X-Secret, keep-alive\r\n"+
		"X-Secret: s\r\nKeep-Alive: 5\r\nTE: trailers, deflate\r\nProxy-Authorization: x\r\nx-lower: kept\r\n\r\n")
	got := rec.requests()
	if len(got) != 1 || got[0] != "GET /ctx/a%2Fb?x=1 " {
		t.Fatalf("the member got %v", got)
	}
	h := rec.heads[0]
	for k, want := range map[string]string{"X-Secret": "", "Keep-Alive": "", "Proxy-Authorization": "", "Te": "trailers",
		"X-Lower": "kept", "X-Forwarded-Host": "shop.example:8080", "Connection": ""} {
		if g := strings.Join(h[k], ","); g != want {
			t.Errorf("%s: %q, want %q", k, g, want)
		}
	}
}

func TestNativeMalformedMemberResponse(t *testing.T) {
	addr := rawMember(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc")
		}
	}, true)
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, MemberConfig{URL: addr, Route: "bad"})
	if r := do(t, f.Client(), "GET", f.URL, "", nil); r.status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", r.status)
	}
}

func TestNativeUnknownPathIs404(t *testing.T) {
	rec := newRecorder(t, nil)
	bal, err := New(fastOptions(), []MemberConfig{rec.member(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := NewServer(ServerOptions{}, NewMux(map[string]*Balancer{"/app": bal}))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); bal.Close() })
	out := rawExchange(t, ln.Addr().String(), "GET /apple HTTP/1.1\r\nHost: a\r\n\r\nGET /ap%70/x HTTP/1.1\r\nHost: a\r\n\r\n")
	if got := statuses(out); len(got) != 2 || got[0] != 404 || got[1] != 200 || !strings.Contains(out, notFound) {
		t.Fatalf("got %v: %q", got, out)
	}
}

// TestNativeGracefulShutdown: Shutdown closes idle connections at once,
// lets a request in flight finish, and refuses new connections.
func TestNativeGracefulShutdown(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		io.WriteString(w, "done")
	})
	bal, err := New(fastOptions(), []MemberConfig{rec.member(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	srv := NewServer(ServerOptions{}, NewMux(map[string]*Balancer{"/": bal}))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprint(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	idleBr := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(idleBr, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle connection's request: %v %v", resp, err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	body := make(chan string)
	go func() { body <- rawExchange(t, addr, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n") }()
	<-arrived
	stopped := make(chan error)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idleBr.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want it closed", err)
	}
	proctest.Eventually(t, 10*time.Second, func() error {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return errors.New("still accepting")
		}
		return nil
	})
	close(release)
	if out := <-body; !strings.HasSuffix(out, "done") || !strings.Contains(out, "Connection: close\r\n") {
		t.Fatalf("request in flight got %q", out)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
}

// TestNativeTunnelHalfClose: after a 101, each side's half-close reaches
// the other, and bytes sent right after the request head are not lost.
func TestNativeTunnelHalfClose(t *testing.T) {
	addr := rawMember(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		b, _ := io.ReadAll(br) // until the client's half-close
		fmt.Fprintf(c, "echo:%s", b)
	}, false)
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, MemberConfig{URL: addr, Route: "t"})
	out := rawExchange(t, f.Addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nearly bytes")
	if !strings.HasPrefix(out, "HTTP/1.1 101 ") || !strings.HasSuffix(out, "\r\n\r\necho:early bytes") {
		t.Fatalf("got %q", out)
	}
}

// TestNativeLargeBodies: large bodies arrive whole in both directions,
// with a length (spliced from member to client on Linux) or chunked; a
// member that dies in the middle of one cuts the client's response short.
func TestNativeLargeBodies(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.Write(b[:len(b)/2])
			http.NewResponseController(w).Flush()
			w.Write(b[len(b)/2:])
		case "/cut":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write([]byte(big[:len(big)/2]))
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b)
		}
	})
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	for _, path := range []string{"/length", "/chunked"} {
		for i := 0; i < 3; i++ { // the member connection is reused after each
			r := do(t, f.Client(), "POST", f.URL+path, "", strings.NewReader(big))
			if r.status != 200 || r.body != big {
				t.Fatalf("%s: status %d, %d bytes back of %d", path, r.status, len(r.body), len(big))
			}
		}
	}
	resp, err := f.Client().Get(f.URL + "/cut")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(b) >= len(big) {
		t.Fatalf("cut response: %d bytes, err %v; want it cut short", len(b), err)
	}
}

// observed records the observer's RequestInfo.
type observed struct {
	mu    sync.Mutex
	infos []RequestInfo
}

func (o *observed) ObserveRequest(i RequestInfo) {
	o.mu.Lock()
	o.infos = append(o.infos, i)
	o.mu.Unlock()
}

// TestObserverBytes: the observer gets the body bytes in both directions,
// counted for a chunked request too.
func TestObserverBytes(t *testing.T) {
	rec := newRecorder(t, nil)
	var obs observed
	opts := fastOptions()
	opts.Observer = &obs
	bal, f := nativeFront(t, opts, ServerOptions{}, rec.member(t))
	out := rawExchange(t, f.Addr, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if !strings.HasSuffix(out, "saw POST hello") {
		t.Fatalf("got %q", out)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.infos) != 1 || obs.infos[0].BytesIn != 5 || obs.infos[0].BytesOut != int64(len("saw POST hello")) || obs.infos[0].Status != 200 {
		t.Fatalf("observed %+v", obs.infos)
	}
	if s := statsOf(bal, "r"); s.Bytes != uint64(5+len("saw POST hello")) || s.Requests != 1 || s.InFlight != 0 {
		t.Fatalf("member stats %+v", s)
	}
}
