package cart_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// TestInterop puts the cart nodes behind real HAProxy and Apache httpd
// (mod_proxy_balancer), configured as docs/sessions.md shows: the session
// id format alone makes them sticky, with no Tether in the path.
func TestInterop(t *testing.T) {
	_, members := startCarts(t)
	t.Run("haproxy", func(t *testing.T) {
		bin := lookPath(t, "haproxy")
		listen := proctest.FreeAddr(t)
		conf := writeFile(t, "haproxy.cfg", haproxyConfig(listen, members))
		proctest.StartCmd(t, "haproxy", exec.Command(bin, "-db", "-f", conf))
		proctest.WaitHTTP(t, "http://"+listen+"/healthz", http.StatusOK, time.Minute)
		shopAround(t, "http://"+listen)
	})
	t.Run("httpd", func(t *testing.T) {
		bin := lookPath(t, "apache2")
		listen := proctest.FreeAddr(t)
		dir := t.TempDir()
		conf := writeFile(t, "httpd.conf", httpdConfig(dir, listen, members))
		proctest.StartCmd(t, "httpd", exec.Command(bin, "-d", dir, "-f", conf, "-DFOREGROUND"))
		proctest.WaitHTTP(t, "http://"+listen+"/healthz", http.StatusOK, time.Minute)
		shopAround(t, "http://"+listen)
	})
}

// lookPath finds a peer the CI installs (.ci/run), skipping where it is not.
func lookPath(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (.ci/run installs it): %v", name, err)
	}
	return p
}

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// haproxyConfig routes on the route suffix of the JSESSIONID cookie, as in
// docs/sessions.md.
func haproxyConfig(listen string, members []member) string {
	var b strings.Builder
	fmt.Fprintf(&b, `defaults
	mode http
	timeout connect 2s
	timeout client 30s
	timeout server 30s
frontend www
	bind %s
	default_backend cart
backend cart
	balance roundrobin
	option httpchk GET /healthz
	option redispatch
	http-request set-var(txn.route) req.cook(JSESSIONID),regsub(^[^.]*[.],)
`, listen)
	for _, m := range members {
		fmt.Fprintf(&b, "\tuse-server %s if { var(txn.route) -m str %s }\n", m.route, m.route)
	}
	for _, m := range members {
		fmt.Fprintf(&b, "\tserver %s %s check\n", m.route, m.addr)
	}
	return b.String()
}

// httpdConfig is mod_proxy_balancer with route= per member and
// stickysession=JSESSIONID|jsessionid, as in docs/sessions.md.
func httpdConfig(dir, listen string, members []member) string {
	mods := "/usr/lib/apache2/modules"
	var b strings.Builder
	fmt.Fprintf(&b, `ServerName 127.0.0.1
Listen %s
PidFile %s/httpd.pid
DefaultRuntimeDir %s
ErrorLog /dev/stderr
LogLevel warn
`, listen, dir, dir)
	if os.Geteuid() == 0 { // httpd refuses to serve as root
		if _, err := osuser.Lookup("www-data"); err == nil {
			b.WriteString("User www-data\nGroup www-data\n")
		} else {
			b.WriteString("User nobody\nGroup nogroup\n")
		}
	}
	for _, m := range []string{"mpm_event", "authz_core", "slotmem_shm", "proxy", "proxy_http",
		"proxy_balancer", "lbmethod_byrequests"} {
		fmt.Fprintf(&b, "LoadModule %s_module %s/mod_%s.so\n", m, mods, m)
	}
	b.WriteString("<Proxy \"balancer://cart\">\n")
	for _, m := range members {
		fmt.Fprintf(&b, "\tBalancerMember \"http://%s\" route=%s\n", m.addr, m.route)
	}
	b.WriteString("\tProxySet stickysession=JSESSIONID|jsessionid\n</Proxy>\n")
	b.WriteString("ProxyPass \"/\" \"balancer://cart/\"\nProxyPassReverse \"/\" \"balancer://cart/\"\n")
	return b.String()
}
