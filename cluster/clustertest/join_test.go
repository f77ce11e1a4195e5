package clustertest_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

// writer creates and updates sessions on a node until stopped, remembering
// the last acknowledged state of each.
type writer struct {
	mu    sync.Mutex
	state map[string]map[string]string
	stop  chan struct{}
	done  chan struct{}
	n     int
}

func startWriter(t *testing.T, n *cluster.Node, sessions int) *writer {
	w := &writer{state: map[string]map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			id := fmt.Sprintf("s%d", i%sessions)
			k, v := fmt.Sprintf("k%d", i%5), fmt.Sprint(i)
			var err error
			if i < sessions {
				_, err = n.Create(bg, cluster.NewSession{ID: id, Values: vals(k, v)})
			} else {
				_, err = n.Update(bg, cluster.Delta{ID: id, Set: vals(k, v)})
			}
			if err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			w.mu.Lock()
			if w.state[id] == nil {
				w.state[id] = map[string]string{}
			}
			w.state[id][k] = v
			w.n++
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *writer) writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *writer) finish() map[string]map[string]string {
	close(w.stop)
	<-w.done
	return w.state
}

// sameAs waits until node i holds exactly want (the owner's final state).
func sameAs(t *testing.T, h *clustertest.Harness, i int, want map[string]map[string]string, owner *cluster.Node) {
	t.Helper()
	clustertest.Eventually(t, 10*time.Second, func() error {
		for id, kv := range want {
			r, err := h.Node(i).Get(id)
			if err != nil {
				return fmt.Errorf("%s: %s: %v", h.Name(i), id, err)
			}
			o, _ := owner.Get(id)
			if r.Version != o.Version || fmt.Sprint(str(r.Values)) != fmt.Sprint(kv) {
				return fmt.Errorf("%s: %s v%d %v, want v%d %v", h.Name(i), id, r.Version, str(r.Values), o.Version, kv)
			}
		}
		return nil
	})
}

func TestJoinWhileWritesContinue(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2})
	w := startWriter(t, h.Node(0), 20)
	clustertest.Eventually(t, 5*time.Second, func() error {
		if w.writes() < 100 {
			return fmt.Errorf("%d writes", w.writes())
		}
		return nil
	})
	j := h.Add()
	h.Start(j)
	h.WaitReady(10*time.Second, j)
	before := w.writes()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if w.writes() < before+100 {
			return fmt.Errorf("%d writes since ready", w.writes()-before)
		}
		return nil
	})
	want := w.finish()
	sameAs(t, h, j, want, h.Node(0))
	sameAs(t, h, 1, want, h.Node(0))
}

func TestNodesStartingTogetherBecomeReady(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	owner := h.Node(0)
	for s := range 10 {
		if _, err := owner.Create(bg, cluster.NewSession{ID: fmt.Sprintf("s%d", s), Values: vals("k", "v")}); err != nil {
			t.Fatal(err)
		}
	}
	// Two nodes restart at the same moment, while n1 holds the data; then
	// all three do (no data: there is nobody to wait for).
	h.Crash(1)
	h.Crash(2)
	var wg sync.WaitGroup
	for _, i := range []int{1, 2} {
		wg.Add(1)
		go func() { defer wg.Done(); h.Start(i) }()
	}
	wg.Wait()
	h.WaitReady(10*time.Second, 1, 2)
	for _, i := range []int{1, 2} {
		if got := h.Node(i).Info().Sessions; got != 10 {
			t.Fatalf("%s ready with %d sessions, want 10", h.Name(i), got)
		}
	}
	for i := range 3 {
		h.Crash(i)
	}
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); h.Start(i) }()
	}
	wg.Wait()
	h.WaitSettled(10 * time.Second)
}

// TestStaleNodeDoesNotOverwriteNewerData cuts n3 off long enough to be
// declared dead; meanwhile n1 writes its session and n2 takes n3's session
// over. When n3 comes back its stale copies must lose, in both directions,
// and it must no longer be able to write the session it used to own.
func TestStaleNodeDoesNotOverwriteNewerData(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "a", Values: vals("v", "1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Node(2).Create(bg, cluster.NewSession{ID: "c", Values: vals("v", "1")}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "a", 1, map[string]string{"v": "1"}, 0, 1, 2)
	converged(t, h, "c", 1, map[string]string{"v": "1"}, 0, 1, 2)
	h.Net.Isolate(h.Addr(2))
	h.WaitMembers(10*time.Second, 0, 0, 1)
	for i := 2; i <= 4; i++ {
		if _, err := h.Node(0).Update(bg, cluster.Delta{ID: "a", Set: vals("v", fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Node(1).Claim(bg, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Node(1).Update(bg, cluster.Delta{ID: "c", Set: vals("v", "n2")}); err != nil {
		t.Fatal(err)
	}
	// n3, alone, still believes it owns c (a partition, not a crash: see
	// docs/cluster.md) and writes it.
	if _, err := h.Node(2).Update(bg, cluster.Delta{ID: "c", Set: vals("v", "stale")}); err != nil {
		t.Logf("isolated n3 writes: %v", err)
	}
	h.Net.Heal(h.Addr(2))
	converged(t, h, "a", 4, map[string]string{"v": "4"}, 0, 1, 2)
	converged(t, h, "c", 2, map[string]string{"v": "n2"}, 0, 1, 2)
	if _, err := h.Node(2).Update(bg, cluster.Delta{ID: "c", Set: vals("v", "late")}); !errors.Is(err, cluster.ErrNotOwner) {
		t.Fatalf("n3 writes the session it lost: %v", err)
	}
	// A restart brings back an empty node: it must not remove anything.
	h.Crash(2)
	h.Start(2)
	h.WaitReady(10*time.Second, 2)
	converged(t, h, "a", 4, map[string]string{"v": "4"}, 0, 1, 2)
	converged(t, h, "c", 2, map[string]string{"v": "n2"}, 0, 1, 2)
}

func TestClustersWithDifferentNamesDoNotMix(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2})
	// A node of another cluster is pointed at this one's addresses.
	addr := h.Net.NewAddr()
	ep, err := h.Net.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	o := h.Options(0, ep, &clustertest.Counter{})
	o.Name, o.ClusterName = "intruder", "other"
	other, err := cluster.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	clustertest.Eventually(t, 10*time.Second, func() error {
		d := h.Net.Stats().Dials["gossip "+addr+" "+h.Addr(0)]
		if d < 3 {
			return fmt.Errorf("the intruder tried to join %d times", d)
		}
		return nil
	})
	for _, n := range []*cluster.Node{h.Node(0), h.Node(1), other} {
		for _, m := range n.Members() {
			if (n == other) != (m.Name == "intruder") {
				t.Fatalf("%s lists %s: clusters mixed", n.Name(), m.Name)
			}
		}
	}
	if !other.IsReady() {
		t.Fatal("the lone node of the other cluster should be ready on its own")
	}
}

// TestRestartAfterDeclaredDead: a node killed, declared dead, and started
// again asks its peers for their state before every peer's gossip has
// heard it is back. The transfer must wait for the news, not be dropped:
// the node is ready with the whole state, without waiting for its
// JoinTimeout (a minute here, well beyond the test's patience).
func TestRestartAfterDeclaredDead(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(i int, o *cluster.Options) {
		o.JoinTimeout = time.Minute
	}})
	for i := range 5 {
		for j := range 3 {
			if _, err := h.Node(j).Create(bg, cluster.NewSession{ID: fmt.Sprint("s", i, j), Values: vals("k", "v")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for round := range 3 { // the race with gossip goes either way: try it a few times
		h.Crash(0)
		h.WaitMembers(10*time.Second, 1, 1, 2)
		h.WaitMembers(10*time.Second, 2, 1, 2)
		h.Start(0)
		h.WaitReady(20*time.Second, 0)
		if got := h.Node(0).Info().Sessions; got != 15 {
			t.Fatalf("round %d: restarted node ready with %d of 15 sessions", round, got)
		}
	}
}
