package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// TestNoSessionIDInLogs runs `tether serve` (JSON server log at debug
// level, a file access log) over two replicated `tether cart` nodes, and
// sends a session's id every way a client can: the cookie, a
// ";jsessionid=" path parameter, a query parameter, the Referer, to a
// node that was killed (a takeover), and at logout. No line of any
// process's log, nor of the access log, nor the metrics (on the
// metrics listener), holds the session id; every line of the server log
// is JSON.
func TestNoSessionIDInLogs(t *testing.T) {
	nodes := map[string]*proctest.Proc{}
	clusterAddrs := []string{proctest.FreeAddr(t), proctest.FreeAddr(t)}
	var members strings.Builder
	var health []string
	for i, route := range []string{"n1", "n2"} {
		addr := proctest.FreeAddr(t)
		nodes[route] = proctest.Start(t, "cart "+route, "cart", "--listen", addr, "--route", route,
			"--cluster", clusterAddrs[i], "--peers", clusterAddrs[1-i], "--replication", "sync", "--drain-grace", "0s")
		fmt.Fprintf(&members, "      - { url: http://%s, route: %s }\n", addr, route)
		health = append(health, "http://"+addr+"/healthz")
	}
	for _, u := range health {
		proctest.WaitHTTP(t, u, http.StatusOK, 30*time.Second)
	}
	dir := t.TempDir()
	access := filepath.Join(dir, "access.log")
	listen, metricsAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	conf := fmt.Sprintf(`listen: %s
log: { level: debug, format: json }
access_log: %s
metrics: { listen: %s }
balancers:
  - name: shop
    sessions: replicated
    passive: { probe_interval: 50ms }
    members:
%s`, listen, access, metricsAddr, members.String())
	path := filepath.Join(dir, "tether.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := proctest.Start(t, "tether serve", "serve", "--config", path)
	base := "http://" + listen
	proctest.WaitHTTP(t, base+"/healthz", http.StatusOK, 30*time.Second)
	c := &http.Client{Timeout: 10 * time.Second}
	send := func(method, target, cookie, referer string) int {
		t.Helper()
		req, err := http.NewRequest(method, base+target, strings.NewReader(url.Values{"item": {"tea"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", "JSESSIONID="+cookie)
		}
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	// A session: its id is "<id>.<route>".
	req, _ := http.NewRequest("POST", base+"/api/cart/items", strings.NewReader("item=tea"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var sid string
	for _, ck := range resp.Cookies() {
		if ck.Name == "JSESSIONID" {
			sid = ck.Value
		}
	}
	id, route, ok := strings.Cut(sid, ".")
	if !ok || len(id) < 16 {
		t.Fatalf("no session cookie: status %d, JSESSIONID=%q", resp.StatusCode, sid)
	}
	send("GET", "/api/cart", sid, "")
	send("GET", "/;jsessionid="+sid, "", base+"/api/cart;jsessionid="+sid+"?jsessionid="+sid)
	send("GET", "/api/cart?jsessionid="+sid+"&x=1", "", "")
	send("POST", "/api/cart/items;jsessionid="+sid, "", "")
	send("GET", "/api/cart", id+".n9", "") // a route no member has
	send("GET", "/api/cart", "garbage-"+id, "")

	// The session's node dies: the other takes the session over.
	nodes[route].Kill()
	proctest.Eventually(t, 20*time.Second, func() error {
		if code := send("POST", "/api/cart/items", sid, ""); code != http.StatusOK {
			return fmt.Errorf("after killing %s: status %d", route, code)
		}
		return nil
	})
	send("POST", "/api/logout;jsessionid="+sid, sid, "")
	send("GET", "/api/cart", sid, "") // a session that is gone

	// The metrics listener of the real process: open on loopback, and
	// its counts hold no session id either.
	mresp, err := c.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if mresp.StatusCode != http.StatusOK || !strings.Contains(string(mbody), `tether_requests_total{balancer="shop"`) {
		t.Errorf("GET /metrics on metrics.listen: %d\n%.1000s", mresp.StatusCode, mbody)
	}
	if strings.Contains(string(mbody), id) {
		t.Error("the metrics hold the session id")
	}

	check := func(name, text string, wantJSON bool) {
		lines := strings.Split(strings.TrimSpace(text), "\n")
		if len(lines) == 0 || lines[0] == "" {
			t.Errorf("%s: no log lines", name)
		}
		for _, line := range lines {
			if strings.Contains(line, id) {
				t.Errorf("%s logs the session id: %s", name, line)
			}
			if wantJSON && !json.Valid([]byte(line)) {
				t.Errorf("%s: not a JSON line: %s", name, line)
			}
		}
	}
	b, err := os.ReadFile(access)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"uri":"/;jsessionid=REDACTED"`) {
		t.Errorf("the access log has no redacted ;jsessionid= request:\n%s", b)
	}
	check("the access log", string(b), true)
	check("tether serve", serve.Output(), true)
	for r, p := range nodes {
		check("cart "+r, p.Output(), false)
	}
}
