package ajp

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// seen is what the echo handler saw of a request.
type seen struct {
	Method, URI, Path, Query, Host, RemoteAddr, Proto string
	TLS                                               bool
	Header                                            http.Header
	ContentLength                                     int64
	TransferEncoding                                  []string
	BodyLen                                           int
	BodySHA                                           string
	BodyErr                                           string
	Info                                              *Info
}

// echo answers with what it saw, as JSON.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	s := seen{
		Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
		RemoteAddr: r.RemoteAddr, Proto: r.Proto, TLS: r.TLS != nil, Header: r.Header,
		ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		BodyLen: len(b), BodySHA: fmt.Sprintf("%x", sha256.Sum256(b)), Info: RequestInfo(r),
	}
	if err != nil {
		s.BodyErr = err.Error()
	}
	w.Header().Set("X-Test", "yes")
	json.NewEncoder(w).Encode(s)
}

func decodeSeen(t *testing.T, r resp) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("status %d, body %q: %v", r.status, r.body, err)
	}
	return s
}

func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

func TestRequestMapping(t *testing.T) {
	_, addr, _ := serve(t, http.HandlerFunc(echo), Options{})
	c := dial(t, addr)
	c.send(fwd{
		secret: testSecret,
		uri:    "/shop/cart;jsessionid=abc.n1",
		port:   8443, ssl: true, serverName: "shop.example.org",
		headers: [][2]string{
			{"Host", "shop.example.org:8443"}, {"Cookie", "JSESSIONID=abc.n1"}, {"Accept", "*/*"},
			{"X-Custom", "one"}, {"x-custom", "two"}, {"User-Agent", "test"},
		},
		attrs: []attr{
			strAttr(0x05, "a=1&b=%20"), strAttr(0x06, "n1"), strAttr(0x08, "TLS_AES_128_GCM_SHA256"),
			{0x0B, []byte{0, 128}}, strAttr(0x03, "alice"), strAttr(0x04, "Basic"),
			reqAttr("AJP_REMOTE_PORT", "51234"), reqAttr("JK_LB_ACTIVATION", "ACT"),
		},
	}.packet())
	r := c.response()
	if r.status != 200 || r.msg != "OK" || !r.reuse {
		t.Fatalf("status %d %q reuse %v", r.status, r.msg, r.reuse)
	}
	if r.header.Get("X-Test") != "yes" || r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("response headers %v (want X-Test, the Content-Length and a sniffed Content-Type)", r.header)
	}
	s := decodeSeen(t, r)
	want := seen{
		Method: "GET", URI: "/shop/cart;jsessionid=abc.n1?a=1&b=%20", Path: "/shop/cart;jsessionid=abc.n1",
		Query: "a=1&b=%20", Host: "shop.example.org:8443", RemoteAddr: "192.0.2.7:51234", Proto: "HTTP/1.1", TLS: true,
	}
	got := s
	got.Header, got.Info, got.BodySHA, got.TransferEncoding = nil, nil, "", nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("request\n got %+v\nwant %+v", got, want)
	}
	if s.Header.Get("Host") != "" || s.Header.Get("Cookie") != "JSESSIONID=abc.n1" ||
		strings.Join(s.Header["X-Custom"], ",") != "one,two" || s.Header.Get("Accept") != "*/*" {
		t.Errorf("headers %v", s.Header)
	}
	i := s.Info
	if i == nil || i.ServerName != "shop.example.org" || i.ServerPort != 8443 || !i.Secure || i.Route != "n1" ||
		i.SSLCipher != "TLS_AES_128_GCM_SHA256" || i.SSLKeySize != 128 || i.RemoteUser != "alice" ||
		i.AuthType != "Basic" || i.Attributes["JK_LB_ACTIVATION"] != "ACT" || i.RemoteHost != "192.0.2.7" {
		t.Errorf("info %+v", i)
	}
}

func TestRequestVariants(t *testing.T) {
	_, addr, _ := serve(t, http.HandlerFunc(echo), Options{})
	tests := []struct {
		name  string
		f     fwd
		check func(seen) bool
	}{
		{"no Host header: server name and port", fwd{serverName: "a.example", port: 8080},
			func(s seen) bool { return s.Host == "a.example:8080" }},
		{"no Host header, default port", fwd{serverName: "a.example", port: 80},
			func(s seen) bool { return s.Host == "a.example" }},
		{"no TLS", fwd{}, func(s seen) bool { return !s.TLS && !s.Info.Secure }},
		{"no remote port attribute", fwd{remoteAddr: "2001:db8::1"},
			func(s seen) bool { return s.RemoteAddr == "[2001:db8::1]:0" }},
		{"stored method", fwd{method: 0xFF, attrs: []attr{strAttr(0x0D, "PATCH")}},
			func(s seen) bool { return s.Method == "PATCH" }},
		{"coded method", fwd{method: 6}, func(s seen) bool { return s.Method == "DELETE" }},
		{"HTTP/1.0", fwd{protocol: "HTTP/1.0"}, func(s seen) bool { return s.Proto == "HTTP/1.0" }},
		{"empty query string", fwd{attrs: []attr{strAttr(0x05, "")}},
			func(s seen) bool { return s.URI == "/?" && s.Query == "" }},
		{"OPTIONS *", fwd{method: 1, uri: "*"}, func(s seen) bool { return s.URI == "*" && s.Method == "OPTIONS" }},
		{"absolute URI", fwd{uri: "http://other.example:81/p", headers: [][2]string{{"Host", "www.example.org"}}},
			func(s seen) bool { return s.Host == "other.example:81" && s.Path == "/p" }},
		{"no body", fwd{}, func(s seen) bool { return s.ContentLength == 0 && s.BodyLen == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			tt.f.secret = testSecret
			c.send(tt.f.packet())
			if s := decodeSeen(t, c.response()); !tt.check(s) {
				t.Errorf("handler saw %+v", s)
			}
		})
	}
}

// TestBody sends request bodies the ways mod_jk and mod_proxy_ajp do.
func TestBody(t *testing.T) {
	_, addr, _ := serve(t, http.HandlerFunc(echo), Options{})
	data := bytes.Repeat([]byte("0123456789abcdefghij"), 1500) // 30000 bytes
	tests := []struct {
		name    string
		headers [][2]string
		first   []byte   // sent right after the request, unasked
		more    [][]byte // answers to Get Body Chunk, in order
		wantLen int
		wantTE  bool
		wantErr string
	}{
		{
			name:    "content-length, all in the first chunk",
			headers: [][2]string{{"Content-Length", "11"}},
			first:   []byte("hello world"), wantLen: 11,
		},
		{
			name:    "content-length in several chunks",
			headers: [][2]string{{"Content-Length", "30000"}},
			first:   data[:8186],
			more:    [][]byte{data[8186:9000], data[9000:17186], data[17186:25000], data[25000:]},
			wantLen: 30000,
		},
		{
			name:    "chunked upload",
			headers: [][2]string{{"Transfer-Encoding", "chunked"}},
			more:    [][]byte{data[:100], data[100:8286], data[8286:16000], data[16000:20000], nil},
			wantLen: 20000, wantTE: true,
		},
		{
			name:    "client went away: empty chunk before the length",
			headers: [][2]string{{"Content-Length", "30000"}},
			first:   data[:8186], more: [][]byte{nil},
			wantLen: 8186, wantErr: "unexpected EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(fwd{secret: testSecret, method: 4, headers: tt.headers}.packet())
			if tt.first != nil {
				c.send(bodyPacket(tt.first))
			}
			var more [][]byte
			for _, m := range tt.more {
				more = append(more, bodyPacket(m))
			}
			r := c.response(more...)
			s := decodeSeen(t, r)
			want := tt.first
			for _, m := range tt.more {
				want = append(append([]byte{}, want...), m...)
			}
			if s.BodyLen != tt.wantLen || s.BodySHA != sha(want[:tt.wantLen]) || s.BodyErr != tt.wantErr {
				t.Errorf("handler read %d bytes (err %q), want %d (err %q)", s.BodyLen, s.BodyErr, tt.wantLen, tt.wantErr)
			}
			if (len(s.TransferEncoding) > 0) != tt.wantTE || (tt.wantTE && s.ContentLength != -1) {
				t.Errorf("TransferEncoding %v ContentLength %d", s.TransferEncoding, s.ContentLength)
			}
			for _, n := range r.asked {
				if n > 8186 {
					t.Errorf("asked for %d bytes, more than a packet holds", n)
				}
			}
			if len(r.asked) != len(tt.more) {
				t.Errorf("asked for %d chunks (%v), want %d", len(r.asked), r.asked, len(tt.more))
			}
			if !r.reuse {
				t.Error("connection not reused")
			}
			// The connection serves the next request.
			c.send(fwd{secret: testSecret}.packet())
			if s := decodeSeen(t, c.response()); s.Method != "GET" {
				t.Errorf("next request: %+v", s)
			}
		})
	}
}

// TestBodyAskedSizes checks that the server never asks for more than the
// Content-Length leaves.
func TestBodyAskedSizes(t *testing.T) {
	_, addr, _ := serve(t, http.HandlerFunc(echo), Options{})
	c := dial(t, addr)
	c.send(fwd{secret: testSecret, method: 4, headers: [][2]string{{"Content-Length", "9000"}}}.packet(),
		bodyPacket(make([]byte, 8000)))
	r := c.response(bodyPacket(make([]byte, 1000)))
	if len(r.asked) != 1 || r.asked[0] != 1000 {
		t.Errorf("asked %v, want [1000]", r.asked)
	}
}

func TestUnreadBody(t *testing.T) {
	_, addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "not reading")
	}), Options{})
	c := dial(t, addr)
	c.send(fwd{secret: testSecret, method: 4, headers: [][2]string{{"Content-Length", "20000"}}}.packet(),
		bodyPacket(make([]byte, 8186)))
	if r := c.response(); r.status != 200 || len(r.asked) != 0 || !r.reuse {
		t.Fatalf("status %d, asked %v, reuse %v", r.status, r.asked, r.reuse)
	}
	c.send(fwd{secret: testSecret}.packet())
	if r := c.response(); string(r.body) != "not reading" {
		t.Fatalf("next request: %q", r.body)
	}
}

func TestBodyLimit(t *testing.T) {
	called := make(chan error, 10)
	_, addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		called <- err
	}), Options{MaxBodyBytes: 10000})
	t.Run("content-length above the limit", func(t *testing.T) {
		c := dial(t, addr)
		c.send(fwd{secret: testSecret, method: 4, headers: [][2]string{{"Content-Length", "20000"}}}.packet(),
			bodyPacket(make([]byte, 8186)))
		if r := c.response(); r.status != 413 || !r.reuse || len(r.asked) != 0 {
			t.Fatalf("status %d reuse %v asked %v", r.status, r.reuse, r.asked)
		}
		if len(called) != 0 {
			t.Fatal("the handler was called")
		}
	})
	t.Run("chunked past the limit", func(t *testing.T) {
		c := dial(t, addr)
		c.send(fwd{secret: testSecret, method: 4, headers: [][2]string{{"Transfer-Encoding", "chunked"}}}.packet())
		r := c.response(bodyPacket(make([]byte, 8000)), bodyPacket(make([]byte, 8000)))
		var mbe *http.MaxBytesError
		if err := <-called; !errors.As(err, &mbe) || mbe.Limit != 10000 {
			t.Fatalf("handler read error %v, want *http.MaxBytesError", err)
		}
		if r.status != 200 || !r.reuse {
			t.Fatalf("status %d reuse %v", r.status, r.reuse)
		}
	})
}

func TestLargeResponse(t *testing.T) {
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < len(data); i += 3000 {
			w.Write(data[i:min(i+3000, len(data))])
		}
	})
	for _, size := range []int{0, 16384, 65536} {
		t.Run(fmt.Sprintf("packet size %d", size), func(t *testing.T) {
			_, addr, _ := serve(t, h, Options{PacketSize: size})
			c := dial(t, addr)
			c.send(fwd{secret: testSecret}.packet())
			r := c.response()
			max := size - 8
			if size == 0 {
				max = DefaultPacketSize - 8
			}
			if !bytes.Equal(r.body, data) || r.header.Get("Content-Length") != "" {
				t.Fatalf("got %d bytes, Content-Length %q", len(r.body), r.header.Get("Content-Length"))
			}
			for _, n := range r.chunks {
				if n > max || n == 0 {
					t.Fatalf("chunks %v: want 1 to %d bytes each", r.chunks, max)
				}
			}
			if r.chunks[0] != max {
				t.Errorf("first chunk %d, want a full one (%d)", r.chunks[0], max)
			}
		})
	}
}

func TestFlush(t *testing.T) {
	release := make(chan struct{})
	_, addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		<-release
		io.WriteString(w, "second")
	}), Options{})
	c := dial(t, addr)
	c.send(fwd{secret: testSecret}.packet())
	// Before the handler goes on: headers, the data, an empty chunk.
	for i, want := range []byte{typeSendHeaders, typeSendBodyChunk, typeSendBodyChunk} {
		p := c.read()
		if p[0] != want {
			t.Fatalf("packet %d: type %d, want %d", i, p[0], want)
		}
		if i == 2 && !bytes.Equal(p, []byte{typeSendBodyChunk, 0, 0, 0}) {
			t.Fatalf("flush packet %x, want an empty chunk", p)
		}
	}
	close(release)
	r := c.response()
	if string(r.body) != "second" || !r.reuse {
		t.Fatalf("rest: %q reuse %v", r.body, r.reuse)
	}
}

func TestResponseCases(t *testing.T) {
	tests := []struct {
		name    string
		method  byte
		h       http.HandlerFunc
		status  int
		header  map[string]string // "" means absent
		body    string
		reuse   bool
		wantEnd bool
	}{
		{"empty 200", 0, func(w http.ResponseWriter, r *http.Request) {},
			200, map[string]string{"Content-Length": "0", "Content-Type": ""}, "", true, true},
		{"status with message", 0, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(418) },
			418, nil, "", true, true},
		{"204 has no body", 0, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(204)
			if _, err := w.Write([]byte("x")); err != http.ErrBodyNotAllowed {
				t.Errorf("Write after 204: %v", err)
			}
		}, 204, map[string]string{"Content-Length": ""}, "", true, true},
		{"HEAD sends no body", 3, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") },
			200, map[string]string{"Content-Length": "5"}, "", true, true},
		{"informational status ignored", 0, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(103)
			w.WriteHeader(201)
		}, 201, nil, "", true, true},
		{"cookies and coded headers", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
			w.Header().Set("Location", "/x")
			w.Header().Set("Bad\nName", "dropped")
			w.Header().Set("X-Split", "a\r\nInjected: yes")
			w.WriteHeader(303)
		}, 303, map[string]string{"Location": "/x", "X-Split": "a  Injected: yes", "Injected": ""}, "", true, true},
		{"declared length honoured", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			if _, err := io.WriteString(w, "abcd"); err != http.ErrContentLength {
				t.Errorf("writing past Content-Length: %v", err)
			}
			io.WriteString(w, "abc")
		}, 200, map[string]string{"Content-Length": "3"}, "abc", true, true},
		{"headers too large", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Big", strings.Repeat("x", 9000))
			if _, err := io.WriteString(w, "body"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if _, err := io.WriteString(w, "more"); !errors.Is(err, ErrHeadersTooLarge) {
				t.Errorf("write after oversized headers: %v", err)
			}
		}, 500, map[string]string{"X-Big": ""}, "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr, _ := serve(t, tt.h, Options{})
			c := dial(t, addr)
			c.send(fwd{secret: testSecret, method: tt.method}.packet())
			r := c.response()
			if r.status != tt.status || string(r.body) != tt.body || r.reuse != tt.reuse {
				t.Errorf("status %d body %q reuse %v; want %d %q %v", r.status, r.body, r.reuse, tt.status, tt.body, tt.reuse)
			}
			if r.msg != statusText(tt.status) {
				t.Errorf("status message %q", r.msg)
			}
			for k, v := range tt.header {
				if r.header.Get(k) != v {
					t.Errorf("header %s = %q, want %q (all: %v)", k, r.header.Get(k), v, r.header)
				}
			}
			if tt.name == "cookies and coded headers" && len(r.header["Set-Cookie"]) != 2 {
				t.Errorf("Set-Cookie %v", r.header["Set-Cookie"])
			}
		})
	}
}

func TestShortResponseClosesConnection(t *testing.T) {
	_, addr, logs := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "abc")
	}), Options{})
	c := dial(t, addr)
	c.send(fwd{secret: testSecret}.packet())
	c.expectClosed(typeSendHeaders, typeSendBodyChunk) // no End Response: the web server sees the failure
	if !strings.Contains(logs.String(), "less than its Content-Length") {
		t.Errorf("log: %s", logs)
	}
}

func TestPingAndReuse(t *testing.T) {
	n := 0
	_, addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		fmt.Fprintf(w, "request %d", n)
	}), Options{})
	c := dial(t, addr)
	cping := packet([]byte{typeCPing})
	c.send(cping)
	if p := c.read(); !bytes.Equal(p, []byte{typeCPong}) {
		t.Fatalf("CPing answered with %x", p)
	}
	for i := 1; i <= 5; i++ {
		c.send(cping)
		if p := c.read(); p[0] != typeCPong {
			t.Fatalf("CPing %d answered with %x", i, p)
		}
		c.send(fwd{secret: testSecret}.packet())
		if r := c.response(); string(r.body) != fmt.Sprintf("request %d", i) || !r.reuse {
			t.Fatalf("request %d: %q reuse %v", i, r.body, r.reuse)
		}
	}
	// A shutdown packet is ignored; the connection goes on.
	c.send(packet([]byte{typeShutdown}), cping)
	if p := c.read(); p[0] != typeCPong {
		t.Fatalf("after a shutdown packet: %x", p)
	}
}

func TestSecret(t *testing.T) {
	tests := []struct {
		name   string
		o      Options
		f      fwd
		status int
		closed bool
		log    string
	}{
		{"right secret", Options{}, fwd{secret: testSecret}, 200, false, ""},
		{"missing secret", Options{}, fwd{noSecret: true}, 403, true, "request refused: no secret"},
		{"wrong secret", Options{}, fwd{secret: "guess"}, 403, true, "request refused: wrong secret"},
		{"prefix of the secret", Options{}, fwd{secret: testSecret[:5]}, 403, true, "wrong secret"},
		{"empty secret", Options{}, fwd{secret: ""}, 403, true, "wrong secret"},
		{"no secret needed", Options{AllowNoSecret: true}, fwd{noSecret: true}, 200, false, ""},
		{"secret ignored when none is set", Options{AllowNoSecret: true}, fwd{secret: "anything"}, 200, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			_, addr, logs := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }), tt.o)
			c := dial(t, addr)
			c.send(tt.f.packet())
			r := c.response()
			if r.status != tt.status || called != (tt.status == 200) || r.reuse == tt.closed {
				t.Fatalf("status %d, handler called %v, reuse %v", r.status, called, r.reuse)
			}
			if tt.closed {
				c.expectClosed()
			}
			if !strings.Contains(logs.String(), tt.log) || strings.Contains(logs.String(), testSecret) {
				t.Errorf("log %q, want %q and no secret", logs, tt.log)
			}
		})
	}
}

func TestNoSecretRefusedAtStart(t *testing.T) {
	if _, err := NewServer(http.NotFoundHandler(), Options{}); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("NewServer without a secret: %v, want ErrNoSecret", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(ln, http.NotFoundHandler(), Options{}); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("Serve without a secret: %v, want ErrNoSecret", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("Serve left the listener open")
	}
}

func TestBodyReadAfterHandler(t *testing.T) {
	bodies := make(chan io.Reader, 1)
	_, addr, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bodies <- r.Body
	}), Options{})
	c := dial(t, addr)
	c.send(fwd{secret: testSecret, method: 4, headers: [][2]string{{"Transfer-Encoding", "chunked"}}}.packet())
	if r := c.response(); len(r.asked) != 0 {
		t.Fatalf("asked %v", r.asked)
	}
	if _, err := (<-bodies).Read(make([]byte, 10)); err != http.ErrBodyReadAfterClose {
		t.Fatalf("read after the handler: %v", err)
	}
}
