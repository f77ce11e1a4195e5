package balancer

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// recorder is a member that records the requests it gets: method,
// target, and body unless a handler of its own serves them.
type recorder struct {
	mu    sync.Mutex
	seen  []string // "METHOD target body"
	heads []http.Header
	srv   *httptest.Server
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body []byte
		if h == nil { // a handler reads the body itself, if it wants
			body, _ = io.ReadAll(req.Body)
		}
		r.mu.Lock()
		r.seen = append(r.seen, req.Method+" "+req.RequestURI+" "+string(body))
		r.heads = append(r.heads, req.Header.Clone())
		r.mu.Unlock()
		if h != nil {
			h(w, req)
			return
		}
		w.Header().Set("X-Member", "r")
		fmt.Fprintf(w, "saw %s %s", req.Method, body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func (r *recorder) member(t *testing.T) MemberConfig {
	u, _ := url.Parse(r.srv.URL)
	return MemberConfig{URL: u, Route: "r"}
}

// rawExchange sends raw bytes to addr, closes the sending side, and
// returns everything the server answered until it closed.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	out, _ := io.ReadAll(c)
	return string(out)
}

// statuses returns the status codes of the responses in raw, in order.
func statuses(raw string) []int {
	var out []int
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		io.Copy(io.Discard, resp.Body)
		out = append(out, resp.StatusCode)
	}
}

func nativeFront(t *testing.T, opts Options, so ServerOptions, members ...MemberConfig) (*Balancer, *frontend) {
	t.Helper()
	bal, err := New(opts, members)
	if err != nil {
		t.Fatal(err)
	}
	return bal, serveNative(t, bal, so)
}

// TestNativeRefusesSmuggling: each request is refused with its status
// before anything reaches the member, and the member never sees the
// request hidden behind it.
func TestNativeRefusesSmuggling(t *testing.T) {
	rec := newRecorder(t, nil)
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct {
		name, req string
		status    int
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n", 400},
		{"TE with space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n", 400},
		{"TE obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
		{"TE chunked then identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400},
		{"different CLs", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n", 400},
		{"CL with sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +0\r\n\r\n", 400},
		{"NUL in field", "GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501},
		{"Expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue-please\r\nContent-Length: 0\r\n\r\n", 417},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.requests())
			got := statuses(rawExchange(t, f.Addr, tt.req+smuggled))
			if len(got) != 1 || got[0] != tt.status {
				t.Fatalf("statuses %v, want only %d", got, tt.status)
			}
			if n := len(rec.requests()); n != before {
				t.Fatalf("the member got %v", rec.requests()[before:])
			}
		})
	}
}

// TestNativeBadChunkedBody: a request whose head is fine but whose chunked
// body is not reaches the member cut short, never the request after it.
func TestNativeBadChunkedBody(t *testing.T) {
	rec := newRecorder(t, nil)
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	for _, body := range []string{
		"5\r\nhello\r\n0x0\r\n\r\n",             // bad size
		"5\nhello\r\n0\r\n\r\n",                 // bare LF
		"5;\x01\r\nhello\r\n0\r\n\r\n",          // control byte in an extension
		"5\r\nhelloXX0\r\n\r\n",                 // no CRLF after the data
		"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n", // obs-fold in the trailer
	} {
		out := rawExchange(t, f.Addr, "POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+body+"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
		if strings.Contains(out, "200 OK") && strings.Count(out, "HTTP/1.1") > 1 {
			t.Errorf("body %q: answered %q", body, out)
		}
	}
	for _, r := range rec.requests() {
		if strings.Contains(r, "smuggled") {
			t.Errorf("the member got %q", r)
		}
	}
}

func TestNativePipelining(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Path) })
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	var raw strings.Builder
	for i := range 5 {
		fmt.Fprintf(&raw, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
	}
	raw.WriteString("POST /5 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /6 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	out := rawExchange(t, f.Addr, raw.String())
	br := bufio.NewReader(strings.NewReader(out))
	for i := range 7 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v (all: %q)", i, err, out)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != fmt.Sprintf("/%d", i) {
			t.Fatalf("response %d is %q", i, b)
		}
	}
}

func TestNativeExpectContinue(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusExpectationFailed) // before reading the body
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	})
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	// The client waits for 100 Continue before it sends the body: the
	// member's (net/http sends one when the handler reads) gets through.
	c, err := net.Dial("tcp", f.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if b := putAfterContinue(t, c, br, "/x", "hello"); b != "got hello" {
		t.Fatalf("body %q", b)
	}
	// The member refuses without reading: the client gets the answer, no
	// 100, and the connection closes (the body was never sent).
	fmt.Fprint(c, "PUT /refuse HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusExpectationFailed || !resp.Close {
		t.Fatalf("refused: %v %v", resp, err)
	}
}

// TestNativeExpectContinueFromSilentMember: a member that never sends 100
// Continue gets the body after a second, the client a 100 from the
// balancer (as net/http's Transport does).
func TestNativeExpectContinueFromSilentMember(t *testing.T) {
	addr := rawMember(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body) // net/http's server would send 100 here: answer raw instead
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
	}, true)
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, MemberConfig{URL: addr, Route: "s"})
	c, err := net.Dial("tcp", f.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprint(c, "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if line, err := br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q %v", line, err)
	}
	br.ReadString('\n')
	fmt.Fprint(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "hello" {
		t.Fatalf("body %q", b)
	}
}

// rawMember serves each connection with handle on a listener of its own;
// with keep, connections stay open for more requests.
func rawMember(t *testing.T, handle func(c net.Conn, br *bufio.Reader), keep bool) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					handle(c, br)
					if !keep {
						return
					}
					if _, err := br.Peek(1); err != nil {
						return
					}
				}
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	return u
}

func TestNativeChunkedBothWays(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.Write(b)
		http.NewResponseController(w).Flush() // chunked
		w.Header().Set("X-Sum", r.Trailer.Get("X-Check")+"!")
	})
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	out := rawExchange(t, f.Addr, "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Check\r\nTE: trailers\r\n\r\n"+
		"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Check: ok\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "abcdefg" || len(resp.TransferEncoding) != 1 || resp.Trailer.Get("X-Sum") != "ok!" {
		t.Fatalf("got %q te %v trailer %v: %q", b, resp.TransferEncoding, resp.Trailer, out)
	}
}

// TestNativeResponsesWithoutLength: a response delimited by the member
// closing goes to an HTTP/1.1 client chunked (the client connection stays
// open), to an HTTP/1.0 client as it is, followed by the close.
func TestNativeResponsesWithoutLength(t *testing.T) {
	addr := rawMember(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nX-Member: raw\r\n\r\nuntil the end")
		}
	}, false)
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, MemberConfig{URL: addr, Route: "raw"})
	out := rawExchange(t, f.Addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if n := strings.Count(out, "Transfer-Encoding: chunked\r\n"); n != 2 || strings.Count(out, "until the end") != 2 {
		t.Fatalf("HTTP/1.1: %q", out)
	}
	out = rawExchange(t, f.Addr, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.0 200 OK\r\n") || !strings.Contains(out, "Connection: close\r\n") || !strings.HasSuffix(out, "\r\n\r\nuntil the end") {
		t.Fatalf("HTTP/1.0: %q", out)
	}
}

func TestNativeBodilessResponses(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "11")
			io.WriteString(w, "hello world")
		}
	})
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	out := rawExchange(t, f.Addr, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	parts := strings.Split(out, "HTTP/1.1 ")
	if len(parts) != 5 || !strings.HasPrefix(parts[1], "200") || !strings.Contains(parts[1], "Content-Length: 11\r\n") || !strings.HasSuffix(parts[1], "\r\n\r\n") ||
		!strings.HasPrefix(parts[2], "204") || !strings.HasPrefix(parts[3], "304") || !strings.HasSuffix(parts[4], "hello world") {
		t.Fatalf("got %q", out)
	}
}

// TestNativeInterimResponses: 103 Early Hints reach an HTTP/1.1 client
// before the final response.
func TestNativeInterimResponses(t *testing.T) {
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "final")
	})
	_, f := nativeFront(t, fastOptions(), ServerOptions{}, rec.member(t))
	out := rawExchange(t, f.Addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n") {
		t.Fatalf("got %q", out)
	}
	out = rawExchange(t, f.Addr, "GET / HTTP/1.0\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.0 200 OK\r\n") {
		t.Fatalf("HTTP/1.0 client: %q", out)
	}
}

// TestNativeStaleConnectionRetried: a member that closes each keep-alive
// connection after one response, without saying so, costs nothing: the
// pooled connection is found closed and the request goes on a new one to
// the same member, once.
func TestNativeStaleConnectionRetried(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	addr := rawMember(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		mu.Lock()
		seen = append(seen, req.Method+" "+string(b))
		mu.Unlock()
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}, false)
	opts := fastOptions()
	opts.Health.ProbeInterval = time.Hour
	bal, f := nativeFront(t, opts, ServerOptions{}, MemberConfig{URL: addr, Route: "s"})
	c := f.Client()
	for i, tc := range []struct{ method, body string }{{"GET", ""}, {"GET", ""}, {"POST", "a=1"}, {"GET", ""}, {"POST", "b=2"}} {
		// Wait until the member's close has reached the pooled connection.
		proctest.Eventually(t, 5*time.Second, func() error {
			if m := bal.Pool().Lookup("s"); i > 0 && m.conns.Idle() == 1 && aliveIdle(m) {
				return fmt.Errorf("the pooled connection still looks open")
			}
			return nil
		})
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		if r := do(t, c, tc.method, f.URL, "", body); r.status != 200 || r.body != "ok" {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, ","); got != "GET ,GET ,POST a=1,GET ,POST b=2" {
		t.Fatalf("the member saw %s", got)
	}
	if m := bal.Pool().Lookup("s"); !m.Healthy() || m.failures.Load() != 0 {
		t.Fatalf("stale connections counted against the member: healthy %v, failures %d", m.Healthy(), m.failures.Load())
	}
}

// aliveIdle peeks at the member's idle connection and puts it back.
func aliveIdle(m *Member) bool {
	mc := m.conns.Get()
	if mc == nil {
		return false
	}
	alive := mc.Alive()
	m.conns.Put(mc)
	return alive
}
