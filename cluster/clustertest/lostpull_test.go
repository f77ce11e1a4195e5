package clustertest_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

// TestJoinSurvivesStateLostToADeadLink: a restarted node (n3) pulls its
// peers' state, and n2's transfer is cut as gossip declares n3 dead while
// n3 still sees n2 alive: the chunk written but not flushed is lost with
// the connection, the link's queue dropped. When n2 sees n3 alive again,
// the transfer n3's join waits for must arrive — n2 sends it again — and
// n3 be ready with the whole state, not wait out its JoinTimeout (an hour
// here). (n3 also sees a gap in n2's stream and asks again; before the
// fix, that second transfer completed, the first never did.)
func TestJoinSurvivesStateLostToADeadLink(t *testing.T) {
	block := &chunkBlocker{peer: "n3", blocked: make(chan struct{}), release: make(chan struct{})}
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(i int, o *cluster.Options) {
		switch i {
		case 1:
			block.Observer = o.Observer
			o.Observer = block
		case 2:
			// n3 keeps seeing its peers alive while gossip with them is
			// cut, as a node that has just woken up does.
			o.Gossip.ProbeInterval = time.Hour
			o.Gossip.PushPullInterval = time.Hour
			o.JoinTimeout = time.Hour
		}
	}})
	seedAndCrashThird(t, h)

	block.arm()
	h.Start(2)
	select {
	case <-block.blocked: // n2's link to n3 holds the transfer's chunk, unsent
	case <-time.After(10 * time.Second): // a bound on a wait for an event, not a pause
		t.Fatal("n2 never sent n3 its state")
	}
	// Gossip to and from n3 is cut; replication is not. n1 and n2 declare
	// n3 dead and drop their links to it, and n2's transfer with them.
	cut := clustertest.Faults{Drop: 1}
	h.Net.SetGossipFaults(h.Addr(2), "", cut)
	h.Net.SetGossipFaults("", h.Addr(2), cut)
	h.WaitMembers(10*time.Second, 0, 0, 1)
	h.WaitMembers(10*time.Second, 1, 0, 1)
	h.WaitMembers(time.Second, 2, 0, 1, 2)
	close(block.release)

	h.Net.SetGossipFaults(h.Addr(2), "", clustertest.Faults{})
	h.Net.SetGossipFaults("", h.Addr(2), clustertest.Faults{})
	h.WaitReady(10*time.Second, 2)
	if got := h.Node(2).Info().Sessions; got != 6 {
		t.Fatalf("n3 ready with %d of 6 sessions", got)
	}
}

// chunkBlocker holds, once armed, the first state-transfer chunk a node
// writes to peer before it leaves the node (the write is buffered until
// the observer returns), until release is closed.
type chunkBlocker struct {
	cluster.Observer
	peer     string
	mu       sync.Mutex
	armed    bool
	blocked  chan struct{}
	release  chan struct{}
	finished bool
}

func (b *chunkBlocker) arm() {
	b.mu.Lock()
	b.armed = true
	b.mu.Unlock()
}

func (b *chunkBlocker) MessageSent(peer string, t cluster.MessageType, bytes int) {
	b.Observer.MessageSent(peer, t, bytes)
	if peer != b.peer || t.String() != "sync-chunk" {
		return
	}
	b.mu.Lock()
	hold := b.armed && !b.finished
	b.finished = b.finished || hold
	b.mu.Unlock()
	if hold {
		close(b.blocked)
		<-b.release
	}
}

// TestJoinSurvivesStateAskedWhileDeclaredDead: a restarted node (n3) asks
// its peers for their state while they believe it dead (gossip with it is
// cut, its replication is not), so their links to it are down and there
// is nowhere to send the state. They must send it once they see n3 alive
// again — not give up after a while (their JoinTimeout, a millisecond
// here), leaving n3 waiting for state that will never come: a fresh node
// sees no gap in a link it never had, so nothing would make it ask again.
func TestJoinSurvivesStateAskedWhileDeclaredDead(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(i int, o *cluster.Options) {
		if i == 2 {
			o.Gossip.ProbeInterval = time.Hour
			o.Gossip.PushPullInterval = time.Hour
			o.JoinTimeout = time.Hour
			o.HandshakeTimeout = 500 * time.Millisecond // its muted handshakes fail sooner
		} else {
			o.JoinTimeout = time.Millisecond
		}
	}})
	seedAndCrashThird(t, h)

	// n3 starts and joins gossip, but no replication handshake with it
	// completes: it cannot ask for the state yet.
	mute := clustertest.Faults{Drop: 1}
	h.Net.SetFaults(h.Addr(2), "", mute)
	n3 := h.Start(2)
	h.WaitMembers(10*time.Second, 0, 0, 1, 2)
	h.WaitMembers(10*time.Second, 1, 0, 1, 2)
	// Gossip to and from n3 is cut: n1 and n2 declare it dead, while n3
	// goes on seeing them alive.
	cut := clustertest.Faults{Drop: 1}
	h.Net.SetGossipFaults(h.Addr(2), "", cut)
	h.Net.SetGossipFaults("", h.Addr(2), cut)
	h.WaitMembers(10*time.Second, 0, 0, 1)
	h.WaitMembers(10*time.Second, 1, 0, 1)
	h.WaitMembers(time.Second, 2, 0, 1, 2)
	// Now n3's links reach n1 and n2, and ask for their state.
	h.Net.SetFaults(h.Addr(2), "", clustertest.Faults{})
	// n1 and n2 process n3's messages in order: once they hold a session
	// n3 created after its handshakes, they have had its sync requests.
	if _, err := n3.Create(bg, cluster.NewSession{ID: "marker"}); err != nil {
		t.Fatal(err)
	}
	converged(t, h, "marker", 1, map[string]string{}, 0, 1)

	h.Net.SetGossipFaults(h.Addr(2), "", clustertest.Faults{})
	h.Net.SetGossipFaults("", h.Addr(2), clustertest.Faults{})
	h.WaitReady(10*time.Second, 2)
	if got := n3.Info().Sessions; got != 7 {
		t.Fatalf("n3 ready with %d of 7 sessions", got)
	}
}

// seedAndCrashThird gives n1 and n2 three sessions each, crashes n3 and
// waits until both have seen it go: the state n3 pulls when it restarts.
func seedAndCrashThird(t *testing.T, h *clustertest.Harness) {
	t.Helper()
	for i := range 3 {
		for j := range 2 {
			if _, err := h.Node(j).Create(bg, cluster.NewSession{ID: fmt.Sprint("s", i, j), Values: vals("k", "v")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.Crash(2)
	h.WaitMembers(10*time.Second, 0, 0, 1)
	h.WaitMembers(10*time.Second, 1, 0, 1)
}
