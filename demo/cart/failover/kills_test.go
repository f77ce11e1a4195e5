package failover_test

import (
	"net/http"
	"testing"

	"github.com/tetherlb/tether/internal/proctest"
)

// TestTwoKilledAtOnce: two nodes SIGKILLed at the same moment, the cart's
// owner among them, lose no acknowledged item — with five nodes at the
// majority level, where three survive and make a majority; and with three
// nodes at sync-all, where the one survivor holds every acknowledged item,
// refuses to serve alone (no majority) and serves the cart whole once a
// restarted node makes a majority again.
func TestTwoKilledAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		nodes int
		mode  string
	}{
		{"5 nodes, majority", 5, "majority"},
		{"3 nodes, sync-all", 3, "sync-all"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startPartitionable(t, tt.nodes, tt.mode)
			owner, other, survivor := s.nodes[0], s.nodes[1], s.nodes[2]
			u := &user{name: "k"}
			for range 5 {
				s.add(u, owner.url()) // n1 owns the cart
			}
			owner.proc.Kill()
			other.proc.Kill()

			if tt.nodes == 3 {
				// Alone, the survivor cannot know that it holds the
				// cluster's last word: it refuses, reads included.
				if r := s.call(s.client, survivor.url(), u.sid, ""); r.status != http.StatusServiceUnavailable {
					t.Fatalf("the survivor alone answered a read: %d %v %v, want 503", r.status, r.cart.Items, r.err)
				}
				s.start(owner) // back, empty: it pulls the survivor's state
				proctest.WaitHTTP(t, owner.url()+"/healthz", http.StatusOK, startup)
			}
			got := s.view(u, survivor.url()) // every acknowledged item, taken over by the survivor
			s.add(u, survivor.url())
			t.Logf("after two nodes died at once, %s served %d acknowledged items", survivor.name, len(got.Items))
		})
	}
}
