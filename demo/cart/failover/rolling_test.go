package failover_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/internal/proctest"
)

// TestRollingRestart: users shop without pause while every node in turn
// gets SIGTERM and is started again. Each node announces its drain on
// /healthz at once, the balancer moves its users to the others (which
// take their carts over), it finishes its requests, hands its sessions
// over, and exits 0. No acknowledged item is lost — in async mode too,
// where only the handover (every write acknowledged by the peers before
// the node leaves) makes sure of it.
func TestRollingRestart(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			rollingRestart(t, mode)
		})
	}
}

func rollingRestart(t *testing.T, mode string) {
	s := startSystem(t, mode)
	users := s.shop(12, 1)
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(20 * time.Millisecond)
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				case <-pace.C: // a user clicking, not a benchmark
				}
				sent.Add(1)
				try := s.tryAdd
				if len(u.acked) >= 40 { // check out: a last look, then a new cart
					try = s.checkout
				}
				if err := try(u); err != nil {
					failed.Add(1)
					t.Logf("%s: %v", u.name, err)
				}
			}
		}()
	}
	for _, n := range s.nodes {
		s.signal(n, syscall.SIGTERM)
		s.waitDrainAnnounced(n)
		err, exited := n.proc.Wait(time.Minute)
		out := n.proc.Output()
		if !exited || err != nil || !strings.Contains(out, "sessions handed over") || !strings.Contains(out, "node "+n.name+" stopped") {
			t.Fatalf("%s after SIGTERM: exited %v, err %v; output:\n%s", n.name, exited, err, out)
		}
		s.start(n)
		proctest.WaitHTTP(t, n.url()+"/healthz", http.StatusOK, startup)
		s.waitBalancerSees(n, true)
	}
	close(stop)
	wg.Wait()
	s.parallel(users, func(u *user) { s.view(u, s.lb) })
	carts := 0
	for _, u := range users {
		carts += u.carts
	}
	t.Logf("%d requests during the rolling restart, %d failed (and were retried); %d carts filled, checked and checked out, %d open, checked",
		sent.Load(), failed.Load(), carts, len(users))
	if carts < len(users) {
		t.Fatalf("only %d carts filled: the traffic did not run during the restarts", carts)
	}
}

// tryAdd adds one item to u's cart through the balancer, once.
func (s *system) tryAdd(u *user) error {
	u.n++
	item := fmt.Sprintf("%s-%d", u.name, u.n)
	u.attempted = append(u.attempted, item)
	r := s.call(s.client, s.lb, u.sid, item)
	if r.err != nil {
		return r.err
	}
	u.take(r)
	if !slices.Contains(r.cart.Items, item) {
		return fmt.Errorf("%s: 200 without the item", item)
	}
	u.acked = append(u.acked, item)
	return check(u, r.cart.Items)
}

// tryView looks at u's cart through the balancer, once.
func (s *system) tryView(u *user) error {
	r := s.call(s.client, s.lb, u.sid, "")
	if r.err != nil {
		return r.err
	}
	u.take(r)
	return check(u, r.cart.Items)
}

// checkout looks at u's cart a last time and logs out, so that u's next
// add starts a new cart; the old one has been checked.
func (s *system) checkout(u *user) error {
	if err := s.tryView(u); err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPost, s.lb+"/api/logout", nil)
	req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: u.sid})
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("logout: %d", resp.StatusCode)
	}
	u.sid, u.acked, u.attempted = "", nil, nil
	u.carts++
	return nil
}

// waitDrainAnnounced checks that n, after SIGTERM, answers its health
// check with 503 and "Tether-State: draining", and that the balancer
// drains it.
func (s *system) waitDrainAnnounced(n *node) {
	s.t.Helper()
	resp, err := s.client.Get(n.url() + "/healthz")
	if err != nil {
		s.t.Fatalf("%s right after SIGTERM: %v", n.name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(cart.StateHeader) != "draining" {
		// The signal may not have been handled yet: look again, briefly.
		s.pollDraining(n)
	}
	var m struct {
		State     string `json:"state"`
		Announced bool   `json:"announced"`
	}
	s.eventually(func() error {
		if err := s.getJSON(s.manager+"/api/v1/balancers/cart/members/"+n.name, managerToken, &m); err != nil {
			return err
		}
		if m.State != "draining" || !m.Announced {
			health := "unreachable"
			if resp, err := s.client.Get(n.url() + "/healthz"); err == nil {
				resp.Body.Close()
				health = fmt.Sprintf("%d, %s: %q", resp.StatusCode, cart.StateHeader, resp.Header.Get(cart.StateHeader))
			}
			return fmt.Errorf("balancer: %s %+v, want an announced drain (its /healthz now: %s)", n.name, m, health)
		}
		return nil
	})
}

func (s *system) pollDraining(n *node) {
	s.t.Helper()
	s.eventually(func() error {
		resp, err := s.client.Get(n.url() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(cart.StateHeader) != "draining" {
			return fmt.Errorf("%s /healthz: %d, %s %q", n.name, resp.StatusCode, cart.StateHeader, resp.Header.Get(cart.StateHeader))
		}
		return nil
	})
}
