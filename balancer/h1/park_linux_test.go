//go:build linux

package h1

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// waitParked waits until srv's one connection is parked.
func waitParked(t *testing.T, srv *Server) {
	t.Helper()
	proctest.Eventually(t, 10*time.Second, func() error {
		if parkedCount(srv) != 1 {
			return errors.New("not parked")
		}
		return nil
	})
}

// parkedCount returns how many of srv's connections are parked.
func parkedCount(srv *Server) int { return countState(srv, stateParked) }

// idleCount returns how many of srv's connections are idle (in their
// grace or waiting on their goroutine, not parked).
func idleCount(srv *Server) int { return countState(srv, stateIdle) }

// countState returns how many of srv's connections are in state.
func countState(srv *Server, state int32) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	n := 0
	for c := range srv.conns {
		if c.state.Load() == state {
			n++
		}
	}
	return n
}

// plainServer serves h on a new plaintext listener.
func plainServer(t testing.TB, h Handler, o ServerOptions) (*Server, string) {
	t.Helper()
	srv := NewServer(h, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

// TestParkedConnections: idle connections, plaintext and TLS, are parked
// (their goroutines end) and served again when their clients send; the
// goroutines of 200 parked connections are gone.
func TestParkedConnections(t *testing.T) {
	o := ServerOptions{ParkAfter: time.Millisecond}
	plain, plainAddr := plainServer(t, echoPath, o)
	secure, secureAddr, cc := tlsServer(t, echoPath, o, nil)
	for _, tc := range []struct {
		name string
		srv  *Server
		dial func() (net.Conn, error)
		tls  bool
	}{
		{"plaintext", plain, func() (net.Conn, error) { return net.Dial("tcp", plainAddr) }, false},
		{"TLS", secure, func() (net.Conn, error) { return tls.Dial("tcp", secureAddr, cc) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			for i := range 3 {
				proctest.Eventually(t, 10*time.Second, func() error {
					if parkedCount(tc.srv) != 1 {
						return errors.New("not parked")
					}
					return nil
				})
				io.WriteString(c, fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d after parking: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				if want := fmt.Sprintf("/%d tls=%v", i, tc.tls); string(b) != want {
					t.Fatalf("got %q, want %q", b, want)
				}
			}
		})
	}
	t.Run("goroutines", func(t *testing.T) {
		before := runtime.NumGoroutine()
		var cs []net.Conn
		for range 200 {
			c, err := net.Dial("tcp", plainAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		proctest.Eventually(t, 10*time.Second, func() error {
			if n := parkedCount(plain); n != len(cs) {
				return fmt.Errorf("%d of %d parked", n, len(cs))
			}
			return nil
		})
		if n := runtime.NumGoroutine(); n > before+20 {
			t.Fatalf("%d goroutines with %d parked connections, %d before them", n, len(cs), before)
		}
	})
}

// TestParkedDeadlinesAndShutdown: a parked connection is closed at its
// idle deadline; Shutdown closes parked connections at once.
func TestParkedDeadlinesAndShutdown(t *testing.T) {
	srv, addr := plainServer(t, echoPath, ServerOptions{ParkAfter: time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle parked connection: %v, want EOF", err)
	}

	srv, addr = plainServer(t, echoPath, ServerOptions{ParkAfter: time.Millisecond})
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br = bufio.NewReader(c2)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	waitParked(t, srv)
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("parked connection after Shutdown: %v, want EOF", err)
	}
}

// TestParkerWaitsInTheNetpoller: the parker's goroutine waits for parked
// connections through Go's netpoller ("IO wait"), not in a blocking
// epoll_wait ("syscall"), which would keep its P until sysmon took it back
// and, with one P, stall every other connection each time it went back to
// wait. And if its epoll instance fails, parked connections are served
// again by goroutines of their own.
func TestParkerWaitsInTheNetpoller(t *testing.T) {
	srv, addr := plainServer(t, echoPath, ServerOptions{ParkAfter: time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	get := func(i int) {
		t.Helper()
		io.WriteString(c, fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != fmt.Sprintf("/%d tls=false", i) {
			t.Fatalf("request %d: got %q", i, b)
		}
	}
	parked := func() error {
		if parkedCount(srv) != 1 {
			return errors.New("not parked")
		}
		return nil
	}
	get(0)
	proctest.Eventually(t, 10*time.Second, parked)
	proctest.Eventually(t, 10*time.Second, func() error { // the parker's goroutine is back waiting
		state := parkerState()
		if state == "" {
			return errors.New("no parker goroutine")
		}
		if state != "IO wait" {
			return fmt.Errorf("the parker's goroutine is in state %q, want \"IO wait\"", state)
		}
		return nil
	})
	get(1)
	proctest.Eventually(t, 10*time.Second, parked)
	srv.parker.Load().abandon()
	get(2) // served by a goroutine of its own
	if parkedCount(srv) != 0 || srv.parkerFor() != nil {
		t.Fatal("connections are parked after the parker was abandoned")
	}
}

// parkerState returns the state of the goroutine running parker.run, as
// a goroutine dump shows it ("IO wait", "syscall", …), "" when none does.
func parkerState() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "h1.(*parker).run(") {
			continue
		}
		head, _, _ := strings.Cut(g, "\n")
		_, state, _ := strings.Cut(head, "[")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",")
		return state
	}
	return ""
}

// TestNoParkWithInputWaiting: a request that came within the grace but
// was not yet reported by the network poller when the grace's timer fired
// is served, not parked and woken again, and the connection's grace
// doubles; once it is parked for want of input and its client sends
// again after a long idle time, its grace is ParkAfter again. With one P busy, the runtime polls the network only when it has
// nothing else to run (or from sysmon, after 10 ms), so the timer wins:
// the test holds the P past the grace with the request in the socket,
// then lets the scheduler run.
func TestNoParkWithInputWaiting(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const grace = time.Millisecond
	graces := make(chan time.Duration, 100) // each request's connection's grace, from its goroutine
	srv, addr := plainServer(t, handlerFunc(func(c *ServerConn, r *Request) {
		select {
		case graces <- c.graceTime():
		default:
		}
		echoPath.ServeHTTP1(c, r)
	}), ServerOptions{ParkAfter: grace})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	get := func(path string) {
		t.Helper()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix(string(body), path+" ") {
			t.Fatalf("GET %s: body %q", path, body)
		}
	}
	get("/first")
	// Each try: the connection idle in its grace, the request written,
	// the P held past the grace without a scheduling point, then the
	// response read. The grace timer fires first in nearly every try;
	// the test needs it once.
	parks := srv.parks.Load()
	for try := 0; try < 50 && srv.lateInput.Load() == 0; try++ {
		for idleCount(srv) != 1 {
			runtime.Gosched()
		}
		if srv.parks.Load() != parks {
			// Parked before the request was written (the grace ran out
			// while this goroutine waited): that park is right; wake
			// the connection and try again.
			get("/wake")
			parks = srv.parks.Load()
			continue
		}
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", try)
		for start := time.Now(); time.Since(start) < 3*grace; {
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if n := srv.parks.Load(); n != parks {
			t.Fatalf("try %d: %d connections parked with their request waiting", try, n-parks)
		}
	}
	if srv.lateInput.Load() == 0 {
		t.Fatal("in 50 tries the grace never ran out with the request waiting: the case was not tested")
	}
	var last time.Duration
	for len(graces) > 0 {
		last = <-graces
	}
	if last != 2*grace {
		t.Fatalf("serving the request that waited: grace %v, want %v", last, 2*grace)
	}
	waitParked(t, srv)
	// The client's think time: idle for more than wakeSoon graces since
	// it read its last response, so since the server began to wait.
	for start := time.Now(); time.Since(start) < 2*wakeSoon*last; {
		runtime.Gosched()
	}
	get("/woken")
	if g := <-graces; g != grace {
		t.Fatalf("woken after a long park: grace %v, want %v again", g, grace)
	}
}

// TestWokenGrace: the grace a parked connection gets when its client
// sends again depends on how long it was idle: within wakeSoon graces it
// doubles (up to maxLonger), later it is ParkAfter again; a connection
// that has not served its first request keeps its grace.
func TestWokenGrace(t *testing.T) {
	const after, idleTimeout = 10 * time.Millisecond, time.Minute
	now := time.Now()
	for _, tc := range []struct {
		name       string
		served     int
		longer     uint8
		idle       time.Duration
		wantLonger uint8
	}{
		{"soon after a first park", 1, 0, 28 * time.Millisecond, 1},
		{"soon, again", 5, 1, 28 * time.Millisecond, 2},
		{"just under wakeSoon graces", 5, 0, wakeSoon*after - time.Millisecond, 1},
		{"at wakeSoon graces", 5, 0, wakeSoon * after, 0},
		{"long idle resets", 5, 3, 2 * time.Second, 0},
		{"within a long grace", 5, 3, 300 * time.Millisecond, 4},
		{"at the bound", 5, maxLonger, 20 * time.Millisecond, maxLonger},
		{"before the first request", 0, 2, time.Millisecond, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &ServerConn{srv: &Server{opts: ServerOptions{ParkAfter: after, IdleTimeout: idleTimeout}},
				served: tc.served, longer: tc.longer, parkDeadline: now.Add(-tc.idle).Add(idleTimeout)}
			c.woken(now)
			if c.longer != tc.wantLonger {
				t.Errorf("idle %v with grace %v: longer %d, want %d", tc.idle, after<<tc.longer, c.longer, tc.wantLonger)
			}
		})
	}
}

// TestParkAllocations: parking a connection, taking it out of the
// parker's epoll set again, and checking it for input when a grace runs
// out allocate nothing (their RawConn.Control callbacks are made once).
func TestParkAllocations(t *testing.T) {
	srv, addr := plainServer(t, echoPath, ServerOptions{ParkAfter: time.Millisecond})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(nc), nil); err != nil {
		t.Fatal(err)
	}
	waitParked(t, srv)
	p := srv.parker.Load()
	var c *ServerConn
	srv.mu.Lock()
	for sc := range srv.conns {
		c = sc
	}
	srv.mu.Unlock()
	p.mu.Lock()
	var id uint64
	for i, pc := range p.conns {
		if pc == c {
			id = i
		}
	}
	p.mu.Unlock()
	deadline := time.Now().Add(time.Hour)
	allocs := testing.AllocsPerRun(1000, func() {
		p.mu.Lock()
		delete(p.conns, id)
		p.mu.Unlock()
		p.unregister(c)
		if !c.state.CompareAndSwap(stateParked, stateIdle) || !p.park(c, deadline) {
			t.Fatal("could not park the connection again")
		}
		p.mu.Lock()
		id = p.ids
		p.mu.Unlock()
	})
	if allocs != 0 && !raceDetector {
		t.Errorf("%.1f allocations per park and unregister, want 0", allocs)
	}
	// The check for input when a grace runs out allocates nothing either.
	if allocs := testing.AllocsPerRun(1000, func() {
		if c.inputWaiting() {
			t.Fatal("input waiting where the client sent nothing")
		}
	}); allocs != 0 && !raceDetector {
		t.Errorf("%.1f allocations per check for input, want 0", allocs)
	}
	// The connection is still served after all this.
	io.WriteString(nc, "GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "/again tls=false" {
		t.Fatalf("got %q after the parks", b)
	}
}
