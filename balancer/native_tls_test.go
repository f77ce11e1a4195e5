package balancer

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/testpki"
)

// tlsPair returns a server configuration offering h2 and http/1.1 with a
// certificate for 127.0.0.1, and a client configuration trusting it.
func tlsPair(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	ca := testpki.NewCA(tb, "balancer")
	server = &tls.Config{Certificates: []tls.Certificate{ca.IssueTLS(tb, "127.0.0.1")}, NextProtos: []string{"h2", "http/1.1"}}
	return server, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
}

// serveNativeTLS serves bal with a native Server on a new TLS listener;
// the frontend's client speaks HTTP/1.1 unless h2 is set.
func serveNativeTLS(t *testing.T, bal *Balancer, h2 bool) *frontend {
	t.Helper()
	sc, cc := tlsPair(t)
	tr := &http.Transport{TLSClientConfig: cc, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return serveNativeOver(t, bal, ServerOptions{TLS: sc}, tr)
}

// TestNativeTLS: HTTP/1.1 and HTTP/2 clients of one TLS listener are
// routed alike (a new session, then sticky), members are told the client
// used https, and a WebSocket tunnels over TLS.
func TestNativeTLS(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			b1, b2 := newBackend(t, "n1"), newBackend(t, "n2")
			bal, err := New(fastOptions(), []MemberConfig{memberOf(t, b1, 1, Active), memberOf(t, b2, 1, Active)})
			if err != nil {
				t.Fatal(err)
			}
			f := serveNativeTLS(t, bal, h2)
			first := do(t, f.Client(), "GET", f.URL+"/", "", nil)
			if first.status != 200 || first.cookie == "" {
				t.Fatalf("first request: %+v", first)
			}
			for range 4 {
				if r := do(t, f.Client(), "GET", f.URL+"/", first.cookie, nil); r.member != first.member {
					t.Fatalf("sticky request went to %q, want %q", r.member, first.member)
				}
			}
			resp, err := f.Client().Get(f.URL + "/headers")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if wantMajor := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != wantMajor {
				t.Fatalf("served over %s", resp.Proto)
			}
			if !strings.Contains(string(body), "X-Forwarded-Proto: https\n") || !strings.Contains(string(body), "proto=https") {
				t.Fatalf("the member was not told https:\n%s", body)
			}
		})
	}
	t.Run("websocket", func(t *testing.T) {
		b1 := newBackend(t, "n1")
		bal, err := New(fastOptions(), []MemberConfig{memberOf(t, b1, 1, Active)})
		if err != nil {
			t.Fatal(err)
		}
		f := serveNativeTLS(t, bal, false)
		c, err := tls.Dial("tcp", f.Addr, f.Client().Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		io.WriteString(c, "hello\n")
		if line, err := br.ReadString('\n'); err != nil || line != "n1:hello\n" {
			t.Fatalf("echo %q %v", line, err)
		}
	})
}

// nativeTLSBench is nativeBench over TLS: the client negotiates nothing
// by ALPN (HTTP/1.1, like wrk) with the given TLS version.
func nativeTLSBench(tb testing.TB, req, resp string, version uint16) *benchClient {
	member := benchMember(tb, resp)
	bal, err := New(fastOptions(), []MemberConfig{{URL: member, Route: "n1"}, {URL: member, Route: "n2"}, {URL: member, Route: "n3"}})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	sc, cc := tlsPair(tb)
	srv := NewServer(ServerOptions{TLS: sc}, NewMux(map[string]*Balancer{"/": bal}))
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close(); bal.Close() })
	cc.MinVersion, cc.MaxVersion = version, version
	c, err := tls.Dial("tcp", ln.Addr().String(), cc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &benchClient{c: c, br: bufio.NewReader(c), req: []byte(req), bodyLen: 8}
}

// TestNativeTLSAllocations is TestNativeAllocations over TLS 1.2 and 1.3.
// The engine allocates nothing per request; crypto/tls allocates one
// 16-byte object per record it reads from the socket (the atLeastReader
// of Conn.readFromUntil, which escapes through bytes.Buffer.ReadFrom), on
// each end: one for the server's read of the request, one for the
// client's read of the response. The bound is those two and nothing
// more: a probe of crypto/tls's buffers before each idle wait would be a
// third (see h1's tlsPending).
func TestNativeTLSAllocations(t *testing.T) {
	maxNativeAllocs := 2.0 // crypto/tls's, on both ends
	if raceDetector {
		maxNativeAllocs = 14 // and sync.Pool's drops (crypto/tls pools its output buffers too)
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for name, req := range map[string][2]string{"sticky": {benchRequest, benchResponse}, "new": {benchNewRequest, benchNewResponse}} {
			n := allocsPerRequest(t, nativeTLSBench(t, req[0], req[1], version))
			if n > maxNativeAllocs {
				t.Errorf("%s %s: %v allocations per proxied request, want at most %v", tls.VersionName(version), name, n, maxNativeAllocs)
			}
			t.Logf("%s %s: %v allocations per proxied request", tls.VersionName(version), name, n)
		}
	}
}

// BenchmarkNativeTLS is BenchmarkNative over a TLS 1.3 keep-alive
// connection (AES-128-GCM or ChaCha20, as crypto/tls prefers on the CPU).
func BenchmarkNativeTLS(b *testing.B) {
	for _, tc := range []struct{ name, req, resp string }{
		{"sticky", benchRequest, benchResponse},
		{"new", benchNewRequest, benchNewResponse},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bc := nativeTLSBench(b, tc.req, tc.resp, tls.VersionTLS13)
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.do(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
