package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// Replication benchmarks on real loopback TCP. See docs/benchmarks.md
// (## Replication) for the figures and the commands.

// benchCluster starts n linked nodes with the given ack mode, and a
// pre-shared key (authenticated encryption) when psk is set.
func benchCluster(b *testing.B, n int, mode AckMode, psk bool) []*Node {
	b.Helper()
	tweak := func(o *Options) {
		o.Ack = mode
		if psk {
			o.PSK = []byte("0123456789abcdef0123456789abcdef")
		}
	}
	first, _ := startTCP(b, "b1", nil, tweak)
	nodes := []*Node{first}
	for i := 2; i <= n; i++ {
		nd, _ := startTCP(b, fmt.Sprintf("b%d", i), []string{first.Addr()}, tweak)
		nodes = append(nodes, nd)
	}
	for _, x := range nodes {
		for _, y := range nodes {
			if x != y {
				linked(b, x, y)
			}
		}
	}
	return nodes
}

func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(float64(len(s)-1)*p)]) / float64(time.Microsecond)
}

// BenchmarkDeltaVisible measures, for one session written in a loop, the
// time from the start of Update on the owner until the write is applied on
// a peer (visible-p50/p99), and how long Update itself takes (call-p50/p99:
// the price of the acknowledgement mode).
func BenchmarkDeltaVisible(b *testing.B) {
	for _, tc := range []struct {
		mode  AckMode
		nodes int
		psk   bool
	}{{AckNone, 2, false}, {AckOne, 2, false}, {AckNone, 3, false}, {AckOne, 3, false}, {AckAll, 3, false},
		{AckOne, 3, true}} {
		name := fmt.Sprintf("%s/%d-nodes", tc.mode, tc.nodes)
		if tc.psk {
			name += "/psk"
		}
		b.Run(name, func(b *testing.B) {
			nodes := benchCluster(b, tc.nodes, tc.mode, tc.psk)
			owner, peer := nodes[0], nodes[len(nodes)-1]
			seen := make(chan uint64, 1024)
			hook := func(id string, v uint64) { seen <- v }
			peer.applied.Store(&hook)
			ctx := context.Background()
			if _, err := owner.Create(ctx, NewSession{ID: "bench"}); err != nil {
				b.Fatal(err)
			}
			for v := <-seen; v < 1; v = <-seen {
			}
			value := []byte(`[{"sku":"book-42","qty":1},{"sku":"pen-7","qty":3}]`)
			visible := make([]time.Duration, 0, b.N)
			call := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				want := uint64(i + 2)
				start := time.Now()
				if _, err := owner.Update(ctx, Delta{ID: "bench", Set: map[string][]byte{"cart": value}}); err != nil {
					b.Fatal(err)
				}
				call = append(call, time.Since(start))
				for v := <-seen; v < want; v = <-seen {
				}
				visible = append(visible, time.Since(start))
			}
			b.StopTimer()
			b.ReportMetric(percentile(visible, 0.5), "visible-p50-µs")
			b.ReportMetric(percentile(visible, 0.99), "visible-p99-µs")
			b.ReportMetric(percentile(call, 0.5), "call-p50-µs")
			b.ReportMetric(percentile(call, 0.99), "call-p99-µs")
		})
	}
}

// BenchmarkWrites measures write throughput with many concurrent requests
// on distinct sessions (b.SetParallelism goroutines per CPU), not waiting
// for visibility beyond what the mode waits for.
func BenchmarkWrites(b *testing.B) {
	for _, mode := range []AckMode{AckNone, AckOne, AckAll} {
		b.Run(fmt.Sprintf("%s/3-nodes", mode), func(b *testing.B) {
			nodes := benchCluster(b, 3, mode, false)
			owner := nodes[0]
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprintf("w%d", next.Add(1))
				if _, err := owner.Create(ctx, NewSession{ID: id}); err != nil {
					b.Error(err)
					return
				}
				value := []byte(`[{"sku":"book-42","qty":1}]`)
				for pb.Next() {
					if _, err := owner.Update(ctx, Delta{ID: id, Set: map[string][]byte{"cart": value}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}

// BenchmarkFailureDetection measures, with the default gossip timings, the
// time from a node's sudden death (no goodbye: its gossip and sockets just
// stop, as with kill -9) until both survivors list it as dead — what
// takeovers of its sessions may wait for. Run it with -benchtime 5x.
func BenchmarkFailureDetection(b *testing.B) {
	var total time.Duration
	for range b.N {
		b.StopTimer()
		first, _ := startTCP(b, "d1", nil, func(o *Options) { o.Gossip = GossipOptions{} })
		second, _ := startTCP(b, "d2", []string{first.Addr()}, func(o *Options) { o.Gossip = GossipOptions{} })
		victim, _ := startTCP(b, "d3", []string{first.Addr()}, func(o *Options) { o.Gossip = GossipOptions{} })
		for _, x := range []*Node{first, second} {
			linked(b, x, victim)
		}
		b.StartTimer()
		start := time.Now()
		_ = victim.tr.Shutdown() // no leave message: its sockets just close
		for _, x := range []*Node{first, second} {
			eventually(b, 30*time.Second, func() error {
				for _, m := range x.Members() {
					if m.Name == "d3" && m.State == MemberDead {
						return nil
					}
				}
				return fmt.Errorf("%s still lists d3 alive", x.Name())
			})
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(time.Millisecond), "detect-ms")
}
