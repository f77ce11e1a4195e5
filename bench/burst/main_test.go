package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAnalyze(t *testing.T) {
	ms := time.Millisecond
	// 1,000 requests of 1 ms, one every ms, plus the 20 slow ones of each
	// case: 2% of the requests, so the p99 is theirs.
	base := func() []record {
		rs := make([]record, 1000)
		for i := range rs {
			rs[i] = record{start: time.Duration(i) * ms, lat: ms}
		}
		return rs
	}
	for _, tc := range []struct {
		name               string
		slow               []record
		windows, half, ten int
		withoutFirst       time.Duration
		early              int // slow ones begun in the first second
	}{
		{"one stall", repeat(20, record{start: 1500 * ms, lat: 50 * ms}), 1, 1, 1, 50 * ms, 0},
		{"spread", spread(20, 50*ms), 20, 10, 18, 50 * ms, 20},
		{"first requests", repeat(20, record{start: 0, lat: 80 * ms, first: true}), 1, 1, 1, ms, 20},
		{"later requests", repeat(20, record{start: 0, lat: 80 * ms}), 1, 1, 1, 80 * ms, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := analyze(append(base(), tc.slow...))
			if got.slow != 20 || got.windows != tc.windows || got.halfIn != tc.half || got.ninetyIn != tc.ten {
				t.Errorf("slow %d in %d windows, half in %d, 90%% in %d; want 20 in %d, %d, %d",
					got.slow, got.windows, got.halfIn, got.ninetyIn, tc.windows, tc.half, tc.ten)
			}
			if got.slowEarly != tc.early {
				t.Errorf("%d slow requests in the first second, want %d", got.slowEarly, tc.early)
			}
			if got.slowConns != 1 { // all the slow records have conn 0
				t.Errorf("slow requests on %d connections, want 1", got.slowConns)
			}
			if got.p99WithoutFirst != tc.withoutFirst {
				t.Errorf("p99 without first requests %v, want %v", got.p99WithoutFirst, tc.withoutFirst)
			}
		})
	}
}

func TestPauses(t *testing.T) {
	ms := time.Millisecond
	// Responses ending every ms from 0 to 1 s, but none in 300-325 ms nor
	// in 600-612 ms, nor (not counted: before settle) in 20-60 ms.
	var rs []record
	for i := range 1000 {
		end := time.Duration(i) * ms
		if end > 300*ms && end < 325*ms || end > 600*ms && end < 612*ms || end > 20*ms && end < 60*ms {
			continue
		}
		rs = append(rs, record{start: end - ms/2, lat: ms / 2, conn: i % 7})
	}
	got := analyze(rs)
	if got.pauses != 2 || got.longestPause != 25*ms {
		t.Errorf("%d pauses, longest %v; want 2, 25ms", got.pauses, got.longestPause)
	}
}

func repeat(n int, r record) []record {
	rs := make([]record, n)
	for i := range rs {
		rs[i] = r
	}
	return rs
}

// spread is n requests of latency lat, one in each of n windows.
func spread(n int, lat time.Duration) []record {
	rs := make([]record, n)
	for i := range rs {
		rs[i] = record{start: time.Duration(i) * window, lat: lat}
	}
	return rs
}

func TestModes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "JSESSIONID=x.n1" {
			w.WriteHeader(http.StatusBadRequest)
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := runBursts(addr, "JSESSIONID=x.n1", 20, 2, time.Millisecond, 0); err != nil {
		t.Errorf("bursts: %v", err)
	}
	if err := runKeepAlive(addr, "JSESSIONID=x.n1", 4, 50*time.Millisecond, true); err != nil {
		t.Errorf("keep-alive: %v", err)
	}
	// A non-2xx answer is an error.
	if err := runBursts(addr, "", 2, 1, 0, 0); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bursts without the cookie: %v, want the 400", err)
	}
}
