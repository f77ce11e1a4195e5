package h1

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

// tlsServer serves h over TLS with a certificate for 127.0.0.1, HTTP/1.1
// and h2 offered; h2 connections go to handover.
func tlsServer(t *testing.T, h Handler, o ServerOptions, handover func(*tls.Conn)) (*Server, string, *tls.Config) {
	t.Helper()
	if handover != nil {
		o.NextProto = map[string]func(*tls.Conn){"h2": handover}
	}
	return tlsServerTB(t, h, o)
}

// tlsServerTB is tlsServer without handover, for benchmarks too.
func tlsServerTB(t testing.TB, h Handler, o ServerOptions) (*Server, string, *tls.Config) {
	t.Helper()
	ca := testpki.NewCA(t, "h1")
	o.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueTLS(t, "127.0.0.1")}, NextProtos: []string{"h2", "http/1.1"}}
	srv := NewServer(h, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String(), &tls.Config{RootCAs: ca.Pool()}
}

// echoPath answers each request with its path, and says whether it came
// over TLS.
var echoPath = handlerFunc(func(c *ServerConn, r *Request) {
	body := fmt.Sprintf("%s tls=%v", r.Path, c.IsTLS() && c.TLSState().HandshakeComplete)
	fmt.Fprintf(c.Writer(), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
})

// TestTLSServesHTTP1: keep-alive requests over TLS 1.2 and 1.3, one at a
// time and pipelined: in one record, and in records larger than the read
// buffer (what crypto/tls holds beyond it must be served, not waited on).
func TestTLSServesHTTP1(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			_, addr, cc := tlsServer(t, echoPath, ServerOptions{}, nil)
			cc.MinVersion, cc.MaxVersion, cc.NextProtos = version, version, []string{"http/1.1"}
			c, err := tls.Dial("tcp", addr, cc)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			expect := func(paths ...string) {
				t.Helper()
				for _, p := range paths {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					if want := p + " tls=true"; string(b) != want {
						t.Fatalf("got %q, want %q", b, want)
					}
				}
			}
			req := func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: a\r\n\r\n" }
			for _, p := range []string{"/1", "/2"} {
				io.WriteString(c, req(p))
				expect(p)
			}
			io.WriteString(c, req("/3")+req("/4")) // one record
			expect("/3", "/4")
			var many strings.Builder
			var paths []string
			for i := range 200 { // about 7 KiB: records beyond the 4 KiB buffer
				p := fmt.Sprintf("/pipelined/%03d", i)
				paths = append(paths, p)
				many.WriteString(req(p))
			}
			io.WriteString(c, many.String())
			expect(paths...)
			if got := c.ConnectionState().Version; got != version {
				t.Fatalf("version %x, want %x", got, version)
			}
		})
	}
}

// TestTLSHandsOverH2: a client that negotiates h2 goes to NextProto, one
// that negotiates nothing or http/1.1 is served here.
func TestTLSHandsOverH2(t *testing.T) {
	handed := make(chan string, 1)
	_, addr, cc := tlsServer(t, echoPath, ServerOptions{}, func(c *tls.Conn) {
		handed <- c.ConnectionState().NegotiatedProtocol
		c.Close()
	})
	h2 := cc.Clone()
	h2.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", addr, h2)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case p := <-handed:
		if p != "h2" {
			t.Fatalf("handed over %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the h2 connection was not handed over")
	}
	for _, protos := range [][]string{nil, {"http/1.1"}} {
		h1 := cc.Clone()
		h1.NextProtos = protos
		c, err := tls.Dial("tcp", addr, h1)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("ALPN %q: %v %v", protos, resp, err)
		}
	}
	if len(handed) != 0 {
		t.Fatal("an HTTP/1.1 connection was handed over")
	}
}

// TestTLSIdleHoldsNoBuffers: between requests a TLS connection gives its
// read and write buffers and its request back to the server's pools.
func TestTLSIdleHoldsNoBuffers(t *testing.T) {
	if !canPeek {
		t.Skip("idle connections keep their buffers on this platform")
	}
	srv, addr, cc := tlsServer(t, echoPath, ServerOptions{}, nil)
	c, err := tls.Dial("tcp", addr, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for i := range 3 {
		io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		proctest.Eventually(t, 10*time.Second, func() error {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			for sc := range srv.conns {
				// The state is stored after the buffers went back.
				if st := sc.state.Load(); st != stateIdle && st != stateParked {
					return errors.New("not idle yet")
				}
				held := sc.br != nil || sc.bw != nil || sc.req != nil
				// An atomic write after the reads orders them before the
				// connection's next CompareAndSwap (for the race detector).
				sc.state.CompareAndSwap(stateIdle, stateIdle)
				sc.state.CompareAndSwap(stateParked, stateParked)
				if held {
					return fmt.Errorf("idle after request %d with buffers held", i)
				}
			}
			return nil
		})
	}
}

// TestTLSHandshakeTimeout: a client that connects and sends nothing, or
// stops in the middle of its handshake, is closed after HeaderTimeout;
// Shutdown does not wait for a handshake.
func TestTLSHandshakeTimeout(t *testing.T) {
	srv, addr, _ := tlsServer(t, echoPath, ServerOptions{HeaderTimeout: 200 * time.Millisecond}, nil)
	for _, send := range []string{"", "\x16\x03\x01\x00\x80"} { // nothing; a record header only
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, send)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("sent %q: %v, want the server to close", send, err)
		}
		c.Close()
	}
	srv, addr, _ = tlsServer(t, echoPath, ServerOptions{HeaderTimeout: time.Hour}, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	proctest.Eventually(t, 10*time.Second, func() error {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.conns) != 1 {
			return fmt.Errorf("%d connections", len(srv.conns))
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(t.Context()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown waited for a handshake")
	}
}
