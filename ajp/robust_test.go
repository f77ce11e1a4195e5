package ajp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// What goes wrong: handler panics, hang-ups, garbage, stalls, shutdown.

func TestPanic(t *testing.T) {
	_, addr, logs := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}), Options{})
	c := dial(t, addr)
	c.send(fwd{secret: testSecret}.packet())
	if r := c.response(); r.status != 500 || r.reuse {
		t.Fatalf("status %d reuse %v", r.status, r.reuse)
	}
	c.expectClosed()
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("log: %s", logs)
	}
	c = dial(t, addr) // the server goes on
	c.send(fwd{secret: testSecret, uri: "/abort"}.packet())
	if r := c.response(); r.status != 500 {
		t.Fatalf("after a panic: status %d", r.status)
	}
}

func TestContextEndsWhenWebServerHangsUp(t *testing.T) {
	for _, tt := range []struct {
		name  string
		f     fwd
		first []byte
	}{
		{"no body", fwd{secret: testSecret}, nil},
		{"body read in full", fwd{secret: testSecret, method: 4, headers: [][2]string{{"Content-Length", "5"}}}, []byte("hello")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			started, ended := make(chan struct{}), make(chan error, 1)
			_, addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.ReadAll(r.Body)
				close(started)
				select {
				case <-r.Context().Done():
					ended <- context.Cause(r.Context())
				case <-time.After(20 * time.Second):
					ended <- errors.New("context not cancelled")
				}
			}), Options{})
			c := dial(t, addr)
			c.send(tt.f.packet())
			if tt.first != nil {
				c.send(bodyPacket(tt.first))
			}
			<-started
			c.c.Close()
			if err := <-ended; err == nil || !strings.Contains(err.Error(), "connection to the web server lost") {
				t.Fatalf("cause %v", err)
			}
		})
	}
}

// TestGarbage sends what no web server should; each time the connection is
// closed with a logged error, the handler is never called, and the server
// goes on serving.
func TestGarbage(t *testing.T) {
	good := fwd{secret: testSecret}.payload()
	tests := []struct {
		name string
		in   []byte
		log  string
	}{
		{"HTTP instead of AJP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "magic"},
		{"reply magic", append([]byte("AB"), packet(good)[2:]...), "magic"},
		{"oversized packet", []byte{0x12, 0x34, 0x23, 0x28}, "packet too large"},
		{"empty packet", packet(nil), "empty packet"},
		{"unknown type", packet([]byte{99}), "unexpected packet"},
		{"send headers from the web server", packet([]byte{typeSendHeaders, 0, 200}), "unexpected packet"},
		{"truncated forward request", packet(good[:20]), "malformed"},
		{"no terminator", packet(good[:len(good)-1]), "malformed"},
		{"bytes after the terminator", packet(append(append([]byte{}, good...), 1, 2)), "after the terminator"},
		{"unknown method code", packet(fwd{method: 200, secret: testSecret}.payload()), "unknown method"},
		{"stored method without name", packet(fwd{method: 0xFF, secret: testSecret}.payload()), "stored_method"},
		{"bad stored method", packet(fwd{method: 0xFF, secret: testSecret, attrs: []attr{strAttr(0x0D, "GET /x")}}.payload()), "invalid method"},
		{"header injection", packet(fwd{secret: testSecret, headers: [][2]string{{"X-A", "1\r\nX-B: 2"}}}.payload()), "invalid value"},
		{"bad header name", packet(fwd{secret: testSecret, headers: [][2]string{{"X A", "1"}}}.payload()), "invalid header name"},
		{"unknown header code", packet(append([]byte{}, fwd{secret: testSecret, headers: [][2]string{{"Accept", "x"}}}.payload()...)), ""},
		{"unknown attribute", packet(fwd{secret: testSecret, attrs: []attr{{0x42, nil}}}.payload()), "unknown attribute"},
		{"secret twice", packet(fwd{secret: testSecret, attrs: []attr{strAttr(0x0C, "x")}}.payload()), "secret sent twice"},
		{"string without NUL", packet(fwd{secret: testSecret, attrs: []attr{{0x05, []byte{0, 1, 'a', 'b'}}}}.payload()), "NUL"},
		{"bad content length", packet(fwd{secret: testSecret, headers: [][2]string{{"Content-Length", "-5"}}}.payload()), "Content-Length"},
		{"conflicting content lengths", packet(fwd{secret: testSecret, headers: [][2]string{{"Content-Length", "5"}, {"Content-Length", "6"}}}.payload()), "conflicting"},
		{"relative uri", packet(fwd{secret: testSecret, uri: "x/y"}.payload()), "req_uri"},
		{"bad protocol", packet(fwd{secret: testSecret, protocol: "SPDY"}.payload()), "protocol"},
		{"too many headers", packet(fwd{secret: testSecret, headers: manyHeaders(101)}.payload()), "too many headers"},
		{"boolean not 0 or 1", func() []byte { p := fwd{secret: testSecret}.payload(); return packet(p) }(), ""},
		{"body chunk longer than announced", append(packet(fwd{secret: testSecret, method: 4, headers: [][2]string{{"Content-Length", "4"}}}.payload()),
			packet([]byte{0, 9, 'a', 'b'})...), "body chunk says"},
		{"body chunk beyond content-length", append(packet(fwd{secret: testSecret, method: 4, headers: [][2]string{{"Content-Length", "2"}}}.payload()),
			bodyPacket([]byte("abcd"))...), "expected at most"},
	}
	// "unknown header code": rewrite the Accept code 0xA001 into 0xA0EE.
	for i := range tests {
		if tests[i].name == "unknown header code" {
			p := tests[i].in
			j := bytes.Index(p, []byte{0xA0, 0x01})
			p[j+1] = 0xEE
			tests[i].log = "unknown header code"
		}
		if tests[i].name == "boolean not 0 or 1" {
			p := tests[i].in
			j := bytes.Index(p, []byte("www.example.org\x00")) + len("www.example.org\x00") + 2
			p[j] = 7
			tests[i].log = "boolean"
		}
	}
	called := make(chan string, 100)
	_, addr, logs := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		called <- r.RequestURI
	}), Options{ReadTimeout: 5 * time.Second})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(logs.String())
			c := dial(t, addr)
			c.send(tt.in)
			c.expectClosed(typeSendHeaders, typeEndResponse, typeGetBodyChunk)
			if got := logs.String()[before:]; !strings.Contains(got, tt.log) || !strings.Contains(got, "level=WARN") {
				t.Errorf("log %q, want a warning with %q", got, tt.log)
			}
		})
	}
	if n := len(called); n != 0 {
		t.Errorf("handler called %d times, want never", n)
	}
	c := dial(t, addr)
	c.send(fwd{secret: testSecret}.packet())
	if r := c.response(); r.status != 200 {
		t.Fatalf("after garbage: status %d", r.status)
	}
}

func manyHeaders(n int) [][2]string {
	h := make([][2]string, n)
	for i := range h {
		h[i] = [2]string{fmt.Sprintf("X-H%d", i), "v"}
	}
	return h
}

// TestTimeouts checks that a web server that stalls half-way through a
// packet, or idles, has its connection closed, and that no goroutine is
// left serving it.
func TestTimeouts(t *testing.T) {
	s, addr, _ := serve(t, http.HandlerFunc(echo), Options{ReadTimeout: 100 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"half a packet", fwd{secret: testSecret}.packet()[:10]},
		{"idle", nil},
		{"body never sent", fwd{secret: testSecret, method: 4, headers: [][2]string{{"Content-Length", "5"}}}.packet()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			if tt.in != nil {
				c.send(tt.in)
			}
			c.expectClosed()
		})
	}
	proctest.Eventually(t, 10*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if n := len(s.conns); n != 0 {
			return fmt.Errorf("%d connections still served", n)
		}
		return nil
	})
}

func TestShutdown(t *testing.T) {
	inHandler, release := make(chan struct{}), make(chan struct{})
	s, addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
		io.WriteString(w, "done")
	}), Options{})
	idle := dial(t, addr)
	idle.send(packet([]byte{typeCPing}))
	idle.read()
	busy := dial(t, addr)
	busy.send(fwd{secret: testSecret}.packet())
	<-inHandler

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.expectClosed() // closed at once
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in progress", err)
	default:
	}
	close(release)
	r := busy.response()
	if string(r.body) != "done" || r.reuse {
		t.Fatalf("in-flight request: %q reuse %v, want done without reuse", r.body, r.reuse)
	}
	busy.c.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

func TestShutdownTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	inHandler := make(chan struct{})
	s, addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
	}), Options{})
	c := dial(t, addr)
	c.send(fwd{secret: testSecret}.packet())
	<-inHandler
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context: %v", err)
	}
}
