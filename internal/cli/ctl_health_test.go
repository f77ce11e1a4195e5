package cli

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

// TestCtlShowsWhyAMemberIsDown: an https member whose certificate Tether
// cannot verify (no member_tls.ca for its private CA) is down, and
// `tether ctl status` says why; its sibling with the CA is up.
func TestCtlShowsWhyAMemberIsDown(t *testing.T) {
	ca := testpki.NewCA(t, "private")
	member := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	member.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueTLS(t, "127.0.0.1")}}
	member.Config.ErrorLog = log.New(io.Discard, "", 0)
	member.StartTLS()
	t.Cleanup(member.Close)
	dir := t.TempDir()
	front, manager := proctest.FreeAddr(t), proctest.FreeAddr(t)
	srv := startManagedServe(t, dir, fmt.Sprintf(`listen: %s
manager: { listen: %s, token: %s }
balancers:
  - name: good
    path: /good
    member_tls: { ca: %s }
    health: { interval: 50ms }
    members: [{ url: %s, route: n1 }]
  - name: bad
    path: /bad
    health: { interval: 50ms }
    members: [{ url: %s, route: n1 }]
`, front, manager, ctlToken, ca.CertFile, member.URL, member.URL), front, manager)
	env := map[string]string{"TETHER_MANAGER_URL": srv.manager, "TETHER_MANAGER_TOKEN": ctlToken}
	proctest.Eventually(t, 30*time.Second, func() error {
		code, out, _ := ctlRun(t, env, "status")
		if code != ExitOK || !strings.Contains(out, "bad/n1 is down: 2 checks failed, last:") || !strings.Contains(out, "certificate") {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 3 && f[0] == "good" && f[3] != "up" {
				return fmt.Errorf("the member with the CA is %s:\n%s", f[3], out)
			}
		}
		return nil
	})
}
