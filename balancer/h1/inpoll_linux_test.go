//go:build linux

package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// echoRequest answers with the method, path and body it read.
var echoRequest = handlerFunc(func(c *ServerConn, r *Request) {
	var b Body
	b.Reset(c.Reader(), r.BodyFraming(), r.ContentLength, Limits{})
	got, err := readBody(&b)
	if err != nil {
		c.SetClose(true)
		return
	}
	out := fmt.Sprintf("%s %s %q", r.Method, r.Path, got)
	fmt.Fprintf(c.Writer(), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(out), out)
})

// readAnswers reads n responses from br and returns their bodies.
func readAnswers(t *testing.T, br *bufio.Reader, n int) []string {
	t.Helper()
	var got []string
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	return got
}

func dialPlain(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

// TestPolledWaitsWithoutTrying: between the requests of a keep-alive
// connection, the server waits for the next without first reading the
// socket to find it empty (the system call a polled connection saves).
func TestPolledWaitsWithoutTrying(t *testing.T) {
	srv, addr := plainServer(t, echoRequest, ServerOptions{ParkAfter: -1})
	c, br := dialPlain(t, addr)
	const n = 200
	for i := range n {
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		if got := readAnswers(t, br, 1)[0]; got != fmt.Sprintf("GET /%d \"\"", i) {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	// The first read of the connection may find nothing, and a readiness
	// reported for bytes already read costs one more; a read before each
	// wait would make it n.
	if tries := srv.emptyReads.Load(); tries > n/10 {
		t.Fatalf("%d reads found nothing in %d requests", tries, n)
	}
}

// TestPolledMixedRequests: on one connection, body-less requests (served
// inside the poller's wait) alternate with what leaves it: bodies, chunked
// bodies, a head larger than the read buffer, pipelined requests with a
// head cut at the buffer's end, bare LF line ends and empty lines before
// a request.
func TestPolledMixedRequests(t *testing.T) {
	_, addr := plainServer(t, echoRequest, ServerOptions{ReadBufferSize: 4096})
	c, br := dialPlain(t, addr)
	big := "GET /big HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 6000) + "\r\n\r\n"
	steps := []struct{ send, want string }{
		{"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", `GET /a ""`},
		{"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", `POST /b "hello"`},
		{"GET /c HTTP/1.1\r\nHost: a\r\n\r\n", `GET /c ""`},
		{"POST /d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", `POST /d "abc"`},
		{big, `GET /big ""`},
		{"GET /e HTTP/1.1\nHost: a\n\n", `GET /e ""`},
		{"\r\n\r\nGET /f HTTP/1.1\r\nHost: a\r\n\r\n", `GET /f ""`},
	}
	for _, s := range steps {
		io.WriteString(c, s.send)
		if got := readAnswers(t, br, 1)[0]; got != s.want {
			t.Fatalf("sent %.40q: got %q, want %q", s.send, got, s.want)
		}
	}
	// Pipelined, in one write: 4,096 bytes of 256-byte GETs fill the read
	// buffer exactly, a POST follows, and a head cut in two ends it.
	var p strings.Builder
	var want []string
	for i := range 16 {
		head := fmt.Sprintf("GET /p%02d HTTP/1.1\r\nHost: a\r\nX-Pad: ", i)
		p.WriteString(head + strings.Repeat("p", 256-len(head)-4) + "\r\n\r\n")
		want = append(want, fmt.Sprintf(`GET /p%02d ""`, i))
	}
	p.WriteString("POST /q HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz")
	want = append(want, `POST /q "xyz"`)
	p.WriteString("GET /r HTTP/1.1\r\nHo")
	io.WriteString(c, p.String())
	io.WriteString(c, "st: a\r\n\r\n")
	want = append(want, `GET /r ""`)
	if got := readAnswers(t, br, len(want)); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("pipelined: got %q", got)
	}
}

// TestPolledReadsOnAfterAFullBuffer: pipelined requests that fill the
// read buffer exactly, with more behind them in the socket. Their
// readiness was reported once, before the first read; waiting for another
// after serving the buffered ones (rather than reading on) would hang.
func TestPolledReadsOnAfterAFullBuffer(t *testing.T) {
	_, addr := plainServer(t, echoRequest, ServerOptions{ReadBufferSize: 4096, ParkAfter: -1})
	c, br := dialPlain(t, addr)
	var p strings.Builder
	var want []string
	for i := range 48 { // three buffers' worth, in one write
		head := fmt.Sprintf("GET /%02d HTTP/1.1\r\nHost: a\r\nX-Pad: ", i)
		p.WriteString(head + strings.Repeat("p", 256-len(head)-4) + "\r\n\r\n")
		want = append(want, fmt.Sprintf(`GET /%02d ""`, i))
	}
	io.WriteString(c, p.String())
	if got := readAnswers(t, br, len(want)); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
}

// TestPolledServesWhatArrivesWhileServing: a request that arrives while
// the one before it is served inside the poller's wait is served next
// (its readiness, reported meanwhile, is not lost).
//
// After the first request the callback waits without reading (its read
// emptied the socket), so the second is served only because Go's
// RawConn.Read resets the poller's record of readiness when the call
// begins and not before each wait (internal/poll's prepareRead). This
// test pins that contract of the runtime, on which inpoll.go relies: if a
// Go release reset the readiness before each wait, the second request
// would wait for the idle deadline and the client would see the
// connection end after one answer.
func TestPolledServesWhatArrivesWhileServing(t *testing.T) {
	entered, sent := make(chan struct{}), make(chan struct{})
	_, addr := plainServer(t, handlerFunc(func(c *ServerConn, r *Request) {
		if string(r.Path) == "/first" {
			close(entered)
			<-sent
		}
		echoRequest(c, r)
	}), ServerOptions{ParkAfter: -1, IdleTimeout: 5 * time.Second})
	c, br := dialPlain(t, addr)
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
	close(sent)
	if got := readAnswers(t, br, 2); got[0] != `GET /first ""` || got[1] != `GET /second ""` {
		t.Fatalf("got %q", got)
	}
}

// TestCloseDoesNotWaitForPolledRequest: Close returns while a request is
// being served inside the poller's wait, and its client sees the
// connection end at once.
func TestCloseDoesNotWaitForPolledRequest(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv, addr := plainServer(t, handlerFunc(func(c *ServerConn, r *Request) {
		close(entered)
		<-release
	}), ServerOptions{})
	defer close(release)
	c, br := dialPlain(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the request being served")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the client read a byte from a closed connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the client's connection did not end")
	}
}

// TestHijackOutsideUpgradePanics: a body-less request without Upgrade
// cannot be hijacked (it may be served inside the poller's wait, where
// reading the connection would never return): Hijack panics, and the
// connection is closed. A request with Upgrade is hijacked as before.
func TestHijackOutsideUpgradePanics(t *testing.T) {
	var logged lockedBuilder
	_, addr := plainServer(t, handlerFunc(func(c *ServerConn, r *Request) {
		nc, br, bw := c.Hijack()
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		bw.Flush()
		line, _ := br.ReadString('\n')
		io.WriteString(nc, "echo: "+line)
		nc.Close()
	}), ServerOptions{Logger: slog.New(slog.NewTextHandler(&logged, nil))})

	c, br := dialPlain(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(c, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: hello\n" {
		t.Fatalf("after the upgrade: %q %v", line, err)
	}

	c2, br2 := dialPlain(t, addr)
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if b, err := br2.ReadByte(); err == nil {
		t.Fatalf("a hijack without Upgrade answered %q", b)
	}
	if !strings.Contains(logged.String(), "Hijack of a request without body or Upgrade") {
		t.Fatalf("log: %q", logged.String())
	}
}

// TestShutdownWhilePolledClientsLoop: Shutdown while 16 keep-alive
// clients send requests as fast as they can. Every request the handler
// began is answered, whole and right; each connection then ends cleanly
// (EOF, or a reset for a request sent after the server closed), never in
// the middle of a response; and Shutdown returns.
func TestShutdownWhilePolledClientsLoop(t *testing.T) {
	var mu sync.Mutex
	began := map[string]bool{}
	srv, addr := plainServer(t, handlerFunc(func(c *ServerConn, r *Request) {
		mu.Lock()
		began[string(r.Path)] = true
		mu.Unlock()
		echoRequest(c, r)
	}), ServerOptions{})
	const clients = 16
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	started := make(chan struct{}, clients)
	answered := make([]int, clients) // requests answered, per client
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for n := 0; ; n++ {
				if _, err := fmt.Fprintf(c, "GET /%d/%d HTTP/1.1\r\nHost: a\r\n\r\n", i, n); err != nil {
					return // the server closed first
				}
				if _, err := br.Peek(1); err != nil { // (ReadResponse calls a clean end unexpected)
					if n == 0 || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
						errs <- fmt.Errorf("client %d, request %d: %v", i, n, err)
					}
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- fmt.Errorf("client %d, request %d: a response cut short: %v", i, n, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				if want := fmt.Sprintf("GET /%d/%d \"\"", i, n); err != nil || string(body) != want {
					errs <- fmt.Errorf("client %d, request %d: %q %v, want %q", i, n, body, err, want)
					return
				}
				answered[i] = n + 1
				if n == 0 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range clients {
		<-started
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range answered {
		if path := fmt.Sprintf("/%d/%d", i, n); began[path] {
			t.Errorf("client %d: request %s was begun but not answered", i, path)
		}
	}
}

// TestPolledIdleTimeoutWhenParkingFails: a connection the parker cannot
// take (here: its socket is already in the epoll set, so EPOLL_CTL_ADD
// fails, as it would once max_user_watches is reached) keeps waiting on
// its goroutine: it is served when its client sends again, and closed at
// its idle deadline, not given a new one each time parking fails.
func TestPolledIdleTimeoutWhenParkingFails(t *testing.T) {
	srv, addr := plainServer(t, echoRequest, ServerOptions{ParkAfter: 500 * time.Millisecond, IdleTimeout: 2 * time.Second})
	p := srv.parkerFor()
	if p == nil {
		t.Fatal("no parker")
	}
	c, br := dialPlain(t, addr)
	var sc *ServerConn
	proctest.Eventually(t, 10*time.Second, func() error {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for k := range srv.conns {
			sc = k
		}
		if sc == nil {
			return errors.New("not accepted yet")
		}
		return nil
	})
	var err error
	p.rc.Control(func(epfd uintptr) { // before the first wait's grace ends
		sc.rc.Control(func(fd uintptr) {
			ev := syscall.EpollEvent{} // no events asked; id 0 is nobody's
			err = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_ADD, int(fd), &ev)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswers(t, br, 1)
	// After the grace, the park fails and the goroutine waits on: it
	// reads the socket once more (finding nothing) when its wait resumes.
	tries := srv.emptyReads.Load()
	proctest.Eventually(t, 10*time.Second, func() error {
		if srv.emptyReads.Load() == tries {
			return errors.New("the connection did not wait on after its park failed")
		}
		return nil
	})
	io.WriteString(c, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
	if got := readAnswers(t, br, 1)[0]; got != `GET /b ""` {
		t.Fatalf("after the failed park: %q", got)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the idle connection: %q %v, want it closed at its idle deadline", b, err)
	}
}
