package h1

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

type handlerFunc func(*ServerConn, *Request)

func (f handlerFunc) ServeHTTP1(c *ServerConn, r *Request) { f(c, r) }

// TestServerSurvivesHandlerPanic: a handler's panic closes its connection
// and is logged; the server goes on serving.
func TestServerSurvivesHandlerPanic(t *testing.T) {
	var logged lockedBuilder
	srv := NewServer(handlerFunc(func(c *ServerConn, r *Request) {
		if string(r.Path) == "/panic" {
			panic("bug")
		}
		c.Writer().WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}), ServerOptions{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	get := func(path string) (int, error) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}
	if _, err := get("/panic"); err == nil {
		t.Fatal("the panicking request got a response")
	}
	if code, err := get("/"); err != nil || code != 200 {
		t.Fatalf("after the panic: %d %v", code, err)
	}
	if !strings.Contains(logged.String(), "panic serving a connection") {
		t.Fatalf("log: %q", logged.String())
	}
}

// lockedBuilder is a strings.Builder safe for concurrent use.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServerConnSize keeps ServerConn within the heap's 256-byte size
// class: every idle connection, parked or not, holds one, so that a field
// more costs each of them the next class (288 bytes). What only TLS
// connections need is in tlsSide.
func TestServerConnSize(t *testing.T) {
	if n := unsafe.Sizeof(ServerConn{}); n > 256 {
		t.Errorf("ServerConn is %d bytes, more than the 256-byte size class", n)
	}
}
