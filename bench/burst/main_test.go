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
	}{
		{"one stall", repeat(20, record{start: 500 * ms, lat: 50 * ms}), 1, 1, 1, 50 * ms},
		{"spread", spread(20, 50*ms), 20, 10, 18, 50 * ms},
		{"first requests", repeat(20, record{start: 0, lat: 80 * ms, first: true}), 1, 1, 1, ms},
		{"later requests", repeat(20, record{start: 0, lat: 80 * ms}), 1, 1, 1, 80 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := analyze(append(base(), tc.slow...))
			if got.slow != 20 || got.windows != tc.windows || got.halfIn != tc.half || got.ninetyIn != tc.ten {
				t.Errorf("slow %d in %d windows, half in %d, 90%% in %d; want 20 in %d, %d, %d",
					got.slow, got.windows, got.halfIn, got.ninetyIn, tc.windows, tc.half, tc.ten)
			}
			if got.p99WithoutFirst != tc.withoutFirst {
				t.Errorf("p99 without first requests %v, want %v", got.p99WithoutFirst, tc.withoutFirst)
			}
		})
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
