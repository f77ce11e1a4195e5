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
	"testing"
	"time"
)

// benchBalancer is a balancer over three members that are never dialed.
func benchBalancer(b testing.TB, method Method, transport http.RoundTripper) *Balancer {
	opts := fastOptions()
	opts.Method = method
	opts.Transport = transport
	bal, err := New(opts, []MemberConfig{
		cfg("n1", "http://127.0.0.1:1", 1, Active), cfg("n2", "http://127.0.0.1:2", 1, Active), cfg("n3", "http://127.0.0.1:3", 1, Active),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bal.Close)
	return bal
}

func routingRequest(cookie string) request {
	r := request{method: "GET", target: "/shop/cart?item=42", query: "item=42"}
	if cookie != "" {
		r.cookies = []string{cookie}
	}
	return r
}

func httpRequest(cookie string) *http.Request {
	r := httptest.NewRequest("GET", "/shop/cart?item=42", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

const benchCookie = "_ga=GA1.2.3; theme=dark; JSESSIONID=8F3A2B9C1D4E5F60718293A4B5C6D7E8.n2; lang=en"

// routeOnce runs the routing path of one request: extraction, lookup, pick.
func routeOnce(bal *Balancer, a *attempt, r request) *Member {
	a.begin(bal, bal.cur.Load())
	a.req = r
	if err := a.choose(); err != nil {
		panic(err)
	}
	m := a.member
	a.reset()
	return m
}

func TestRoutingDoesNotAllocate(t *testing.T) {
	for _, method := range []Method{ByRequests, ByBusyness, ByTraffic, P2C} {
		bal := benchBalancer(t, method, nil)
		a := new(attempt)
		for name, r := range map[string]request{
			"sticky": routingRequest(benchCookie), "new": routingRequest(""),
			"path":     {method: "GET", target: "/app;jsessionid=ABC.n3?x=1", query: "x=1"},
			"failover": routingRequest("JSESSIONID=ABC.n9"),
		} {
			routeOnce(bal, a, r) // warm the candidate buffer
			if n := testing.AllocsPerRun(200, func() { routeOnce(bal, a, r) }); n != 0 {
				t.Errorf("%s, %s: %v allocations per request", method, name, n)
			}
		}
	}
}

func BenchmarkRouting(b *testing.B) {
	for _, tc := range []struct {
		name, cookie string
		method       Method
	}{
		{"sticky", benchCookie, ByRequests},
		{"new/byrequests", "", ByRequests},
		{"new/bybusyness", "", ByBusyness},
		{"new/bytraffic", "", ByTraffic},
		{"new/p2c", "", P2C},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bal := benchBalancer(b, tc.method, nil)
			a := new(attempt)
			r := routingRequest(tc.cookie)
			b.ReportAllocs()
			for b.Loop() {
				routeOnce(bal, a, r)
			}
		})
	}
}

// cannedTransport answers every request at once, so that the benchmark
// measures the balancer and ReverseProxy, not a network.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: r, ContentLength: 2,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader("ok")),
	}, nil
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkServeHTTP is one whole proxied request through the balancer
// with a transport that answers at once.
func BenchmarkServeHTTP(b *testing.B) {
	for _, tc := range []struct{ name, cookie string }{{"sticky", benchCookie}, {"new", ""}} {
		b.Run(tc.name, func(b *testing.B) {
			bal := benchBalancer(b, ByRequests, cannedTransport{})
			r := httpRequest(tc.cookie)
			r.RemoteAddr = "127.0.0.1:5555"
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				bal.ServeHTTP(w, r)
			}
		})
	}
}

// benchMember is a member that answers every request with resp, on
// keep-alive connections, without allocating.
func benchMember(tb testing.TB, resp string) *url.URL {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	out := []byte(resp)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for readHead(br) == nil {
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	return u
}

// readHead reads a message head up to its empty line.
func readHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

// benchClient is one keep-alive client connection that sends req and
// reads responses of bodyLen bytes, without allocating.
type benchClient struct {
	c       net.Conn
	br      *bufio.Reader
	req     []byte
	bodyLen int
}

func newBenchClient(tb testing.TB, addr, req string, bodyLen int) *benchClient {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &benchClient{c: c, br: bufio.NewReader(c), req: []byte(req), bodyLen: bodyLen}
}

func (bc *benchClient) do() error {
	if _, err := bc.c.Write(bc.req); err != nil {
		return err
	}
	if err := readHead(bc.br); err != nil {
		return err
	}
	_, err := bc.br.Discard(bc.bodyLen)
	return err
}

const (
	benchResponse    = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nmember 1"
	benchNewResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: JSESSIONID=8F3A2B9C1D4E5F60718293A4B5C6D7E8.n1; Path=/\r\nContent-Length: 8\r\n\r\nmember 1"
	benchRequest     = "GET /shop/cart?item=42 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench\r\nAccept: */*\r\nCookie: " + benchCookie + "\r\n\r\n"
	benchNewRequest  = "GET /shop/cart?item=42 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
)

// nativeBench is a native engine over one member answering resp, and a
// client sending req.
func nativeBench(tb testing.TB, req, resp string) *benchClient {
	member := benchMember(tb, resp)
	return nativeBenchOver(tb, req, []MemberConfig{{URL: member, Route: "n1"}, {URL: member, Route: "n2"}, {URL: member, Route: "n3"}})
}

// nativeBenchOver is a native engine over members, and a client sending
// req.
func nativeBenchOver(tb testing.TB, req string, members []MemberConfig) *benchClient {
	bal, err := New(fastOptions(), members)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(ServerOptions{}, NewMux(map[string]*Balancer{"/": bal}))
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close(); bal.Close() })
	return newBenchClient(tb, ln.Addr().String(), req, 8)
}

// TestNativeAllocations keeps the native engine's hot path from growing
// allocations: a whole proxied request (client connection, routing,
// member connection, response relay, session tracking) allocates at most
// maxNativeAllocs objects. The bound is a regression guard, not a target:
// the path allocates nothing in steady state today; the slack absorbs the
// runtime's own occasional allocations (timers, pools refilled after a GC).
// Under the race detector, which makes sync.Pool drop a quarter of the
// objects put back (about 10 pooled objects go round per request: client
// buffers and head, member buffers, the attempt), the bound is 8.
func TestNativeAllocations(t *testing.T) {
	maxNativeAllocs := 2.0
	if raceDetector {
		maxNativeAllocs = 8
	}
	for name, req := range map[string][2]string{"sticky": {benchRequest, benchResponse}, "new": {benchNewRequest, benchNewResponse}} {
		n := allocsPerRequest(t, nativeBench(t, req[0], req[1]))
		if n > maxNativeAllocs {
			t.Errorf("%s: %v allocations per proxied request, want at most %v", name, n, maxNativeAllocs)
		}
		t.Logf("%s: %v allocations per proxied request", name, n)
	}
}

// allocsPerRequest returns the average allocations of one of bc's
// requests, after 100 to warm up pools and buffers.
func allocsPerRequest(t *testing.T, bc *benchClient) float64 {
	t.Helper()
	for range 100 {
		if err := bc.do(); err != nil {
			t.Fatal(err)
		}
	}
	return testing.AllocsPerRun(500, func() {
		if err := bc.do(); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkNative is one whole proxied request through the native engine
// over loopback: a client and a member that do not allocate, so that
// allocs/op are the balancer's. ns/op includes both ends and the kernel.
func BenchmarkNative(b *testing.B) {
	for _, tc := range []struct{ name, req, resp string }{
		{"sticky", benchRequest, benchResponse},
		{"new", benchNewRequest, benchNewResponse},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bc := nativeBench(b, tc.req, tc.resp)
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.do(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNativeNewConnection is one request per connection at both
// ends: a new client connection, and a new member connection (the member
// answers Connection: close), as in a burst of new clients or with
// clients and members that do not keep connections alive. The serving
// goroutine is new for each, so its stack is new too (h1's growStack).
func BenchmarkNativeNewConnection(b *testing.B) {
	member := benchMember(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 8\r\n\r\nmember 1")
	bc := nativeBenchOver(b, strings.Replace(benchRequest, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1),
		[]MemberConfig{{URL: member, Route: "n1"}, {URL: member, Route: "n2"}, {URL: member, Route: "n3"}})
	addr := bc.c.RemoteAddr().String()
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		bc.c = c
		bc.br.Reset(c)
		err = bc.do()
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchAJPMember is an AJP13 container that answers every Forward Request
// with the same response (Content-Length: 8, "member 1"), reusing the
// connection, without allocating.
func benchAJPMember(tb testing.TB) *url.URL {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	var out []byte
	pkt := func(p ...byte) { out = append(out, 'A', 'B', byte(len(p)>>8), byte(len(p))); out = append(out, p...) }
	pkt(4, 0, 200, 0, 2, 'O', 'K', 0, 0, 2, 0xA0, 0x01, 0, 10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', 0, 0xA0, 0x03, 0, 1, '8', 0)
	pkt(3, 0, 8, 'm', 'e', 'm', 'b', 'e', 'r', ' ', '1', 0)
	pkt(5, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var buf [8192]byte
				for {
					if _, err := io.ReadFull(c, buf[:4]); err != nil {
						return
					}
					n := int(buf[2])<<8 | int(buf[3])
					if _, err := io.ReadFull(c, buf[:n]); err != nil {
						return
					}
					if n > 0 && buf[0] == 2 { // a Forward Request; GET: no body follows
						if _, err := c.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	u, _ := url.Parse("ajp://" + ln.Addr().String())
	return u
}

// BenchmarkNativeAJP is BenchmarkNative/sticky with ajp:// members.
func BenchmarkNativeAJP(b *testing.B) {
	member := benchAJPMember(b)
	bc := nativeBenchOver(b, strings.Replace(benchRequest, ".n2", ".n1", 1), []MemberConfig{{URL: member, Route: "n1"}})
	b.ReportAllocs()
	for b.Loop() {
		if err := bc.do(); err != nil {
			b.Fatal(err)
		}
	}
}

// threeMemberPool is a pool of members n1..n3 that nothing listens for.
func threeMemberPool(tb testing.TB) *Pool {
	tb.Helper()
	var cfgs []MemberConfig
	for _, rt := range []string{"n1", "n2", "n3"} {
		u, _ := url.Parse("http://127.0.0.1:1")
		cfgs = append(cfgs, MemberConfig{URL: u, Route: rt})
	}
	pool, err := newPool(cfgs, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	return pool
}

// BenchmarkEachSession: the walk of the session tracker a group's manager
// makes every second, at 1,000,000 tracked sessions (one op: the walk).
func BenchmarkEachSession(b *testing.B) {
	pool := threeMemberPool(b)
	t := newSessionTracker(1_000_000, time.Now(), pool.byID, nil)
	ms := pool.Members()
	now := time.Now()
	for i := range 1_000_000 {
		t.touch(fmt.Sprintf("%032x", i), ms[i%3], now)
	}
	for b.Loop() {
		n := 0
		t.each(func(string, uint64) { n++ })
		if n != 1_000_000 {
			b.Fatalf("walked %d sessions", n)
		}
	}
}

// BenchmarkTouchNewSession: what tracking costs a request that creates a
// session (bench/compare's new mode): an id the tracker has not seen, into
// a tracker growing from empty to 1,048,576 sessions and then begun again.
func BenchmarkTouchNewSession(b *testing.B) {
	pool := threeMemberPool(b)
	ids := make([]string, 1<<20)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	ms := pool.Members()
	now := time.Now()
	var t *sessionTracker
	i := 0
	for b.Loop() {
		if i%len(ids) == 0 {
			t = newSessionTracker(len(ids), now, pool.byID, nil)
		}
		if added, _ := t.touch(ids[i%len(ids)], ms[i%3], now); !added {
			b.Fatal("a new session was not added")
		}
		i++
	}
}
