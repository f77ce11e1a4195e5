package clusterstore_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
	"github.com/tetherlb/tether/session"
)

// TestStaleReads: with session.Options.StaleReads, a node cut off from the
// majority serves read-only requests from its last known copy, marked
// stale (Session.Stale, "Tether-Stale: 1"), whether it owned the session
// (once its lease has run out) or held a replica; it still refuses writes
// (503). Without the option, such a read is refused (503).
func TestStaleReads(t *testing.T) {
	stale := func(i int, o *session.Options) { o.StaleReads = i < 2 } // n1 and n2; not n3
	c := newNodesSession(t, 3, cluster.AckMajority, nil, stale)
	sid := c.add(0, "", "a").cookie
	c.add(0, sid, "b")
	id := sid[:len(sid)-len(".n1")]
	c.copies(id, "n1", []string{"a", "b"})
	want := []string{"a", "b"}

	for _, tt := range []struct {
		name string
		node int
		want int // status of the read on the cut-off node
	}{
		{"the owner, cut off", 0, http.StatusOK},
		{"a replica, cut off", 1, http.StatusOK},
		{"a replica, cut off, without StaleReads", 2, http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.net.Isolate(c.addrs[tt.node])
			defer func() {
				c.net.Heal(c.addrs[tt.node])
				c.settle()
			}()
			// The owner answers from its lease for a moment: wait for the
			// read that can no longer be confirmed.
			var r reply
			clustertest.Eventually(t, 10*time.Second, func() error {
				r = c.do(tt.node, http.MethodGet, "/ro", sid)
				if r.status == http.StatusOK && r.header.Get("Tether-Stale") == "" {
					return fmt.Errorf("still confirmed (under the lease)")
				}
				return nil
			})
			if r.status != tt.want {
				t.Fatalf("read on the cut-off node: %d %s, want %d", r.status, r.body, tt.want)
			}
			if tt.want == http.StatusOK {
				if r.header.Get("Tether-Stale") != "1" || r.header.Get("Stale") != "true" {
					t.Fatalf("stale read not marked: Tether-Stale %q, Session.Stale %q", r.header.Get("Tether-Stale"), r.header.Get("Stale"))
				}
				if !slices.Equal(r.items, want) {
					t.Fatalf("stale read: %v, want the last known copy %v", r.items, want)
				}
				if r.cookie != "" {
					t.Fatalf("a stale read rewrote the cookie to %s", r.cookie)
				}
			}
			if w := c.do(tt.node, http.MethodPost, "/add?item=lost", sid); w.status != http.StatusServiceUnavailable {
				t.Fatalf("write on the cut-off node: %d %s, want 503", w.status, w.body)
			}
		})
	}
	// Healed: reads are confirmed again, and no refused write is there.
	r := c.do(0, http.MethodGet, "/ro", sid)
	if r.status != http.StatusOK || r.header.Get("Tether-Stale") != "" || !slices.Equal(r.items, want) {
		t.Fatalf("after the heal: %d, Tether-Stale %q, %v; want a confirmed %v", r.status, r.header.Get("Tether-Stale"), r.items, want)
	}
}
