package interop

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/internal/proctest"
)

// Apache httpd and its modules, from Debian's apache2 and libapache2-mod-jk.
const httpdModules = "/usr/lib/apache2/modules"

// needHTTPD returns the apache2 binary, skipping the test if it or one of
// the modules is not installed.
func needHTTPD(t *testing.T, modules ...string) string {
	t.Helper()
	bin, err := exec.LookPath("apache2")
	if err != nil {
		t.Skip("Apache httpd is not installed (Debian apache2; .ci/run installs it)")
	}
	for _, m := range modules {
		if _, err := os.Stat(filepath.Join(httpdModules, "mod_"+m+".so")); err != nil {
			pkg := "apache2"
			if m == "jk" {
				pkg = "libapache2-mod-jk"
			}
			t.Skipf("mod_%s is not installed (Debian %s; .ci/run installs it)", m, pkg)
		}
	}
	return bin
}

// httpd is a running Apache httpd with a configuration of the test's own.
type httpd struct {
	url  string
	dir  string
	proc *proctest.Proc
}

// startHTTPD runs httpd in the foreground with the modules loaded and conf
// (the part that proxies) appended, in a directory of its own, and waits
// until it answers /healthz through the proxy.
func startHTTPD(t *testing.T, modules []string, conf func(dir string) string) *httpd {
	t.Helper()
	bin := needHTTPD(t, modules...)
	dir := t.TempDir()
	// httpd's children may run as www-data: let them read the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	listen := proctest.FreeAddr(t)
	var b strings.Builder
	fmt.Fprintf(&b, "ServerName 127.0.0.1\nListen %s\nPidFile %s/httpd.pid\nDefaultRuntimeDir %s\nErrorLog /dev/stderr\nLogLevel warn\n",
		listen, dir, dir)
	if os.Geteuid() == 0 { // httpd refuses to serve as root
		if _, err := osuser.Lookup("www-data"); err == nil {
			b.WriteString("User www-data\nGroup www-data\n")
		} else {
			b.WriteString("User nobody\nGroup nogroup\n")
		}
	}
	for _, m := range append([]string{"mpm_event", "authz_core"}, modules...) {
		fmt.Fprintf(&b, "LoadModule %s_module %s/mod_%s.so\n", m, httpdModules, m)
	}
	b.WriteString(conf(dir))
	file := filepath.Join(dir, "httpd.conf")
	writeTestFile(t, file, b.String())
	h := &httpd{url: "http://" + listen, dir: dir}
	h.proc = proctest.StartCmd(t, "httpd", exec.Command(bin, "-d", dir, "-f", file, "-DFOREGROUND"))
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "mod_jk.log")); err == nil {
				t.Logf("--- mod_jk.log:\n%s", b)
			}
		}
	})
	proctest.WaitHTTP(t, h.url+"/healthz", http.StatusOK, time.Minute)
	return h
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ajpNode is a `tether cart --ajp` process.
type ajpNode struct {
	route string
	ajp   string // host:port of its AJP connector
	proc  *proctest.Proc
}

// startAJPCarts starts `tether cart` nodes with the given routes, each also
// serving AJP with secret, and waits until they are healthy.
func startAJPCarts(t *testing.T, secret string, routes ...string) []*ajpNode {
	t.Helper()
	secretFile := filepath.Join(t.TempDir(), "ajp-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []*ajpNode
	for _, r := range routes {
		httpAddr, ajpAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
		p := proctest.Start(t, "cart "+r, "cart", "--listen", httpAddr, "--route", r,
			"--ajp", ajpAddr, "--ajp-secret-file", secretFile)
		proctest.WaitHTTP(t, "http://"+httpAddr+"/healthz", http.StatusOK, time.Minute)
		proctest.Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(p.Output(), "listening on ajp://"+ajpAddr) {
				return fmt.Errorf("cart %s printed %q, want its AJP address", r, p.Output())
			}
			return nil
		})
		nodes = append(nodes, &ajpNode{route: r, ajp: ajpAddr, proc: p})
	}
	return nodes
}

// shopper is a browser with a cookie jar, shopping through a web server.
type shopper struct {
	t    *testing.T
	name string
	base string
	c    *http.Client
}

func newShopper(t *testing.T, name, base string) *shopper {
	jar, _ := cookiejar.New(nil)
	return &shopper{t: t, name: name, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// do calls the cart API and returns the cart and the Set-Cookie headers.
func (s *shopper) do(method, path, item string) (cart.Cart, []string) {
	s.t.Helper()
	var body io.Reader
	if item != "" {
		body = strings.NewReader(url.Values{"item": {item}}.Encode())
	}
	req, _ := http.NewRequest(method, s.base+path, body)
	if item != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.c.Do(req)
	if err != nil {
		s.t.Fatalf("%s: %s %s: %v", s.name, method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var c cart.Cart
	if err := json.Unmarshal(b, &c); err != nil || resp.StatusCode != http.StatusOK {
		s.t.Fatalf("%s: %s %s: %d %q", s.name, method, path, resp.StatusCode, b)
	}
	return c, resp.Header.Values("Set-Cookie")
}

// sessionCookie is the JSESSIONID the browser would send, or "".
func (s *shopper) sessionCookie() string {
	u, _ := url.Parse(s.base)
	for _, c := range s.c.Jar.Cookies(u) {
		if c.Name == "JSESSIONID" {
			return c.Value
		}
	}
	return ""
}

// add puts an item in the cart and returns the cart.
func (s *shopper) add(item string) cart.Cart {
	s.t.Helper()
	c, _ := s.do("POST", "/api/cart/items", item)
	if c.Session == "" || s.sessionCookie() != c.Session || routeOf(c.Session) != c.Node {
		s.t.Fatalf("%s: added %q on %s: session %q, cookie %q", s.name, item, c.Node, c.Session, s.sessionCookie())
	}
	return c
}

// logout logs out and checks the browser keeps no session cookie.
func (s *shopper) logout() cart.Cart {
	s.t.Helper()
	c, setCookies := s.do("POST", "/api/logout", "")
	if c.Session != "" || s.sessionCookie() != "" || len(setCookies) != 1 || !strings.Contains(setCookies[0], "Max-Age=0") {
		s.t.Fatalf("%s: logout on %s: session %q, Set-Cookie %v, cookie left %q", s.name, c.Node, c.Session, setCookies, s.sessionCookie())
	}
	return c
}
