package balancer

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetherlb/tether/internal/proctest"
)

func TestMemberConnectionsAreReused(t *testing.T) { eachEngine(t, testMemberConnectionsAreReused) }

func testMemberConnectionsAreReused(t *testing.T, e engine) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", "n1")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	_, front := e.front(t, fastOptions(), MemberConfig{URL: u, Route: "n1"})
	for i := 0; i < 50; i++ {
		if r := do(t, front.Client(), "GET", front.URL, "S.n1", nil); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("50 sequential requests opened %d member connections, want 1", n)
	}
}

func TestAccessLogRecordsMemberAndStickyOutcome(t *testing.T) {
	eachEngine(t, testAccessLogRecordsMemberAndStickyOutcome)
}

func testAccessLogRecordsMemberAndStickyOutcome(t *testing.T, e engine) {
	n1 := newBackend(t, "n1")
	var buf proctest.Buffer
	opts := fastOptions()
	opts.AccessLog = slog.New(slog.NewJSONHandler(&buf, nil))
	opts.NoFailover = true
	_, srv := e.front(t, opts, memberOf(t, n1, 1, Active), MemberConfig{URL: closedURL(t), Route: "n2"})
	do(t, srv.Client(), "GET", srv.URL+"/a", "", nil)
	do(t, srv.Client(), "GET", srv.URL+"/b", "S.n1", nil)
	do(t, srv.Client(), "GET", srv.URL+"/c", "S.n2", nil)

	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		got = append(got, rec)
	}
	want := []struct {
		uri, sticky, member string
		status              float64
	}{
		{"/a", "new", "n1", 200},
		{"/b", "sticky", "n1", 200},
		{"/c", "nofailover_rejected", "n2", 503},
	}
	if len(got) != len(want) {
		t.Fatalf("%d records: %v", len(got), got)
	}
	for i, w := range want {
		g := got[i]
		if g["uri"] != w.uri || g["sticky"] != w.sticky || g["member"] != w.member || g["status"] != w.status || g["balancer"] != "test" {
			t.Errorf("record %d = %v, want %+v", i, g, w)
		}
	}
	if got[2]["route"] != "n2" || got[2]["error"] == nil {
		t.Errorf("rejected request: route %v error %v", got[2]["route"], got[2]["error"])
	}
}

func TestRewriteHost(t *testing.T) { eachEngine(t, testRewriteHost) }

func testRewriteHost(t *testing.T, e engine) {
	n1 := newBackend(t, "n1")
	for _, rewrite := range []bool{false, true} {
		opts := fastOptions()
		opts.RewriteHost = rewrite
		_, srv := e.front(t, opts, memberOf(t, n1, 1, Active))
		req, _ := http.NewRequest("GET", srv.URL+"/headers", nil)
		req.Host = "shop.example"
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "Host: shop.example\n"
		if rewrite {
			want = "Host: " + strings.TrimPrefix(n1.srv.URL, "http://") + "\n"
		}
		if !strings.Contains(string(body), want) || !strings.Contains(string(body), "X-Forwarded-Host: shop.example\n") {
			t.Errorf("RewriteHost %v: member saw\n%s", rewrite, body)
		}
	}
}

// TestHTTPSMember: a member reached over TLS, verified with MemberTLS.
func TestHTTPSMember(t *testing.T) { eachEngine(t, testHTTPSMember) }

func testHTTPSMember(t *testing.T, e engine) {
	member := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", "tls")
		fmt.Fprintf(w, "over %s", r.Proto)
	}))
	defer member.Close()
	u, _ := url.Parse(member.URL)
	opts := fastOptions()
	opts.MemberTLS = member.Client().Transport.(*http.Transport).TLSClientConfig
	_, srv := e.front(t, opts, MemberConfig{URL: u, Route: "tls"})
	for i := 0; i < 3; i++ {
		if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.status != 200 || r.body != "over HTTP/1.1" {
			t.Fatalf("status %d body %q", r.status, r.body)
		}
	}
	// Without the member's certificate, the handshake fails: 502.
	_, srv = e.front(t, fastOptions(), MemberConfig{URL: u, Route: "tls"})
	if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.status != http.StatusBadGateway {
		t.Fatalf("unverified member: status %d", r.status)
	}
}
