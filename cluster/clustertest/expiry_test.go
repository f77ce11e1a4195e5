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

// expiries records OnExpire calls per node.
type expiries struct {
	mu  sync.Mutex
	got map[string][]string // node → expired session ids
}

func (e *expiries) hook(node string) func(cluster.Record) {
	return func(r cluster.Record) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.got[node] = append(e.got[node], r.ID)
	}
}

func (e *expiries) snapshot() map[string][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string][]string{}
	for k, v := range e.got {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func expiringCluster(t *testing.T, nodes int) (*clustertest.Harness, *expiries) {
	ex := &expiries{got: map[string][]string{}}
	h := clustertest.New(t, clustertest.Config{Nodes: nodes, Options: func(i int, o *cluster.Options) {
		o.OnExpire = ex.hook(fmt.Sprintf("n%d", i+1))
	}})
	return h, ex
}

// advanceUntil moves the fake clock a second at a time (one sweep each)
// until check passes.
func advanceUntil(t *testing.T, h *clustertest.Harness, check func() error) {
	t.Helper()
	clustertest.Eventually(t, 10*time.Second, func() error {
		err := check()
		if err != nil {
			h.Clock.Advance(time.Second)
		}
		return err
	})
}

func TestOwnerExpiresIdleSessionsOnce(t *testing.T) {
	h, ex := expiringCluster(t, 3)
	owner := h.Node(0)
	if _, err := owner.Create(bg, cluster.NewSession{ID: "idle", IdleTimeout: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Create(bg, cluster.NewSession{ID: "used", IdleTimeout: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Create(bg, cluster.NewSession{ID: "capped", Deadline: h.Clock.Now().Add(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(20 * time.Minute)
	if err := owner.Touch(bg, "used", time.Time{}); err != nil {
		t.Fatal(err)
	}
	// At +20m the capped session is past its deadline.
	advanceUntil(t, h, func() error {
		if got := ex.snapshot()["n1"]; fmt.Sprint(got) != "[capped]" {
			return fmt.Errorf("expired %v", got)
		}
		return nil
	})
	h.Clock.Advance(15 * time.Minute) // +35m: idle expired, used (touched at +20m) not yet
	advanceUntil(t, h, func() error {
		if got := ex.snapshot()["n1"]; fmt.Sprint(got) != "[capped idle]" {
			return fmt.Errorf("expired %v", got)
		}
		return nil
	})
	if _, err := owner.Get("used"); err != nil {
		t.Fatalf("touched session expired early: %v", err)
	}
	h.Clock.Advance(20 * time.Minute) // +55m
	advanceUntil(t, h, func() error {
		if got := ex.snapshot()["n1"]; len(got) != 3 {
			return fmt.Errorf("expired %v", got)
		}
		return nil
	})
	for _, id := range []string{"idle", "used", "capped"} {
		for i := range 3 {
			clustertest.Eventually(t, 5*time.Second, func() error {
				if _, err := h.Node(i).Get(id); err == nil {
					return fmt.Errorf("%s still has %s", h.Name(i), id)
				}
				return nil
			})
		}
	}
	h.Clock.Advance(time.Hour) // many more sweeps: nothing fires twice
	h.Clock.Advance(time.Hour)
	got := ex.snapshot()
	if len(got["n1"]) != 3 || len(got["n2"]) != 0 || len(got["n3"]) != 0 {
		t.Fatalf("expiry listeners fired %v, want the three sessions once each on n1 only", got)
	}
}

// TestOrphanExpiresOnceAfterOwnerDies: nobody requests the session of a
// dead owner; one survivor (the designated sweeper) takes it over and
// expires it, once.
func TestOrphanExpiresOnceAfterOwnerDies(t *testing.T) {
	h, ex := expiringCluster(t, 3)
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "orphan", IdleTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "orphan", 1, map[string]string{}, 1, 2)
	h.Crash(0)
	h.WaitMembers(10*time.Second, 1, 1, 2)
	h.WaitMembers(10*time.Second, 2, 1, 2)
	h.Clock.Advance(2 * time.Minute)
	advanceUntil(t, h, func() error {
		got := ex.snapshot()
		if len(got["n2"])+len(got["n3"]) == 0 {
			return fmt.Errorf("not expired yet")
		}
		return nil
	})
	converged(t, h, "orphan", 0, nil, 1, 2)
	for range 5 { // more sweeps on both survivors
		h.Clock.Advance(time.Second)
	}
	got := ex.snapshot()
	if len(got["n2"])+len(got["n3"]) != 1 {
		t.Fatalf("listeners fired %v, want once", got)
	}
}

func TestTombstonesAreDroppedAfterTheirTime(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(_ int, o *cluster.Options) {
		o.TombstoneTTL = 10 * time.Minute
	}})
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "s", IdleTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := h.Node(0).Delete(bg, "s"); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "s", 0, nil, 0, 1)
	// Kept until the session would have expired anyway (+1h), plus the TTL.
	h.Clock.Advance(65 * time.Minute)
	h.Clock.Advance(time.Second)
	for i := range 2 {
		if h.Node(i).Info().Tombstones != 1 {
			t.Fatalf("%s dropped the tombstone before the session's natural expiry plus TTL", h.Name(i))
		}
	}
	h.Clock.Advance(10 * time.Minute)
	advanceUntil(t, h, func() error {
		for i := range 2 {
			if n := h.Node(i).Info().Tombstones; n != 0 {
				return fmt.Errorf("%s holds %d tombstones", h.Name(i), n)
			}
		}
		return nil
	})
}

// TestWriteNeverRevivesAnExpiredSession: with the sweep far off, a write,
// a touch or a delete that reaches an owned session past its idle time
// finds it expired (ErrNotFound) instead of extending its life; the expiry
// is replicated and reported once, as if the sweep had found it.
func TestWriteNeverRevivesAnExpiredSession(t *testing.T) {
	ex := &expiries{got: map[string][]string{}}
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(i int, o *cluster.Options) {
		o.OnExpire = ex.hook(fmt.Sprintf("n%d", i+1))
		o.SweepInterval = 24 * time.Hour // only the writes below can find the expiry
	}})
	owner := h.Node(0)
	tests := []struct {
		name  string
		write func(id string) error
	}{
		{"update", func(id string) error {
			_, err := owner.Update(bg, cluster.Delta{ID: id, Base: 1, Set: vals("k", "late")})
			return err
		}},
		{"touch", func(id string) error { return owner.Touch(bg, id, time.Time{}) }},
		{"delete", func(id string) error { return owner.Delete(bg, id) }},
	}
	for _, tt := range tests {
		if _, err := owner.Create(bg, cluster.NewSession{ID: tt.name, IdleTimeout: 10 * time.Minute, Values: vals("k", "v")}); err != nil {
			t.Fatal(err)
		}
	}
	h.Clock.Advance(10 * time.Minute)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.write(tt.name); !errors.Is(err, cluster.ErrNotFound) {
				t.Fatalf("%s of an expired session: %v, want ErrNotFound", tt.name, err)
			}
			if err := tt.write(tt.name); !errors.Is(err, cluster.ErrNotFound) {
				t.Fatalf("second %s: %v, want ErrNotFound", tt.name, err)
			}
		})
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		got := ex.snapshot()
		if len(got["n1"]) != len(tests) || len(got["n2"]) != 0 {
			return fmt.Errorf("expiries reported %v, want each session once on n1", got)
		}
		if ts := h.Node(1).Info().Tombstones; ts != len(tests) {
			return fmt.Errorf("replica holds %d tombstones, want %d", ts, len(tests))
		}
		return nil
	})
}
