package clustertest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

// TestFindReachesACopyThisNodeNeverReceived: n1's write was acknowledged
// by n3 while n2 never got it, then n1 died. n2 must still find it.
func TestFindReachesACopyThisNodeNeverReceived(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	h.Net.SetFaults(h.Addr(0), h.Addr(1), clustertest.Faults{Delay: time.Hour})
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "s", Values: vals("item", "book")}); err != nil {
		t.Fatal(err)
	}
	h.Crash(0)
	if _, err := h.Node(1).Get("s"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("n2 should not have the session locally: %v", err)
	}
	r, err := h.Node(1).Find(bg, "s")
	if err != nil || string(r.Values["item"]) != "book" || r.Owner != "n1" {
		t.Fatalf("find: %+v %v", r, err)
	}
	if _, err := h.Node(1).Get("s"); err != nil {
		t.Fatalf("the found copy is kept as a replica: %v", err)
	}
	if r, err := h.Node(1).Claim(bg, "s"); err != nil || string(r.Values["item"]) != "book" {
		t.Fatalf("claim: %+v %v", r, err)
	}
	if _, err := h.Node(2).Find(bg, "unknown"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("find of an unknown session: %v", err)
	}
}

// TestFindSeesTheOwnersLatestAccess: a replica's copy looks expired because
// the owner's touches have not been sent yet; Find asks the owner.
func TestFindSeesTheOwnersLatestAccess(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(_ int, o *cluster.Options) {
		o.TouchInterval = time.Hour // no batch is sent during the test
	}})
	owner := h.Node(0)
	if _, err := owner.Create(bg, cluster.NewSession{ID: "s", IdleTimeout: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "s", 1, map[string]string{}, 1)
	h.Clock.Advance(9 * time.Minute)
	if err := owner.Touch(bg, "s", time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(2 * time.Minute)
	if _, err := h.Node(1).Get("s"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("the replica's own copy should look expired: %v", err)
	}
	r, err := h.Node(1).Find(bg, "s")
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	if want := h.Clock.Now().Add(-2 * time.Minute); !r.LastAccess.Equal(want) {
		t.Fatalf("last access %v, want the owner's %v", r.LastAccess, want)
	}
}

// TestRestartedNodeReclaimsBeforeWriting: a node that restarts finds its
// past incarnation's sessions, owned by its name, and must win them again
// (a new epoch) before writing.
// TestRestartedNodeReclaimsBeforeWriting: a restarted node holds, from its
// peers, copies its past incarnation owned; it claims them again before it
// serves them, for a read as for a write.
func TestRestartedNodeReclaimsBeforeWriting(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	created, err := h.Node(0).Create(bg, cluster.NewSession{ID: "s", Values: vals("v", "1")})
	if err != nil {
		t.Fatal(err)
	}
	converged(t, h, "s", 1, map[string]string{"v": "1"}, 1, 2)
	h.Crash(0)
	h.Start(0)
	h.WaitReady(10*time.Second, 0)
	r, err := h.Node(0).Get("s")
	if err != nil || r.Owner != "n1" {
		t.Fatalf("restarted node's copy: %+v %v", r, err)
	}
	// A read claims it again too, and can then be confirmed (it would
	// be refused forever if Find served the past incarnation's copy).
	read, err := h.Node(0).Find(bg, "s")
	if err != nil || read.Epoch <= created.Epoch {
		t.Fatalf("read on the restarted node: epoch %d (the past incarnation's %d), %v", read.Epoch, created.Epoch, err)
	}
	if err := h.Node(0).Confirm(bg, read); err != nil {
		t.Fatalf("confirming the read: %v", err)
	}
	r = read
	res, err := h.Node(0).Update(bg, cluster.Delta{ID: "s", Base: r.Version, Set: vals("v", "2")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.Epoch <= created.Epoch {
		t.Fatalf("wrote under epoch %d, the past incarnation's was %d: no re-claim", res.Record.Epoch, created.Epoch)
	}
	converged(t, h, "s", 2, map[string]string{"v": "2"}, 0, 1, 2)
}

func TestGetOnTheOwnerExpiresOnce(t *testing.T) {
	ex := &expiries{got: map[string][]string{}}
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(i int, o *cluster.Options) {
		o.OnExpire = ex.hook(h0name(i))
		o.SweepInterval = 24 * time.Hour // only Get can expire the session here
	}})
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "s", IdleTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(61 * time.Second)
	for range 3 {
		if _, err := h.Node(0).Get("s"); !errors.Is(err, cluster.ErrNotFound) {
			t.Fatalf("expired session returned: %v", err)
		}
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if got := ex.snapshot(); len(got["n1"]) != 1 {
			return errors.New("not reported yet")
		}
		return nil
	})
	converged(t, h, "s", 0, nil, 0, 1)
	if got := ex.snapshot(); len(got["n1"]) != 1 || len(got["n2"]) != 0 {
		t.Fatalf("expiry reported %v, want once on n1", got)
	}
}

func h0name(i int) string { return []string{"n1", "n2", "n3", "n4"}[i] }

// TestOwnerReadsOnlyAcknowledgedWrites: a write the peer did not
// acknowledge in time fails, but stays in the owner's copy. A read on the
// owner must not return it as if it were safe: it sends the record again
// and returns it once the peer has it, or fails while the peer does not
// answer. (Otherwise a takeover after the owner's death could lose what a
// reader already saw.)
func TestOwnerReadsOnlyAcknowledgedWrites(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(_ int, o *cluster.Options) {
		o.AckTimeout = 200 * time.Millisecond
	}})
	owner := h.Node(0)
	r, err := owner.Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "v1")})
	if err != nil {
		t.Fatal(err)
	}
	h.Net.SetFaults(h.Addr(0), h.Addr(1), clustertest.Faults{Drop: 1})
	if _, err := owner.Update(bg, cluster.Delta{ID: "s", Base: r.Version, Set: vals("k", "v2")}); !errors.Is(err, cluster.ErrNotAcknowledged) {
		t.Fatalf("update with its peer unreachable: %v, want ErrNotAcknowledged", err)
	}
	if r, err := owner.Find(bg, "s"); !errors.Is(err, cluster.ErrNotAcknowledged) {
		t.Fatalf("read on the owner while the write is unconfirmed: %+v %v, want ErrNotAcknowledged", r, err)
	}
	h.Net.SetFaults(h.Addr(0), h.Addr(1), clustertest.Faults{})
	clustertest.Eventually(t, 10*time.Second, func() error {
		r, err := owner.Find(bg, "s")
		if err != nil {
			return err
		}
		if got := string(r.Values["k"]); got != "v2" {
			t.Fatalf("the owner's copy: k = %q", got)
		}
		return nil
	})
	if r, err := h.Node(1).Get("s"); err != nil || string(r.Values["k"]) != "v2" {
		t.Fatalf("the peer's copy once the owner's read returned: %+v %v", r, err)
	}
}
