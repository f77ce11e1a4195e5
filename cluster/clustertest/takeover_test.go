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

// TestSyncWriteSurvivesOwnerCrash kills the owner while it writes in a
// loop: every write it acknowledged must be in the copy a survivor takes
// over.
func TestSyncWriteSurvivesOwnerCrash(t *testing.T) {
	for _, mode := range []cluster.AckMode{cluster.AckOne, cluster.AckAll} {
		t.Run(mode.String(), func(t *testing.T) {
			h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(_ int, o *cluster.Options) { o.Ack = mode }})
			owner := h.Node(0)
			const sessions = 4
			for s := range sessions {
				if _, err := owner.Create(bg, cluster.NewSession{ID: fmt.Sprintf("s%d", s)}); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			acked := map[string][]string{} // session → keys of acknowledged writes
			done := make(chan struct{})
			go func() {
				defer close(done)
				for w := 0; ; w++ {
					id := fmt.Sprintf("s%d", w%sessions)
					k := fmt.Sprintf("w%d", w)
					if _, err := owner.Update(bg, cluster.Delta{ID: id, Set: vals(k, "x")}); err != nil {
						return // the owner died under the write
					}
					mu.Lock()
					acked[id] = append(acked[id], k)
					mu.Unlock()
				}
			}()
			clustertest.Eventually(t, 10*time.Second, func() error {
				mu.Lock()
				defer mu.Unlock()
				if n := len(acked["s3"]); n < 25 {
					return fmt.Errorf("%d writes acknowledged", n)
				}
				return nil
			})
			h.Crash(0) // while a write is in flight
			<-done
			mu.Lock()
			defer mu.Unlock()
			for s := range sessions {
				id := fmt.Sprintf("s%d", s)
				taker := h.Node(1 + s%2)
				r, err := taker.Claim(bg, id)
				if err != nil {
					t.Fatalf("%s claims %s: %v", taker.Name(), id, err)
				}
				for _, k := range acked[id] {
					if _, ok := r.Values[k]; !ok {
						t.Fatalf("%s: acknowledged write %s lost after the owner died (%d acknowledged, copy v%d)",
							id, k, len(acked[id]), r.Version)
					}
				}
			}
		})
	}
}

// TestParallelClaimsLeaveOneOwner has two nodes take over the same session
// of a dead owner at once, several requests each, writing as they go:
// exactly one owner and one copy must remain, holding every write that was
// acknowledged.
func TestParallelClaimsLeaveOneOwner(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "s", Values: vals("item", "book")}); err != nil {
		t.Fatal(err)
	}
	h.Crash(0)
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for _, i := range []int{1, 2} {
		for r := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := h.Node(i)
				if _, err := n.Claim(bg, "s"); err != nil {
					return
				}
				k := fmt.Sprintf("%s-%d", n.Name(), r)
				if _, err := n.Update(bg, cluster.Delta{ID: "s", Set: vals(k, "1")}); err != nil {
					return // taken over by the other node between claim and write
				}
				mu.Lock()
				acked = append(acked, k)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no request succeeded")
	}
	var owner string
	clustertest.Eventually(t, 10*time.Second, func() error {
		a, err1 := h.Node(1).Get("s")
		b, err2 := h.Node(2).Get("s")
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%v %v", err1, err2)
		}
		if a.Owner != b.Owner || a.Epoch != b.Epoch || a.Version != b.Version || fmt.Sprint(a.Values) != fmt.Sprint(b.Values) {
			return fmt.Errorf("two copies: n2 has %s/%d v%d, n3 has %s/%d v%d", a.Owner, a.Epoch, a.Version, b.Owner, b.Epoch, b.Version)
		}
		owner = a.Owner
		return nil
	})
	r, _ := h.Node(1).Get("s")
	for _, k := range append(acked, "item") {
		if _, ok := r.Values[k]; !ok {
			t.Fatalf("acknowledged write %q lost; copy %v", k, r.Values)
		}
	}
	// Only the owner can write.
	for _, i := range []int{1, 2} {
		_, err := h.Node(i).Update(bg, cluster.Delta{ID: "s", Set: vals("after", h.Name(i))})
		if (h.Name(i) == owner) != (err == nil) {
			t.Fatalf("%s (owner %s) writes: %v", h.Name(i), owner, err)
		}
	}
	t.Logf("owner %s, %d acknowledged writes, claim rounds n2=%d n3=%d", owner, len(acked),
		h.Observer(1).ClaimRounds.Load(), h.Observer(2).ClaimRounds.Load())
}

// TestFrozenOwnerIsFenced freezes the owner in the middle of a write (as
// SIGSTOP would), lets another node take the session over, then wakes the
// old owner: its write must fail, later ones too, and the new owner's data
// must be intact everywhere.
func TestFrozenOwnerIsFenced(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	old := h.Node(0)
	if _, err := old.Create(bg, cluster.NewSession{ID: "s", Values: vals("item", "book")}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "s", 1, map[string]string{"item": "book"}, 1, 2)
	h.Freeze(0)
	stale := make(chan error, 1)
	go func() {
		_, err := old.Update(bg, cluster.Delta{ID: "s", Set: vals("item", "stale")})
		stale <- err
	}()
	// n2 takes over while n1 is frozen, before gossip declares it dead.
	r, err := h.Node(1).Claim(bg, "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Node(1).Update(bg, cluster.Delta{ID: "s", Base: r.Version, Set: vals("item", "new")}); err != nil {
		t.Fatal(err)
	}
	h.Thaw(0)
	if err := <-stale; err == nil {
		t.Fatal("the frozen owner's write succeeded after the takeover")
	} else {
		t.Logf("frozen owner's write: %v", err)
	}
	if _, err := old.Update(bg, cluster.Delta{ID: "s", Set: vals("item", "stale2")}); err == nil {
		t.Fatal("the old owner could write after waking up")
	}
	converged(t, h, "s", r.Version+1, map[string]string{"item": "new"}, 0, 1, 2)
	if got := h.Observer(1).FencedRemote.Load() + h.Observer(2).FencedRemote.Load(); got == 0 {
		t.Fatal("no replica reported fencing the stale write")
	}
}

// TestClaimAdoptsNewestAcknowledgedVersion: the claimant's own copy is
// stale (its link from the owner was cut), another peer's is current; the
// takeover must start from the current one.
func TestClaimAdoptsNewestAcknowledgedVersion(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	owner := h.Node(0)
	if _, err := owner.Create(bg, cluster.NewSession{ID: "s", Values: vals("v", "1")}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "s", 1, map[string]string{"v": "1"}, 1, 2)
	// n1's frames to n2 are held back: n2 lags while n3 acknowledges.
	h.Net.SetFaults(h.Addr(0), h.Addr(1), clustertest.Faults{Delay: time.Hour})
	for i := 2; i <= 5; i++ {
		if _, err := owner.Update(bg, cluster.Delta{ID: "s", Set: vals("v", fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := h.Node(1).Get("s"); r.Version != 1 {
		t.Fatalf("n2 should lag at v1, has v%d", r.Version)
	}
	h.Crash(0)
	r, err := h.Node(1).Claim(bg, "s")
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 5 || string(r.Values["v"]) != "5" {
		t.Fatalf("claimed v%d %v, want the acknowledged v5", r.Version, str(r.Values))
	}
}

func TestClaimOfUnknownSession(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2})
	if _, err := h.Node(1).Claim(bg, "never-created"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("claim: %v, want ErrNotFound", err)
	}
	// The failed claim leaves nothing behind that blocks a real session.
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "never-created"}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "never-created", 1, map[string]string{}, 0, 1)
}

// TestDrainingOwnerHandsOver: the owner is alive (draining) when another
// node claims; the claim waits for its answer and so carries even its
// unreplicated async writes.
func TestDrainingOwnerHandsOver(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(_ int, o *cluster.Options) {
		o.Ack = cluster.AckNone
	}})
	owner := h.Node(0)
	if _, err := owner.Create(bg, cluster.NewSession{ID: "s"}); err != nil {
		t.Fatal(err)
	}
	h.Net.SetFaults(h.Addr(0), h.Addr(1), clustertest.Faults{Delay: time.Hour}) // writes stay on n1
	if _, err := owner.Update(bg, cluster.Delta{ID: "s", Set: vals("k", "unreplicated")}); err != nil {
		t.Fatal(err)
	}
	h.Net.SetFaults(h.Addr(0), h.Addr(1), clustertest.Faults{})
	r, err := h.Node(1).Claim(bg, "s")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Values["k"]) != "unreplicated" {
		t.Fatalf("claim from a live owner lost its last write: %v", str(r.Values))
	}
}

// TestStalledTakeoverDoesNotBlockTheSession: a claimant dies half-way,
// after the owner and a peer promised its ballot but before it decided.
// The owner must not stay fenced: its next write takes the session back.
func TestStalledTakeoverDoesNotBlockTheSession(t *testing.T) {
	h, _ := stallTakeover(t)
	owner := h.Node(0)
	// Fenced at first (the takeover might be completing), then taken back.
	if _, err := owner.Update(bg, cluster.Delta{ID: "s", Set: vals("v", "early")}); !errors.Is(err, cluster.ErrFenced) {
		t.Fatalf("write right after the promise: %v, want ErrFenced", err)
	}
	var res cluster.Result
	clustertest.Eventually(t, 10*time.Second, func() (err error) {
		res, err = owner.Update(bg, cluster.Delta{ID: "s", Set: vals("v", "2")})
		return err
	})
	if res.Record.Owner != "n1" || res.Record.Epoch < 3 {
		t.Fatalf("wrote as %s epoch %d: want n1 under an epoch above the stalled claim's", res.Record.Owner, res.Record.Epoch)
	}
	converged(t, h, "s", 2, map[string]string{"v": "2"}, 0, 1, 3)
}

// TestStalledTakeoverIsNotReportedForever: after a claimant died half-way,
// and with no request for the session, every live node names the same
// owner once the takeover is presumed abandoned (ClaimTimeout after the
// promise): the owner stops naming the dead claimant, as its peers, which
// hold its record, never did. It names the claimant until then (the
// takeover might be completing).
func TestStalledTakeoverIsNotReportedForever(t *testing.T) {
	h, claimed := stallTakeover(t)
	// The promise came after the claim began: the takeover may be
	// completing until ClaimTimeout after that at least.
	if c, err := h.Node(0).Get("s"); err != nil || c.Owner != "n3" && time.Since(claimed) < stalledClaimTimeout {
		t.Fatalf("n1 right after its promise shows %+v (%v), want the claimant n3", c, err)
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		for _, i := range []int{0, 1, 3} {
			if c, err := h.Node(i).Get("s"); err != nil || c.Owner != "n1" || c.Epoch != 1 {
				return fmt.Errorf("%s shows %+v (%v), want n1 epoch 1", h.Name(i), c, err)
			}
		}
		return nil
	})
	if d := time.Since(claimed); d < stalledClaimTimeout {
		t.Fatalf("n1 stopped naming the claimant %v after the claim began, before ClaimTimeout (%v)", d, stalledClaimTimeout)
	}
	// A reader on n1 now claims the session back, as a write would.
	if c, err := h.Node(0).Find(bg, "s"); err != nil || c.Owner != "n1" || c.Epoch < 3 {
		t.Fatalf("n1 finds %+v (%v): want it claimed back, under an epoch above the stalled claim's", c, err)
	}
}

// stalledClaimTimeout is stallTakeover's ClaimTimeout: how long a promised
// takeover is presumed to be completing.
const stalledClaimTimeout = time.Second

// stallTakeover starts four nodes, n1 owning session "s" (epoch 1), and
// has n3 claim it and die half-way: n1 and n2 promised its ballot, n4
// (which n3 cannot reach) did not, and n3 crashed before it decided. It
// returns the harness and when the claim began (the promises came later).
func stallTakeover(t *testing.T) (*clustertest.Harness, time.Time) {
	t.Helper()
	h := clustertest.New(t, clustertest.Config{Nodes: 4, Options: func(_ int, o *cluster.Options) {
		o.ClaimTimeout = stalledClaimTimeout
	}})
	owner := h.Node(0)
	if _, err := owner.Create(bg, cluster.NewSession{ID: "s", Values: vals("v", "1")}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "s", 1, map[string]string{"v": "1"}, 1, 2, 3)
	// n3 cannot reach n4, whose promise it needs: its claim stops after
	// phase 1, with n1 and n2 having promised.
	h.Net.Partition(h.Addr(2), h.Addr(3))
	claimed := time.Now()
	go h.Node(2).Claim(bg, "s") //nolint:errcheck // it fails when n3 is crashed below
	clustertest.Eventually(t, 5*time.Second, func() error {
		if owner.Info().Owned != 0 {
			return errors.New("n1 has not promised n3's ballot yet")
		}
		return nil
	})
	h.Crash(2)
	return h, claimed
}
