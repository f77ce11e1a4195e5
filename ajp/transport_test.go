package ajp

// Tests of the Client against this package's Server (a real AJP13
// container over loopback) and against a raw container that sends what
// the test says.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newTestClient(t *testing.T, o ClientOptions) *Client {
	t.Helper()
	if o.Secret == "" {
		o.Secret = testSecret
	}
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseIdleConnections(true) })
	return c
}

// doEcho sends r through c to the echo handler and decodes what it saw.
func doEcho(t *testing.T, c *Client, r *http.Request, f *Forward) (seen, *http.Response) {
	t.Helper()
	resp, err := c.Do(r, f)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	var s seen
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("status %d, body %q: %v", resp.StatusCode, b, err)
	}
	return s, resp
}

func TestClientRequestMapping(t *testing.T) {
	_, addr, _ := serve(t, http.HandlerFunc(echo), Options{})
	c := newTestClient(t, ClientOptions{Addr: addr, Route: "n1"})
	body := bytes.Repeat([]byte("0123456789"), 3000) // several chunks
	tests := []struct {
		name   string
		method string
		target string
		body   io.Reader
		length int64
		fwd    Forward
	}{
		{name: "get", method: "GET", target: "/a/b%20c?x=1&y=%2F", fwd: Forward{RemoteAddr: "192.0.2.9", RemotePort: 4711, ServerName: "shop.example", ServerPort: 8080}},
		{name: "tls", method: "GET", target: "/s", fwd: Forward{RemoteAddr: "2001:db8::1", RemotePort: 1, ServerName: "shop.example", ServerPort: 443, Secure: true, SSLCipher: "TLS_AES_128_GCM_SHA256", SSLKeySize: 128, SSLCert: "PEM"}},
		{name: "post with length", method: "POST", target: "/p", body: bytes.NewReader(body), length: int64(len(body))},
		{name: "chunked upload", method: "PUT", target: "/p", body: io.MultiReader(bytes.NewReader(body[:100]), bytes.NewReader(body[100:])), length: -1},
		{name: "stored method", method: "PATCH", target: "/m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(tt.method, "http://shop.example:8080"+tt.target, tt.body)
			r.ContentLength = tt.length
			r.Header.Set("Cookie", "JSESSIONID=abc.n1")
			r.Header.Set("X-Custom", "v")
			r.Header.Set("Connection", "close") // hop-by-hop: not sent
			s, resp := doEcho(t, c, r, &tt.fwd)
			if resp.StatusCode != 200 || resp.Header.Get("X-Test") != "yes" {
				t.Errorf("status %d, headers %v", resp.StatusCode, resp.Header)
			}
			if s.Method != tt.method || s.Host != "shop.example:8080" || s.Header.Get("X-Custom") != "v" || s.Header.Get("Connection") != "" {
				t.Errorf("saw %+v", s)
			}
			if want := r.URL.RequestURI(); s.URI != want {
				t.Errorf("URI %q, want %q", s.URI, want)
			}
			if s.Info.Route != "n1" || s.Info.Secure != tt.fwd.Secure || s.Info.SSLCipher != tt.fwd.SSLCipher || s.Info.SSLKeySize != tt.fwd.SSLKeySize {
				t.Errorf("info %+v", s.Info)
			}
			if tt.fwd.RemoteAddr != "" {
				if want := net.JoinHostPort(tt.fwd.RemoteAddr, strconv.Itoa(tt.fwd.RemotePort)); s.RemoteAddr != want {
					t.Errorf("RemoteAddr %q, want %q", s.RemoteAddr, want)
				}
			}
			if tt.body != nil && (s.BodyLen != len(body) || s.BodySHA != sha(body)) {
				t.Errorf("body: %d bytes %s, want %d", s.BodyLen, s.BodySHA, len(body))
			}
		})
	}
}

// TestClientStreams checks a large streamed response, flushes and reuse
// of the connection.
func TestClientStreams(t *testing.T) {
	big := make([]byte, 1<<20)
	rand.Read(big)
	step := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(big)
		case "/flush":
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			<-step
			io.WriteString(w, "second")
		case "/head":
			w.Header().Set("Content-Length", "42")
		}
	})
	_, addr, _ := serve(t, h, Options{})
	c := newTestClient(t, ClientOptions{Addr: addr})
	get := func(path string) *http.Response {
		r, _ := http.NewRequest("GET", "http://x"+path, nil)
		resp, err := c.Do(r, &Forward{RemoteAddr: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for range 2 {
		resp := get("/big")
		b, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(b, big) {
			t.Fatalf("big: %d bytes, %v", len(b), err)
		}
		resp.Body.Close()
	}
	if n := len(c.idle); n != 1 {
		t.Errorf("%d idle connections after two requests in turn, want 1", n)
	}
	resp := get("/flush")
	buf := make([]byte, 100)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "first" {
		t.Fatalf("flushed read: %q, %v", buf[:n], err)
	}
	close(step)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second" {
		t.Errorf("rest %q", rest)
	}
	r, _ := http.NewRequest("HEAD", "http://x/head", nil)
	resp, err = c.Do(r, &Forward{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); len(b) != 0 || resp.Header.Get("Content-Length") != "42" {
		t.Errorf("HEAD: body %q, headers %v", b, resp.Header)
	}
}

func TestClientSecretAndPing(t *testing.T) {
	_, addr, logs := serve(t, http.HandlerFunc(echo), Options{})
	good := newTestClient(t, ClientOptions{Addr: addr})
	if err := good.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	bad := newTestClient(t, ClientOptions{Addr: addr, Secret: "wrong"})
	r, _ := http.NewRequest("GET", "http://x/", nil)
	resp, err := bad.Do(r, &Forward{})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(logs.String(), "wrong secret") {
		t.Errorf("wrong secret: status %d, log %s", resp.StatusCode, logs)
	}
	// A kept connection idle past PingIdle is checked first.
	c := newTestClient(t, ClientOptions{Addr: addr, PingIdle: time.Nanosecond})
	for range 3 {
		doEcho(t, c, r, &Forward{})
	}
}

// TestClientStale: a kept connection the container closed is replaced for
// a request that can be sent again.
func TestClientStale(t *testing.T) {
	_, addr, _ := serve(t, http.HandlerFunc(echo), Options{IdleTimeout: 50 * time.Millisecond})
	c := newTestClient(t, ClientOptions{Addr: addr, PingIdle: -1})
	r, _ := http.NewRequest("GET", "http://x/", nil)
	doEcho(t, c, r, &Forward{})
	// Wait for the server's idle timeout to close the kept connection.
	nc := c.idle[0].nc // read directly: the test waits for the server's close
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the server did not close the idle connection: %v", err)
	}
	doEcho(t, c, r, &Forward{})
}

// rawContainer accepts one connection, reads the request packets, and
// answers with reply.
func rawContainer(t *testing.T, reply []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var h [4]byte
		io.ReadFull(nc, h[:])
		io.CopyN(io.Discard, nc, int64(h[2])<<8|int64(h[3]))
		nc.Write(reply)
	}()
	return ln.Addr().String()
}

// toServer frames payload as a packet from the container.
func toServer(payload ...[]byte) []byte {
	var out []byte
	for _, p := range payload {
		out = append(out, 'A', 'B', byte(len(p)>>8), byte(len(p)))
		out = append(out, p...)
	}
	return out
}

var okHeaders = []byte{4, 0, 200, 0, 2, 'O', 'K', 0, 0, 0}

func TestClientBadInput(t *testing.T) {
	tests := []struct {
		name   string
		reply  []byte
		inBody bool // the error shows when reading the body
	}{
		{name: "wrong magic", reply: []byte{0x12, 0x34, 0, 1, 9}},
		{name: "closed", reply: nil},
		{name: "unknown type", reply: toServer([]byte{42})},
		{name: "truncated headers", reply: toServer([]byte{4, 0, 200, 0})},
		{name: "bad status", reply: toServer([]byte{4, 0, 7, 0, 0, 0, 0, 0})},
		{name: "bad header code", reply: toServer([]byte{4, 0, 200, 0xFF, 0xFF, 0, 1, 0xA0, 0x77, 0, 1, 'x', 0})},
		{name: "header value with LF", reply: toServer([]byte{4, 0, 200, 0xFF, 0xFF, 0, 1, 0xA0, 0x01, 0, 1, '\n', 0})},
		{name: "oversized packet", reply: []byte{'A', 'B', 0xFF, 0xF0, 4}},
		{name: "chunk longer than packet", reply: toServer(okHeaders, []byte{3, 0, 9, 'a'}), inBody: true},
		{name: "bad end response", reply: toServer(okHeaders, []byte{5, 7}), inBody: true},
		{name: "cut in the body", reply: toServer(okHeaders, []byte{3, 0, 1, 'a', 0}), inBody: true},
		{name: "longer than its length", reply: toServer([]byte{4, 0, 200, 0, 0, 0, 0, 1, 0xA0, 0x03, 0, 1, '1', 0}, []byte{3, 0, 2, 'a', 'b', 0}, []byte{5, 1}), inBody: true},
		{name: "shorter than its length", reply: toServer([]byte{4, 0, 200, 0, 0, 0, 0, 1, 0xA0, 0x03, 0, 1, '3', 0}, []byte{3, 0, 2, 'a', 'b', 0}, []byte{5, 1}), inBody: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawContainer(t, tt.reply)
			c := newTestClient(t, ClientOptions{Addr: addr, ResponseTimeout: 5 * time.Second})
			r, _ := http.NewRequest("GET", "http://x/", nil)
			resp, err := c.Do(r, &Forward{})
			if !tt.inBody {
				if err == nil {
					t.Fatalf("no error, status %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if _, err := io.ReadAll(resp.Body); err == nil {
				t.Error("reading the body: no error")
			}
			if len(c.idle) != 0 {
				t.Error("a connection with bad input was kept")
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			defer nc.Close()
			io.Copy(io.Discard, nc) // reads, never answers
		}
	}()
	c := newTestClient(t, ClientOptions{Addr: ln.Addr().String(), ResponseTimeout: 50 * time.Millisecond})
	r, _ := http.NewRequest("GET", "http://x/", nil)
	_, err = c.Do(r, &Forward{})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err %v, want a timeout", err)
	}
}
