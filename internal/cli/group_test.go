package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/admin"
	"github.com/tetherlb/tether/internal/netfault"
	"github.com/tetherlb/tether/internal/proctest"
)

// groupNode is a member that creates a session "<n>.<route>" on /login,
// expires it on /logout, answers X-Member: <route>, and counts the
// requests it gets.
type groupNode struct {
	url  string
	hits atomic.Int64
}

func newGroupNode(t *testing.T, rt string) *groupNode {
	t.Helper()
	n := &groupNode{}
	var seq atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.hits.Add(1)
		w.Header().Set("X-Member", rt)
		switch r.URL.Path {
		case "/login":
			w.Header().Add("Set-Cookie", fmt.Sprintf("JSESSIONID=%016x%016x.%s; Path=/", seq.Add(1), time.Now().UnixNano(), rt))
		case "/logout":
			w.Header().Add("Set-Cookie", "JSESSIONID=; Path=/; Max-Age=0")
		}
		io.WriteString(w, rt)
	}))
	t.Cleanup(s.Close)
	n.url = s.URL
	return n
}

// instance is one `tether serve` of a group.
type instance struct {
	name, dir, conf       string
	front, manager, group string
	proc                  *proctest.Proc
}

// groupOf writes the configuration of n instances sharing one key and
// the members nodes, and starts them all at once. With ips, instance i
// talks to the group on ips[i] (else on 127.0.0.1).
func groupOf(t *testing.T, names []string, nodes map[string]*groupNode, ips ...string) []*instance {
	t.Helper()
	key := filepath.Join(t.TempDir(), "group.key")
	if err := os.WriteFile(key, []byte("group-test-0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ins := make([]*instance, len(names))
	var peers []string
	for i, n := range names {
		ins[i] = &instance{name: n, dir: t.TempDir(), front: proctest.FreeAddr(t), manager: proctest.FreeAddr(t), group: proctest.FreeAddr(t)}
		if ips != nil {
			_, port, _ := net.SplitHostPort(ins[i].group)
			ins[i].group = net.JoinHostPort(ips[i], port)
		}
		peers = append(peers, ins[i].group)
	}
	for _, in := range ins {
		conf := fmt.Sprintf(`listen: %s
manager: {listen: %s, token: %s, state_file: %s}
group: {name: %s, listen: %s, peers: [%s], key_file: %s, join_timeout: 3s}
balancers:
  - name: shop
    path: /
    drain: { idle: 5s }
    members:
      - { url: %s, route: n1 }
      - { url: %s, route: n2 }
      - { url: %s, route: n3 }
`, in.front, in.manager, ctlToken, filepath.Join(in.dir, "state.json"), in.name, in.group, strings.Join(peers, ", "), key,
			nodes["n1"].url, nodes["n2"].url, nodes["n3"].url)
		in.conf = filepath.Join(in.dir, "tether.yaml")
		if err := os.WriteFile(in.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		in.start(t)
	}
	for _, in := range ins {
		proctest.WaitHTTP(t, "http://"+in.manager+"/healthz", http.StatusOK, 30*time.Second)
	}
	proctest.Eventually(t, 20*time.Second, func() error {
		for _, in := range ins {
			if up := in.groupView(t).up(); up != len(ins) {
				return fmt.Errorf("%s sees %d instances up", in.name, up)
			}
		}
		return nil
	})
	return ins
}

func (in *instance) start(t *testing.T) {
	t.Helper()
	in.proc = proctest.Start(t, "tether serve "+in.name, "serve", "--config", in.conf)
}

// api sends a manager request and decodes the JSON answer into out.
func (in *instance) api(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+in.manager+path, rd)
	req.Header.Set("Authorization", "Bearer "+ctlToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", in.name, method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s: %s %s: %v", in.name, method, path, err)
		}
	}
	return resp.StatusCode
}

// metrics returns the manager's metrics text.
func (in *instance) metrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+in.manager+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+ctlToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: metrics: %v", in.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (in *instance) member(t *testing.T, rt string) admin.MemberView {
	t.Helper()
	var v admin.MemberView
	if s := in.api(t, "GET", "/api/v1/balancers/shop/members/"+rt, nil, &v); s != http.StatusOK {
		t.Fatalf("%s: member %s: %d", in.name, rt, s)
	}
	return v
}

type groupView admin.GroupView

func (g groupView) up() int {
	n := 0
	for _, i := range g.Instances {
		if i.Health == "up" {
			n++
		}
	}
	return n
}

func (g groupView) health(name string) string {
	for _, i := range g.Instances {
		if i.Name == name {
			return i.Health
		}
	}
	return "unknown"
}

func (in *instance) groupView(t *testing.T) groupView {
	t.Helper()
	var v admin.GroupView
	if s := in.api(t, "GET", "/api/v1/group", nil, &v); s != http.StatusOK {
		t.Fatalf("%s: group: %d", in.name, s)
	}
	return groupView(v)
}

// audit returns the audit entries about member rt.
func (in *instance) audit(t *testing.T, rt string) []admin.AuditEntry {
	t.Helper()
	var p admin.AuditPage
	in.api(t, "GET", "/api/v1/audit", nil, &p)
	var out []admin.AuditEntry
	for _, e := range p.Entries {
		if e.Member == rt && e.Actor != "config" {
			out = append(out, e)
		}
	}
	return out
}

// browser is a user with a session cookie.
type browser struct {
	cookie string
}

// get sends GET path to the balancer at front and returns the member that
// answered, keeping the cookie it sets.
func (b *browser) get(t *testing.T, front, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+front+path, nil)
	if b.cookie != "" {
		req.Header.Set("Cookie", "JSESSIONID="+b.cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", front, path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: %d", front, path, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			b.cookie = c.Value
		}
	}
	return resp.Header.Get("X-Member")
}

// userOn logs in through front until a session lands on member rt.
func userOn(t *testing.T, front, rt string) *browser {
	t.Helper()
	for range 30 {
		b := &browser{}
		if b.get(t, front, "/login") == rt {
			return b
		}
	}
	t.Fatalf("30 logins through %s, none on %s", front, rt)
	return nil
}

// TestGroupOfThreeInstances runs the issue's scenarios on three `tether
// serve` processes: a drain through A reaches B and C within a second,
// with one audit entry, and ends when the users seen by all three have
// gone; B killed and restarted without its state file comes back with the
// drain before it serves; concurrent weights through A and C converge; A
// frozen while C stops n3 converges after SIGCONT, and C sent nothing to
// n3 meanwhile.
func TestGroupOfThreeInstances(t *testing.T) {
	nodes := map[string]*groupNode{"n1": newGroupNode(t, "n1"), "n2": newGroupNode(t, "n2"), "n3": newGroupNode(t, "n3")}
	ins := groupOf(t, []string{"a", "b", "c"}, nodes)
	a, b, c := ins[0], ins[1], ins[2]
	outer := t // processes started in a subtest outlive it

	// Users of n1: one per instance, and one seen through A and B.
	users := groupUsers{userOn(t, a.front, "n1"), userOn(t, a.front, "n1"), userOn(t, b.front, "n1"), userOn(t, c.front, "n1")}
	if got := users.ab.get(t, b.front, "/"); got != "n1" {
		t.Fatalf("the shared user's request through B went to %s", got)
	}
	proctest.Eventually(t, 5*time.Second, func() error {
		for _, in := range ins {
			if v := in.member(t, "n1"); v.LiveSessions != 4 {
				return fmt.Errorf("%s counts %d live sessions on n1 (%d its own), want 4: the union, the shared user once", in.name, v.LiveSessions, v.LocalSessions)
			}
		}
		return nil
	})

	proctest.Eventually(t, 5*time.Second, func() error {
		m := c.metrics(t)
		for _, want := range []string{`tether_group_member_live_sessions{balancer="shop",member="n1"} 4`, `tether_group_instance_up{instance="a",self="false"} 1`, "tether_group_synced 1", "tether_group_alone 0"} {
			if !strings.Contains(m, want) {
				return fmt.Errorf("C's metrics lack %s", want)
			}
		}
		return nil
	})

	t.Run("ctl group", func(t *testing.T) {
		env := map[string]string{"TETHER_MANAGER_URL": "http://" + c.manager, "TETHER_MANAGER_TOKEN": ctlToken}
		code, out, errOut := ctlRun(t, env, "group")
		if code != ExitOK || !strings.HasPrefix(out, "instance c, synced at ") {
			t.Fatalf("ctl group: exit %d %s\n%s", code, errOut, out)
		}
		for _, name := range []string{"a ", "b ", "c (this one) "} {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*\S+\s+up\s`).MatchString(out) {
				t.Errorf("ctl group shows no line for %q up:\n%s", name, out)
			}
		}
		code, out, _ = ctlRun(t, env, "--json", "group")
		var g admin.GroupView
		if err := json.Unmarshal([]byte(out), &g); code != ExitOK || err != nil || g.Instance != "c" || len(g.Instances) != 3 {
			t.Fatalf("ctl --json group: exit %d, %v\n%s", code, err, out)
		}
	})
	t.Run("drain through A", func(t *testing.T) { testGroupDrain(t, ins, users) })
	t.Run("B killed and restarted", func(t *testing.T) { testGroupRestart(t, outer, ins) })
	t.Run("concurrent weights", func(t *testing.T) { testGroupConcurrentWeights(t, ins) })
	t.Run("members added and removed", func(t *testing.T) { testGroupMembers(t, ins) })
	t.Run("A frozen while C stops n3", func(t *testing.T) { testGroupFrozen(t, ins, nodes) })
}

// groupUsers are n1's users: one seen through A, one through A and B, one
// through B, one through C.
type groupUsers struct{ a, ab, b, c *browser }

// testGroupDrain: a drain through A reaches B and C within 1s, with one
// audit entry everywhere, and `drain --wait` ends when every instance's
// users are gone.
func testGroupDrain(t *testing.T, ins []*instance, u groupUsers) {
	a, b, c := ins[0], ins[1], ins[2]
	uA, uAB, uB, uC := u.a, u.ab, u.b, u.c
	env := map[string]string{"TETHER_MANAGER_URL": "http://" + a.manager, "TETHER_MANAGER_TOKEN": ctlToken, "USER": "ops"}
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		code, out, errOut := ctlRun(t, env, "drain", "n1", "--wait", "--interval", "100ms", "--timeout", "60s")
		done <- result{code, out, errOut}
	}()
	for _, in := range []*instance{b, c} {
		proctest.Eventually(t, time.Until(start.Add(time.Second)), func() error {
			if v := in.member(t, "n1"); v.State != "draining" {
				return fmt.Errorf("%s: n1 is %s", in.name, v.State)
			}
			return nil
		})
	}
	for _, in := range []*instance{b, c} {
		for range 6 {
			if got := (&browser{}).get(t, in.front, "/login"); got == "n1" {
				t.Errorf("%s sent a new session to draining n1", in.name)
			}
		}
	}
	for _, u := range []struct {
		b     *browser
		front string
	}{{uA, a.front}, {uAB, b.front}, {uB, b.front}, {uC, c.front}} {
		if got := u.b.get(t, u.front, "/"); got != "n1" {
			t.Errorf("a sticky user of n1 went to %s", got)
		}
	}
	// A and B's users log out (B still counts the shared one until its
	// idle window passes); C's keeps browsing: the drain goes on.
	uA.get(t, a.front, "/logout")
	uAB.get(t, a.front, "/logout")
	uB.get(t, b.front, "/logout")
	proctest.Eventually(t, 20*time.Second, func() error {
		uC.get(t, c.front, "/")
		select {
		case r := <-done:
			t.Fatalf("drain --wait ended while C's user is live: exit %d\n%s%s", r.code, r.out, r.err)
		default:
		}
		if v := a.member(t, "n1"); v.Drain == nil || v.Drain.Remaining != 1 || v.LocalSessions != 0 {
			return fmt.Errorf("A: n1 %+v %+v, want 1 remaining, seen by C only", v, v.Drain)
		}
		return nil
	})
	uC.get(t, c.front, "/logout")
	var r result
	proctest.Eventually(t, 15*time.Second, func() error {
		select {
		case r = <-done:
			return nil
		default:
			return fmt.Errorf("drain --wait still waiting")
		}
	})
	if r.code != ExitOK || !strings.Contains(r.out, "shop/n1 drained") {
		t.Errorf("drain --wait: exit %d\n%s%s", r.code, r.out, r.err)
	}
	proctest.Eventually(t, 5*time.Second, func() error {
		for _, in := range ins {
			es := in.audit(t, "n1")
			if len(es) != 1 || es[0].Instance != "a" || es[0].After == nil || es[0].After.State != "draining" || !strings.HasPrefix(es[0].Operator, "ops@") {
				return fmt.Errorf("%s: audit of n1: %+v, want one entry: draining through a by ops", in.name, es)
			}
		}
		return nil
	})
}

// testGroupRestart: B killed and restarted without its state file comes
// back with the drain before it serves.
func testGroupRestart(t, outer *testing.T, ins []*instance) {
	b := ins[1]
	b.proc.Kill()
	if err := os.Remove(filepath.Join(b.dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	b.start(outer)
	// The first answer of B's front already follows the drain: B took
	// the group's state before its listeners opened.
	var first string
	proctest.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + b.front + "/login")
		if err != nil {
			return err
		}
		resp.Body.Close()
		first = resp.Header.Get("X-Member")
		return nil
	})
	if first == "n1" {
		t.Errorf("restarted B's first new session went to draining n1")
	}
	if v := b.member(t, "n1"); v.State != "draining" {
		t.Errorf("restarted B: n1 is %s", v.State)
	}
	var h admin.Health
	resp, err := http.Get("http://" + b.manager + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Group != "synced" {
		t.Errorf("restarted B's /healthz: %+v, want group synced", h)
	}
	for range 6 {
		if got := (&browser{}).get(t, b.front, "/login"); got == "n1" {
			t.Errorf("restarted B sent a new session to draining n1")
		}
	}
}

// testGroupConcurrentWeights: weights set through A and C at once end the
// same on every instance.
func testGroupConcurrentWeights(t *testing.T, ins []*instance) {
	a, c := ins[0], ins[2]
	var wg sync.WaitGroup
	for w, in := range map[int]*instance{3: a, 7: c} {
		wg.Go(func() {
			if s := in.api(t, "PATCH", "/api/v1/balancers/shop/members/n2", map[string]any{"weight": w}, nil); s != http.StatusOK {
				t.Errorf("%s: PATCH weight %d: %d", in.name, w, s)
			}
		})
	}
	wg.Wait()
	proctest.Eventually(t, 10*time.Second, func() error {
		w := a.member(t, "n2").Weight
		for _, in := range ins {
			if got := in.member(t, "n2").Weight; got != w || (w != 3 && w != 7) {
				return fmt.Errorf("%s has weight %d, a has %d", in.name, got, w)
			}
			if es := in.audit(t, "n2"); len(es) != 2 {
				return fmt.Errorf("%s: %d audit entries for n2, want both changes", in.name, len(es))
			}
		}
		return nil
	})
}

// testGroupMembers: a member added through B and removed through C is
// added and removed everywhere.
func testGroupMembers(t *testing.T, ins []*instance) {
	b, c := ins[1], ins[2]
	n4 := newGroupNode(t, "n4")
	if s := b.api(t, "POST", "/api/v1/balancers/shop/members", map[string]any{"route": "n4", "url": n4.url, "weight": 2}, nil); s != http.StatusCreated {
		t.Fatalf("add n4 through B: %d", s)
	}
	proctest.Eventually(t, 5*time.Second, func() error {
		for _, in := range ins {
			var v admin.MemberView
			if s := in.api(t, "GET", "/api/v1/balancers/shop/members/n4", nil, &v); s != http.StatusOK || v.Weight != 2 {
				return fmt.Errorf("%s: n4: %d %+v", in.name, s, v)
			}
		}
		return nil
	})
	if s := c.api(t, "DELETE", "/api/v1/balancers/shop/members/n4?force=true", nil, nil); s != http.StatusOK {
		t.Fatalf("remove n4 through C: %d", s)
	}
	proctest.Eventually(t, 5*time.Second, func() error {
		for _, in := range ins {
			if s := in.api(t, "GET", "/api/v1/balancers/shop/members/n4", nil, nil); s != http.StatusNotFound {
				return fmt.Errorf("%s: n4 still there (%d)", in.name, s)
			}
		}
		return nil
	})
}

// testGroupFrozen: A frozen 10s while C stops n3 converges after SIGCONT;
// C sends nothing to n3 meanwhile, and shows A down.
func testGroupFrozen(t *testing.T, ins []*instance, nodes map[string]*groupNode) {
	a, c := ins[0], ins[2]
	a.proc.Stop(t)
	frozen := time.Now()
	if s := c.api(t, "PATCH", "/api/v1/balancers/shop/members/n3", map[string]any{"state": "stopped"}, nil); s != http.StatusOK {
		t.Fatalf("stop n3 through C: %d", s)
	}
	before := nodes["n3"].hits.Load()
	sawDown := false
	for time.Since(frozen) < 10*time.Second { // A stays frozen this long while C serves
		if got := (&browser{}).get(t, c.front, "/login"); got == "n3" {
			t.Fatalf("C sent a new session to stopped n3")
		}
		sawDown = sawDown || c.groupView(t).health("a") == "down"
	}
	if n := nodes["n3"].hits.Load() - before; n != 0 {
		t.Errorf("n3 got %d requests while stopped", n)
	}
	if !sawDown {
		t.Errorf("C's manager never showed frozen A as down")
	}
	a.proc.Cont(t)
	proctest.Eventually(t, 15*time.Second, func() error {
		if v := a.member(t, "n3"); v.State != "stopped" {
			return fmt.Errorf("A: n3 is %s", v.State)
		}
		if es := a.audit(t, "n3"); len(es) != 1 || es[0].Instance != "c" {
			return fmt.Errorf("A: audit of n3 %+v, want C's stop", es)
		}
		return nil
	})
	before = nodes["n3"].hits.Load()
	for range 6 {
		if got := (&browser{}).get(t, a.front, "/login"); got == "n3" {
			t.Errorf("A sent a new session to stopped n3")
		}
	}
	if n := nodes["n3"].hits.Load() - before; n != 0 {
		t.Errorf("n3 got %d requests through A after it converged", n)
	}
}

// health returns the group state the manager's /healthz gives.
func (in *instance) health(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + in.manager + "/healthz")
	if err != nil {
		t.Fatalf("%s: /healthz: %v", in.name, err)
	}
	defer resp.Body.Close()
	var h admin.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h.Group
}

// TestGroupPartition cuts instance A off from B and C (nftables rules
// between their group addresses): each side keeps serving with what it
// knows, A's manager says it is alone, a change on each side applies there
// only, and after the cut heals every instance ends with both changes.
func TestGroupPartition(t *testing.T) {
	nf := netfault.New(t)
	ips := netfault.Addrs(3)
	nodes := map[string]*groupNode{"n1": newGroupNode(t, "n1"), "n2": newGroupNode(t, "n2"), "n3": newGroupNode(t, "n3")}
	ins := groupOf(t, []string{"a", "b", "c"}, nodes, ips...)
	a, b, c := ins[0], ins[1], ins[2]

	nf.Partition(ips[:1], ips[1:])
	proctest.Eventually(t, 30*time.Second, func() error {
		if h := a.health(t); h != "alone" {
			return fmt.Errorf("A's /healthz says %q", h)
		}
		if g := c.groupView(t); g.health("a") != "down" {
			return fmt.Errorf("C sees A %s", g.health("a"))
		}
		return nil
	})
	if g := a.groupView(t); g.health("b") != "down" || g.health("c") != "down" || !g.Alone {
		t.Errorf("A's group view %+v: want B and C down, alone", g)
	}
	if got := (&browser{}).get(t, a.front, "/login"); got == "" {
		t.Errorf("A cut off does not serve")
	}

	// A change on each side applies on that side only.
	if s := c.api(t, "PATCH", "/api/v1/balancers/shop/members/n2", map[string]any{"weight": 9}, nil); s != http.StatusOK {
		t.Fatalf("weight through C: %d", s)
	}
	if s := a.api(t, "PATCH", "/api/v1/balancers/shop/members/n3", map[string]any{"state": "draining"}, nil); s != http.StatusOK {
		t.Fatalf("drain through A: %d", s)
	}
	proctest.Eventually(t, 5*time.Second, func() error {
		if w := b.member(t, "n2").Weight; w != 9 {
			return fmt.Errorf("B: n2 weight %d", w)
		}
		return nil
	})
	if w := a.member(t, "n2").Weight; w != 1 {
		t.Errorf("A, cut off, has n2's weight %d from C", w)
	}
	if s := b.member(t, "n3").State; s != "active" {
		t.Errorf("B, cut off from A, has n3 %s", s)
	}

	nf.Heal()
	proctest.Eventually(t, 30*time.Second, func() error {
		for _, in := range ins {
			if w, s := in.member(t, "n2").Weight, in.member(t, "n3").State; w != 9 || s != "draining" {
				return fmt.Errorf("%s: n2 weight %d, n3 %s", in.name, w, s)
			}
			if h := in.health(t); h != "synced" {
				return fmt.Errorf("%s: /healthz says %q", in.name, h)
			}
		}
		return nil
	})
}
