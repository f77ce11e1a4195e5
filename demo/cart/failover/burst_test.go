package failover_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// burstSize is how many adds to one cart are in flight at once: the cart
// holds 100 items, the burst and the first item fit.
const burstSize = 90

// burst is a burst of parallel adds to one cart, with what each got.
type burst struct {
	items   []string
	replies []result
}

// acked returns the items answered 200.
func (b *burst) acked() []string {
	var out []string
	for i, r := range b.replies {
		if r.status == http.StatusOK {
			out = append(out, b.items[i])
		}
	}
	return out
}

// sendBurst sends burstSize adds to u's cart through base, all with the
// cookie u has now: half at once, then, once after of those have been
// answered, fault (if set) runs while the others are in flight (or queued
// for the session) and the second half is sent at once. It returns when
// every add has an answer.
func (s *system) sendBurst(u *user, base string, after int, fault func()) *burst {
	s.t.Helper()
	b := &burst{items: make([]string, burstSize), replies: make([]result, burstSize)}
	answered := make(chan struct{}, burstSize)
	second := make(chan struct{})
	var wg sync.WaitGroup
	for k := range burstSize {
		u.n++
		b.items[k] = fmt.Sprintf("%s-%d", u.name, u.n)
		u.attempted = append(u.attempted, b.items[k])
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k >= burstSize/2 {
				<-second
			}
			b.replies[k] = s.call(s.client, base, u.sid, b.items[k])
			answered <- struct{}{}
		}()
	}
	for range after {
		<-answered
	}
	if fault != nil {
		fault()
	}
	close(second)
	wg.Wait()
	return b
}

// checkBurst checks the cart after a burst, on the live nodes: every add
// answered 200 is in it, each once, with every item acknowledged before;
// nothing in it was never sent; every add not answered 200 got an error
// status; and every live node holds the same copy.
func (s *system) checkBurst(u *user, b *burst, live []*node) {
	s.t.Helper()
	codes, servers := map[int]int{}, map[string]int{}
	for k, r := range b.replies {
		codes[r.status]++
		servers[r.cart.Node]++
		if r.status != http.StatusOK && r.status < 400 {
			s.t.Errorf("add %s: status %d (%v)", b.items[k], r.status, r.err)
		}
	}
	acked := b.acked()
	id, _ := u.id()
	c := s.oneCopy(id, live)
	u.sid = id + "." + c.Owner
	got := s.view(u, s.lb) // checks the items acknowledged before the burst
	for _, it := range acked {
		if n := countOf(got.Items, it); n != 1 {
			s.t.Errorf("add %s answered 200, but the cart holds it %d times", it, n)
		}
	}
	s.t.Logf("burst of %d adds: statuses %v, answered 200 by %v; the cart holds %d items at %s v%d", burstSize, codes, servers, len(got.Items), c.Owner, c.Version)
	u.acked = slices.DeleteFunc(slices.Clone(got.Items), func(it string) bool {
		return !slices.Contains(u.acked, it) && !slices.Contains(acked, it)
	})
}

func countOf(items []string, it string) int {
	n := 0
	for _, x := range items {
		if x == it {
			n++
		}
	}
	return n
}

// TestBurstOnOneNode: a lone `tether cart` (sessions in memory) gets 90
// parallel adds to one cart: all are answered 200 and all are kept.
func TestBurstOnOneNode(t *testing.T) {
	addr := proctest.FreeAddr(t)
	proctest.Start(t, "cart", "cart", "--listen", addr, "--route", "n1")
	proctest.WaitHTTP(t, "http://"+addr+"/healthz", http.StatusOK, startup)
	s := &system{t: t, client: &http.Client{Timeout: 10 * time.Second}, lb: "http://" + addr}
	u := &user{name: "u"}
	s.add(u, s.lb)
	b := s.sendBurst(u, s.lb, 0, nil)
	if acked := b.acked(); len(acked) != burstSize {
		t.Fatalf("%d of %d parallel adds answered 200", len(acked), burstSize)
	}
	got := s.view(u, s.lb)
	for _, it := range b.items {
		if countOf(got.Items, it) != 1 {
			t.Fatalf("add %s answered 200 but is not in the cart once: %v", it, got.Items)
		}
	}
	if len(got.Items) != 1+burstSize {
		t.Fatalf("the cart holds %d items, want %d", len(got.Items), 1+burstSize)
	}
}

// TestBurst: 90 parallel adds to one cart through `tether serve` in front
// of three `tether cart --cluster` nodes in sync mode, without a fault and
// with the cart's owner killed (SIGKILL), drained (SIGTERM), killed and
// started again (it rejoins and takes the cart back), or frozen and woken
// (SIGSTOP, SIGCONT) while they are in flight. Every add answered
// 200 is in the final cart exactly once, every other add got an error
// status, and every live node holds the same copy.
func TestBurst(t *testing.T) {
	tests := []struct {
		name  string
		fault func(s *system, owner *node) (live func() []*node)
	}{
		{"no fault", nil},
		{"owner killed", func(s *system, owner *node) func() []*node {
			owner.proc.Kill()
			return func() []*node { return s.others(owner) }
		}},
		{"owner drained", func(s *system, owner *node) func() []*node {
			s.signal(owner, syscall.SIGTERM)
			s.waitDraining(owner) // the second half goes to the node that takes the cart over
			return func() []*node {
				if _, exited := owner.proc.Wait(settle); !exited {
					s.t.Fatalf("%s did not exit after SIGTERM", owner.name)
				}
				return s.others(owner)
			}
		}},
		{"owner killed and rejoining", func(s *system, owner *node) func() []*node {
			owner.proc.Kill()
			s.start(owner) // the cookie still names it: once back, it takes the cart back
			proctest.WaitHTTP(s.t, owner.url()+"/healthz", http.StatusOK, startup)
			s.waitBalancerSees(owner, true)
			return func() []*node { return s.nodes }
		}},
		{"owner frozen and woken", func(s *system, owner *node) func() []*node {
			owner.proc.Stop(s.t)
			s.waitBalancerSees(owner, false) // the rest of the burst goes elsewhere
			owner.proc.Cont(s.t)
			return func() []*node { return s.nodes }
		}},
	}
	s := startSystem(t, "sync")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.t = t
			u := &user{name: fmt.Sprintf("b%d", i)}
			s.add(u, s.lb)
			_, rt := u.id()
			owner := s.byName(rt)
			live := func() []*node { return s.nodes }
			var fault func()
			if tt.fault != nil {
				fault = func() { live = tt.fault(s, owner) }
			}
			b := s.sendBurst(u, s.lb, 10, fault)
			s.checkBurst(u, b, live())
			if tt.fault == nil && len(b.acked()) != burstSize {
				t.Fatalf("without a fault, %d of %d parallel adds answered 200", len(b.acked()), burstSize)
			}
			if len(live()) < len(s.nodes) { // bring the system back for the next case
				s.start(owner)
				proctest.WaitHTTP(t, owner.url()+"/healthz", http.StatusOK, startup)
				s.waitBalancerSees(owner, true)
			}
		})
	}
}

// waitDraining waits until the balancer reports n draining, as n's
// /healthz announces once it got SIGTERM.
func (s *system) waitDraining(n *node) {
	s.t.Helper()
	proctest.Eventually(s.t, settle, func() error {
		var m struct {
			State string `json:"state"`
		}
		if err := s.getJSON(s.manager+"/api/v1/balancers/cart/members/"+n.name, managerToken, &m); err != nil {
			return err
		}
		if m.State != "draining" {
			return fmt.Errorf("balancer sees %s %s, want draining", n.name, m.State)
		}
		return nil
	})
}

// TestAsyncLossWindow: in async mode, a user adds items one after another
// while the cart's owner is killed (SIGKILL). What async may lose is
// exactly what docs/cluster.md states: acknowledged writes that no
// surviving peer had applied when the owner died. Every write a survivor
// was seen to hold before the kill survives, and what is lost is a suffix
// of the cart's history up to the kill, never a hole in it. The user may
// click once more after the kill (the owner died between two answers):
// that add is failed over to a survivor and follows what it held.
func TestAsyncLossWindow(t *testing.T) {
	s := startSystem(t, "async")
	u := &user{name: "a"}
	s.add(u, s.lb)
	id, rt := u.id()
	owner := s.byName(rt)
	survivor := s.others(owner)[0]

	stop := make(chan struct{})
	done := make(chan struct{})
	var mu sync.Mutex
	go func() { // the user, clicking "add" as fast as the answers come
		defer close(done)
		for k := 0; k < 95; k++ {
			select {
			case <-stop:
				return
			default:
			}
			u.n++
			item := fmt.Sprintf("%s-%d", u.name, u.n)
			mu.Lock()
			u.attempted = append(u.attempted, item)
			mu.Unlock()
			r := s.call(s.client, s.lb, u.sid, item)
			if r.status != http.StatusOK {
				return // the owner died under this request
			}
			mu.Lock()
			u.acked = append(u.acked, item)
			mu.Unlock()
		}
	}()
	// Once a survivor holds some of the writes, kill the owner at once.
	var seen copyView
	proctest.Eventually(t, settle, func() error {
		if err := s.getJSON(survivor.url()+"/cluster/sessions/"+id, "", &seen); err != nil {
			return err
		}
		if seen.Version < 10 {
			return fmt.Errorf("%s holds version %d", survivor.name, seen.Version)
		}
		return nil
	})
	// Under mu, so that no add is begun while the owner dies: those begun
	// before (the last may be under way) are attempted[:before].
	mu.Lock()
	before := len(u.attempted)
	owner.proc.Kill() // returns once it is dead
	mu.Unlock()
	close(stop)
	<-done

	mu.Lock()
	acked := slices.Clone(u.acked)
	mu.Unlock()
	got := s.view(&user{name: u.name, sid: u.sid, attempted: u.attempted}, s.lb)
	// Version v holds the first v items: the survivor held items[:seen.Version].
	mustKeep := acked[:min(int(seen.Version), len(acked))]
	for i, it := range mustKeep {
		if i >= len(got.Items) || got.Items[i] != it {
			t.Fatalf("item %d (%s), held by %s before the kill, is not in the cart: %v", i, it, survivor.name, got.Items)
		}
	}
	// A prefix of what was sent, in order (no holes); then, after the
	// lost suffix, only adds that reached a survivor by failover: the one
	// begun last before the kill (it may have found the owner dead) and
	// those begun after it, in order.
	kept := 0
	for kept < len(got.Items) && got.Items[kept] == u.attempted[kept] {
		kept++
	}
	if after := got.Items[kept:]; len(after) > 0 {
		m := slices.Index(u.attempted, after[0])
		if m < before-1 || !slices.Equal(after, u.attempted[m:min(m+len(after), len(u.attempted))]) {
			t.Fatalf("the cart is not a prefix of the adds, then adds failed over after the kill: cart %v, sent %v before the kill and %v after",
				got.Items, u.attempted[:before], u.attempted[before:])
		}
	}
	lost := 0
	for _, it := range acked {
		if !slices.Contains(got.Items, it) {
			lost++
		}
	}
	t.Logf("%d adds acknowledged, %s held %d before the kill; the cart keeps the first %d of %d: %d acknowledged adds lost in the window",
		len(acked), survivor.name, seen.Version, kept, len(got.Items), lost)
}
