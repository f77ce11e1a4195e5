package failover_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/netfault"
	"github.com/tetherlb/tether/internal/proctest"
)

// startPartitionable starts n `tether cart --cluster` nodes in mode, each
// on a loopback address of its own (HTTP and cluster), so that netfault
// can cut the network between them. There is no balancer: the tests send
// each request to the node they mean. extra are more flags for every node.
func startPartitionable(t *testing.T, n int, mode string, extra ...string) (*system, []string) {
	t.Helper()
	ips := netfault.Addrs(n)
	keyFile := writeClusterKey(t, t.TempDir())
	s := &system{t: t, life: t, client: &http.Client{Timeout: 10 * time.Second}}
	var peers []string
	for i, ip := range ips {
		nd := &node{name: fmt.Sprintf("n%d", i+1), http: onIP(t, ip), clusterAddr: onIP(t, ip)}
		peers = append(peers, nd.clusterAddr)
		s.nodes = append(s.nodes, nd)
	}
	for _, nd := range s.nodes {
		nd.args = []string{"cart", "--listen", nd.http, "--route", nd.name, "--cluster", nd.clusterAddr,
			"--peers", strings.Join(peers, ","), "--replication", mode, "--cluster-key-file", keyFile}
		nd.args = append(nd.args, extra...)
		s.start(nd)
	}
	for _, nd := range s.nodes {
		proctest.WaitHTTP(t, nd.url()+"/healthz", http.StatusOK, startup)
	}
	return s, ips
}

// onIP returns ip with a port free on it for TCP and UDP.
func onIP(t *testing.T, ip string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(proctest.FreeAddr(t)) // free below the ephemeral range on 127.0.0.1
	return net.JoinHostPort(ip, port)
}

// TestPartitionMajority: with --replication majority, a cluster cut in
// two by nftables — the owner alone against two nodes of three, and two
// nodes (the owner among them) against three of five — is safe: the
// owner's side acknowledges no write and serves no read (503); the
// majority side takes the cart over with every acknowledged item and goes
// on; once healed, every node holds the majority's copy, with every
// acknowledged item and none that was refused.
func TestPartitionMajority(t *testing.T) {
	for _, tt := range []struct {
		name     string
		nodes    int
		minority int  // the first minority nodes are cut from the rest; n1 owns the cart
		stale    bool // --stale-reads: the minority serves reads of its copy, marked stale
	}{
		{"3 nodes, {1}|{2}", 3, 1, false},
		{"5 nodes, {2}|{3}", 5, 2, false},
		{"3 nodes, {1}|{2}, --stale-reads", 3, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nf := netfault.New(t)
			var extra []string
			if tt.stale {
				extra = []string{"--stale-reads"}
			}
			s, ips := startPartitionable(t, tt.nodes, "majority", extra...)
			owner, other := s.nodes[0], s.nodes[tt.minority]
			u := &user{name: "p"}
			for range 5 {
				s.add(u, owner.url())
			}
			nf.Partition(ips[:tt.minority], ips[tt.minority:])

			if tt.stale {
				// The owner's side serves reads of its copy marked stale
				// (once its lease has run out: until then they are
				// confirmed, which no takeover can beat).
				var r result
				s.eventually(func() error {
					if r = s.call(s.client, owner.url(), u.sid, ""); r.status == http.StatusOK && !r.cart.Stale {
						return fmt.Errorf("a read still confirmed under the lease")
					}
					return nil
				})
				if r.status != http.StatusOK || !r.cart.Stale || !slices.Equal(r.cart.Items, u.acked) {
					t.Fatalf("read on the minority side with --stale-reads: %d, stale %v, %v; want 200, stale, %v",
						r.status, r.cart.Stale, r.cart.Items, u.acked)
				}
			}
			// The owner's side: a write is refused, and so is a read of
			// its copy, which the majority may have moved on from; with
			// --stale-reads, that read is served marked stale, without the
			// refused write, or refused if the copy holds it (sent to
			// peers that never acknowledged it).
			u.n++
			refused := fmt.Sprintf("%s-%d", u.name, u.n)
			u.attempted = append(u.attempted, refused)
			if r := s.call(s.client, owner.url(), u.sid, refused); r.status != http.StatusServiceUnavailable {
				t.Fatalf("add on the minority side: %d (%v), want 503", r.status, r.err)
			}
			r := s.call(s.client, owner.url(), u.sid, "")
			served := r.status == http.StatusOK && r.cart.Stale && slices.Equal(r.cart.Items, u.acked)
			if r.status != http.StatusServiceUnavailable && !(tt.stale && served) {
				t.Fatalf("read on the minority side: %d %v (stale %v), want 503", r.status, r.cart.Items, r.cart.Stale)
			}
			// Each side's metrics say whether it holds a majority.
			s.eventually(func() error {
				for _, c := range []struct {
					n    *node
					want string
				}{{owner, "tether_cluster_majority 0"}, {other, "tether_cluster_majority 1"}} {
					if body := s.text(c.n.url() + "/metrics"); !strings.Contains(body, c.want) {
						return fmt.Errorf("%s's /metrics lacks %q", c.n.name, c.want)
					}
				}
				return nil
			})
			// The majority side takes the cart over and goes on.
			s.view(u, other.url()) // checks every acknowledged item
			s.add(u, other.url())
			if _, rt := u.id(); rt != other.name {
				t.Fatalf("cookie %s after the takeover by %s", u.sid, other.name)
			}

			nf.Heal()
			id, _ := u.id()
			c := s.oneCopy(id, s.nodes)
			got := s.view(u, owner.url()) // the old owner, healed: takes it back from the newest copy
			if slices.Contains(got.Items, refused) {
				t.Fatalf("the write refused on the minority side came back: %v", got.Items)
			}
			t.Logf("after the heal every node held %s's copy v%d (epoch %d): %v", c.Owner, c.Version, c.Epoch, got.Items)
		})
	}
}

// text GETs url and returns its body ("" on error).
func (s *system) text(url string) string {
	resp, err := s.client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
