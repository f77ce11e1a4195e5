package group

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

var testSecret = []byte("group-test-secret-0123456789abcdef")

// applied records what Apply was called with.
type applied struct {
	mu  sync.Mutex
	got []Record
}

func (a *applied) apply(r Record, won bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if won {
		a.got = append(a.got, r)
	}
}

// startGroup starts n instances on loopback, each naming all, and joins
// them.
func startGroup(t *testing.T, n int, tallies func(i int) map[string]Tally) ([]*Group, []*applied) {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = proctest.FreeAddr(t)
	}
	gs, aps := make([]*Group, n), make([]*applied, n)
	for i := range n {
		aps[i] = &applied{}
		o := Options{
			Name: fmt.Sprintf("i%d", i), Listen: addrs[i], Peers: addrs, Secret: testSecret,
			Apply: aps[i].apply, SyncInterval: 100 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler),
		}
		if tallies != nil {
			o.Tallies = func() map[string]Tally { return tallies(i) }
		}
		g, err := New(o)
		if err == nil {
			err = g.Start()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		gs[i] = g
	}
	for i, g := range gs[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := g.Join(ctx); err != nil {
			t.Fatalf("i%d: %v", i+1, err)
		}
		cancel()
	}
	proctest.Eventually(t, 10*time.Second, func() error {
		for _, g := range gs {
			st := g.Status()
			up := 0
			for _, in := range st.Instances {
				if in.Up {
					up++
				}
			}
			if up != n {
				return fmt.Errorf("%s sees %d instances up", st.Name, up)
			}
		}
		return nil
	})
	return gs, aps
}

func TestWritesReachEveryInstanceAndConverge(t *testing.T) {
	gs, aps := startGroup(t, 3, nil)
	if gs[0].Complete() {
		t.Error("counts complete although no instance sends tallies")
	}
	w := gs[0].Set("state/shop/n1", []byte("draining"))
	proctest.Eventually(t, 5*time.Second, func() error {
		for i, g := range gs {
			if r, ok := g.Get("state/shop/n1"); !ok || r.Stamp != w.Stamp {
				return fmt.Errorf("i%d has %+v", i, r)
			}
		}
		return nil
	})
	for i, a := range aps[1:] {
		a.mu.Lock()
		if len(a.got) != 1 || string(a.got[0].Value) != "draining" {
			t.Errorf("i%d applied %v", i+1, a.got)
		}
		a.mu.Unlock()
	}

	// Concurrent writes through i0 and i2: one value everywhere.
	var wg sync.WaitGroup
	for _, i := range []int{0, 2} {
		wg.Go(func() { gs[i].Set("weight/shop/n2", []byte(fmt.Sprint(i+3))) })
	}
	wg.Wait()
	proctest.Eventually(t, 5*time.Second, func() error {
		r0, _ := gs[0].Get("weight/shop/n2")
		for i, g := range gs {
			if r, _ := g.Get("weight/shop/n2"); r.Stamp != r0.Stamp || string(r.Value) != string(r0.Value) {
				return fmt.Errorf("i%d has %s, i0 has %s", i, r.Value, r0.Value)
			}
		}
		return nil
	})
}

func TestSessionsAreTheUnion(t *testing.T) {
	hashes := [][]uint64{{1, 2, 3}, {3, 4}, {}}
	hk, err := newHashKey(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tally := func(i int) map[string]Tally {
		s := &Sketch{}
		for _, h := range hashes[i] {
			s.Add(hk.sum(fmt.Sprint(h)))
		}
		return map[string]Tally{"shop/n1": {Count: int64(len(hashes[i])), Sketch: s}}
	}
	gs, _ := startGroup(t, 3, tally)
	proctest.Eventually(t, 5*time.Second, func() error {
		for i, g := range gs {
			if !g.Complete() {
				return fmt.Errorf("i%d has not heard from every instance", i)
			}
			if n := g.Sessions("shop/n1", tally(i)["shop/n1"]); n != 4 {
				return fmt.Errorf("i%d counts %d sessions, want 4 (1, 2, 3 and 4; 3 seen twice)", i, n)
			}
		}
		return nil
	})
}

func TestWrongSecretIsRefused(t *testing.T) {
	a, b := proctest.FreeAddr(t), proctest.FreeAddr(t)
	ga, err := New(Options{Name: "a", Listen: a, Secret: testSecret, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		err = ga.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ga.Close()
	gb, err := New(Options{Name: "b", Listen: b, Peers: []string{a}, Secret: []byte("another-secret-0123456789abcdef"), Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		err = gb.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := gb.Join(ctx); err == nil {
		t.Fatal("an instance with another secret joined")
	}
	if st := gb.Status(); st.Synced || !st.Alone {
		t.Errorf("status %+v: want not synced, alone", st)
	}
}

// TestRestartedInstanceTakesItsOwnEarlierWrites: an instance that
// restarts (same name, nothing kept) gets back, and applies, what it wrote
// before.
func TestRestartedInstanceTakesItsOwnEarlierWrites(t *testing.T) {
	gs, _ := startGroup(t, 2, nil)
	w := gs[0].Set("weight/shop/n2", []byte("6"))
	proctest.Eventually(t, 5*time.Second, func() error {
		if r, _ := gs[1].Get("weight/shop/n2"); r.Stamp != w.Stamp {
			return fmt.Errorf("i1 has %+v", r)
		}
		return nil
	})
	gs[0].Close()
	ap := &applied{}
	g, err := New(Options{Name: "i0", Listen: proctest.FreeAddr(t), Peers: []string{gs[1].o.Listen}, Secret: testSecret,
		Apply: ap.apply, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		err = g.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Join(ctx); err != nil {
		t.Fatal(err)
	}
	ap.mu.Lock()
	defer ap.mu.Unlock()
	if len(ap.got) != 1 || ap.got[0].Stamp != w.Stamp {
		t.Errorf("the restarted instance applied %+v, want its own earlier write", ap.got)
	}
}

// TestPeersByName: a peer named by a host name is resolved at the join.
func TestPeersByName(t *testing.T) {
	a, b := proctest.FreeAddr(t), proctest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(a)
	var gs []*Group
	for _, o := range []Options{
		{Name: "a", Listen: a, Secret: testSecret},
		{Name: "b", Listen: b, Peers: []string{"localhost:" + port}, Secret: testSecret},
	} {
		o.Logger = slog.New(slog.DiscardHandler)
		g, err := New(o)
		if err == nil {
			err = g.Start()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		gs = append(gs, g)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gs[1].Join(ctx); err != nil {
		t.Fatal(err)
	}
	if st := gs[1].Status(); !st.Synced || st.Alone {
		t.Errorf("b after joining localhost:%s: %+v", port, st)
	}
}
