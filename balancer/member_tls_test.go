package balancer

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer/health"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

// tlsMember is an https member with a certificate of a private CA, that
// counts the connections it accepts (handshakes tried).
type tlsMember struct {
	srv   *httptest.Server
	url   *url.URL
	conns atomic.Int64
}

func newTLSMember(t *testing.T, ca *testpki.CA, clientCA *testpki.CA) *tlsMember {
	t.Helper()
	m := &tlsMember{}
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", "tls")
		fmt.Fprintf(w, "over %s", r.Proto)
	}))
	m.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueTLS(t, "member.test", "127.0.0.1")}}
	if clientCA != nil {
		m.srv.TLS.ClientAuth, m.srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, clientCA.Pool()
	}
	m.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			m.conns.Add(1)
		}
	}
	m.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point

	m.srv.StartTLS()
	t.Cleanup(m.srv.Close)
	m.url, _ = url.Parse(m.srv.URL)
	return m
}

// healthLog records a balancer's health changes.
type healthLog struct {
	mu      sync.Mutex
	changes []string
}

func (l *healthLog) record(_ health.Target, up bool, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, fmt.Sprintf("up=%v %s", up, reason))
}

func (l *healthLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.changes...)
}

// TestMemberTLSFromPrivateCA: an https member whose certificate a private
// CA signed is up and serving with the CA, in both engines; without it
// the member is down with the reason, checks and traffic agreeing: it is
// never up again while its certificate fails.
func TestMemberTLSFromPrivateCA(t *testing.T) { eachEngine(t, testMemberTLSFromPrivateCA) }

func testMemberTLSFromPrivateCA(t *testing.T, e engine) {
	ca := testpki.NewCA(t, "private")
	for _, tc := range []struct {
		name       string
		healthPath string
	}{{"active checks", "/healthz"}, {"passive only", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTLSMember(t, ca, nil)
			opts := fastOptions()
			opts.Health.Path, opts.Health.Interval = tc.healthPath, 10*time.Millisecond
			opts.MemberTLS = &tls.Config{RootCAs: ca.Pool(), ServerName: "member.test"}
			_, srv := e.front(t, opts, MemberConfig{URL: m.url, Route: "tls"})
			for i := 0; i < 3; i++ {
				if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.status != 200 || r.body != "over HTTP/1.1" {
					t.Fatalf("with the CA: status %d body %q", r.status, r.body)
				}
			}

			// The same member without the CA: down, with the reason.
			log := &healthLog{}
			opts.MemberTLS, opts.Health.OnChange = nil, log.record
			bal, srv := e.front(t, opts, MemberConfig{URL: m.url, Route: "tls"})
			if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.status == 200 {
				t.Fatal("a member whose certificate does not verify served a request")
			}
			waitHealthy(t, bal, "tls", false)
			st := statsOf(bal, "tls")
			if !strings.Contains(st.HealthReason, "certificate") {
				t.Fatalf("health reason %q does not name the certificate", st.HealthReason)
			}
			// Many checks or probes later, it has never come back up, and
			// requests keep failing without reaching it.
			start := m.conns.Load()
			proctest.Eventually(t, 10*time.Second, func() error {
				if n := m.conns.Load() - start; n < 10 {
					return fmt.Errorf("%d checks so far", n)
				}
				return nil
			})
			for i := 0; i < 5; i++ {
				if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.status == 200 {
					t.Fatal("served without the CA")
				}
			}
			for _, c := range log.list() {
				if strings.HasPrefix(c, "up=true") {
					t.Fatalf("the member came up while its certificate fails: %v", log.list())
				}
			}
		})
	}
}

// TestMemberOwnTLS: a member's own TLS configuration (a client
// certificate the member requires, another CA) overrides the balancer's.
func TestMemberOwnTLS(t *testing.T) { eachEngine(t, testMemberOwnTLS) }

func testMemberOwnTLS(t *testing.T, e engine) {
	ca, clients := testpki.NewCA(t, "servers"), testpki.NewCA(t, "clients")
	m, other := newTLSMember(t, ca, clients), newTLSMember(t, ca, clients)
	own := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{clients.IssueTLS(t, "tether")}}
	opts := fastOptions()
	opts.Health.Path, opts.Health.Interval = "/healthz", 10*time.Millisecond
	opts.MemberTLS = &tls.Config{RootCAs: ca.Pool()} // no client certificate
	bal, srv := e.front(t, opts, MemberConfig{URL: m.url, Route: "tls", TLS: own}, MemberConfig{URL: other.url, Route: "plain"})
	waitHealthy(t, bal, "plain", false) // the balancer's settings lack the client certificate
	for i := 0; i < 3; i++ {
		if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.status != 200 || r.member != "tls" {
			t.Fatalf("status %d from %q", r.status, r.member)
		}
	}
	if st := statsOf(bal, "tls"); !st.Healthy {
		t.Fatalf("member with its own client certificate is down: %s", st.HealthReason)
	}
}

// TestMemberTLSChangeClosesIdleConnections: after an update of the TLS
// settings, requests do not go on over connections the old settings
// verified.
func TestMemberTLSChangeClosesIdleConnections(t *testing.T) { eachEngine(t, testMemberTLSChange) }

func testMemberTLSChange(t *testing.T, e engine) {
	ca := testpki.NewCA(t, "private")
	m := newTLSMember(t, ca, nil)
	opts := fastOptions()
	opts.MemberTLS = &tls.Config{RootCAs: ca.Pool()}
	members := []MemberConfig{{URL: m.url, Route: "tls"}}
	bal, srv := e.front(t, opts, members...)
	if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.status != 200 {
		t.Fatalf("with the CA: %d", r.status)
	}
	opts.MemberTLS = nil
	if err := bal.Update(opts, members, members); err != nil {
		t.Fatal(err)
	}
	if r := do(t, srv.Client(), "GET", srv.URL, "", nil); r.status == 200 {
		t.Fatal("served over a connection the removed CA had verified")
	}
}
