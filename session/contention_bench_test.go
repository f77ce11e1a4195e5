package session_test

import (
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// BenchmarkClients runs 32 clients at once, each sending read-modify-write
// requests (read an int, write it back + 1) one after another: on 32
// distinct sessions (one each, the usual case), and all on one session (a
// page firing 32 AJAX calls). It reports the wall time per request
// (ns/op, so throughput is 1e9/ns-op requests per second) and the 99th
// percentile of one request's time (p99-ns), and the CPU time the process
// spent per request (cpu-ns/op: user and system, all threads), which other
// load on the machine disturbs less than the wall time.
func BenchmarkClients(b *testing.B) {
	const clients = 32
	for _, shared := range []bool{false, true} {
		name := map[bool]string{false: "distinct-sessions", true: "one-session"}[shared]
		b.Run(name, func(b *testing.B) {
			m := benchManager(b, false)
			reqs := make([]*http.Request, clients)
			for i := range reqs {
				if i == 0 || !shared {
					reqs[i] = benchSession(b, m)
				} else {
					reqs[i] = reqs[0].Clone(reqs[0].Context())
				}
			}
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := session.From(r)
				n, err := session.Get[int](s, "k1")
				if err == nil {
					err = s.Put("k1", n+1)
				}
				if err != nil {
					http.Error(w, err.Error(), session.StatusCode(err))
				}
			}))
			perClient := b.N/clients + 1
			lat := make([][]time.Duration, clients)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := &discard{h: http.Header{}}
					l := make([]time.Duration, 0, perClient)
					for range perClient {
						clear(w.h)
						start := time.Now()
						h.ServeHTTP(w, reqs[c])
						l = append(l, time.Since(start))
					}
					lat[c] = l
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(perClient*clients), "cpu-ns/op")
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
