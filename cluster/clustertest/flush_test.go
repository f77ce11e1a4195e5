package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

// TestFlushWaitsForEveryPeer: async writes return at once; Flush returns
// only when every live peer has applied them, so that a node can leave
// without taking a write with it.
func TestFlushWaitsForEveryPeer(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(i int, o *cluster.Options) {
		o.Ack = cluster.AckNone
	}})
	owner := h.Node(0)
	// Frames to n3 are slow: the writes are still on their way when
	// Update returns.
	h.Net.SetFaults(h.Addr(0), h.Addr(2), clustertest.Faults{Delay: 30 * time.Millisecond})
	if _, err := owner.Create(bg, cluster.NewSession{ID: "s", IdleTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := owner.Update(bg, cluster.Delta{ID: "s", Base: uint64(i + 1), Set: vals("k", fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := owner.Flush(bg); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} { // no polling: Flush has waited
		r, err := h.Node(i).Get("s")
		if err != nil || r.Version != 21 || string(r.Values["k"]) != "19" {
			t.Fatalf("%s after Flush: v%d %q (%v), want v21 \"19\"", h.Name(i), r.Version, r.Values["k"], err)
		}
	}
}

// TestFlushGivesUpOnAFrozenPeer: a peer that never acknowledges bounds
// Flush by its context, and the error names it.
func TestFlushGivesUpOnAFrozenPeer(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(i int, o *cluster.Options) {
		o.Ack = cluster.AckNone
	}})
	if _, err := h.Node(0).Create(bg, cluster.NewSession{ID: "s"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Node(0).Flush(bg); err != nil {
		t.Fatal(err)
	}
	h.Freeze(1)
	defer h.Thaw(1)
	if _, err := h.Node(0).Update(bg, cluster.Delta{ID: "s", Base: 1, Set: vals("k", "v")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	err := h.Node(0).Flush(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "n2") {
		t.Fatalf("Flush with a frozen peer: %v, want a deadline error naming n2", err)
	}
}
