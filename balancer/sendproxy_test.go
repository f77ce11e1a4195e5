package balancer

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer/proxyproto"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

// proxiedMember is a member that requires a PROXY protocol header from
// 127.0.0.1 (the balancer) and answers with the client address it gave.
func proxiedMember(t *testing.T, ca *testpki.CA, conns *atomic.Int64) *url.URL {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", "pp")
		io.WriteString(w, r.RemoteAddr)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1) // a connection whose header was accepted
		}
	}
	srv.Listener = proxyproto.NewListener(srv.Listener, proxyproto.Options{
		From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Logger: slog.New(slog.DiscardHandler),
	})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if ca != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueTLS(t, "127.0.0.1")}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

// TestSendProxy: with SendProxy, every member connection starts with a
// PROXY header naming the client, in both engines, over http and https,
// in both versions; health checks send a LOCAL header, so the member
// stays up.
func TestSendProxy(t *testing.T) { eachEngine(t, testSendProxy) }

func testSendProxy(t *testing.T, e engine) {
	ca := testpki.NewCA(t, "private")
	for _, tc := range []struct {
		name    string
		version int
		tls     bool
	}{{"v2", 2, false}, {"v1", 1, false}, {"v2 over TLS", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var u *url.URL
			var conns atomic.Int64
			log := &healthLog{}
			opts := fastOptions()
			opts.SendProxy = tc.version
			opts.Health.Path, opts.Health.Interval, opts.Health.OnChange = "/healthz", 10*time.Millisecond, log.record
			if tc.tls {
				u = proxiedMember(t, ca, &conns)
				opts.MemberTLS = &tls.Config{RootCAs: ca.Pool()}
			} else {
				u = proxiedMember(t, nil, &conns)
			}
			bal, srv := e.front(t, opts, MemberConfig{URL: u, Route: "pp"})
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}
			c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) }}}
			defer c.CloseIdleConnections()
			for i := 0; i < 3; i++ { // a keep-alive client: each request its own member connection
				if r := do(t, c, "GET", srv.URL, "", nil); r.status != 200 || !isFrom(r.body, "127.0.0.7") {
					t.Fatalf("request %d: %d %q; want the member to see 127.0.0.7", i, r.status, r.body)
				}
			}
			// Many checks later the member has never been down: the checks
			// send LOCAL headers, which the member accepts.
			start := conns.Load()
			proctest.Eventually(t, 10*time.Second, func() error {
				if n := conns.Load() - start; n < 10 {
					return fmt.Errorf("%d checks so far", n)
				}
				return nil
			})
			if changes := log.list(); len(changes) > 0 || !statsOf(bal, "pp").Healthy {
				t.Fatalf("health changes %v", changes)
			}
		})
	}
}

func isFrom(remote, ip string) bool {
	host, _, err := net.SplitHostPort(remote)
	return err == nil && host == ip
}
