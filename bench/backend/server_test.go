package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// start runs a backend for route on a free loopback port.
func start(t *testing.T, rt string) string {
	return startWith(t, rt, (*server).serve)
}

func startWith(t *testing.T, rt string, serve func(*server, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serve(newServer(rt), ln)
	return ln.Addr().String()
}

func TestResponses(t *testing.T) {
	for name, serve := range map[string]func(*server, net.Listener) error{
		"raw": (*server).serve, "nethttp": (*server).serveNetHTTP,
	} {
		t.Run(name, func(t *testing.T) { testResponses(t, startWith(t, "n2", serve)) })
	}
}

func testResponses(t *testing.T, addr string) {
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	for _, tc := range []struct {
		name, method, path, cookie string
		wantBody                   string // "" for a 64 KiB body of /big
		wantSession                bool   // a new JSESSIONID is set
	}{
		{name: "new session", method: "GET", path: "/", wantBody: "node n2\n", wantSession: true},
		{name: "sticky", method: "GET", path: "/", cookie: "a=1; JSESSIONID=abc.n2; b=2", wantBody: "node n2\n"},
		{name: "other cookie only", method: "GET", path: "/x?y=1", cookie: "XJSESSIONID=abc.n2", wantBody: "node n2\n", wantSession: true},
		{name: "big", method: "GET", path: "/big?x=1", cookie: "JSESSIONID=abc.n2", wantBody: ""},
		{name: "head", method: "HEAD", path: "/", cookie: "JSESSIONID=abc.n2", wantBody: "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "n2" {
				t.Errorf("status %d, X-Node %q; want 200, n2", resp.StatusCode, resp.Header.Get("X-Node"))
			}
			switch tc.wantBody {
			case "":
				if len(body) != BigSize {
					t.Errorf("body is %d bytes, want %d", len(body), BigSize)
				}
			case "-":
				if len(body) != 0 || resp.ContentLength != 8 {
					t.Errorf("HEAD: body %q, Content-Length %d; want none, 8", body, resp.ContentLength)
				}
			default:
				if string(body) != tc.wantBody {
					t.Errorf("body %q, want %q", body, tc.wantBody)
				}
			}
			sc := resp.Header.Get("Set-Cookie")
			if !tc.wantSession {
				if sc != "" {
					t.Errorf("Set-Cookie %q on a request that has a session", sc)
				}
				return
			}
			id, ok := strings.CutPrefix(sc, "JSESSIONID=")
			id, ok2 := strings.CutSuffix(id, ".n2; Path=/")
			if !ok || !ok2 || len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
				t.Errorf("Set-Cookie %q, want JSESSIONID=<32 hex>.n2; Path=/", sc)
			}
		})
	}
}

func TestNewSessionsDiffer(t *testing.T) {
	addr := start(t, "n1")
	seen := map[string]bool{}
	for range 20 {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		sc := resp.Header.Get("Set-Cookie")
		if seen[sc] {
			t.Fatalf("session %q issued twice", sc)
		}
		seen[sc] = true
	}
}

// raw sends text on a fresh connection and returns everything the server
// writes until it closes the connection.
func raw(t *testing.T, addr, text string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestConnectionHandling(t *testing.T) {
	addr := start(t, "n3")
	get := "GET / HTTP/1.1\r\nHost: x\r\nCookie: JSESSIONID=a.n3\r\n\r\n"
	closing := "GET / HTTP/1.1\r\nHost: x\r\nCookie: JSESSIONID=a.n3\r\nConnection: close\r\n\r\n"
	for _, tc := range []struct {
		name, send string
		wantOK     int    // 200 responses before the server closes
		wantLast   string // the last response's status line, if not 200
	}{
		{name: "pipelined then close", send: get + get + "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + closing, wantOK: 4},
		{name: "HTTP/1.0 closes", send: "GET / HTTP/1.0\r\n\r\n" + get, wantOK: 1},
		{name: "HTTP/1.0 keep-alive", send: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + closing, wantOK: 2},
		{name: "chunked refused", send: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantLast: "HTTP/1.1 501 Not Implemented"},
		{name: "garbage refused", send: "hello\r\n\r\n", wantLast: "HTTP/1.1 400 Bad Request"},
		{name: "bad header refused", send: "GET / HTTP/1.1\r\nno colon\r\n\r\n", wantLast: "HTTP/1.1 400 Bad Request"},
		{name: "huge head refused", send: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxHead) + "\r\n\r\n", wantLast: "HTTP/1.1 431 Request Header Fields Too Large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := raw(t, addr, tc.send)
			br := bufio.NewReader(strings.NewReader(out))
			ok := 0
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode == 200 {
					ok++
					continue
				}
				if got := "HTTP/1.1 " + resp.Status; got != tc.wantLast {
					t.Errorf("last status %q, want %q", got, tc.wantLast)
				}
				tc.wantLast = ""
			}
			if ok != tc.wantOK || tc.wantLast != "" {
				t.Errorf("%d responses 200 (want %d), missing %q; output:\n%s", ok, tc.wantOK, tc.wantLast, out)
			}
		})
	}
}
