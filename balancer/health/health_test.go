package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

type target struct {
	u  *url.URL
	up atomic.Bool
	mu sync.Mutex
	// changes records every SetHealthy call, to check there are no flaps.
	changes []bool
}

func newTarget(t *testing.T, raw string) *target {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{u: u}
	tg.up.Store(true)
	return tg
}

func (t *target) HealthURL() *url.URL { return t.u }
func (t *target) SetHealthy(up bool) {
	t.up.Store(up)
	t.mu.Lock()
	t.changes = append(t.changes, up)
	t.mu.Unlock()
}

func waitFor(t *testing.T, tg *target, up bool) {
	t.Helper()
	proctest.Eventually(t, 10*time.Second, func() error {
		if tg.up.Load() != up {
			return errState(up)
		}
		return nil
	})
}

type errState bool

func (e errState) Error() string {
	if e {
		return "member still down"
	}
	return "member still up"
}

// switchable serves /healthz with 200 or 503.
func switchable(t *testing.T) (*httptest.Server, *atomic.Bool, *atomic.Int64) {
	var healthy atomic.Bool
	var hits atomic.Int64
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &healthy, &hits
}

func TestActiveFallAndRise(t *testing.T) {
	srv, healthy, hits := switchable(t)
	c := New(Options{Path: "/healthz", Interval: 5 * time.Millisecond, Timeout: time.Second, Rise: 3, Fall: 2})
	defer c.Close()
	tg := newTarget(t, srv.URL)
	c.Watch(tg)

	healthy.Store(false)
	waitFor(t, tg, false)
	before := hits.Load()
	healthy.Store(true)
	waitFor(t, tg, true)
	if n := hits.Load() - before; n < 3 {
		t.Errorf("came back up after %d checks, want at least rise=3", n)
	}
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if len(tg.changes) != 2 || tg.changes[0] || !tg.changes[1] {
		t.Errorf("changes = %v, want [false true]", tg.changes)
	}
}

func TestMarkDownProbesUntilFirstSuccess(t *testing.T) {
	srv, healthy, _ := switchable(t)
	// A long interval: only the probe can bring the member back in time.
	c := New(Options{Path: "/healthz", Interval: time.Hour, ProbeInterval: 5 * time.Millisecond, Rise: 5})
	defer c.Close()
	tg := newTarget(t, srv.URL)
	c.Watch(tg)
	healthy.Store(false)
	c.MarkDown(tg, "connection refused")
	if tg.up.Load() {
		t.Fatal("MarkDown did not take the member down at once")
	}
	healthy.Store(true)
	waitFor(t, tg, true) // one success, not rise=5
}

func TestPassiveOnlyProbesWithTCPConnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: probes fail
	c := New(Options{ProbeInterval: 5 * time.Millisecond, Timeout: time.Second})
	defer c.Close()
	tg := newTarget(t, "http://"+addr)
	c.Watch(tg)
	c.MarkDown(tg, "test")
	if tg.up.Load() {
		t.Fatal("up after MarkDown")
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer l2.Close()
	waitFor(t, tg, true)
}

func TestUnwatchAndCloseStopChecks(t *testing.T) {
	srv, _, hits := switchable(t)
	c := New(Options{Path: "/healthz", Interval: time.Millisecond})
	tg := newTarget(t, srv.URL)
	c.Watch(tg)
	proctest.Eventually(t, 10*time.Second, func() error {
		if hits.Load() == 0 {
			return errState(true)
		}
		return nil
	})
	c.Unwatch(tg)
	c.Close() // waits for the loops to end
	n := hits.Load()
	c.Watch(tg) // a closed checker starts nothing
	if got := hits.Load(); got != n {
		t.Errorf("checks after Close: %d -> %d", n, got)
	}
}

type announcing struct {
	*target
	draining chan bool
}

func (a announcing) Announce(d bool) {
	select {
	case a.draining <- d:
	default:
	}
}

func TestAnnouncedDrain(t *testing.T) {
	var state atomic.Value
	state.Store("draining")
	var status atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(StateHeader, state.Load().(string))
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	c := New(Options{Path: "/healthz", Interval: 5 * time.Millisecond, Fall: 1})
	defer c.Close()
	tg := announcing{newTarget(t, srv.URL), make(chan bool, 1)}
	c.Watch(tg)
	if d := <-tg.draining; !d {
		t.Fatal("announced draining, got active")
	}
	if !tg.up.Load() {
		t.Fatal("a 503 announcing a drain counted as a failure")
	}
	state.Store("active")
	status.Store(http.StatusOK)
	for d := range tg.draining {
		if !d {
			break
		}
	}
	// A plain 503 without the header is a failure.
	state.Store("")
	status.Store(http.StatusServiceUnavailable)
	waitFor(t, tg.target, false)
}
