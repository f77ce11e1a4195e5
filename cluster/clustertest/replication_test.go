package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

var bg = context.Background()

func vals(kv ...string) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = []byte(kv[i+1])
	}
	return m
}

func str(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// converged waits until every running node's copy of id has version and
// values want (nil want: deleted everywhere).
func converged(t *testing.T, h *clustertest.Harness, id string, version uint64, want map[string]string, nodes ...int) {
	t.Helper()
	clustertest.Eventually(t, 10*time.Second, func() error {
		for _, i := range nodes {
			r, err := h.Node(i).Get(id)
			if want == nil {
				if !errors.Is(err, cluster.ErrNotFound) {
					return fmt.Errorf("%s: %s still there (v%d, err %v)", h.Name(i), id, r.Version, err)
				}
				if h.Node(i).Info().Tombstones == 0 {
					return fmt.Errorf("%s: no tombstone for %s yet", h.Name(i), id)
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %s: %v", h.Name(i), id, err)
			}
			if r.Version != version || !maps.Equal(str(r.Values), want) {
				return fmt.Errorf("%s: %s at v%d %v, want v%d %v", h.Name(i), id, r.Version, str(r.Values), version, want)
			}
		}
		return nil
	})
}

// TestOrderedExactlyOnceUnderFaults writes a stream of deltas while the
// network drops, duplicates, delays and reorders replication frames; every
// replica must end with exactly the owner's record.
func TestOrderedExactlyOnceUnderFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults clustertest.Faults
		check  func(clustertest.Stats) bool
	}{
		{"duplicates", clustertest.Faults{Duplicate: 0.3}, func(s clustertest.Stats) bool { return s.FramesDuplicated > 0 }},
		{"reordering", clustertest.Faults{Reorder: 0.3, Delay: time.Millisecond}, func(s clustertest.Stats) bool { return s.FramesReordered > 0 }},
		{"loss", clustertest.Faults{Drop: 0.1}, func(s clustertest.Stats) bool { return s.FramesDropped > 0 }},
		{"everything", clustertest.Faults{Drop: 0.05, Duplicate: 0.1, Reorder: 0.1, Delay: time.Millisecond},
			func(s clustertest.Stats) bool {
				return s.FramesDropped > 0 && s.FramesDuplicated > 0 && s.FramesReordered > 0
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(_ int, o *cluster.Options) {
				o.Ack = cluster.AckNone // many writes in flight at once
			}})
			h.Net.SetFaults("", "", tc.faults)
			owner := h.Node(0)
			want := map[string]map[string]string{}
			for s := range 3 {
				id := fmt.Sprintf("s%d", s)
				if _, err := owner.Create(bg, cluster.NewSession{ID: id, Values: vals("created", id)}); err != nil {
					t.Fatal(err)
				}
				want[id] = map[string]string{"created": id}
			}
			const writes = 60
			for w := range writes {
				id := fmt.Sprintf("s%d", w%3)
				k := fmt.Sprintf("k%d", w%7)
				d := cluster.Delta{ID: id, Set: vals(k, fmt.Sprint(w))}
				want[id][k] = fmt.Sprint(w)
				if w%11 == 0 {
					d.Remove = []string{"created"}
					delete(want[id], "created")
				}
				if _, err := owner.Update(bg, d); err != nil {
					t.Fatal(err)
				}
			}
			for s := range 3 {
				id := fmt.Sprintf("s%d", s)
				converged(t, h, id, 1+writes/3, want[id], 0, 1, 2)
			}
			if st := h.Net.Stats(); !tc.check(st) {
				t.Fatalf("the network injected no such fault: %+v", st)
			}
		})
	}
}

// TestSyncWriteWaitsForAPeer checks that a sync write returns only once a
// peer has applied it, and that an async write does not wait.
func TestSyncWriteWaitsForAPeer(t *testing.T) {
	for _, mode := range []cluster.AckMode{cluster.AckOne, cluster.AckAll} {
		t.Run(mode.String(), func(t *testing.T) {
			h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(_ int, o *cluster.Options) { o.Ack = mode }})
			if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "s"}); err != nil {
				t.Fatal(err)
			}
			peersWithIt := func() int {
				n := 0
				for _, i := range []int{1, 2} {
					if r, err := h.Node(i).Get("s"); err == nil && r.Version >= 2 {
						n++
					}
				}
				return n
			}
			// Slow down n1 → n3 only: with "one" the write returns when n2 has
			// it; with "all" it also waits for n3.
			h.Net.SetFaults(h.Addr(0), h.Addr(2), clustertest.Faults{Delay: 50 * time.Millisecond})
			if _, err := h.Node(0).Update(bg, cluster.Delta{ID: "s", Set: vals("k", "v")}); err != nil {
				t.Fatal(err)
			}
			got := peersWithIt()
			min := 1
			if mode == cluster.AckAll {
				min = 2
			}
			if got < min {
				t.Fatalf("%s write returned when %d peers had it, want >= %d", mode, got, min)
			}
		})
	}
}

func TestKeyWiseMergeOfConcurrentRequests(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2})
	n := h.Node(0)
	if _, err := n.Create(bg, cluster.NewSession{ID: "s", Values: vals("a", "0", "b", "0")}); err != nil {
		t.Fatal(err)
	}
	// Two requests loaded version 1; one writes a, the other b.
	r1, err := n.Update(bg, cluster.Delta{ID: "s", Base: 1, Set: vals("a", "1")})
	if err != nil || len(r1.Conflicts) != 0 {
		t.Fatalf("first: %v %v", r1.Conflicts, err)
	}
	r2, err := n.Update(bg, cluster.Delta{ID: "s", Base: 1, Set: vals("b", "2")})
	if err != nil || len(r2.Conflicts) != 0 {
		t.Fatalf("different keys must not conflict: %v %v", r2.Conflicts, err)
	}
	// A third also loaded version 1 and writes a: a conflict, reported; the
	// write applied last wins.
	r3, err := n.Update(bg, cluster.Delta{ID: "s", Base: 1, Set: vals("a", "3"), Remove: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(r3.Conflicts) != "[a b]" {
		t.Fatalf("conflicts %v, want [a b]", r3.Conflicts)
	}
	converged(t, h, "s", 4, map[string]string{"a": "3"}, 0, 1)
}

func TestTombstoneIsFinal(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	owner := h.Node(0)
	if _, err := owner.Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "v")}); err != nil {
		t.Fatal(err)
	}
	// n3 gets n1's frames late and out of order: the delete can overtake
	// the updates before it on the wire; the frames are re-sequenced.
	h.Net.SetFaults(h.Addr(0), h.Addr(2), clustertest.Faults{Delay: 5 * time.Millisecond, Reorder: 0.5, Duplicate: 0.3})
	for i := range 5 {
		if _, err := owner.Update(bg, cluster.Delta{ID: "s", Set: vals("k", fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := owner.Delete(bg, "s"); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "s", 0, nil, 0, 1, 2)
	// Deleted means deleted: no write, no takeover, no re-creation.
	if _, err := owner.Update(bg, cluster.Delta{ID: "s", Set: vals("k", "late")}); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("update after delete: %v", err)
	}
	if _, err := h.Node(1).Claim(bg, "s"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("claim after delete: %v", err)
	}
	if _, err := h.Node(2).Create(bg, cluster.NewSession{ID: "s"}); !errors.Is(err, cluster.ErrExists) {
		t.Fatalf("create over a tombstone: %v", err)
	}
}

func TestTouchesAreBatchedToReplicas(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2})
	owner := h.Node(0)
	if _, err := owner.Create(bg, cluster.NewSession{ID: "s", IdleTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "s", 1, map[string]string{}, 1)
	sent := h.Observer(0).Sent.Load()
	h.Clock.Advance(time.Minute)
	for range 50 {
		if err := owner.Touch(bg, "s", time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	want := h.Clock.Now()
	clustertest.Eventually(t, 5*time.Second, func() error {
		r, err := h.Node(1).Get("s")
		if err != nil || !r.LastAccess.Equal(want) {
			return fmt.Errorf("replica last access %v (%v), want %v", r.LastAccess, err, want)
		}
		return nil
	})
	if n := h.Observer(0).Sent.Load() - sent; n > 5 {
		t.Fatalf("50 touches sent %d messages, want a batch", n)
	}
	if err := h.Node(1).Touch(bg, "s", time.Time{}); !errors.Is(err, cluster.ErrNotOwner) {
		t.Fatalf("touch on a replica: %v", err)
	}
}

// TestStalledConnectionIsDialledAgain: a replication connection on which
// nothing is acknowledged for a while, although it does not break (its
// frames vanish, as behind a firewall that drops them, or under TCP backing
// off long after a partition healed), is closed and dialled again, and the
// write goes through once frames flow.
func TestStalledConnectionIsDialledAgain(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(_ int, o *cluster.Options) {
		o.Ack, o.AckTimeout = cluster.AckNone, time.Minute
	}})
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "1")}); err != nil {
		t.Fatal(err)
	}
	key := "replication " + h.Addr(0) + " " + h.Addr(1)
	before := h.Net.Stats().Dials[key]
	h.Net.SetFaults(h.Addr(0), h.Addr(1), clustertest.Faults{Drop: 1})
	if _, err := h.Node(0).Update(bg, cluster.Delta{ID: "s", Set: vals("k", "2")}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 20*time.Second, func() error {
		if d := h.Net.Stats().Dials[key]; d <= before {
			return fmt.Errorf("no new replication connection yet (%d dials)", d)
		}
		return nil
	})
	h.Net.SetFaults(h.Addr(0), h.Addr(1), clustertest.Faults{})
	clustertest.Eventually(t, 10*time.Second, func() error {
		if r, err := h.Node(1).Get("s"); err != nil || string(r.Values["k"]) != "2" {
			return fmt.Errorf("n2 holds %v (%v)", r.Values, err)
		}
		return nil
	})
}
