package interop

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// ajpSecret is the secret the web server and the nodes share in these tests.
const ajpSecret = "interop-ajp-secret-8c1f0e"

// workersProperties is the mod_jk configuration of docs/sessions.md: an lb
// worker over one ajp13 worker per node, named by the node's route.
func workersProperties(nodes []*ajpNode, secret string) string {
	var b strings.Builder
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.route
	}
	fmt.Fprintf(&b, `worker.list=lb
# What every node shares.
worker.node.type=ajp13
worker.node.host=127.0.0.1
worker.node.secret=%s
worker.node.ping_mode=A
worker.node.connection_pool_timeout=300
# One worker per node, named by its route.
`, secret)
	for _, n := range nodes {
		_, port, _ := strings.Cut(n.ajp, ":")
		fmt.Fprintf(&b, "worker.%s.reference=worker.node\nworker.%s.port=%s\n", n.route, n.route, port)
	}
	fmt.Fprintf(&b, `worker.lb.type=lb
worker.lb.balance_workers=%s
worker.lb.sticky_session=true
worker.lb.sticky_session_force=false
`, strings.Join(names, ","))
	return b.String()
}

// modJKConf loads mod_jk with workers and mounts (JkMount lines).
func modJKConf(t *testing.T, workers, mounts string) func(dir string) string {
	return func(dir string) string {
		writeTestFile(t, dir+"/workers.properties", workers)
		return fmt.Sprintf(`JkWorkersFile %[1]s/workers.properties
JkShmFile %[1]s/jk.shm
JkLogFile %[1]s/mod_jk.log
JkLogLevel info
%[2]s`, dir, mounts)
	}
}

// TestModJK puts three `tether cart --ajp` nodes behind a real Apache httpd
// with mod_jk, configured as docs/sessions.md shows.
func TestModJK(t *testing.T) {
	needHTTPD(t, "jk")
	nodes := startAJPCarts(t, ajpSecret, "n1", "n2", "n3")
	workers := workersProperties(nodes, ajpSecret)
	// A worker with the wrong secret, as an intruder reaching the port would be.
	_, port, _ := strings.Cut(nodes[0].ajp, ":")
	workers = strings.Replace(workers, "worker.list=lb", "worker.list=lb,intruder", 1) +
		fmt.Sprintf("worker.intruder.type=ajp13\nworker.intruder.host=127.0.0.1\nworker.intruder.port=%s\nworker.intruder.secret=guess\n", port)
	h := startHTTPD(t, []string{"jk"}, modJKConf(t, workers, "JkMount /* lb\nJkMount /intruder/* intruder\n"))

	resp, err := http.Get(h.url + "/intruder/api/cart")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("request with the wrong secret: %d, want 403", resp.StatusCode)
	}
	proctest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(nodes[0].proc.Output(), "request refused: wrong secret") {
			return fmt.Errorf("n1 did not log the refusal: %s", nodes[0].proc.Output())
		}
		return nil
	})

	shopThrough(t, h.url, nodes)
}

// TestModProxyAJP puts three `tether cart --ajp` nodes behind a real Apache
// httpd with mod_proxy_balancer over ajp:// members (mod_proxy_ajp).
func TestModProxyAJP(t *testing.T) {
	mods := []string{"slotmem_shm", "proxy", "proxy_ajp", "proxy_balancer", "lbmethod_byrequests"}
	needHTTPD(t, mods...)
	nodes := startAJPCarts(t, ajpSecret, "n1", "n2", "n3")
	h := startHTTPD(t, mods, func(string) string {
		var b strings.Builder
		b.WriteString("<Proxy \"balancer://cart\">\n")
		for _, n := range nodes {
			fmt.Fprintf(&b, "    BalancerMember \"ajp://%s\" route=%s secret=%s\n", n.ajp, n.route, ajpSecret)
		}
		b.WriteString("    ProxySet stickysession=JSESSIONID|jsessionid\n</Proxy>\nProxyPass \"/\" \"balancer://cart/\"\n")
		return b.String()
	})
	shopThrough(t, h.url, nodes)
}

// shopThrough has users shop through the web server at base: each sticks
// to the node in the route suffix of their session id; after logout their
// browser holds no cookie and their next request is balanced anew; when a
// node is killed, its users move to another node, where they start a new
// session (the plain cart does not replicate) and stick again.
func shopThrough(t *testing.T, base string, nodes []*ajpNode) {
	const users = 9
	us := make([]*shopper, users)
	created := map[string]int{}
	for i := range us {
		us[i] = newShopper(t, fmt.Sprintf("user %d", i), base)
		if c, setCookies := us[i].do("GET", "/api/cart", ""); c.Session != "" || len(setCookies) != 0 {
			t.Fatalf("%s: browsing created a session %q, Set-Cookie %v", us[i].name, c.Session, setCookies)
		}
		created[us[i].add("first").Node]++
	}
	for round := 1; round <= 3; round++ {
		for j := range us {
			u := us[(j+round)%users]
			before := u.sessionCookie()
			c := u.add(fmt.Sprintf("item-%d", round))
			if c.Session != before || len(c.Items) != round+1 {
				t.Fatalf("%s, round %d: session %s with %d items on %s; want %s with %d",
					u.name, round, c.Session, len(c.Items), c.Node, before, round+1)
			}
		}
	}
	afterLogout := map[string]int{}
	for _, u := range us {
		u.logout()
		c, _ := u.do("GET", "/api/cart", "")
		if c.Session != "" {
			t.Fatalf("%s: after logout, session %q", u.name, c.Session)
		}
		afterLogout[c.Node]++
	}
	t.Logf("sessions created per node %v; first request after logout per node %v", created, afterLogout)
	if len(created) < 2 || len(afterLogout) < 2 {
		t.Fatalf("new sessions went to %v and post-logout requests to %v: want more than one node each", created, afterLogout)
	}

	// Failover: kill the node of user 0's new session with SIGKILL.
	for _, u := range us {
		u.add("again")
	}
	victim := us[0]
	deadRoute := routeOf(victim.sessionCookie())
	var dead *ajpNode
	for _, n := range nodes {
		if n.route == deadRoute {
			dead = n
		}
	}
	dead.proc.Kill()
	c, _ := victim.do("GET", "/api/cart", "")
	if c.Node == deadRoute || c.Session != "" || victim.sessionCookie() != "" {
		t.Fatalf("after killing %s: node %s, session %q, cookie %q; want another node, no session, the cookie expired",
			deadRoute, c.Node, c.Session, victim.sessionCookie())
	}
	moved := victim.add("after failover")
	if moved.Node == deadRoute || len(moved.Items) != 1 {
		t.Fatalf("after failover: %+v", moved)
	}
	for i := 0; i < 3; i++ {
		if c := victim.add("sticks"); c.Session != moved.Session || c.Node != moved.Node {
			t.Fatalf("after failover, request %d: %s on %s, want %s on %s", i, c.Session, c.Node, moved.Session, moved.Node)
		}
	}
	// The other nodes' users keep their carts.
	for _, u := range us[1:] {
		if r := routeOf(u.sessionCookie()); r != deadRoute {
			if c := u.add("still here"); c.Node != r || len(c.Items) != 2 {
				t.Fatalf("%s on %s: %+v", u.name, r, c)
			}
		}
	}
}
