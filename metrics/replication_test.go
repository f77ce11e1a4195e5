package metrics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

// TestReplicationMetrics: an owner's writes are counted as messages sent
// by type with their bytes; a node that joins later pulls the state (the
// sessions and bytes of the transfer counted on both sides) and takes a
// session over (the takeover's duration observed by outcome); the owner
// expires an idle session (counted once).
func TestReplicationMetrics(t *testing.T) {
	ownerReg, joinerReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	owner, err := NewClusterCollector(ownerReg)
	if err != nil {
		t.Fatal(err)
	}
	joiner, err := NewClusterCollector(joinerReg)
	if err != nil {
		t.Fatal(err)
	}
	h := clustertest.New(t, clustertest.Config{Nodes: 2, Options: func(i int, o *cluster.Options) {
		switch i {
		case 0:
			o.Observer = owner
		case 2:
			o.Observer = joiner
		}
	}})
	ctx := context.Background()
	const sessions = 5
	for s := range sessions {
		if _, err := h.Node(0).Create(ctx, cluster.NewSession{ID: fmt.Sprintf("s%d", s), Values: map[string][]byte{"k": []byte("v")}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Node(0).Update(ctx, cluster.Delta{ID: "s0", Set: map[string][]byte{"k": []byte("w")}}); err != nil {
		t.Fatal(err)
	}
	j := h.Add()
	h.Start(j)
	h.WaitReady(10*time.Second, j)
	if _, err := h.Node(j).Claim(ctx, "s1"); err != nil {
		t.Fatal(err)
	}

	got := scrape(t, ownerReg)
	for _, k := range []string{
		"tether_cluster_messages_total{direction=sent,type=record}",
		"tether_cluster_messages_total{direction=sent,type=delta}",
		"tether_cluster_messages_total{direction=received,type=ack}",
		"tether_cluster_message_bytes_total{direction=sent,type=record}",
		"tether_cluster_message_bytes_total{direction=sent,type=delta}",
		"tether_cluster_messages_total{direction=sent,type=sync-chunk}",
	} {
		if got[k] <= 0 {
			t.Errorf("owner: %s = %v, want > 0", k, got[k])
		}
	}
	if n := got["tether_cluster_transfer_sessions_total{direction=sent}"]; n != sessions {
		t.Errorf("owner: sessions sent in the state transfer = %v, want %d", n, sessions)
	}
	if got["tether_cluster_transfer_bytes_total{direction=sent}"] <= 0 {
		t.Error("owner: no bytes counted in the state transfer it sent")
	}
	got = scrape(t, joinerReg)
	// The joiner pulls every peer's state: the owner's and its replica's.
	if n := got["tether_cluster_transfer_sessions_total{direction=received}"]; n != 2*sessions {
		t.Errorf("joiner: sessions received = %v, want %d (from each of 2 peers)", n, 2*sessions)
	}
	if got["tether_cluster_transfer_bytes_total{direction=received}"] <= 0 {
		t.Error("joiner: no bytes counted in the state transfer it received")
	}
	if n := got["tether_cluster_claim_seconds{outcome=ok}"]; n != 1 {
		t.Errorf("joiner: %v takeovers observed with outcome ok, want 1", n)
	}
	if n := got["tether_cluster_claims_total{outcome=ok}"]; n != 1 {
		t.Errorf("joiner: tether_cluster_claims_total{outcome=ok} = %v, want 1", n)
	}

	if _, err := h.Node(0).Create(ctx, cluster.NewSession{ID: "idle", IdleTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(2 * time.Minute)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if n := scrape(t, ownerReg)["tether_cluster_expired_total{}"]; n != 1 {
			h.Clock.Advance(time.Second) // one more sweep
			return fmt.Errorf("tether_cluster_expired_total = %v, want 1", n)
		}
		return nil
	})
}
