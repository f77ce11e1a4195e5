package balancer

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer/h1"
)

// The TLS path against the others, on the same bytes from a client: the
// native engine over TLS must answer exactly as over plaintext (TLS only
// carries the bytes, however they are cut into records), and every
// request it forwards must reach the member as the one net/http's engine
// forwards at the same place (h1's parser may refuse more: FuzzRequest
// holds it to that).

// seenMember answers every request with one line saying what it
// received, and no Date, so that answers compare byte for byte (the
// proto is padded: "http " and "https" have the same length).
func seenMember(tb testing.TB) *httptest.Server {
	m := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		w.Header()["Date"] = nil
		fmt.Fprintf(w, "seen:%s %s host=%q proto=%-5s body=%q err=%v\n", r.Method, r.RequestURI, r.Host, r.Header.Get("X-Forwarded-Proto"), body, err != nil)
	}))
	tb.Cleanup(m.Close)
	return m
}

// fuzzFronts are one balancer behind three listeners: the native engine
// on plaintext and TLS, net/http's on TLS (as a nethttp listener).
type fuzzFronts struct {
	plain, native, nethttp string
	client                 *tls.Config
}

func newFuzzFronts(tb testing.TB) *fuzzFronts {
	m := seenMember(tb)
	opts := fastOptions()
	bal, err := New(opts, []MemberConfig{{URL: mustURL(m.URL), Route: "n1"}})
	if err != nil {
		tb.Fatal(err)
	}
	mux := NewMux(map[string]*Balancer{"/": bal})
	sc, cc := tlsPair(tb)
	cc.NextProtos = []string{"http/1.1"}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		return ln
	}
	f := &fuzzFronts{client: cc}
	plain, native := NewServer(ServerOptions{}, mux), NewServer(ServerOptions{TLS: sc}, mux)
	ln1, ln2, ln3 := listen(), listen(), listen()
	f.plain, f.native, f.nethttp = ln1.Addr().String(), ln2.Addr().String(), ln3.Addr().String()
	go plain.Serve(ln1)
	go native.Serve(ln2)
	hs := &http.Server{Handler: mux, TLSConfig: sc.Clone()}
	go hs.Serve(tls.NewListener(ln3, sc))
	tb.Cleanup(func() { plain.Close(); native.Close(); hs.Close(); bal.Close() })
	return f
}

// exchange sends in to addr (over TLS if overTLS, in writes of chunk
// bytes each, so in records of that size) and returns what the connection
// answered. want < 0: the input is ended after it (a half-close) and all
// is read; else the input stays open and reading stops after want answers
// of the member, or when the server closes, or after a few seconds
// (net/http's server takes a half-close for a client gone and drops its
// requests).
func (f *fuzzFronts) exchange(t *testing.T, addr string, overTLS bool, in []byte, chunk, want int) []byte {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var rw interface {
		io.ReadWriter
		CloseWrite() error
	} = c.(*net.TCPConn)
	if overTLS {
		tc := tls.Client(c, f.client)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		rw = tc
	}
	for p := in; len(p) > 0; {
		n := min(chunk, len(p))
		if _, err := rw.Write(p[:n]); err != nil {
			break // the server closed after refusing a request
		}
		p = p[n:]
	}
	if want < 0 {
		rw.CloseWrite()
		out, _ := io.ReadAll(rw)
		return out
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var out []byte
	buf := make([]byte, 4096)
	for len(seenLines(out)) < want {
		n, err := rw.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return out
}

// seenLines returns the member's answer lines in out.
func seenLines(out []byte) [][]byte {
	var lines [][]byte
	for _, l := range bytes.SplitAfter(out, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("seen:")) {
			lines = append(lines, l)
		}
	}
	return lines
}

func FuzzNativeTLS(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a?b HTTP/1.1\r\nHost: a\r\nCookie: JSESSIONID=x.n1\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://h:80/x?y HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
		"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(0))
		f.Add([]byte(s), uint16(7))
	}
	fronts := newFuzzFronts(f)
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		chunk := len(in) + 1
		if split > 0 {
			chunk = int(split)
		}
		plain := fronts.exchange(t, fronts.plain, false, in, chunk, -1)
		native := fronts.exchange(t, fronts.native, true, in, chunk, -1)
		ours := seenLines(native)
		theirs := seenLines(fronts.exchange(t, fronts.nethttp, true, withoutEmptyLines(in), chunk, len(ours)))
		overTLS := bytes.ReplaceAll(plain, []byte(" proto=http  "), []byte(" proto=https "))
		if !bytes.Equal(native, overTLS) {
			t.Fatalf("the native engine answers differently over TLS:\nplaintext: %q\nTLS:       %q", plain, native)
		}
		if len(ours) > len(theirs) {
			t.Fatalf("the native engine forwarded %d requests, net/http's %d:\nnative:   %q\nnet/http: %q", len(ours), len(theirs), ours, theirs)
		}
		for i := range ours {
			if !bytes.Equal(ours[i], theirs[i]) && !bytes.Equal(asNetHTTP(ours[i]), theirs[i]) {
				t.Fatalf("request %d reached the member differently:\nnative:   %q\nnet/http: %q", i, ours[i], theirs[i])
			}
		}
	})
}

// asNetHTTP rewrites the request target of a member's "seen:" line as the
// net/http engine forwards it: re-escaped by net/url ("/\"" becomes
// "/%22"), and a query with a ';' or a bad '%' escape re-encoded from what
// url.ParseQuery makes of it (httputil.ReverseProxy's cleanQueryParams:
// "/a?%" becomes "/a"), where the native engine forwards it byte for
// byte, as HAProxy does (docs/config.md, "Where the two engines differ").
func asNetHTTP(line []byte) []byte {
	rest, ok := bytes.CutPrefix(line, []byte("seen:"))
	method, after, ok2 := bytes.Cut(rest, []byte(" "))
	target, tail, ok3 := bytes.Cut(after, []byte(" host="))
	if !ok || !ok2 || !ok3 {
		return line
	}
	u, err := url.ParseRequestURI(string(target))
	if err != nil {
		return line
	}
	if unclean(u.RawQuery) {
		v, _ := url.ParseQuery(u.RawQuery)
		u.RawQuery = v.Encode()
	}
	return fmt.Appendf(nil, "seen:%s %s host=%s", method, u.RequestURI(), tail)
}

// unclean: httputil.ReverseProxy re-encodes query q (cleanQueryParams).
func unclean(q string) bool {
	for i := 0; i < len(q); i++ {
		switch {
		case q[i] == ';':
			return true
		case q[i] == '%' && (i+2 >= len(q) || !isHexDigit(q[i+1]) || !isHexDigit(q[i+2])):
			return true
		}
	}
	return false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// withoutEmptyLines returns in without the empty lines before each
// request, which h1 skips (RFC 9112 §2.2) and net/http's server refuses
// but after a POST: a documented difference of the parsers (see h1's
// readNetHTTP), not one of the TLS path. Requests are delimited as h1
// reads them; what h1 cannot read stays as it is.
func withoutEmptyLines(in []byte) []byte {
	src := bytes.NewReader(in)
	br := bufio.NewReaderSize(src, 4096)
	pos := func() int { return len(in) - src.Len() - br.Buffered() }
	var out []byte
	var req h1.Request
	var body h1.Body
	for {
		for {
			p, err := br.Peek(2)
			if len(p) > 0 && p[0] == '\n' {
				br.Discard(1)
			} else if err == nil && p[0] == '\r' && p[1] == '\n' {
				br.Discard(2)
			} else {
				break
			}
		}
		start := pos()
		if err := req.Read(br, h1.Limits{}); err != nil {
			return append(out, in[start:]...)
		}
		body.Reset(br, req.BodyFraming(), req.ContentLength, h1.Limits{})
		for {
			p, err := body.Next()
			if err != nil {
				if err != io.EOF {
					return append(out, in[start:]...)
				}
				break
			}
			body.Consume(len(p))
		}
		out = append(out, in[start:pos()]...)
	}
}
