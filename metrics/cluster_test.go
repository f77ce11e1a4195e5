package metrics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

// TestClusterCollector: a node's writes are counted by level and outcome,
// and its view of the majority follows the network: held with its peers,
// lost when it is cut off (its writes then refused and counted); a read
// under the owner's lease is counted as such.
func TestClusterCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := NewClusterCollector(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := clustertest.New(t, clustertest.Config{Nodes: 3, Options: func(i int, o *cluster.Options) {
		o.Ack = cluster.AckMajority
		o.Lease = 4 * time.Second // outlasts any stall between the write and the read below
		if i == 0 {
			o.Observer = c
		}
	}})
	n1 := h.Node(0)
	if err := RegisterClusterView(reg, n1.Quorum); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := n1.Create(ctx, cluster.NewSession{ID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	// A read right after an acknowledged write is confirmed under the
	// owner's lease, without a round trip.
	if err := n1.Confirm(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tether_cluster_lease_reads_total Reads this owner confirmed under its lease, without a round trip.
# TYPE tether_cluster_lease_reads_total counter
tether_cluster_lease_reads_total 1
`), "tether_cluster_lease_reads_total"); err != nil {
		t.Fatal(err)
	}
	view := func(majority, refused int) string {
		return fmt.Sprintf(`
# HELP tether_cluster_majority 1 while this node and the ready peers it reaches make a majority, else 0.
# TYPE tether_cluster_majority gauge
tether_cluster_majority %d
# HELP tether_cluster_no_majority_total Writes, reads and takeovers refused for want of a majority.
# TYPE tether_cluster_no_majority_total counter
tether_cluster_no_majority_total %d
# HELP tether_cluster_quorum Nodes that make a majority.
# TYPE tether_cluster_quorum gauge
tether_cluster_quorum 2
# HELP tether_cluster_size Nodes in the cluster (configured).
# TYPE tether_cluster_size gauge
tether_cluster_size 3
`, majority, refused)
	}
	names := []string{"tether_cluster_majority", "tether_cluster_no_majority_total", "tether_cluster_quorum", "tether_cluster_size"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(view(1, 0)), names...); err != nil {
		t.Fatal(err)
	}
	h.Net.Isolate(h.Addr(0))
	h.WaitMembers(10*time.Second, 0, 0)
	if _, err := n1.Update(ctx, cluster.Delta{ID: "s", Set: map[string][]byte{"k": []byte("v")}}); err == nil {
		t.Fatal("a write of a node cut off from the majority succeeded")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(view(0, 1)), names...); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c.writes, "tether_cluster_write_seconds"); n != 2 {
		t.Fatalf("%d write series, want ok and no_majority", n)
	}
}
