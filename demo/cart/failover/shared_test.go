package failover_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/proctest"
)

// startSharedSystem starts three `tether cart --store URL` nodes and the
// balancer in front of them (sessions: replicated).
func startSharedSystem(t *testing.T, store string) *system {
	t.Helper()
	dir := t.TempDir()
	s := &system{t: t, life: t, client: &http.Client{Timeout: 10 * time.Second}}
	for i := range 3 {
		n := &node{name: fmt.Sprintf("n%d", i+1), http: proctest.FreeAddr(t)}
		n.args = []string{"cart", "--listen", n.http, "--route", n.name, "--store", store, "--shutdown-timeout", "10s"}
		s.nodes = append(s.nodes, n)
		s.start(n)
	}
	for _, n := range s.nodes {
		proctest.WaitHTTP(t, n.url()+"/healthz", http.StatusOK, startup)
	}
	s.startBalancer(dir)
	return s
}

// TestRedisStore: three `tether cart --store redis://…` nodes behind
// `tether serve`. SIGKILL of the node serving carts keeps every
// acknowledged item, and the next request rewrites the route to the node
// that serves it; 90 parallel adds to one cart spread over two nodes keep
// all 90; a burst through the balancer with its node killed mid-way keeps
// every add answered 200; with Redis down every request gets a clear 503
// and the nodes recover, without a restart, once it is back.
func TestRedisStore(t *testing.T) {
	r := dbproc.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	s := startSharedSystem(t, "redis://"+r.Addr+"/0")
	users := sharedStoreCases(t, s)

	t.Run("redis down and back", func(t *testing.T) {
		s.t = t
		u := users[1]
		r.Kill()
		s.storeDown(u)
		r.Restart(t)
		got := s.view(u, s.lb) // acknowledged items survived (appendfsync always)
		if slices.Contains(got.Items, "while-down") {
			t.Fatalf("an add answered 503 is in the cart: %v", got.Items)
		}
		s.add(u, s.lb)
	})
}

// TestMemcachedStore: the same with `tether cart --store memcached://…`
// on a pair of memcached servers; one of them killed gives 503s for the
// sessions it held, and the nodes serve new sessions once it is back
// (memcached keeps nothing across a restart).
func TestMemcachedStore(t *testing.T) {
	m1, m2 := dbproc.StartMemcached(t), dbproc.StartMemcached(t)
	s := startSharedSystem(t, "memcached://"+m1.Addr+","+m2.Addr)
	users := sharedStoreCases(t, s)
	t.Run("memcached down and back", func(t *testing.T) {
		s.t = t
		m1.Kill()
		m2.Kill()
		s.storeDown(users[1])
		m1.Restart(t)
		m2.Restart(t)
		s.add(&user{name: "after"}, s.lb) // a new cart; the old ones went with the servers
	})
}

// sharedStoreCases runs the cases every shared store passes on s, and
// returns its shoppers.
func sharedStoreCases(t *testing.T, s *system) []*user {
	users := s.shop(12, 2)
	t.Run("node killed", func(t *testing.T) {
		s.t = t
		_, rt := users[0].id()
		victim := s.byName(rt)
		owned := ownedBy(users, rt)
		victim.proc.Kill()
		s.parallel(owned, func(u *user) {
			id, _ := u.id()
			c := s.view(u, s.lb) // every acknowledged item is there
			if gotID, now := u.id(); gotID != id || now == victim.name || now != c.Node {
				t.Errorf("%s: cookie %s after %s served it, want %s.%s", u.name, u.sid, c.Node, id, c.Node)
			}
			s.add(u, s.lb)
		})
		s.start(victim)
		proctest.WaitHTTP(t, victim.url()+"/healthz", http.StatusOK, startup)
		s.waitBalancerSees(victim, true)
	})

	t.Run("90 parallel adds over two nodes", func(t *testing.T) {
		s.t = t
		u := &user{name: "spread"}
		s.add(u, s.lb)
		targets := []string{s.nodes[0].url(), s.nodes[1].url()}
		items := make([]string, burstSize)
		replies := make([]result, burstSize)
		var wg sync.WaitGroup
		for k := range burstSize {
			items[k] = fmt.Sprintf("spread-p%d", k)
			u.attempted = append(u.attempted, items[k])
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[k] = s.call(s.client, targets[k%2], u.sid, items[k])
			}()
		}
		wg.Wait()
		by := map[string]int{}
		for k, r := range replies {
			if r.status != http.StatusOK {
				t.Fatalf("add %s: %v", items[k], r.err)
			}
			by[r.cart.Node]++
		}
		got := s.view(u, s.lb)
		for _, it := range items {
			if n := countOf(got.Items, it); n != 1 {
				t.Errorf("add %s answered 200, the cart holds it %d times", it, n)
			}
		}
		if len(got.Items) != 1+burstSize {
			t.Fatalf("the cart holds %d items, want %d", len(got.Items), 1+burstSize)
		}
		t.Logf("answered by %v", by)
	})

	t.Run("burst with its node killed", func(t *testing.T) {
		s.t = t
		u := &user{name: "burst"}
		s.add(u, s.lb)
		_, rt := u.id()
		victim := s.byName(rt)
		b := s.sendBurst(u, s.lb, 10, func() { victim.proc.Kill() })
		codes := map[int]int{}
		for k, r := range b.replies {
			codes[r.status]++
			if r.status != http.StatusOK && r.status < 400 {
				t.Errorf("add %s: status %d (%v)", b.items[k], r.status, r.err)
			}
		}
		acked := b.acked()
		got := s.view(u, s.lb)
		for _, it := range acked {
			if n := countOf(got.Items, it); n != 1 {
				t.Errorf("add %s answered 200, the cart holds it %d times", it, n)
			}
		}
		t.Logf("burst of %d adds, node %s killed after 10: statuses %v; the cart holds %d items", burstSize, rt, codes, len(got.Items))
		s.start(victim)
		proctest.WaitHTTP(t, victim.url()+"/healthz", http.StatusOK, startup)
		s.waitBalancerSees(victim, true)
	})

	t.Run("metrics", func(t *testing.T) {
		s.t = t
		resp, err := s.client.Get(s.nodes[0].url() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, want := range []string{`tether_session_store_seconds_count{op="save",outcome="ok"}`,
			`tether_session_store_seconds_count{op="lock",outcome="ok"}`, `tether_session_created_total`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("GET /metrics of %s has no %s", s.nodes[0].name, want)
			}
		}
	})
	return users
}

// storeDown checks, with the store down, that every node answers u's
// requests with 503 and keeps running.
func (s *system) storeDown(u *user) {
	s.t.Helper()
	for _, n := range s.nodes {
		if res := s.call(s.client, n.url(), u.sid, ""); res.status != http.StatusServiceUnavailable {
			s.t.Fatalf("%s with the store down: %d %v, want 503", n.name, res.status, res.err)
		}
		if res := s.call(s.client, n.url(), u.sid, "while-down"); res.status != http.StatusServiceUnavailable {
			s.t.Fatalf("%s: add with the store down: %d %v, want 503", n.name, res.status, res.err)
		}
	}
	for _, n := range s.nodes {
		if n.proc.Exited() {
			s.t.Fatalf("%s exited while the store was down:\n%s", n.name, n.proc.Output())
		}
	}
}

// TestRedisSentinelStore: three `tether cart --store redis-sentinel://…
// ?replicas=1` nodes behind `tether serve`, on a primary with two replicas
// and three Sentinels. Shoppers add items while the primary is SIGKILLed:
// Sentinel promotes a replica, the nodes follow it, every item answered
// 200 is still in its cart, and adds work again.
func TestRedisSentinelStore(t *testing.T) {
	g := dbproc.StartSentinelGroup(t)
	s := startSharedSystem(t, "redis-sentinel://"+strings.Join(g.SentinelAddrs(), ",")+"/"+g.Master+"?replicas=1")
	users := s.shop(8, 2)
	old := g.Primary.Addr
	var kill sync.Once
	s.parallel(users, func(u *user) {
		for range 4 {
			s.add(u, s.lb) // retried until acknowledged, through the failover
			kill.Do(g.Primary.Kill)
		}
	})
	addr, err := g.PrimaryAddr()
	if err != nil || addr == old {
		t.Fatalf("primary after the kill: %s, %v; want a promoted replica", addr, err)
	}
	s.parallel(users, func(u *user) { s.view(u, s.lb) }) // every acknowledged item, in order
}
