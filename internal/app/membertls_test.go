package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

// TestMemberTLSFromConfig: member_tls.ca makes an https member of a
// private CA up and serving; a reload without it takes the member down,
// with the reason the manager shows.
func TestMemberTLSFromConfig(t *testing.T) {
	ca := testpki.NewCA(t, "private")
	member := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", "secure")
	}))
	member.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueTLS(t, "app.internal")}}
	member.Config.ErrorLog = log.New(io.Discard, "", 0)
	member.StartTLS()
	t.Cleanup(member.Close)
	yaml := func(memberTLS string) string {
		return fmt.Sprintf("listen: 127.0.0.1:0\nbalancers:\n  - name: b\n    health: {interval: 20ms}\n%s    members: [{url: %q, route: n1}]\n", memberTLS, member.URL)
	}
	s, base := start(t, parse(t, yaml(fmt.Sprintf("    member_tls: {ca: %s, server_name: app.internal}\n", ca.CertFile))))
	if code, got := get(t, &http.Client{}, base); code != 200 || got != "secure" {
		t.Fatalf("with the CA: %d from %q", code, got)
	}
	if err := s.Reload(parse(t, yaml("")), time.Second); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 10*time.Second, func() error {
		st := s.Balancer("b").Stats()[0]
		if st.Healthy || !strings.Contains(st.HealthReason, "certificate") {
			return fmt.Errorf("healthy %v, reason %q", st.Healthy, st.HealthReason)
		}
		return nil
	})
	if code, _ := get(t, &http.Client{}, base); code != http.StatusServiceUnavailable {
		t.Fatalf("without the CA: %d, want 503 (no member up)", code)
	}
}
