package stores

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/internal/dbproc"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/clusterstore"
	"github.com/tetherlb/tether/session/memcachestore"
	"github.com/tetherlb/tether/session/memstore"
	"github.com/tetherlb/tether/session/redisstore"
)

// store is one case: its store, and how many copies of each session the
// process holds (clusterstore: one per node).
type store struct {
	st     session.Store
	copies int
}

func BenchmarkStores(b *testing.B) {
	cases := []struct {
		name string
		open func(b *testing.B) store
	}{
		{"memstore", func(b *testing.B) store {
			st, err := memstore.New(memstore.Options{MaxSessions: -1, MaxBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return store{st, 1}
		}},
		{"clusterstore-sync", func(b *testing.B) store { return store{clusterStores(b, cluster.AckOne), 3} }},
		{"clusterstore-async", func(b *testing.B) store { return store{clusterStores(b, cluster.AckNone), 3} }},
		{"redis", func(b *testing.B) store {
			return store{redisStore(b, redis.NewClient(&redis.Options{Addr: dbproc.StartRedis(b).Addr}), 0), 1}
		}},
		{"redis-wait-1", func(b *testing.B) store {
			p := dbproc.StartRedis(b)
			host, port, _ := net.SplitHostPort(p.Addr)
			r := dbproc.StartRedis(b, "--replicaof", host, port)
			proctest.Eventually(b, 30*time.Second, func() error {
				out, err := r.Do("INFO", "replication")
				if err != nil || !contains(out, "master_link_status:up") {
					return fmt.Errorf("replica not in sync (%v)", err)
				}
				return nil
			})
			return store{redisStore(b, redis.NewClient(&redis.Options{Addr: p.Addr}), 1), 1}
		}},
		{"redis-cluster", func(b *testing.B) store {
			cl := dbproc.StartCluster(b)
			return store{redisStore(b, redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()}), 0), 1}
		}},
		{"memcached", func(b *testing.B) store {
			st, err := memcachestore.New([]string{dbproc.StartMemcached(b).Addr}, memcachestore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return store{st, 1}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := c.open(b)
			writes(b, s.st)
			b.ReportMetric(bytesPerSession(b, s.st)/float64(s.copies), "B/session-on-node")
		})
	}
}

func contains(s, sub string) bool { return len(sub) <= len(s) && slices.Contains(splitLines(s), sub) }

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '\n' {
			line := s[start:i]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			out = append(out, line)
			start = i + 1
		}
	}
	return out
}

func redisStore(b *testing.B, c redis.UniversalClient, replicas int) *redisstore.Store {
	b.Cleanup(func() { c.Close() })
	st, err := redisstore.New(c, redisstore.Options{Replicas: replicas})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// clusterStores starts three clusterstore nodes over loopback TCP and
// returns the first.
func clusterStores(b *testing.B, ack cluster.AckMode) session.Store {
	addrs := []string{proctest.FreeAddr(b), proctest.FreeAddr(b), proctest.FreeAddr(b)}
	var first *clusterstore.Store
	for i, a := range addrs {
		var peers []string
		for j, p := range addrs {
			if j != i {
				peers = append(peers, p)
			}
		}
		st, err := clusterstore.New(clusterstore.Options{Cluster: cluster.Options{
			Name: fmt.Sprintf("n%d", i+1), Addr: a, Peers: peers, Ack: ack, Logger: slog.New(slog.DiscardHandler)}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		if first == nil {
			first = st
		}
		proctest.Eventually(b, 30*time.Second, st.Ready)
	}
	return first
}

var cartValue = make([]byte, 200)

// writes runs b.N Load+Save pairs from 16 goroutines, each on its own
// session, and reports writes/s, p50 and p99.
func writes(b *testing.B, st session.Store) {
	const workers = 16
	ctx := context.Background()
	for i := range cartValue {
		cartValue[i] = 'a' + byte(i%26)
	}
	per := b.N / workers
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("bench-%d-%d", b.N, w)
			now := time.Now()
			if _, err := st.Save(ctx, session.Delta{ID: id, Route: "n1", Created: now, LastAccess: now,
				IdleTimeout: time.Hour, Set: map[string][]byte{"cart": cartValue}}); err != nil {
				b.Error(err)
				return
			}
			lat[w] = make([]time.Duration, 0, per)
			for range per {
				t := time.Now()
				rec, err := st.Load(ctx, id)
				if err == nil {
					_, err = st.Save(ctx, session.Delta{ID: id, BaseVersion: rec.Version, LastAccess: t,
						Set: map[string][]byte{"cart": cartValue}, Read: []session.KeyValue{{Key: "cart", Value: rec.Values["cart"]}}})
				}
				if err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(all[len(all)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100])/1e3, "p99-µs")
}

// bytesPerSession creates 2,000 sessions of 200 bytes and returns the
// growth of this process's heap per session.
func bytesPerSession(b *testing.B, st session.Store) float64 {
	const n = 2000
	ctx := context.Background()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	now := time.Now()
	for i := range n {
		v := make([]byte, 200) // its own bytes, as a request's would be
		copy(v, cartValue)
		if _, err := st.Save(ctx, session.Delta{ID: fmt.Sprintf("mem-%d-%d", b.N, i), Route: "n1", Created: now, LastAccess: now,
			IdleTimeout: time.Hour, Set: map[string][]byte{"cart": v}}); err != nil {
			b.Fatal(err)
		}
	}
	after := heap()
	if after < before {
		return 0
	}
	return float64(after-before) / n
}
