package clustertest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

func memberState(n *cluster.Node, name string) (cluster.MemberInfo, bool) {
	for _, m := range n.Info().Members {
		if m.Name == name {
			return m, true
		}
	}
	return cluster.MemberInfo{}, false
}

func TestInfoShowsMembersAndLag(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 4})
	n1 := h.Node(0)
	for i := range 3 {
		if _, err := n1.Create(bg, cluster.NewSession{ID: fmt.Sprint("s", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Node(1).Create(bg, cluster.NewSession{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		info := n1.Info()
		if info.Sessions != 4 || info.Owned != 3 || !info.Ready || info.Mode != "majority" {
			return fmt.Errorf("info %+v", info)
		}
		if m, _ := memberState(n1, "n2"); m.Owned != 1 || !m.Connected || m.State != cluster.MemberAlive {
			return fmt.Errorf("n2 as seen by n1: %+v", m)
		}
		return nil
	})
	// n4's frames are held: unacknowledged messages pile up and it shows
	// as suspect while gossip still lists it.
	h.Net.SetFaults(h.Addr(0), h.Addr(3), clustertest.Faults{Delay: time.Hour})
	if _, err := n1.Update(bg, cluster.Delta{ID: "s1", Set: vals("k", "v")}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		m, _ := memberState(n1, "n4")
		if m.Unacked == 0 || m.LagMillis < 1000 || m.State != cluster.MemberSuspect {
			return fmt.Errorf("n4 as seen by n1: %+v", m)
		}
		return nil
	})
	// n3 must be alive in n1's eyes when it leaves: a node a starved
	// machine's gossip already declared dead stays dead, leave or not.
	clustertest.Eventually(t, 10*time.Second, func() error {
		if m, _ := memberState(n1, "n3"); m.State != cluster.MemberAlive {
			return fmt.Errorf("n3 as seen by n1: %s", m.State)
		}
		return nil
	})
	h.Stop(2)  // leaves
	h.Crash(1) // vanishes
	clustertest.Eventually(t, 10*time.Second, func() error {
		left, _ := memberState(n1, "n3")
		dead, _ := memberState(n1, "n2")
		if left.State != cluster.MemberLeft || dead.State != cluster.MemberDead {
			return fmt.Errorf("n3 %s (want left), n2 %s (want dead)", left.State, dead.State)
		}
		return nil
	})
}
