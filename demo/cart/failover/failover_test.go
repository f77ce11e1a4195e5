package failover_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestKillOwner: users shop through the balancer; then each node in turn
// is killed with SIGKILL, and its users' carts must be served by the
// survivors with every acknowledged item (sync mode), under the same id
// with the route rewritten to the new owner. Right after the kill, six
// parallel requests for one of its carts, through the balancer and
// straight at both survivors, leave one owner and one copy. The killed
// node then restarts: it answers 503 on /healthz until it has the
// cluster's sessions, then 200, and serves the newest data.
func TestKillOwner(t *testing.T) {
	s := startSystem(t, "sync")
	users := s.shop(24, 3)
	for round, victim := range s.nodes {
		owned := ownedBy(users, victim.name)
		if len(owned) < 2 {
			t.Fatalf("round %d: %s owns %d carts; the balancer should have spread them", round, victim.name, len(owned))
		}
		start := time.Now()
		victim.proc.Kill()
		survivors := s.others(victim)
		s.parallelTakeover(owned[0], victim, survivors)
		t.Logf("T parallel %v", time.Since(start))
		s.parallel(owned[1:], func(u *user) {
			id, _ := u.id()
			c := s.view(u, s.lb)
			if gotID, rt := u.id(); gotID != id || rt == victim.name || rt != c.Node {
				s.t.Errorf("%s: cookie %s after the takeover by %s, want %s.%s", u.name, u.sid, c.Node, id, c.Node)
			}
			s.add(u, s.lb)
		})
		t.Logf("T moved %v", time.Since(start))
		s.restart(victim, survivors)
		t.Logf("T restarted %v", time.Since(start))
		// The restarted node serves the newest data: it takes the carts
		// that moved away back, from their new owners.
		s.parallel(owned, func(u *user) {
			id, _ := u.id()
			if c := s.view(u, victim.url()); c.Node != victim.name || u.sid != id+"."+victim.name {
				s.t.Errorf("%s at the restarted %s: node %s, cookie %s", u.name, victim.name, c.Node, u.sid)
			}
		})
		for _, u := range owned {
			id, _ := u.id()
			if c := s.oneCopy(id, s.nodes); c.Owner != victim.name {
				t.Fatalf("%s: owner %s after %s served it", u.name, c.Owner, victim.name)
			}
		}
		t.Logf("T back %v", time.Since(start))
	}
	s.parallel(users, func(u *user) { s.view(u, s.lb) })
}

// parallelTakeover sends six requests at once for u's cart, whose owner
// victim was just killed: two through the balancer and two straight at
// each survivor, all with the old cookie. First six reads: each answers
// the cart as acknowledged (or 503 when its takeover lost a race, for the
// client to retry); then six adds. Afterwards the survivors hold one copy
// with one owner, and the cart keeps every item acknowledged before.
func (s *system) parallelTakeover(u *user, victim *node, survivors []*node) {
	s.t.Helper()
	targets := []string{s.lb, s.lb, survivors[0].url(), survivors[0].url(), survivors[1].url(), survivors[1].url()}
	id, _ := u.id()
	stale := u.sid
	for _, write := range []bool{false, true} {
		replies := make([]result, len(targets))
		items := make([]string, len(targets))
		var wg sync.WaitGroup
		for k, base := range targets {
			if write {
				u.n++
				items[k] = fmt.Sprintf("%s-%d", u.name, u.n)
				u.attempted = append(u.attempted, items[k])
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[k] = s.call(s.client, base, stale, items[k])
			}()
		}
		wg.Wait()
		ok := 0
		for k, r := range replies {
			switch {
			case r.status == http.StatusOK:
				ok++
				if err := check(u, r.cart.Items); err != nil {
					s.t.Fatalf("parallel request %d: %v", k, err)
				}
				if r.cookie != id+"."+r.cart.Node {
					s.t.Fatalf("parallel request %d answered by %s set cookie %q", k, r.cart.Node, r.cookie)
				}
			case r.status == http.StatusServiceUnavailable || r.status == http.StatusBadGateway || r.status == http.StatusGatewayTimeout:
				// Lost a takeover race, or the balancer met the dead node.
			default:
				s.t.Fatalf("parallel request %d to %s: %v", k, targets[k], r.err)
			}
		}
		if ok == 0 {
			s.t.Fatalf("none of the parallel requests succeeded: %v", replies)
		}
		c := s.oneCopy(id, survivors)
		if !slices.ContainsFunc(survivors, func(n *node) bool { return n.name == c.Owner }) {
			s.t.Fatalf("owner %s after the parallel takeovers", c.Owner)
		}
		u.sid = id + "." + c.Owner
		got := s.view(u, survivors[0].url())
		s.t.Logf("after %d parallel %s, %d answered 200; the cart is at %s v%d (epoch %d): %v",
			len(targets), map[bool]string{false: "reads", true: "adds"}[write], ok, c.Owner, c.Version, c.Epoch, got.Items)
		// Requests on one session run one after another on its owner, and
		// a write whose read is stale is refused: every add answered 200 is
		// in the cart.
		var acked []string
		for k, r := range replies {
			if write && r.status == http.StatusOK {
				if !slices.Contains(got.Items, items[k]) {
					s.t.Fatalf("parallel add %s answered 200 but is not in the cart: %v", items[k], got.Items)
				}
				acked = append(acked, items[k])
			}
		}
		u.acked = slices.DeleteFunc(slices.Clone(got.Items), func(it string) bool {
			return !slices.Contains(u.acked, it) && !slices.Contains(acked, it)
		})
	}
}

// restart starts the killed node n again while one survivor is frozen
// (SIGSTOP): n must answer 503 until it has the state of every live
// member, and 200 once the frozen one wakes up and hands its state over.
func (s *system) restart(n *node, survivors []*node) {
	s.t.Helper()
	frozen := survivors[1]
	frozen.proc.Stop(s.t)
	s.start(n)
	seen := s.healthSequence(n, func(status int) {
		if status == http.StatusServiceUnavailable {
			frozen.proc.Cont(s.t)
		}
	})
	if !slices.Equal(seen, []int{http.StatusServiceUnavailable, http.StatusOK}) {
		frozen.proc.Cont(s.t)
		s.t.Fatalf("restarted %s: /healthz answered %v, want 503 while it receives the sessions, then 200", n.name, seen)
	}
	s.waitBalancerSees(n, true)
	s.waitBalancerSees(frozen, true)
}

// TestFreezeOwner: the owner of carts is frozen (SIGSTOP) with a request
// for one of its carts queued. The survivors take its carts over with
// every acknowledged item. When it wakes up (SIGCONT) it handles the
// queued write in one of two ways, depending on what it hears first:
// still believing it owns the cart, its write is fenced by the peers and
// fails (503) — the stale change comes back nowhere; or, having received
// the new owner's record, it takes the cart back (a new epoch, from the
// newest copy) and saves the write (200) — then the item is kept with the
// new owner's items. Either way nothing acknowledged is lost and nothing
// stale overwrites the new owner's data, on any node.
func TestFreezeOwner(t *testing.T) {
	s := startSystem(t, "sync")
	users := s.shop(12, 3)
	victim := s.nodes[0]
	owned := ownedBy(users, victim.name)
	if len(owned) < 2 {
		t.Fatalf("%s owns %d carts", victim.name, len(owned))
	}
	victim.proc.Stop(t)
	// A request straight at the frozen owner: the kernel queues it; the
	// node handles it when it wakes up.
	inflight := make(chan result, 1)
	u0 := owned[0]
	u0.n++
	queued := fmt.Sprintf("%s-%d", u0.name, u0.n)
	u0.attempted = append(u0.attempted, queued)
	go func() {
		inflight <- s.call(&http.Client{Timeout: 2 * time.Minute}, victim.url(), u0.sid, queued)
	}()
	s.parallel(owned, func(u *user) {
		c := s.view(u, s.lb)
		if _, rt := u.id(); rt != c.Node || rt == victim.name {
			s.t.Errorf("%s: cookie %s after the takeover by %s", u.name, u.sid, c.Node)
		}
		s.add(u, s.lb)
	})
	victim.proc.Cont(t)
	r := <-inflight
	if r.status == http.StatusOK {
		t.Logf("the woken owner took %s's cart back before writing: %v", u0.name, r.cart.Items)
		u0.take(r)
		u0.acked = append(u0.acked, queued)
		if err := check(u0, r.cart.Items); err != nil {
			t.Fatalf("the woken owner's 200: %v", err) // it must have started from the new owner's data
		}
	} else {
		t.Logf("the woken owner's queued write was refused: %v", r.err)
	}
	s.waitBalancerSees(victim, true)
	// Every node holds one copy of each cart. (Its owner may be the woken
	// node again: requests the balancer gave up on while it was frozen
	// were still queued on its sockets, and it served them, taking their
	// carts back — from the newest copy.)
	for _, u := range owned {
		id, _ := u.id()
		s.oneCopy(id, s.nodes)
		got := s.view(u, victim.url())
		if u == u0 && r.status != http.StatusOK && slices.Contains(got.Items, queued) {
			t.Fatalf("the refused write %s came back: %v", queued, got.Items)
		}
	}
	s.parallel(users, func(u *user) { s.view(u, s.lb) })
}
