package metrics

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherlb/tether/balancer"
)

// BenchmarkObserveRequest is the cost the metrics add to every proxied
// request.
func BenchmarkObserveRequest(b *testing.B) {
	c, err := New(Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	infos := make([]balancer.RequestInfo, 8)
	for i := range infos {
		infos[i] = balancer.RequestInfo{
			Balancer: "web", Member: "n" + strconv.Itoa(i), Outcome: balancer.Sticky, Status: 200,
			Duration: time.Duration(i+1) * time.Millisecond,
		}
		c.ObserveRequest(infos[i])
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			c.ObserveRequest(infos[i&7])
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				c.ObserveRequest(infos[i&7])
				i++
			}
		})
	})
	b.Run("error", func(b *testing.B) {
		b.ReportAllocs()
		info := balancer.RequestInfo{Balancer: "web", Member: "n1", Outcome: balancer.Failover, Status: 502, Err: balancer.ErrConnect}
		for b.Loop() {
			c.ObserveRequest(info)
		}
	})
}

// BenchmarkObserveSession is the cost of counting a session event.
func BenchmarkObserveSession(b *testing.B) {
	c, err := New(Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ev := balancer.SessionEvent{Balancer: "web", Member: "n1", Kind: balancer.SessionCreated}
	b.ReportAllocs()
	for b.Loop() {
		c.ObserveSession(ev)
	}
}
