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

// TestClaimSurvivesAnswersLostToADeadLink: n1 claims a session, and looks
// for one it has no copy of, while its peers believe it dead and it still
// believes them alive — as an owner woken from a freeze (SIGSTOP) does,
// its gossip view not yet updated and theirs not yet corrected. They
// receive its prepare and query and answer them, but their answers go to
// links that gossip closed, and are lost. Once gossip has them see n1
// alive again, the claim and the search must complete, not wait out
// ClaimTimeout — the claim leaving every peer holding a promise nobody
// will redeem (the owner fenced, the nodes' views of the session
// differing until the next request).
//
// Found by TestFreezeOwner (demo/cart/failover) on a loaded machine: the
// woken owner's queued write failed with "takeover did not complete in
// time: waiting for [n3]" and n2 went on showing n1 as the owner of a
// session it owned itself.
func TestClaimSurvivesAnswersLostToADeadLink(t *testing.T) {
	for _, mode := range []cluster.AckMode{cluster.AckOne, cluster.AckMajority} {
		t.Run(mode.String(), func(t *testing.T) {
			sent := &sentTo{peers: map[string]bool{}}
			h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(i int, o *cluster.Options) {
				o.Ack = mode
				if i == 0 {
					sent.Observer = o.Observer
					o.Observer = sent
					// n1 does not probe during the test: it keeps seeing
					// its peers alive while gossip with them is cut, as a
					// node that has just woken up does.
					o.Gossip.ProbeInterval = time.Hour
					o.Gossip.PushPullInterval = time.Hour
				}
			}})
			n1, n2 := h.Node(0), h.Node(1)
			r, err := n2.Create(bg, cluster.NewSession{ID: "s", Values: vals("k", "1")})
			if err != nil {
				t.Fatal(err)
			}
			converged(t, h, "s", r.Version, map[string]string{"k": "1"}, 0, 1, 2)
			// Gossip to and from n1 is cut; replication is not. n2 and n3
			// declare n1 dead and drop their links to it.
			cut := clustertest.Faults{Drop: 1}
			h.Net.SetGossipFaults(h.Addr(0), "", cut)
			h.Net.SetGossipFaults("", h.Addr(0), cut)
			h.WaitMembers(10*time.Second, 1, 1, 2)
			h.WaitMembers(10*time.Second, 2, 1, 2)
			h.WaitMembers(time.Second, 0, 0, 1, 2)

			claimed := make(chan error, 1)
			go func() {
				c, err := n1.Claim(bg, "s")
				if err == nil && c.Owner != "n1" {
					err = fmt.Errorf("claimed as %s", c.Owner)
				}
				claimed <- err
			}()
			// n2 (the owner) shows n1 once it promised n1's ballot.
			clustertest.Eventually(t, 5*time.Second, func() error {
				if c, err := n2.Get("s"); err != nil || c.Owner != "n1" {
					return fmt.Errorf("n2 has not promised n1's ballot: %+v %v", c, err)
				}
				return nil
			})
			// A session n1 never received (n2's link to it is down).
			if _, err := n2.Create(bg, cluster.NewSession{ID: "q", Values: vals("k", "q")}); err != nil {
				t.Fatal(err)
			}
			found := make(chan error, 1)
			go func() {
				c, err := n1.Find(bg, "q")
				if err == nil && string(c.Values["k"]) != "q" {
					err = fmt.Errorf("found %v", str(c.Values))
				}
				found <- err
			}()
			clustertest.Eventually(t, 5*time.Second, func() error {
				if !sent.both("query", "n2", "n3") {
					return errors.New("n1 has not sent its query to n2 and n3 yet")
				}
				return nil
			})
			// n2 and n3 answered both: each processes n1's messages in
			// order, and the prepare and the query were sent before this.
			if _, err := n1.Create(bg, cluster.NewSession{ID: "marker"}); err != nil {
				t.Fatal(err)
			}
			converged(t, h, "marker", 1, map[string]string{}, 1, 2)
			select {
			case err := <-claimed:
				t.Fatalf("the claim ended while its answers could not arrive: %v", err)
			case err := <-found:
				t.Fatalf("the search ended while its answers could not arrive: %v", err)
			default:
			}

			h.Net.SetGossipFaults(h.Addr(0), "", clustertest.Faults{})
			h.Net.SetGossipFaults("", h.Addr(0), clustertest.Faults{})
			if err := <-claimed; err != nil {
				t.Fatalf("n1's claim once its peers see it alive again: %v", err)
			}
			if err := <-found; err != nil {
				t.Fatalf("n1's search once its peers see it alive again: %v", err)
			}
			res, err := n1.Update(bg, cluster.Delta{ID: "s", Set: vals("k", "2")})
			if err != nil {
				t.Fatal(err)
			}
			converged(t, h, "s", res.Record.Version, map[string]string{"k": "2"}, 0, 1, 2)
			for i := range 3 {
				if c, _ := h.Node(i).Get("s"); c.Owner != "n1" || c.Epoch != res.Record.Epoch {
					t.Fatalf("%s shows %s epoch %d, want n1 epoch %d", h.Name(i), c.Owner, c.Epoch, res.Record.Epoch)
				}
			}
		})
	}
}

// sentTo records which peers a node wrote messages of each type to.
type sentTo struct {
	cluster.Observer
	mu    sync.Mutex
	peers map[string]bool // "type peer"
}

func (s *sentTo) MessageSent(peer string, t cluster.MessageType, bytes int) {
	s.mu.Lock()
	s.peers[t.String()+" "+peer] = true
	s.mu.Unlock()
	s.Observer.MessageSent(peer, t, bytes)
}

// both reports whether messages of type t were written to every peer.
func (s *sentTo) both(t string, peers ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range peers {
		if !s.peers[t+" "+p] {
			return false
		}
	}
	return true
}
