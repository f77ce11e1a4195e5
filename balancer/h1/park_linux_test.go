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
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// parkedCount returns how many of srv's connections are parked.
func parkedCount(srv *Server) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	n := 0
	for c := range srv.conns {
		if c.state.Load() == stateParked {
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

// parkCase is a server that parks idle connections after 1ms, and how
// to dial it.
type parkCase struct {
	name string
	srv  *Server
	dial func() (net.Conn, error)
	tls  bool
}

// parkCases returns a plaintext server and a TLS one that answer with
// echoPath, the plaintext one first.
func parkCases(t *testing.T) []parkCase {
	o := ServerOptions{ParkAfter: time.Millisecond}
	plain, plainAddr := plainServer(t, echoPath, o)
	secure, secureAddr, cc := tlsServer(t, echoPath, o, nil)
	return []parkCase{
		{"plaintext", plain, func() (net.Conn, error) { return net.Dial("tcp", plainAddr) }, false},
		{"TLS", secure, func() (net.Conn, error) { return tls.Dial("tcp", secureAddr, cc) }, true},
	}
}

// open dials tc's server, for up to 30s of exchanges; the connection is
// closed when the test ends.
func (tc parkCase) open(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tc.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, bufio.NewReader(c)
}

// TestParkedConnections: idle connections, plaintext and TLS, are parked
// (their goroutines end) and served again when their clients send; the
// goroutines of 200 parked connections are gone.
func TestParkedConnections(t *testing.T) {
	cases := parkCases(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, br := tc.open(t)
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
			c, err := cases[0].dial()
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
			if n := parkedCount(cases[0].srv); n != len(cs) {
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
// idle deadline; Shutdown and Close close parked connections at once;
// each time its descriptor is closed and the server forgets it.
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
	ino := parkedSocket(t, srv)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle parked connection: %v, want EOF", err)
	}
	gone(t, srv, ino)

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
	ino = parkedSocket(t, srv)
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("parked connection after Shutdown: %v, want EOF", err)
	}
	if n := socketFDs(t, ino); n != 0 {
		t.Fatalf("after Shutdown the parked socket has %d descriptors", n)
	}

	srv, addr = plainServer(t, echoPath, ServerOptions{ParkAfter: time.Millisecond})
	c3, br := dialPlain(t, addr)
	c3.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c3, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswers(t, br, 1)
	ino = parkedSocket(t, srv)
	srv.Close()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("parked connection after Close: %v, want EOF", err)
	}
	if n := socketFDs(t, ino); n != 0 {
		t.Fatalf("after Close the parked socket has %d descriptors", n)
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

// parkedSocket waits until srv has a parked connection and checks that it
// holds no net.Conn: its ServerConn's raw and rc are nil, and its socket
// has one descriptor in this process, the parker's duplicate (Go's is
// closed). It returns the socket's inode. The client must not send
// meanwhile.
func parkedSocket(t *testing.T, srv *Server) uint64 {
	t.Helper()
	var ino uint64
	var held error
	proctest.Eventually(t, 10*time.Second, func() error {
		p := srv.parker.Load()
		if p == nil {
			return errors.New("no parker")
		}
		// Under the parker's lock, which the parker takes before it wakes
		// a connection: what is read here was read before any wake-up.
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, sc := range p.conns {
			if sc.state.Load() != stateParked {
				continue
			}
			if sc.raw != nil || sc.rc != nil || sc.readable != nil || !sc.detached {
				held = fmt.Errorf("a parked connection holds its net.Conn (raw %v, detached %v)", sc.raw, sc.detached)
				return nil
			}
			var st syscall.Stat_t
			if err := syscall.Fstat(sc.pfd, &st); err != nil {
				held = err
				return nil
			}
			ino = st.Ino
			return nil
		}
		return errors.New("not parked")
	})
	if held != nil {
		t.Fatal(held)
	}
	if n := socketFDs(t, ino); n != 1 {
		t.Fatalf("the parked socket has %d descriptors, want 1", n)
	}
	return ino
}

// socketFDs returns how many of this process's descriptors are the
// socket with inode ino.
func socketFDs(t *testing.T, ino uint64) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("socket:[%d]", ino)
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == want {
			n++
		}
	}
	return n
}

// gone waits until srv tracks no connection and the socket ino has no
// descriptor left.
func gone(t *testing.T, srv *Server, ino uint64) {
	t.Helper()
	proctest.Eventually(t, 10*time.Second, func() error {
		srv.mu.Lock()
		n := len(srv.conns)
		srv.mu.Unlock()
		if n != 0 {
			return fmt.Errorf("%d connections tracked", n)
		}
		if n := socketFDs(t, ino); n != 0 {
			return fmt.Errorf("the socket has %d descriptors left", n)
		}
		return nil
	})
}

// TestParkedConnectionsDetach: a parked connection keeps a duplicate of
// its socket and no net.Conn, plaintext and TLS; it is served after each
// of several wake-ups (pipelined requests included) on the same socket;
// when its client closes while it is parked, its descriptor is closed and
// the server forgets it.
func TestParkedConnectionsDetach(t *testing.T) {
	for _, tc := range parkCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c, br := tc.open(t)
			var ino uint64
			for i := range 4 {
				got := parkedSocket(t, tc.srv)
				if i > 0 && got != ino {
					t.Fatalf("wake-up %d: the socket changed", i)
				}
				ino = got
				io.WriteString(c, fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: a\r\n\r\nGET /%d/b HTTP/1.1\r\nHost: a\r\n\r\n", i, i))
				for _, path := range []string{fmt.Sprintf("/%d", i), fmt.Sprintf("/%d/b", i)} {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("%s after parking: %v", path, err)
					}
					b, _ := io.ReadAll(resp.Body)
					if want := fmt.Sprintf("%s tls=%v", path, tc.tls); string(b) != want {
						t.Fatalf("got %q, want %q", b, want)
					}
				}
			}
			parkedSocket(t, tc.srv)
			c.Close()
			gone(t, tc.srv, ino)
		})
	}
}

// TestBytesArriveWhileParking: requests that arrive while a connection is
// being parked (registered in the epoll instance, not yet detached) wake
// it as soon as it is parked: the parker waits for the park to finish.
func TestBytesArriveWhileParking(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", overTLS), func(t *testing.T) {
			o := ServerOptions{ParkAfter: time.Millisecond}
			var srv *Server
			var c net.Conn
			var err error
			if overTLS {
				var addr string
				var cc *tls.Config
				srv, addr, cc = tlsServer(t, echoPath, o, nil)
				c, err = tls.Dial("tcp", addr, cc)
			} else {
				var addr string
				srv, addr = plainServer(t, echoPath, o)
				c, err = net.Dial("tcp", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			hooked := make(chan error, 1)
			var once atomic.Bool
			srv.mu.Lock()
			srv.onPark = func(sc *ServerConn) error {
				if sc.served == 0 || once.Swap(true) { // after the first request
					return nil
				}
				_, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n")
				// The parker takes the event now, and must wait for this park.
				p := srv.parker.Load()
				for deadline := time.Now().Add(10 * time.Second); err == nil && p.waits.Load() == 0; runtime.Gosched() {
					if time.Now().After(deadline) {
						err = errors.New("the parker did not wait for the park to finish")
					}
				}
				hooked <- err
				return nil
			}
			srv.mu.Unlock()
			br := bufio.NewReader(c)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			for _, path := range []string{"/", "/x", "/y"} {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				b, _ := io.ReadAll(resp.Body)
				if want := fmt.Sprintf("%s tls=%v", path, overTLS); string(b) != want {
					t.Fatalf("got %q, want %q", b, want)
				}
			}
			if err := <-hooked; err != nil {
				t.Fatal(err)
			}
			parkedSocket(t, srv)
		})
	}
}

// TestCloseWhileParking: Close while a connection is being parked leaves
// it to the parking goroutine, which closes its socket once and forgets
// it.
func TestCloseWhileParking(t *testing.T) {
	srv, addr := plainServer(t, echoPath, ServerOptions{ParkAfter: time.Millisecond})
	inos := make(chan uint64, 1)
	srv.mu.Lock()
	srv.onPark = func(sc *ServerConn) error {
		var st syscall.Stat_t
		sc.rc.Control(func(fd uintptr) { syscall.Fstat(int(fd), &st) })
		srv.Close()
		inos <- st.Ino
		return nil
	}
	srv.mu.Unlock()
	c, br := dialPlain(t, addr)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswers(t, br, 1)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Close: %v, want EOF", err)
	}
	gone(t, srv, <-inos)
}
