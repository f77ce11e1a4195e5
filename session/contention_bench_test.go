package session_test

import (
	"io"
	"net/http"
	"net/http/httptest"
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
// page firing 32 AJAX calls); in process, and over HTTP on loopback. It reports the wall time per request
// (ns/op, so throughput is 1e9/ns-op requests per second) and the 99th
// percentile of one request's time (p99-ns), and the CPU time the process
// spent per request (cpu-ns/op: user and system, all threads), which other
// load on the machine disturbs less than the wall time.
func BenchmarkClients(b *testing.B) {
	for _, overHTTP := range []bool{false, true} {
		for _, shared := range []bool{false, true} {
			name := map[bool]string{false: "distinct-sessions", true: "one-session"}[shared]
			if overHTTP {
				name = "http/" + name
			}
			b.Run(name, func(b *testing.B) { benchClients(b, shared, overHTTP) })
		}
	}
}

// benchClients is one case of BenchmarkClients: in process (the Manager's
// handler called directly), or over HTTP on loopback (a real server and
// keep-alive clients, what a user measures).
func benchClients(b *testing.B, shared, overHTTP bool) {
	const clients = 32
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
	send := func(w *discard, r *http.Request) {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if overHTTP {
		srv := httptest.NewServer(h)
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		defer client.CloseIdleConnections()
		for i, r := range reqs {
			req, _ := http.NewRequest("POST", srv.URL, nil)
			req.Header.Set("Cookie", r.Header.Get("Cookie"))
			reqs[i] = req
		}
		send = func(_ *discard, r *http.Request) {
			resp, err := client.Do(r)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
			}
		}
	}
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
				start := time.Now()
				send(w, reqs[c])
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
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
