//go:build linux

package h1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkParkWakeups reports the latency tail of busy keep-alive
// connections while other connections of the same server park and wake
// all the time: 16 clients send requests back to back, while 8 others
// send one every 3 ms with ParkAfter at 1 ms, so that they park between
// requests and the parker wakes about 2,700 times a second. Run it with
// -cpu 1, as a proxy on one core: server, clients and parker share one P,
// so anything that holds the P (a goroutine in a blocking system call
// until sysmon takes the P back) delays every busy request. Metrics: the
// busy requests' p50, p99 and p99.9 in µs, and how many requests the
// churning clients made.
//
//	go test -run XXX -bench BenchmarkParkWakeups -cpu 1 -benchtime 200000x ./balancer/h1
func BenchmarkParkWakeups(b *testing.B) {
	_, addr := plainServer(b, echoPath, ServerOptions{ParkAfter: time.Millisecond})
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader) error {
		if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	stop := make(chan struct{})
	var churned atomic.Int64
	var churners sync.WaitGroup
	for range 8 {
		c, br := dial()
		defer c.Close()
		churners.Add(1)
		go func() {
			defer churners.Done()
			tick := time.NewTicker(3 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if err := get(c, br); err != nil {
					b.Error(err)
					return
				}
				churned.Add(1)
			}
		}()
	}
	const busy = 16
	lat := make([][]time.Duration, busy)
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range busy {
		c, br := dial()
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				t := time.Now()
				if err := get(c, br); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(stop)
	churners.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p99.9-µs")
	b.ReportMetric(float64(churned.Load()), "churn-reqs")
}
