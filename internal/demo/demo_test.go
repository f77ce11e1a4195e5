package demo_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/proctest"
)

// running is a `tether demo` process started as a user would start it,
// with the addresses it printed.
type running struct {
	p                  *proctest.Proc
	shop, manager, tok string
	client             *http.Client
	demoToken          string
	jar                *cookiejar.Jar
}

var (
	shopRe    = regexp.MustCompile(`Shop \(through the balancer\):\s+(\S+)`)
	managerRe = regexp.MustCompile(`Manager UI:\s+(\S+)`)
	tokenRe   = regexp.MustCompile(`Manager token:\s+(\S+)`)
	panelRe   = regexp.MustCompile(`data-token="([0-9a-f]+)"`)
)

func startDemo(t *testing.T, args ...string) *running {
	t.Helper()
	p := proctest.Start(t, "tether demo", append([]string{"demo", "--random-ports", "--dir", t.TempDir()}, args...)...)
	proctest.Eventually(t, 90*time.Second, func() error {
		if p.Exited() {
			t.Fatalf("tether demo exited:\n%s", p.Output())
		}
		if !strings.Contains(p.Output(), "Press Ctrl-C") {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	out := p.Output()
	jar, _ := cookiejar.New(nil)
	d := &running{p: p, shop: shopRe.FindStringSubmatch(out)[1], manager: managerRe.FindStringSubmatch(out)[1],
		tok: tokenRe.FindStringSubmatch(out)[1], jar: jar, client: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
	page := d.get(t, "")
	m := panelRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the shop page has no demo panel:\n%s", page)
	}
	d.demoToken = m[1]
	return d
}

func (d *running) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := d.client.Get(d.shop + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

type cart struct {
	Node, Session string
	Items         []string
}

func (d *running) cart(t *testing.T) cart {
	t.Helper()
	var c cart
	if err := json.Unmarshal([]byte(d.get(t, "api/cart")), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (d *running) add(t *testing.T, item string) cart {
	t.Helper()
	resp, err := d.client.PostForm(d.shop+"api/cart/items", url.Values{"item": {item}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c cart
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&c) != nil {
		t.Fatalf("add %s: %d", item, resp.StatusCode)
	}
	return c
}

// action clicks a panel button: a POST to the control API as the page does.
func (d *running) action(t *testing.T, route, action string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.shop+"demo/api/nodes/"+route+"/"+action, nil)
	req.Header.Set("X-Demo-Token", d.demoToken)
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", action, route, resp.StatusCode, b)
	}
}

type info struct {
	Nodes []struct {
		Route   string
		Running bool
		PID     int
		Member  *struct {
			State        string
			Healthy      bool
			LiveSessions int64 `json:"live_sessions"`
		}
		Cluster *struct {
			Majority bool
			Owned    int
		}
	}
}

func (d *running) info(t *testing.T) info {
	t.Helper()
	var in info
	if err := json.Unmarshal([]byte(d.get(t, "demo/api/info")), &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func (d *running) pids(t *testing.T) []int {
	var ps []int
	for _, n := range d.info(t).Nodes {
		if n.Running {
			ps = append(ps, n.PID)
		}
	}
	return ps
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func idPart(s string) string  { id, _, _ := strings.Cut(s, "."); return id }
func routeOf(s string) string { _, r, _ := strings.Cut(s, "."); return r }

// TestDemo starts `tether demo` like a user, shops, kills the node serving
// the cart through the demo panel, drains a node, restarts the dead one,
// and stops the demo with Ctrl-C, leaving no process behind.
func TestDemo(t *testing.T) { demoScenario(t, startDemo(t)) }

// TestDemoRedis: the same with `tether demo --store redis`, the cart
// nodes sharing a redis-server the demo starts (and stops).
func TestDemoRedis(t *testing.T) {
	dbproc.Need(t, "redis-server", "redis-server")
	d := startDemo(t, "--store", "redis")
	if !strings.Contains(d.p.Output(), "Sessions in Redis") {
		t.Fatalf("the welcome text does not say where sessions are:\n%s", d.p.Output())
	}
	demoScenario(t, d)
}

func demoScenario(t *testing.T, d *running) {
	for _, item := range []string{"apple", "pear"} {
		d.add(t, item)
	}
	before := d.add(t, "plum")
	if routeOf(before.Session) != before.Node || len(before.Items) != 3 {
		t.Fatalf("cart %+v", before)
	}
	first := d.info(t)
	// The panel shows each node's view of the replication cluster (none
	// when the sessions are in Redis).
	replicated := !strings.Contains(d.p.Output(), "Sessions in Redis")
	owners := 0
	for _, n := range first.Nodes {
		switch {
		case !replicated && n.Cluster != nil:
			t.Fatalf("node %s shows a cluster view with Redis: %+v", n.Route, n.Cluster)
		case replicated && (n.Cluster == nil || !n.Cluster.Majority):
			t.Fatalf("node %s's cluster view: %+v, want a majority", n.Route, n.Cluster)
		case replicated:
			owners += n.Cluster.Owned
		}
	}
	if replicated && owners != 1 {
		t.Fatalf("the cluster views count %d owned sessions, want my one", owners)
	}

	// Kill the node serving me: the cart is intact on another node, same
	// id, route rewritten.
	d.action(t, before.Node, "kill")
	after := d.cart(t)
	if after.Node == before.Node || idPart(after.Session) != idPart(before.Session) || routeOf(after.Session) != after.Node ||
		strings.Join(after.Items, ",") != "apple,pear,plum" {
		t.Fatalf("after killing %s: %+v, want the same cart and id on another node, route rewritten", before.Node, after)
	}
	for _, n := range first.Nodes {
		if n.Route == before.Node && alive(n.PID) {
			t.Fatalf("node %s (pid %d) still alive after kill", n.Route, n.PID)
		}
	}

	// Drain the node now serving me: my next request moves, and the
	// drained node reaches zero sessions.
	d.action(t, after.Node, "drain")
	moved := d.add(t, "fig")
	if moved.Node == after.Node || moved.Node == before.Node || idPart(moved.Session) != idPart(before.Session) || len(moved.Items) != 4 {
		t.Fatalf("after draining %s: %+v", after.Node, moved)
	}
	proctest.Eventually(t, 30*time.Second, func() error {
		for _, n := range d.info(t).Nodes {
			if n.Route == after.Node {
				if n.Member == nil || n.Member.State == "active" || n.Member.LiveSessions != 0 {
					return fmt.Errorf("drained node %s: %+v", n.Route, n.Member)
				}
			}
		}
		return nil
	})

	// Restart the killed node: it rejoins and is ready.
	d.action(t, before.Node, "restart")
	proctest.Eventually(t, 30*time.Second, func() error {
		for _, n := range d.info(t).Nodes {
			if n.Route == before.Node && (!n.Running || n.Member == nil || n.Member.State != "active" || !n.Member.Healthy) {
				return fmt.Errorf("restarted node: %+v", n)
			}
		}
		return nil
	})

	// Ctrl-C stops everything.
	pids := d.pids(t)
	d.p.Signal(syscall.SIGINT)
	if err, done := d.p.Wait(60 * time.Second); !done || err != nil {
		t.Fatalf("after Ctrl-C: done=%v err=%v\n%s", done, err, d.p.Output())
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d outlived the demo", pid)
		}
	}
}

// TestDemoKilledLeavesNoOrphans: even a SIGKILL of the demo itself ends
// every process it started.
func TestDemoKilledLeavesNoOrphans(t *testing.T) {
	d := startDemo(t)
	pids := d.pids(t)
	if len(pids) != 3 {
		t.Fatalf("pids %v", pids)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("node process %d is not running", pid)
		}
	}
	d.p.Cmd.Process.Signal(syscall.SIGKILL)
	proctest.Eventually(t, 30*time.Second, func() error {
		for _, pid := range pids {
			if alive(pid) {
				return fmt.Errorf("process %d outlived the demo", pid)
			}
		}
		return nil
	})
}
