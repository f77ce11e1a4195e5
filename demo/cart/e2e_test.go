package cart_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/internal/proctest"
)

// TestEndToEnd runs what a user would: three `tether cart` nodes behind
// `tether serve`, over real HTTP. Each user sticks to the node that created
// their session; after logout their browser holds no cookie, so their next
// request is balanced anew and, across users, lands on more than one node.
func TestEndToEnd(t *testing.T) {
	nodes, members := startCarts(t)
	lb := proctest.FreeAddr(t)
	var ms strings.Builder
	for _, m := range members {
		fmt.Fprintf(&ms, "      - { url: http://%s, route: %s }\n", m.addr, m.route)
	}
	conf := filepath.Join(t.TempDir(), "tether.yaml")
	yaml := fmt.Sprintf("listen: %s\nbalancers:\n  - name: cart\n    members:\n%s", lb, ms.String())
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, "tether serve", "serve", "--config", conf)
	proctest.WaitHTTP(t, "http://"+lb+"/healthz", http.StatusOK, time.Minute)
	shopAround(t, "http://"+lb)

	// The nodes stop cleanly on SIGTERM and SIGINT.
	for r, sig := range map[string]syscall.Signal{"n1": syscall.SIGTERM, "n2": syscall.SIGINT} {
		if err := nodes[r].Signal(sig); err != nil {
			t.Fatal(err)
		}
		err, done := nodes[r].Wait(30 * time.Second)
		if !done || err != nil || !strings.Contains(nodes[r].Output(), "node "+r+" stopped") {
			t.Fatalf("cart %s after %v: exited %v, err %v, output %q", r, sig, done, err, nodes[r].Output())
		}
	}
}

// member is a running cart node.
type member struct{ addr, route string }

// startCarts starts `tether cart` nodes n1, n2 and n3 and waits until they
// are healthy.
func startCarts(t *testing.T) (map[string]*proctest.Proc, []member) {
	t.Helper()
	nodes := map[string]*proctest.Proc{}
	var members []member
	for _, r := range []string{"n1", "n2", "n3"} {
		addr := proctest.FreeAddr(t)
		nodes[r] = proctest.Start(t, "cart "+r, "cart", "--listen", addr, "--route", r)
		proctest.WaitHTTP(t, "http://"+addr+"/healthz", http.StatusOK, time.Minute)
		// The output reaches us through a pipe: it may lag the listener.
		proctest.Eventually(t, 10*time.Second, func() error {
			if out := nodes[r].Output(); !strings.Contains(out, "listening on http://"+addr) {
				return fmt.Errorf("cart %s printed %q, want its address", r, out)
			}
			return nil
		})
		members = append(members, member{addr, r})
	}
	return nodes, members
}

// shopAround has users shop through the balancer at base: each sticks to
// the node that created their session; after logout their browser holds no
// cookie, so their next request is balanced anew. Across users, sessions
// are created on, and post-logout requests reach, more than one node.
func shopAround(t *testing.T, base string) {
	t.Helper()
	// Users interleave, as real ones do: each phase runs for every user
	// before the next phase starts.
	const users = 9
	us := make([]*user, users)
	for i := range us {
		us[i] = newUser(t, i, base)
		us[i].browse()
	}
	created := map[string]int{} // node → sessions created there
	for _, u := range us {
		created[u.create()]++
	}
	// An anonymous visitor between rounds, and users in a rotating order,
	// so that a balancer that merely rotated would send users elsewhere.
	anon := newUser(t, -1, base)
	for round := 1; round <= 4; round++ {
		anon.browse()
		for j := range us {
			us[(j+round)%users].shop(round)
		}
	}
	for _, u := range us {
		u.logout()
	}
	afterLogout := map[string]int{} // node → first requests after logout
	for _, u := range us {
		afterLogout[u.browse()]++
	}
	t.Logf("sessions created per node %v; first request after logout per node %v", created, afterLogout)
	if len(created) < 2 || len(afterLogout) < 2 {
		t.Fatalf("new sessions went to %v and post-logout requests to %v: want more than one node each", created, afterLogout)
	}
}

// user is a browser: a cookie jar, no redirects followed.
type user struct {
	t       *testing.T
	n       int
	base    string
	c       *http.Client
	session cart.Cart // as created
}

func newUser(t *testing.T, n int, base string) *user {
	jar, _ := cookiejar.New(nil)
	return &user{t: t, n: n, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// do sends a request to the balancer and decodes the cart.
func (u *user) do(method, path, item string) (cart.Cart, *http.Response) {
	u.t.Helper()
	var body io.Reader
	if item != "" {
		body = strings.NewReader(url.Values{"item": {item}}.Encode())
	}
	req, _ := http.NewRequest(method, u.base+path, body)
	if item != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	var c cart.Cart
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 {
		u.t.Fatalf("user %d: %s %s: %d, %v", u.n, method, path, resp.StatusCode, err)
	}
	return c, resp
}

// cookies returns what the browser would send to the balancer.
func (u *user) cookies() []*http.Cookie {
	base, _ := url.Parse(u.base)
	return u.c.Jar.Cookies(base)
}

// browse looks at the cart without a session: it must create none. It
// returns the node that answered.
func (u *user) browse() string {
	u.t.Helper()
	c, _ := u.do("GET", "/api/cart", "")
	if c.Session != "" || len(c.Items) != 0 || len(u.cookies()) != 0 {
		u.t.Fatalf("user %d: a GET without session gave %+v, cookies %v", u.n, c, u.cookies())
	}
	return c.Node
}

// create adds the first item, creating the session, and returns its node.
func (u *user) create() string {
	u.t.Helper()
	c, _ := u.do("POST", "/api/cart/items", fmt.Sprintf("u%d-0", u.n))
	if !strings.HasSuffix(c.Session, "."+c.Node) || len(u.cookies()) != 1 {
		u.t.Fatalf("user %d: session %q created by node %s, cookies %v", u.n, c.Session, c.Node, u.cookies())
	}
	u.session = c
	return c.Node
}

// shop adds an item and checks that the request reached the node that
// created the session, which has the whole cart.
func (u *user) shop(i int) {
	u.t.Helper()
	c, _ := u.do("POST", "/api/cart/items", fmt.Sprintf("u%d-%d", u.n, i))
	if c.Node != u.session.Node || c.Session != u.session.Session || len(c.Items) != i+1 {
		u.t.Fatalf("user %d, request %d: node %s session %q items %v; want node %s, session %q, %d items",
			u.n, i, c.Node, c.Session, c.Items, u.session.Node, u.session.Session, i+1)
	}
}

// logout logs out on the session's node and checks that the browser holds
// no session cookie any more.
func (u *user) logout() {
	u.t.Helper()
	c, resp := u.do("POST", "/api/logout", "")
	if c.Node != u.session.Node || c.Session != "" || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		u.t.Fatalf("user %d: logout on %s: session %q, Set-Cookie %q", u.n, c.Node, c.Session, resp.Header.Get("Set-Cookie"))
	}
	if cs := u.cookies(); len(cs) != 0 {
		u.t.Fatalf("user %d: the browser still sends %v after logout", u.n, cs)
	}
}

// TestCartCommandUsage checks that `tether cart` refuses bad flags with a
// clear message and exit code 2, before listening.
func TestCartCommandUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no route", []string{"cart", "--listen", "127.0.0.1:0"}, "usage: tether cart"},
		{"bad route", []string{"cart", "--route", "n 1"}, `--route "n 1"`},
		{"bad proxy", []string{"cart", "--route", "n1", "--trusted-proxies", "10.0.0.0/8,nonsense"}, "--trusted-proxies"},
		{"stray argument", []string{"cart", "--route", "n1", "extra"}, "usage: tether cart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proctest.Start(t, "tether cart", tt.args...)
			err, done := p.Wait(time.Minute)
			var exit *exec.ExitError
			if !done || !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v (done %v), want status 2", err, done)
			}
			if !strings.Contains(p.Output(), tt.want) {
				t.Fatalf("output %q lacks %q", p.Output(), tt.want)
			}
		})
	}
}
