package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// members starts three members n1..n3 that answer with their route, the
// request body, the forwarding headers they saw, and a chunked body at
// /chunked.
func members(t *testing.T) string {
	t.Helper()
	var list []string
	for _, rt := range []string{"n1", "n2", "n3"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Node", rt)
			w.Header().Set("X-Saw-XFF", r.Header.Get("X-Forwarded-For"))
			w.Header().Set("X-Saw-Forwarded", r.Header.Get("Forwarded"))
			w.Header().Set("X-Saw-Hop", r.Header.Get("Keep-Alive")+r.Header.Get("Upgrade-Insecure"))
			if _, err := r.Cookie("JSESSIONID"); err != nil {
				w.Header().Set("Set-Cookie", "JSESSIONID=abc."+rt+"; Path=/")
			}
			switch r.URL.Path {
			case "/chunked":
				w.WriteHeader(200)
				for i := range 3 {
					fmt.Fprintf(w, "part %d;", i)
					w.(http.Flusher).Flush()
				}
			case "/close":
				w.Header().Set("Connection", "close")
				fmt.Fprintf(w, "%s closing", rt)
			case "/empty":
				w.WriteHeader(204)
			default:
				fmt.Fprintf(w, "%s %s %s", rt, r.Method, body)
			}
		}))
		t.Cleanup(srv.Close)
		list = append(list, rt+"="+strings.TrimPrefix(srv.URL, "http://"))
	}
	return strings.Join(list, ",")
}

func startProxy(t *testing.T, engine, list string) string {
	t.Helper()
	ms, err := parseMembers(list)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &picker{members: ms}
	if engine == "raw" {
		go serveRaw(ln, p)
	} else {
		go serveNetHTTP(ln, p)
	}
	return "http://" + ln.Addr().String()
}

func TestEngines(t *testing.T) {
	for _, engine := range []string{"raw", "nethttp"} {
		t.Run(engine, func(t *testing.T) {
			url := startProxy(t, engine, members(t))
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			t.Cleanup(client.CloseIdleConnections)
			do := func(method, path, cookie, body string, chunked bool) (*http.Response, string) {
				t.Helper()
				var rd io.Reader
				if body != "" {
					rd = strings.NewReader(body)
					if chunked {
						rd = io.MultiReader(rd) // unknown length: sent chunked
					}
				}
				req, _ := http.NewRequest(method, url+path, rd)
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				req.Header.Set("Keep-Alive", "timeout=5")
				req.Header.Set("X-Forwarded-For", "6.6.6.6")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				return resp, string(b)
			}
			for _, tc := range []struct {
				name, method, path, cookie, body string
				chunked                          bool
				want                             string
			}{
				{name: "sticky", method: "GET", path: "/", cookie: "a=1; JSESSIONID=xyz.n2", want: "n2 GET "},
				{name: "sticky again", method: "GET", path: "/", cookie: "JSESSIONID=xyz.n2", want: "n2 GET "},
				{name: "post with length", method: "POST", path: "/", cookie: "JSESSIONID=xyz.n3", body: "hello", want: "n3 POST hello"},
				{name: "post chunked", method: "POST", path: "/", cookie: "JSESSIONID=xyz.n1", body: "chunks", chunked: true, want: "n1 POST chunks"},
				{name: "chunked response", method: "GET", path: "/chunked", cookie: "JSESSIONID=xyz.n1", want: "part 0;part 1;part 2;"},
				{name: "member closes", method: "GET", path: "/close", cookie: "JSESSIONID=xyz.n2", want: "n2 closing"},
				{name: "after member closed", method: "GET", path: "/", cookie: "JSESSIONID=xyz.n2", want: "n2 GET "},
				{name: "no content", method: "GET", path: "/empty", cookie: "JSESSIONID=xyz.n2", want: ""},
				{name: "head", method: "HEAD", path: "/", cookie: "JSESSIONID=xyz.n2", want: ""},
			} {
				resp, body := do(tc.method, tc.path, tc.cookie, tc.body, tc.chunked)
				if body != tc.want {
					t.Errorf("%s: body %q, want %q", tc.name, body, tc.want)
				}
				if xff := resp.Header.Get("X-Saw-XFF"); xff != "127.0.0.1" {
					t.Errorf("%s: member saw X-Forwarded-For %q, want 127.0.0.1", tc.name, xff)
				}
				if f := resp.Header.Get("X-Saw-Forwarded"); !strings.HasPrefix(f, "for=127.0.0.1;") {
					t.Errorf("%s: member saw Forwarded %q", tc.name, f)
				}
				if h := resp.Header.Get("X-Saw-Hop"); h != "" {
					t.Errorf("%s: a hop-by-hop header reached the member: %q", tc.name, h)
				}
			}
			seen := map[string]bool{}
			for range 6 {
				resp, _ := do("GET", "/", "", "", false)
				n := resp.Header.Get("X-Node")
				if sc := resp.Header.Get("Set-Cookie"); sc != "JSESSIONID=abc."+n+"; Path=/" {
					t.Errorf("new session on %s got Set-Cookie %q", n, sc)
				}
				seen[n] = true
			}
			if len(seen) != 3 {
				t.Errorf("new sessions reached %v, want all of n1..n3", seen)
			}
		})
	}
}

func TestRawPipelinedAndClose(t *testing.T) {
	url := startProxy(t, "raw", members(t))
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	get := "GET / HTTP/1.1\r\nHost: x\r\nCookie: JSESSIONID=a.n3\r\n\r\n"
	io.WriteString(c, get+get+"GET / HTTP/1.1\r\nHost: x\r\nCookie: JSESSIONID=a.n1\r\nConnection: close\r\n\r\n")
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(out, []byte("HTTP/1.1 200 OK")); n != 3 {
		t.Errorf("%d responses, want 3:\n%s", n, out)
	}
	if !bytes.HasSuffix(out, []byte("n1 GET ")) || !bytes.Contains(out, []byte("Connection: close")) {
		t.Errorf("last response is not n1's with Connection: close:\n%s", out)
	}
}

func TestRawRefusesBadRequests(t *testing.T) {
	url := startProxy(t, "raw", members(t))
	for _, tc := range []struct{ name, send, want string }{
		{"garbage", "hello\r\n\r\n", "400 Bad Request"},
		{"bad length", "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400 Bad Request"},
		{"upgrade", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "400 Bad Request"},
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, tc.send)
		out, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(out), "HTTP/1.1 "+tc.want) {
			t.Errorf("%s: got %q, want %s", tc.name, out, tc.want)
		}
	}
}

func TestParseMembers(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"good", "n1=127.0.0.1:1,n2=127.0.0.1:2", true},
		{"no address", "n1=", false},
		{"bad route", "n 1=127.0.0.1:1", false},
		{"empty", "", false},
	} {
		if _, err := parseMembers(tc.in); (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
