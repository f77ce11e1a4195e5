package h1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func readRequest(t testing.TB, s string, lim Limits) (*Request, error) {
	t.Helper()
	r := new(Request)
	err := r.Read(bufio.NewReaderSize(strings.NewReader(s), 4096), lim)
	return r, err
}

func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// TestRequestRefused is the table of requests a proxy must refuse: the
// request-smuggling vectors of RFC 9112 and the limits.
func TestRequestRefused(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name   string
		req    string
		status int
	}{
		{"content-length and transfer-encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"transfer-encoding and content-length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
		{"two equal content-lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400},
		{"two different content-lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"content-length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400},
		{"content-length sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
		{"content-length negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"content-length hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400},
		{"content-length empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
		{"content-length overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"transfer-encoding gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"transfer-encoding chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"transfer-encoding gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"transfer-encoding twice chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
		{"transfer-encoding two fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"transfer-encoding with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400},
		{"transfer-encoding empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400},
		{"transfer-encoding identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
		{"transfer-encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"transfer-encoding vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		{"obs-fold of transfer-encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 400},
		{"space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
		{"tab before colon", "GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n", 400},
		{"first field folded", "GET / HTTP/1.1\r\n X: y\r\nHost: a\r\n\r\n", 400},
		{"empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nX b\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400},
		{"control byte in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
		{"bare CR ending a line", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", 400},
		{"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"invalid byte in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x7f: b\r\n\r\n", 400},
		{"separator in name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
		{"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"no version", "GET /\r\nHost: a\r\n\r\n", 400},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
		{"invalid method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bad escape in path", "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"truncated escape in path", "GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute ftp", "GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute without authority", "GET http:///b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute with userinfo", "GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501},
		{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"Expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417},
		{"request line too long", "GET /" + strings.Repeat(long, 4) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat(long, 4) + "\r\n\r\n", 431},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: 1\r\n", 11) + "\r\n", 431},
		{"truncated head", "GET / HTTP/1.1\r\nHost: a\r\n", 400},
	}
	lim := Limits{MaxHeadBytes: 1000, MaxFields: 10}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readRequest(t, tt.req, lim)
			if got := statusOf(err); got != tt.status {
				t.Fatalf("status %d (%v), want %d", got, err, tt.status)
			}
		})
	}
}

func TestRequestAccepted(t *testing.T) {
	tests := []struct {
		name                             string
		req                              string
		method, path, query, host, upgr  string
		length                           int64
		chunked, close, expect, trailers bool
		minor                            int
	}{
		{name: "simple", req: "GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\n", method: "GET", path: "/a", query: "b=1", host: "h", length: -1, minor: 1},
		{name: "leading empty lines", req: "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", method: "GET", path: "/", host: "h", length: -1, minor: 1},
		{name: "bare LF line ends", req: "GET / HTTP/1.1\nHost: h\n\n", method: "GET", path: "/", host: "h", length: -1, minor: 1},
		{name: "content-length", req: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 012\r\n\r\n", method: "POST", path: "/p", host: "h", length: 12, minor: 1},
		{name: "chunked any case", req: "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  ChUnKeD \r\n\r\n", method: "POST", path: "/p", host: "h", length: -1, chunked: true, minor: 1},
		{name: "connection close", req: "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n", method: "GET", path: "/", host: "h", length: -1, close: true, minor: 1},
		{name: "HTTP/1.0 closes", req: "GET / HTTP/1.0\r\n\r\n", method: "GET", path: "/", length: -1, close: true},
		{name: "HTTP/1.0 keep-alive", req: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", method: "GET", path: "/", length: -1},
		{name: "absolute form", req: "GET HTTP://example.com:8080?x HTTP/1.1\r\nHost: other\r\n\r\n", method: "GET", path: "", query: "x", host: "example.com:8080", length: -1, minor: 1},
		{name: "asterisk", req: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", method: "OPTIONS", path: "*", host: "h", length: -1, minor: 1},
		{name: "expect", req: "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", method: "PUT", path: "/", host: "h", length: 3, expect: true, minor: 1},
		{name: "expect ignored in 1.0", req: "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", method: "PUT", path: "/", length: 3, close: true},
		{name: "upgrade", req: "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", method: "GET", path: "/ws", host: "h", length: -1, upgr: "websocket", minor: 1},
		{name: "upgrade ignored in 1.0", req: "GET /ws HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", method: "GET", path: "/ws", length: -1, close: true},
		{name: "te trailers", req: "GET / HTTP/1.1\r\nHost: h\r\nTE: gzip, trailers\r\n\r\n", method: "GET", path: "/", host: "h", length: -1, trailers: true, minor: 1},
		{name: "empty host", req: "GET / HTTP/1.1\r\nHost:\r\n\r\n", method: "GET", path: "/", length: -1, minor: 1},
		{name: "escapes and obs-text", req: "GET /a%2Fb\x80 HTTP/1.1\r\nHost: h\r\nX: \xff\r\n\r\n", method: "GET", path: "/a%2Fb\x80", host: "h", length: -1, minor: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := readRequest(t, tt.req, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got := []any{string(r.Method), string(r.Path), string(r.Query), string(r.Host), string(r.Upgrade), r.ContentLength, r.Chunked, r.Close, r.Expect100, r.TrailersOK, r.Minor}
			want := []any{tt.method, tt.path, tt.query, tt.host, tt.upgr, tt.length, tt.chunked, tt.close, tt.expect, tt.trailers, tt.minor}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("got %v, want %v", got, want)
					break
				}
			}
		})
	}
}

func TestConnectionNamesHopByHopFields(t *testing.T) {
	r, err := readRequest(t, "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-a, Cookie\r\nX-A: 1\r\nX-B: 2\r\nCookie: c=1\r\n\r\n", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	hop := map[string]bool{}
	for _, f := range r.Fields {
		hop[string(f.Name)] = f.Hop || f.Class.HopByHop()
	}
	want := map[string]bool{"Host": false, "Connection": true, "X-A": true, "X-B": false, "Cookie": true}
	for k, v := range want {
		if hop[k] != v {
			t.Errorf("%s hop-by-hop = %v, want %v", k, hop[k], v)
		}
	}
}

func TestRequestReadEOF(t *testing.T) {
	if _, err := readRequest(t, "", Limits{}); err != io.EOF {
		t.Fatalf("empty input: %v, want io.EOF", err)
	}
	if _, err := readRequest(t, "\r\n", Limits{}); err != io.EOF {
		t.Fatalf("a CRLF only: %v, want io.EOF", err)
	}
}

// TestLongLinesBeyondTheBuffer: lines longer than the reader's buffer
// are gathered, up to the limit.
func TestLongLinesBeyondTheBuffer(t *testing.T) {
	v := strings.Repeat("v", 10000)
	r := new(Request)
	br := bufio.NewReaderSize(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\nX: "+v+"\r\n\r\n"), 16)
	if err := r.Read(br, Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := string(r.Fields[1].Value); got != v {
		t.Fatalf("value of %d bytes, want %d", len(got), len(v))
	}
}

func TestPipelinedRequestsReuseStorage(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n"))
	r := new(Request)
	for _, want := range []string{"/1 a", "/2 b"} {
		if err := r.Read(br, Limits{}); err != nil {
			t.Fatal(err)
		}
		if got := string(r.Path) + " " + string(r.Host); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		br.Reset(strings.NewReader("GET /1 HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\n\r\n"))
		r.Read(br, Limits{})
	}); n > 1 { // the strings.Reader
		t.Errorf("%v allocations per request head", n)
	}
}

func TestEqualFold(t *testing.T) {
	for _, tc := range []struct {
		b, s string
		want bool
	}{
		{"Content-Length", "content-length", true},
		{"CLOSE", "close", true},
		{"closed", "close", false},
		{"a-b", "a_b", false},
		{"", "", true},
		{"\xc0", "\xe0", false}, // ASCII only
	} {
		if got := EqualFold([]byte(tc.b), tc.s); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tc.b, tc.s, got, tc.want)
		}
	}
}
