package balancer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// waitQueued waits until q has n requests waiting.
func waitQueued(t *testing.T, q *queue, n int) {
	t.Helper()
	proctest.Eventually(t, 10*time.Second, func() error {
		if got := q.queued(); got != n {
			return fmt.Errorf("%d waiting, want %d", got, n)
		}
		return nil
	})
}

func TestQueueOrderAndTimeout(t *testing.T) {
	var q queue
	if !q.acquire(1, time.Hour, nil) {
		t.Fatal("a free slot was refused")
	}
	// Two waiters, queued in a known order.
	got := make(chan string, 2)
	for i, name := range []string{"first", "second"} {
		go func() {
			if q.acquire(1, time.Hour, nil) {
				got <- name
			}
		}()
		waitQueued(t, &q, i+1)
	}
	// A third gives up after its timeout, the others still waiting.
	if q.acquire(1, time.Millisecond, nil) {
		t.Fatal("a full queue gave a slot")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if q.acquire(1, time.Hour, ctx) {
		t.Fatal("a cancelled request got a slot")
	}
	waitQueued(t, &q, 2)
	q.release(1)
	if g := <-got; g != "first" {
		t.Fatalf("%s was served first", g)
	}
	q.release(1)
	if g := <-got; g != "second" {
		t.Fatalf("%s was served second", g)
	}
	q.release(1)
	if q.full(1) || q.n != 0 {
		t.Fatalf("after every release: n=%d, full %v", q.n, q.full(1))
	}
}

// TestQueueLimitChanges: a lowered limit holds waiting requests until
// enough slots are back; a raised or removed one lets them go.
func TestQueueLimitChanges(t *testing.T) {
	var q queue
	q.acquire(2, time.Hour, nil)
	q.acquire(2, time.Hour, nil)
	done := make(chan bool, 3)
	go func() { done <- q.acquire(2, time.Hour, nil) }()
	waitQueued(t, &q, 1)
	q.release(1) // the limit is now 1: one slot back is not enough
	if q.queued() != 1 {
		t.Fatal("a request went past a lowered limit")
	}
	q.release(1)
	if !<-done {
		t.Fatal("the waiting request did not get the slot")
	}
	// One held, two waiting; the limit is removed.
	for i := range 2 {
		go func() { done <- q.acquire(1, time.Hour, nil) }()
		waitQueued(t, &q, i+1)
	}
	q.release(0) // the one held: no limit now
	if !<-done || !<-done {
		t.Fatal("waiting requests were not let go when the limit was removed")
	}
}

// TestMaxConns: with max_conns 1, for the balancer or for the member, a
// member never has two requests at once; the requests over the limit wait
// and are all served.
func TestMaxConns(t *testing.T) {
	for _, where := range []string{"balancer", "member"} {
		t.Run(where, func(t *testing.T) {
			eachEngine(t, func(t *testing.T, e engine) { testMaxConns(t, e, where) })
		})
	}
}

func testMaxConns(t *testing.T, e engine, where string) {
	var now, peak atomic.Int64
	release, stop := make(chan struct{}), make(chan struct{})
	entered := make(chan struct{}, 4)
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		entered <- struct{}{}
		select {
		case <-release:
		case <-stop: // the test failed: let the servers close
		}
		now.Add(-1)
		io.WriteString(w, "ok")
	})
	opts := fastOptions()
	opts.QueueTimeout = time.Minute
	mc := rec.member(t)
	if where == "balancer" {
		opts.MaxConns = 1
	} else {
		mc.MaxConns = 1
	}
	bal, f := e.front(t, opts, mc)
	t.Cleanup(func() { close(stop) }) // runs before the servers' own
	var wg sync.WaitGroup
	statuses := make(chan int, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- do(t, f.Client(), "GET", f.URL+"/", "S.r", nil).status
		}()
	}
	<-entered
	m := bal.Pool().Lookup("r")
	waitQueued(t, &m.queue, 2)
	if st := m.stats(time.Now(), time.Minute); st.Queued != 2 || st.InFlight != 1 {
		t.Errorf("stats: %d queued, %d in flight; want 2 and 1", st.Queued, st.InFlight)
	}
	for range 3 {
		release <- struct{}{}
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("status %d", s)
		}
	}
	if p := peak.Load(); p != 1 {
		t.Errorf("the member had %d requests at once, want 1", p)
	}
}

// TestQueueTimeout: a request that waits longer than the queue timeout
// gets 503 with Retry-After, and does not count against the member's
// health.
func TestQueueTimeout(t *testing.T) { eachEngine(t, testQueueTimeout) }

func testQueueTimeout(t *testing.T, e engine) {
	busy, free := newBackend(t, "busy"), newBackend(t, "free")
	busy.frozen.Store(true)
	opts := fastOptions()
	opts.MaxConns = 1
	opts.QueueTimeout = 50 * time.Millisecond
	bal, f := e.front(t, opts, memberOf(t, busy, 1, Active), memberOf(t, free, 1, Active))
	first := make(chan result, 1)
	go func() { first <- do(t, f.Client(), "GET", f.URL+"/", "A.busy", nil) }()
	proctest.Eventually(t, 10*time.Second, func() error {
		if busy.hits.Load() != 1 {
			return fmt.Errorf("the first request has not reached the member")
		}
		return nil
	})
	r := do(t, f.Client(), "GET", f.URL+"/", "B.busy", nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "busy") {
		t.Errorf("a sticky request over the limit: %d, Retry-After %q, %q; want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	// A new session goes to the member with a free slot, without waiting.
	if r := do(t, f.Client(), "GET", f.URL+"/", "", nil); r.status != http.StatusOK || r.member != "free" {
		t.Errorf("a new session: %d from %q, want 200 from free", r.status, r.member)
	}
	m := bal.Pool().Lookup("busy")
	if st := m.stats(time.Now(), time.Minute); st.QueueFull != 1 || !st.Healthy {
		t.Errorf("busy: %d queue timeouts, healthy %v; want 1 and true", st.QueueFull, st.Healthy)
	}
	close(busy.hold)
	if r := <-first; r.status != http.StatusOK {
		t.Errorf("the first request: %d", r.status)
	}
}

// TestMaxConnsReload: a reload changes a member's own limit.
func TestMaxConnsReload(t *testing.T) {
	rec := newRecorder(t, nil)
	mc := rec.member(t)
	mc.MaxConns = 1
	bal, err := New(fastOptions(), []MemberConfig{mc})
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	next := mc
	next.MaxConns = 3
	if err := bal.Update(fastOptions(), []MemberConfig{mc}, []MemberConfig{next}); err != nil {
		t.Fatal(err)
	}
	if got := bal.Pool().Lookup("r").maxConns.Load(); got != 3 {
		t.Errorf("max_conns %d after the reload, want 3", got)
	}
}
