package failover_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/route"
)

// startup bounds how long a process may take to come up on a loaded
// machine; settle how long the cluster and the balancer may take to agree
// after a failure.
const (
	startup = time.Minute
	settle  = 30 * time.Second
)

// node is one `tether cart --cluster` process.
type node struct {
	name        string
	http        string // host:port of its HTTP listener
	clusterAddr string
	args        []string
	proc        *proctest.Proc
}

func (n *node) url() string { return "http://" + n.http }

// system is three cart nodes replicating sessions behind `tether serve`
// with sessions: replicated and active health checks.
type system struct {
	t       *testing.T
	life    *testing.T // the test whose end stops the processes
	nodes   []*node
	lb      string // the balancer's base URL
	manager string // the manager's base URL
	client  *http.Client
}

const managerToken = "failover-test-token"

// startSystem starts the three nodes (mode: sync, sync-all or async),
// waits until they are ready, then the balancer.
func startSystem(t *testing.T, mode string) *system {
	t.Helper()
	dir := t.TempDir()
	keyFile := writeClusterKey(t, dir)
	s := &system{t: t, life: t, client: &http.Client{Timeout: 10 * time.Second}}
	var peers []string
	for i := range 3 {
		n := &node{name: fmt.Sprintf("n%d", i+1), http: proctest.FreeAddr(t), clusterAddr: proctest.FreeAddr(t)}
		peers = append(peers, n.clusterAddr)
		s.nodes = append(s.nodes, n)
	}
	for _, n := range s.nodes {
		n.args = []string{"cart", "--listen", n.http, "--route", n.name, "--cluster", n.clusterAddr,
			"--peers", strings.Join(peers, ","), "--replication", mode, "--cluster-key-file", keyFile,
			"--drain-grace", "1s", "--shutdown-timeout", "10s"}
		s.start(n)
	}
	for _, n := range s.nodes {
		proctest.WaitHTTP(t, n.url()+"/healthz", http.StatusOK, startup)
	}
	s.startBalancer(dir)
	return s
}

// writeClusterKey writes a random cluster key into dir and returns its file.
func writeClusterKey(t *testing.T, dir string) string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile
}

func (s *system) start(n *node) {
	n.proc = proctest.Start(s.life, "cart "+n.name, n.args...)
}

func (s *system) startBalancer(dir string) {
	s.t.Helper()
	lb, mgr := proctest.FreeAddr(s.t), proctest.FreeAddr(s.t)
	var members strings.Builder
	for _, n := range s.nodes {
		fmt.Fprintf(&members, "      - { url: %s, route: %s }\n", n.url(), n.name)
	}
	conf := fmt.Sprintf(`listen: %s
access_log: stdout
manager:
  listen: %s
  token: %s
balancers:
  - name: cart
    sessions: replicated
    timeouts: { connect: 500ms, response: 3s }
    health: { path: /healthz, interval: 100ms, timeout: 400ms, rise: 1, fall: 2 }
    passive: { failures: 1, probe_interval: 200ms }
    members:
%s`, lb, mgr, managerToken, members.String())
	file := filepath.Join(dir, "tether.yaml")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		s.t.Fatal(err)
	}
	proctest.Start(s.t, "tether serve", "serve", "--config", file)
	s.lb, s.manager = "http://"+lb, "http://"+mgr
	proctest.WaitHTTP(s.t, s.manager+"/healthz", http.StatusOK, startup)
	for _, n := range s.nodes {
		s.waitBalancerSees(n, true)
	}
}

// eventually polls check until it passes, within settle.
func (s *system) eventually(check func() error) {
	s.t.Helper()
	proctest.Eventually(s.t, settle, check)
}

// byName returns the node called name.
func (s *system) byName(name string) *node {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	s.t.Fatalf("no node %q", name)
	return nil
}

// others returns the nodes but n.
func (s *system) others(n *node) []*node {
	var out []*node
	for _, o := range s.nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

// signal sends sig to n's process.
func (s *system) signal(n *node, sig syscall.Signal) {
	s.t.Helper()
	if err := n.proc.Signal(sig); err != nil {
		s.t.Fatalf("%v to %s: %v", sig, n.name, err)
	}
}

// waitBalancerSees waits until the balancer's manager reports n up (or
// down) and active.
func (s *system) waitBalancerSees(n *node, up bool) {
	s.t.Helper()
	proctest.Eventually(s.t, settle, func() error {
		var m struct {
			Healthy   bool   `json:"healthy"`
			State     string `json:"state"`
			Announced bool   `json:"announced"`
		}
		if err := s.getJSON(s.manager+"/api/v1/balancers/cart/members/"+n.name, managerToken, &m); err != nil {
			return err
		}
		if m.Healthy != up || (up && m.State != "active") {
			return fmt.Errorf("balancer sees %s healthy=%v state=%s, want healthy=%v", n.name, m.Healthy, m.State, up)
		}
		return nil
	})
}

// getJSON GETs url (with a bearer token if given) and decodes a 200.
func (s *system) getJSON(url, token string, v any) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

// result is a cart answer.
type result struct {
	status int
	cart   cart.Cart
	cookie string // the JSESSIONID set by the response; "" if none
	err    error
}

// call sends a request with session cookie sid ("" for none) to base; a
// non-empty item makes it an add.
func (s *system) call(client *http.Client, base, sid, item string) result {
	method, path, body := http.MethodGet, "/api/cart", ""
	if item != "" {
		method, path = http.MethodPost, "/api/cart/items"
		b, _ := json.Marshal(map[string]string{"item": item})
		body = string(b)
	}
	return s.do(client, method, base+path, sid, body)
}

// do sends a request with session cookie sid ("" for none) and a JSON body
// (none if empty), and decodes a 200's cart.
func (s *system) do(client *http.Client, method, url, sid, body string) result {
	req, _ := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if sid != "" {
		req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: sid})
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode}
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			r.cookie = c.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	if r.status == http.StatusOK {
		r.err = json.Unmarshal(b, &r.cart)
	} else {
		r.err = fmt.Errorf("%s %s: %d %s", method, url, r.status, bytes.TrimSpace(b))
	}
	return r
}

// user is a shopper with one cart, sending requests one at a time.
type user struct {
	name      string
	sid       string   // the cookie as the browser holds it
	acked     []string // items the cart answered 200 for, in order
	attempted []string // every item sent, acked or not
	n         int      // items sent, for unique names
	carts     int      // carts checked out (logged out after a last check)
}

// id returns the id part of the user's session, the route of its cookie.
func (u *user) id() (string, string) {
	id, rt, _ := route.Split(u.sid, '.')
	return id, rt
}

// take records what a response did to the browser's cookie.
func (u *user) take(r result) {
	if r.cookie != "" {
		u.sid = r.cookie
	}
}

// add adds one new item through base until it is acknowledged (retrying
// errors with a new item, as a user clicking again), within settle.
func (s *system) add(u *user, base string) {
	s.t.Helper()
	proctest.Eventually(s.t, settle, func() error {
		u.n++
		item := fmt.Sprintf("%s-%d", u.name, u.n)
		u.attempted = append(u.attempted, item)
		r := s.call(s.client, base, u.sid, item)
		if r.err != nil {
			return r.err
		}
		u.take(r)
		if !slices.Contains(r.cart.Items, item) {
			return fmt.Errorf("%s: 200 without the item: %v", item, r.cart.Items)
		}
		u.acked = append(u.acked, item)
		return check(u, r.cart.Items)
	})
}

// view GETs the user's cart through base until it answers 200, and checks
// it against what the user was told.
func (s *system) view(u *user, base string) cart.Cart {
	s.t.Helper()
	var got cart.Cart
	proctest.Eventually(s.t, settle, func() error {
		r := s.call(s.client, base, u.sid, "")
		if r.err != nil {
			return r.err
		}
		u.take(r)
		got = r.cart
		return nil
	})
	if err := check(u, got.Items); err != nil {
		s.t.Fatal(err)
	}
	return got
}

// check verifies a cart the user sees: every acknowledged item, in order,
// and nothing the user never sent.
func check(u *user, items []string) error {
	i := 0
	for _, it := range items {
		if !slices.Contains(u.attempted, it) {
			return fmt.Errorf("%s's cart has %q, never sent: %v", u.name, it, items)
		}
		if i < len(u.acked) && it == u.acked[i] {
			i++
		}
	}
	if i < len(u.acked) {
		return fmt.Errorf("%s lost acknowledged item %q: cart %v, acknowledged %v", u.name, u.acked[i], items, u.acked)
	}
	return nil
}

// shop has n users each add items items through the balancer, users in
// parallel.
func (s *system) shop(n, items int) []*user {
	s.t.Helper()
	users := make([]*user, n)
	for i := range users {
		users[i] = &user{name: fmt.Sprintf("u%02d", i)}
	}
	s.parallel(users, func(u *user) {
		for range items {
			s.add(u, s.lb)
		}
	})
	return users
}

// parallel runs f for every user at once and waits.
func (s *system) parallel(users []*user, f func(*user)) {
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(u)
		}()
	}
	wg.Wait()
	if s.t.Failed() {
		s.t.FailNow()
	}
}

// ownedBy returns the users whose cookie names route rt.
func ownedBy(users []*user, rt string) []*user {
	var out []*user
	for _, u := range users {
		if _, r := u.id(); r == rt {
			out = append(out, u)
		}
	}
	return out
}

// copyView is a node's copy of a session (GET /cluster/sessions/{id}).
type copyView struct {
	Owner   string `json:"owner"`
	Epoch   uint64 `json:"epoch"`
	Version uint64 `json:"version"`
	Digest  string `json:"digest"`
}

// oneCopy waits until every given node holds the same copy of the
// session id (owner, epoch, version, values) and returns it.
func (s *system) oneCopy(id string, nodes []*node) copyView {
	s.t.Helper()
	var first copyView
	proctest.Eventually(s.t, settle, func() error {
		for i, n := range nodes {
			var c copyView
			if err := s.getJSON(n.url()+"/cluster/sessions/"+id, "", &c); err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			if i == 0 {
				first = c
			} else if c != first {
				return fmt.Errorf("%s holds %+v, %s holds %+v", nodes[0].name, first, n.name, c)
			}
		}
		return nil
	})
	return first
}

// healthSequence polls n's /healthz from the moment it answers until it
// answers 200, calling during each time the answer changes, and returns
// the distinct answers in order (e.g. [503 200]).
func (s *system) healthSequence(n *node, during func(status int)) []int {
	s.t.Helper()
	var seen []int
	deadline := time.Now().Add(startup)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(n.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if len(seen) == 0 || seen[len(seen)-1] != resp.StatusCode {
				seen = append(seen, resp.StatusCode)
				if during != nil {
					during(resp.StatusCode)
				}
			}
			if resp.StatusCode == http.StatusOK {
				return seen
			}
		} else if !errors.Is(err, syscall.ECONNREFUSED) && !strings.Contains(err.Error(), "connection refused") {
			s.t.Logf("GET %s/healthz: %v", n.url(), err)
		}
		time.Sleep(2 * time.Millisecond) // polling interval
	}
	s.t.Fatalf("%s: /healthz not 200 within %v; seen %v", n.name, startup, seen)
	return nil
}
