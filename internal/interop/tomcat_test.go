package interop

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

const catalinaHome = "/usr/share/tomcat10"

// tomcat is one Tomcat node with jvmRoute set, run in the foreground so
// that the test can SIGKILL it (and start it again, on the same ports).
type tomcat struct {
	route   string
	url     string // its HTTP connector
	ajpAddr string // its AJP connector, "" if none
	base    string // CATALINA_BASE
	proc    *proctest.Proc
}

func startTomcat(t *testing.T, route string) *tomcat { return startTomcatAJP(t, route, "") }

// startTomcatAJP starts a node that also has an AJP connector requiring
// ajpSecret, if it is set.
func startTomcatAJP(t *testing.T, route, ajpSecret string) *tomcat {
	t.Helper()
	base := t.TempDir()
	addr := proctest.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	for _, d := range []string{"conf", "logs", "temp", "work", "webapps/app"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := os.ReadFile("testdata/tomcat/server.xml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	tc := &tomcat{route: route, url: "http://" + addr, base: base}
	ajpConnector := ""
	if ajpSecret != "" {
		tc.ajpAddr = proctest.FreeAddr(t)
		_, ajpPort, _ := strings.Cut(tc.ajpAddr, ":")
		ajpConnector = `<Connector address="127.0.0.1" port="` + ajpPort + `" protocol="AJP/1.3" secretRequired="true" secret="` + ajpSecret + `"/>`
	}
	server := strings.NewReplacer("{{PORT}}", port, "{{ROUTE}}", route, "{{AJP}}", ajpConnector).Replace(string(tmpl))
	copyFile(t, "testdata/tomcat/web.xml", filepath.Join(base, "conf/web.xml"))
	os.WriteFile(filepath.Join(base, "conf/server.xml"), []byte(server), 0o644)
	for _, f := range []string{"session.jsp", "logout.jsp", "health.jsp", "echo.jsp", "download.jsp"} {
		copyFile(t, "testdata/tomcat/webapps/app/"+f, filepath.Join(base, "webapps/app", f))
	}
	tc.start(t)
	return tc
}

// start runs the node's process and waits until it serves.
func (tc *tomcat) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command("java",
		"-Xss512k", "-XX:+UseSerialGC", "-Xmx128m",
		"-cp", catalinaHome+"/bin/bootstrap.jar:"+catalinaHome+"/bin/tomcat-juli.jar",
		"-Dcatalina.home="+catalinaHome, "-Dcatalina.base="+tc.base, "-Djava.io.tmpdir="+tc.base+"/temp",
		"org.apache.catalina.startup.Bootstrap", "start")
	tc.proc = proctest.StartCmd(t, "tomcat "+tc.route, cmd)
	proctest.WaitHTTP(t, tc.url+"/app/health.jsp", http.StatusOK, 90*time.Second)
	if tc.ajpAddr != "" { // the AJP connector starts after the HTTP one
		proctest.Eventually(t, 30*time.Second, func() error {
			c, err := net.Dial("tcp", tc.ajpAddr)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func needTomcat(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(catalinaHome + "/bin/bootstrap.jar"); err != nil {
		t.Skip("Tomcat 10 is not installed (Debian tomcat10-common + libtomcat10-java; .ci/run installs them)")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not installed")
	}
}

// page is what session.jsp answers: the session id (with its route) and
// the counter kept in the session.
type page struct {
	id    string
	count int
}

func visit(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	var p page
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%s %d", &p.id, &p.count); err != nil {
		t.Fatalf("GET %s: unexpected body %q", u, b)
	}
	return p
}

func routeOf(id string) string { _, r, _ := strings.Cut(id, "."); return r }

// TestBehindTomcat runs `tether serve` in front of two real Tomcat nodes
// with jvmRoute set, as mod_proxy_balancer users do.
func TestBehindTomcat(t *testing.T) {
	needTomcat(t)
	var n1, n2 *tomcat
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n1 = startTomcatNoFatal(t, "n1") }()
	go func() { defer wg.Done(); n2 = startTomcatNoFatal(t, "n2") }()
	wg.Wait()
	if n1 == nil || n2 == nil {
		t.Fatal("a Tomcat node did not start")
	}
	listen := proctest.FreeAddr(t)
	conf := filepath.Join(t.TempDir(), "tether.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`listen: %s
balancers:
  - name: tomcat
    path: /app
    health: { path: /app/health.jsp, interval: 500ms, timeout: 3s, rise: 1, fall: 3 }
    passive: { probe_interval: 100ms }
    members:
      - { url: %s, route: n1 }
      - { url: %s, route: n2 }
`, listen, n1.url, n2.url)), 0o600)
	proctest.Start(t, "tether serve", "serve", "--config", conf)
	base := "http://" + listen + "/app/session.jsp"
	proctest.WaitHTTP(t, "http://"+listen+"/app/health.jsp", http.StatusOK, 30*time.Second)

	newBrowser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 30 * time.Second}
	}

	// Sticky: Tomcat's JSESSIONID=<hex>.<jvmRoute> (Path=/app) keeps the user on one node.
	alice := newBrowser()
	first := visit(t, alice, base)
	if first.count != 1 || (routeOf(first.id) != "n1" && routeOf(first.id) != "n2") {
		t.Fatalf("first visit: %+v", first)
	}
	for i := 2; i <= 6; i++ {
		if p := visit(t, alice, base); p.id != first.id || p.count != i {
			t.Fatalf("visit %d: %+v, want the same session with count %d", i, p, i)
		}
	}

	// New sessions alternate between the nodes.
	routes := map[string]int{}
	for i := 0; i < 6; i++ {
		routes[routeOf(visit(t, newBrowser(), base).id)]++
	}
	if routes["n1"] != 3 || routes["n2"] != 3 {
		t.Errorf("new sessions: %v, want 3 on each node", routes)
	}

	// URL rewriting: a client without cookies carries ;jsessionid= and
	// reaches its session on its node.
	noCookies := &http.Client{Timeout: 30 * time.Second}
	if p := visit(t, noCookies, "http://"+listen+"/app/session.jsp;jsessionid="+first.id); p.id != first.id || p.count != 7 {
		t.Fatalf("with ;jsessionid=: %+v, want session %s count 7", p, first.id)
	}

	// Logout expires the cookie with Path=/app; the next visit is a new session.
	resp, err := alice.Get("http://" + listen + "/app/logout.jsp")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p := visit(t, alice, base); p.id == first.id || p.count != 1 {
		t.Fatalf("after logout: %+v, want a new session", p)
	}

	// Kill the node holding Bob's session: his next request fails over to
	// the other node (a new session there: Tomcat here does not replicate),
	// and he sticks to it afterwards.
	bob := newBrowser()
	b1 := visit(t, bob, base)
	dead, alive := n1, n2
	if routeOf(b1.id) == "n2" {
		dead, alive = n2, n1
	}
	dead.proc.Kill()
	b2 := visit(t, bob, base)
	if routeOf(b2.id) != alive.route || b2.count != 1 {
		t.Fatalf("after killing %s: %+v, want a new session on %s", dead.route, b2, alive.route)
	}
	if b3 := visit(t, bob, base); b3.id != b2.id || b3.count != 2 {
		t.Fatalf("after failover: %+v, want to stick to %s", b3, b2.id)
	}
}

// startTomcatNoFatal starts a node from a goroutine: t.Fatal must not be
// called off the test goroutine, so failures are reported with t.Error.
func startTomcatNoFatal(t *testing.T, route string) (tc *tomcat) {
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("tomcat %s: %v", route, r)
			tc = nil
		}
	}()
	return startTomcat(t, route)
}
