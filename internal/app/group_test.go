package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/admin"
	"github.com/tetherlb/tether/internal/proctest"
)

func TestServeRefusesAShortGroupKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "group.key")
	if err := os.WriteFile(key, []byte("  too-short \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nmanager: {listen: 127.0.0.1:0, token: t0123456789abcdef}\ngroup: {listen: %s, key_file: %s}\nbalancers:\n  - {name: b, members: [{url: http://127.0.0.1:9, route: n1}]}\n", proctest.FreeAddr(t), key))
	err := Serve(context.Background(), cfg, ServeOptions{Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "9 bytes, want at least 16") {
		t.Fatalf("Serve with a 9-byte group key: %v", err)
	}
}

// TestServeAloneInAGroup: an instance whose peers do not answer serves
// after join_timeout with its own state, and its manager says so.
func TestServeAloneInAGroup(t *testing.T) {
	key := filepath.Join(t.TempDir(), "group.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nmanager: {listen: 127.0.0.1:0, token: t0123456789abcdef}\n"+
		"group: {name: lonely, listen: %s, peers: [%s], key_file: %s, join_timeout: 200ms}\n"+
		"balancers:\n  - {name: b, members: [{url: http://127.0.0.1:9, route: n1}]}\n", proctest.FreeAddr(t), proctest.FreeAddr(t), key))
	s := serveInTest(t, cfg, ServeOptions{})
	c, _ := admin.NewClient("http://"+s.ManagerAddr(), "t0123456789abcdef", admin.ClientOptions{})
	if _, err := c.Balancers(context.Background()); err != nil {
		t.Fatalf("an instance alone does not serve its manager: %v", err)
	}
	var h admin.Health
	resp, err := http.Get("http://" + s.ManagerAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if h.Group != "alone" {
		t.Errorf("/healthz %+v, want group alone", h)
	}
}

// groupStack is an instance of a group in process, over the members urls.
func groupStack(t *testing.T, name, listen, key string, peers, urls []string, joinTimeout string) *stack {
	t.Helper()
	st := &stack{dir: t.TempDir()}
	var members []string
	for i, u := range urls {
		members = append(members, fmt.Sprintf("{url: %q, route: n%d}", u, i+1))
	}
	cfg := parse(t, fmt.Sprintf(`listen: 127.0.0.1:0
manager: {listen: 127.0.0.1:0, token: %s, state_file: %s}
group: {name: %s, listen: %s, peers: [%s], key_file: %s, join_timeout: %s}
balancers:
  - name: shop
    drain: {idle: 1s, done: stop}
    members: [%s]
`, testToken, filepath.Join(st.dir, "state.json"), name, listen, strings.Join(peers, ", "), key, joinTimeout, strings.Join(members, ", ")))
	st.srv = serveInTest(t, cfg, ServeOptions{})
	st.base = "http://" + st.srv.Addr("127.0.0.1:0")
	var err error
	if st.client, err = admin.NewClient("http://"+st.srv.ManagerAddr(), testToken, admin.ClientOptions{Operator: "test"}); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDrainDoneStopWaitsForTheGroup: with drain.done: stop, an instance
// that sees no session of a draining member keeps it draining while
// another instance of the group still sees one, and stops it once none
// does.
func TestDrainDoneStopWaitsForTheGroup(t *testing.T) {
	key := filepath.Join(t.TempDir(), "group.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	urls := []string{node(t, "n1", false).URL, node(t, "n2", false).URL}
	ga, gb := proctest.FreeAddr(t), proctest.FreeAddr(t)
	peers := []string{ga, gb}
	a := groupStack(t, "a", ga, key, peers, urls, "100ms")
	b := groupStack(t, "b", gb, key, peers, urls, "10s")
	user := usersOn(t, b, "n1", 1)[0]
	ctx := context.Background()
	if _, err := a.client.Change(ctx, "shop", "n1", admin.MemberChange{State: strp("draining")}); err != nil {
		t.Fatal(err)
	}
	// B's user keeps browsing past A's idle window: A sees nothing of it
	// but keeps n1 draining.
	proctest.Eventually(t, 10*time.Second, func() error {
		if err := user.get("/"); err != nil || user.member != "n1" {
			return fmt.Errorf("B's user: %v on %s", err, user.member)
		}
		v := a.member(t, "n1")
		if v.State != "draining" {
			t.Fatalf("A: n1 is %s while B's user browses", v.State)
		}
		if v.LocalSessions != 0 || v.LiveSessions != 1 || time.Since(v.Drain.Since) < 2*time.Second {
			return fmt.Errorf("A: n1 %+v, want 1 live session seen by B only, for 2s", v)
		}
		return nil
	})
	if err := user.get("/logout"); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 10*time.Second, func() error {
		for name, st := range map[string]*stack{"a": a, "b": b} {
			if v := st.member(t, "n1"); v.State != "stopped" {
				return fmt.Errorf("%s: n1 is %s", name, v.State)
			}
		}
		return nil
	})
}
