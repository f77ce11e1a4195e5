package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

func majority(_ int, o *cluster.Options) { o.Ack = cluster.AckMajority }

// TestMajorityMinorityOwnerRefusesWrites: with AckMajority, the owner cut
// off from the two other nodes of three acknowledges no write; the
// majority side takes the session over with every acknowledged write; when
// the partition heals, the old owner converges on the majority's copy.
func TestMajorityMinorityOwnerRefusesWrites(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: majority})
	n1, n2 := h.Node(0), h.Node(1)
	r, err := n1.Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "1")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := n1.Update(bg, cluster.Delta{ID: "s", Base: r.Version, Set: vals("k", "2")})
	if err != nil {
		t.Fatal(err)
	}
	r = res.Record
	if err := n1.Confirm(bg, r); err != nil {
		t.Fatalf("the owner's read, confirmed by the majority: %v", err)
	}
	h.Net.Isolate(h.Addr(0))
	// The cut-off owner answers reads from its copy while its lease runs,
	// and the majority's takeover waits for the lease to end: every read
	// the old owner confirmed was asked for before the new owner could
	// write.
	reads := make(chan []time.Time, 1)
	go func() { reads <- confirmUntilRefused(n1, r) }()
	c, err := n2.Claim(bg, "s")
	claimed := time.Now()
	if err != nil {
		t.Fatalf("claim on the majority side, before gossip notices: %v", err)
	}
	confirmed := <-reads
	for _, at := range confirmed {
		if !at.Before(claimed) {
			t.Fatalf("the cut-off owner confirmed a read asked for %v after the takeover", at.Sub(claimed))
		}
	}
	t.Logf("the cut-off owner confirmed %d reads under its lease; the takeover waited for it", len(confirmed))
	if _, err := n1.Update(bg, cluster.Delta{ID: "s", Base: r.Version, Set: vals("k", "lost")}); err == nil {
		t.Fatal("the owner cut off from the majority acknowledged a write")
	}
	h.WaitMembers(10*time.Second, 0, 0) // n1 sees only itself
	if _, err := n1.Update(bg, cluster.Delta{ID: "s", Base: r.Version, Set: vals("k", "lost")}); !errors.Is(err, cluster.ErrNoMajority) {
		t.Fatalf("write on the minority side: %v, want ErrNoMajority", err)
	}
	if i := n1.Info(); i.Majority || i.NoMajority == 0 || i.Size != 3 || i.Quorum != 2 {
		t.Fatalf("the minority node's view: majority %v, %d refused, size %d, quorum %d", i.Majority, i.NoMajority, i.Size, i.Quorum)
	}
	if i := n2.Info(); !i.Majority {
		t.Fatal("the majority side's view: no majority")
	}
	if got := string(c.Values["k"]); got != "2" {
		t.Fatalf("the majority took over k = %q, want the last acknowledged write", got)
	}
	if _, err := n2.Update(bg, cluster.Delta{ID: "s", Base: c.Version, Set: vals("k", "3")}); err != nil {
		t.Fatalf("write on the majority side: %v", err)
	}
	h.Net.Heal(h.Addr(0))
	clustertest.Eventually(t, 20*time.Second, func() error {
		for i := range 3 {
			r, err := h.Node(i).Get("s")
			if err != nil {
				return fmt.Errorf("%s: %v", h.Name(i), err)
			}
			if string(r.Values["k"]) != "3" || r.Owner != "n2" {
				return fmt.Errorf("%s holds k=%s owned by %s", h.Name(i), r.Values["k"], r.Owner)
			}
		}
		return nil
	})
}

// confirmUntilRefused confirms reads of r on n until one fails and returns
// when each confirmed read was asked for.
func confirmUntilRefused(n *cluster.Node, r cluster.Record) []time.Time {
	var ok []time.Time
	for {
		ctx, cancel := context.WithTimeout(bg, 3*time.Second)
		at := time.Now()
		err := n.Confirm(ctx, r)
		cancel()
		if err != nil {
			return ok
		}
		ok = append(ok, at)
	}
}

// TestMajorityMinorityCannotTakeOver: five nodes split {n1,n2} | {n3,n4,n5};
// the minority cannot take a session of the majority's over, however long
// it tries, and the majority keeps writing it.
func TestMajorityMinorityCannotTakeOver(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 5, Options: majority})
	r, err := h.Node(2).Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []int{0, 1} {
		for _, b := range []int{2, 3, 4} {
			h.Net.Partition(h.Addr(a), h.Addr(b))
		}
	}
	h.WaitMembers(10*time.Second, 0, 0, 1)
	if _, err := h.Node(0).Claim(bg, "s"); !errors.Is(err, cluster.ErrNoMajority) {
		t.Fatalf("claim on the minority side: %v, want ErrNoMajority", err)
	}
	h.WaitMembers(10*time.Second, 2, 2, 3, 4)
	if _, err := h.Node(2).Update(bg, cluster.Delta{ID: "s", Base: r.Version, Set: vals("k", "2")}); err != nil {
		t.Fatalf("write on the majority side: %v", err)
	}
}

// TestMajorityTwoOfFiveDie: with five nodes, every acknowledged write is on
// three; when two die at once, the owner among them, the node that takes
// the session over finds the last one.
func TestMajorityTwoOfFiveDie(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 5, Options: majority})
	writeCounter(t, h.Node(0), "s", 20)
	h.Crash(0)
	h.Crash(1)
	h.WaitMembers(10*time.Second, 4, 2, 3, 4)
	c, err := h.Node(4).Claim(bg, "s")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(c.Values["k"]); got != "20" {
		t.Fatalf("after two nodes died, k = %q, want the last acknowledged 20", got)
	}
}

// TestAllOneSurvivorOfTwoKills: at the all level, with three nodes, every
// acknowledged write is on every live node; after two kills, the owner
// among them, the survivor holds every acknowledged write but serves
// nothing alone (no majority); once a killed node is back, it takes the
// session over with every acknowledged write.
func TestAllOneSurvivorOfTwoKills(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(_ int, o *cluster.Options) { o.Ack = cluster.AckAll }})
	writeCounter(t, h.Node(0), "s", 10)
	h.Crash(0)
	h.Crash(1)
	survivor := h.Node(2)
	if got, err := survivor.Get("s"); err != nil || string(got.Values["k"]) != "10" {
		t.Fatalf("the survivor's copy: %+v %v, want every acknowledged write", got, err)
	}
	h.WaitMembers(10*time.Second, 2, 2)
	if _, err := survivor.Claim(bg, "s"); !errors.Is(err, cluster.ErrNoMajority) {
		t.Fatalf("claim by the survivor alone: %v, want ErrNoMajority", err)
	}
	h.Start(1) // empty, as after a restart
	clustertest.Eventually(t, 10*time.Second, func() error {
		if !survivor.Info().Majority {
			return errors.New("the survivor does not see a majority yet")
		}
		return nil
	})
	c, err := survivor.Claim(bg, "s")
	if err != nil {
		t.Fatalf("claim once a majority is back: %v", err)
	}
	if got := string(c.Values["k"]); got != "10" {
		t.Fatalf("after the majority is back, k = %q, want the last acknowledged 10", got)
	}
}

// TestAckAutoByClusterSize: the default level is majority with three nodes
// or more, sync (one peer) with two.
func TestAckAutoByClusterSize(t *testing.T) {
	for _, tt := range []struct {
		nodes int
		want  string
	}{{2, "sync"}, {3, "majority"}, {5, "majority"}} {
		h := clustertest.New(t, clustertest.Config{Nodes: tt.nodes, Options: func(_ int, o *cluster.Options) { o.Ack = cluster.AckAuto }})
		if got := h.Node(0).Info(); got.Mode != tt.want || got.Size != tt.nodes {
			t.Errorf("%d nodes: mode %s, size %d; want %s", tt.nodes, got.Mode, got.Size, tt.want)
		}
	}
}

// writeCounter creates session id on owner with k = 0, then sets k to 1,
// 2, … n, each write acknowledged.
func writeCounter(t *testing.T, owner *cluster.Node, id string, n int) {
	t.Helper()
	r, err := owner.Create(bg, cluster.NewSession{ID: id, Values: vals("k", "0")})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		res, err := owner.Update(bg, cluster.Delta{ID: id, Base: r.Version, Set: vals("k", fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		r = res.Record
	}
}

// TestLastKnownNeverShowsAnUnacknowledgedWrite: an owner cut off from the
// majority gives its last known copy (for reads served marked stale) until
// a write to it fails unacknowledged; from then on it refuses, because the
// copy holds a write the majority may never have seen. A replica gives
// its copy.
func TestLastKnownNeverShowsAnUnacknowledgedWrite(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(_ int, o *cluster.Options) {
		o.Ack = cluster.AckMajority
		o.AckTimeout = 500 * time.Millisecond
	}})
	n1 := h.Node(0)
	r, err := n1.Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "1")})
	if err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 10*time.Second, func() error { // a majority acknowledged; both replicas have it
		_, err := h.Node(1).Get("s")
		return err
	})
	h.Net.Isolate(h.Addr(0))
	if got, err := n1.LastKnown("s"); err != nil || string(got.Values["k"]) != "1" {
		t.Fatalf("last known copy before any failed write: %v %v", got.Values, err)
	}
	if _, err := n1.Update(bg, cluster.Delta{ID: "s", Base: r.Version, Set: vals("k", "unacknowledged")}); err == nil {
		t.Fatal("the cut-off owner acknowledged a write")
	}
	if got, err := n1.LastKnown("s"); !errors.Is(err, cluster.ErrNotAcknowledged) {
		t.Fatalf("last known copy after a failed write: %v %v, want ErrNotAcknowledged", got.Values, err)
	}
	if got, err := h.Node(1).LastKnown("s"); err != nil || string(got.Values["k"]) != "1" {
		t.Fatalf("a replica's last known copy: %v %v", got.Values, err)
	}
}

// TestMajorityMinorityOwnerDeleteIsNotRead: an owner cut off from the
// majority that fails to delete a session keeps a tombstone no peer
// acknowledged; it must not answer later reads that the session is gone
// (the majority takes the live session over), nor give the tombstone as
// its last known copy.
func TestMajorityMinorityOwnerDeleteIsNotRead(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(_ int, o *cluster.Options) {
		o.Ack = cluster.AckMajority
		o.AckTimeout = 500 * time.Millisecond
	}})
	n1, n2 := h.Node(0), h.Node(1)
	if _, err := n1.Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "1")}); err != nil {
		t.Fatal(err)
	}
	h.Net.Isolate(h.Addr(0))
	if err := n1.Delete(bg, "s"); err == nil {
		t.Fatal("the cut-off owner acknowledged a delete")
	}
	if _, err := n1.Get("s"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("the failed delete left no tombstone on the owner (%v): the test did not cut it off in time", err)
	}
	if _, err := n1.Find(bg, "s"); err == nil || errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("the cut-off owner's read after its failed delete: %v, want a refusal", err)
	}
	if _, err := n1.LastKnown("s"); !errors.Is(err, cluster.ErrNotAcknowledged) {
		t.Fatalf("the cut-off owner's last known copy after its failed delete: %v, want ErrNotAcknowledged", err)
	}
	c, err := n2.Claim(bg, "s")
	if err != nil || string(c.Values["k"]) != "1" {
		t.Fatalf("the majority's takeover: %v %v, want the live session", c.Values, err)
	}
	h.Net.Heal(h.Addr(0))
	clustertest.Eventually(t, 20*time.Second, func() error {
		for i := range 3 {
			if r, err := h.Node(i).Get("s"); err != nil || r.Owner != "n2" {
				return fmt.Errorf("%s: %v owned by %s", h.Name(i), err, r.Owner)
			}
		}
		return nil
	})
}

// TestMajorityReplicaTombstoneIsClaimed: five nodes; the owner n1, cut off
// from n3, n4 and n5, fails to delete a session, and only n2 receives the
// tombstone. n2 may answer that the session is gone only once a majority
// holds the tombstone: then no other majority can take the live session
// over after that answer, even with n2 and n1 cut off.
func TestMajorityReplicaTombstoneIsClaimed(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 5, Options: func(_ int, o *cluster.Options) {
		o.Ack = cluster.AckMajority
		o.AckTimeout = 500 * time.Millisecond
	}})
	n1, n2, n3 := h.Node(0), h.Node(1), h.Node(2)
	if _, err := n1.Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "1")}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		for i := range 5 {
			if _, err := h.Node(i).Get("s"); err != nil {
				return fmt.Errorf("%s: %v", h.Name(i), err)
			}
		}
		return nil
	})
	for _, b := range []int{2, 3, 4} {
		h.Net.Partition(h.Addr(0), h.Addr(b))
	}
	if err := n1.Delete(bg, "s"); err == nil {
		t.Fatal("an owner that reaches one peer of four acknowledged a delete")
	}
	if _, err := n2.Get("s"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("n2 holds no tombstone (%v): the test did not cut n1 off in time", err)
	}
	if _, err := n2.Find(bg, "s"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("n2's read of the session it holds a tombstone of: %v, want ErrNotFound", err)
	}
	h.Net.Isolate(h.Addr(1))
	h.WaitMembers(10*time.Second, 2, 2, 3, 4)
	if r, err := n3.Claim(bg, "s"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("n3's takeover after n2 answered the session was gone: %v %v, want ErrNotFound", r.Values, err)
	}
}
