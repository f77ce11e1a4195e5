package session_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/memstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// TestDestroyedOnce checks that every way a session ends fires the destroyed
// listener and the observer exactly once, with its reason.
func TestDestroyedOnce(t *testing.T) {
	tests := []struct {
		name string
		mo   memstore.Options
		end  func(e *env, cookie string)
		want session.Reason
	}{
		{"two logouts at once", memstore.Options{}, func(e *env, c string) {
			var loaded sync.WaitGroup
			loaded.Add(2)
			concurrently(2, func() {
				e.do(session.Optimistic(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if _, err := session.Get[string](session.From(r), "k"); err != nil {
						e.t.Error(err)
					}
					loaded.Done()
					loaded.Wait() // both have the session before either deletes it
					e.m.Logout(w, r, "/")
				})).ServeHTTP, "POST", "/logout", c)
			})
		}, session.ReasonInvalidated},
		{"idle timeout, found by the janitor", memstore.Options{}, func(e *env, c string) {
			e.clock.Advance(30 * time.Minute)
			e.store.Sweep()
			e.store.Sweep()
			e.do(get(e.t, "k"), "GET", "/", c)
		}, session.ReasonIdleTimeout},
		{"idle timeout, found by requests and the janitor at once", memstore.Options{}, func(e *env, c string) {
			e.clock.Advance(30 * time.Minute)
			concurrently(4, func() {
				e.do(get(e.t, "k"), "GET", "/", c)
				e.store.Sweep()
			})
		}, session.ReasonIdleTimeout},
		{"evicted for a newer session", memstore.Options{MaxSessions: 1, Full: memstore.EvictLRU}, func(e *env, c string) {
			e.do(put(e.t, "k", "other"), "POST", "/")
		}, session.ReasonEvicted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := sessiontest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
			tt.mo.JanitorInterval, tt.mo.Now = -1, clock.Now
			st, err := memstore.New(tt.mo)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			e := newEnv(t, session.Options{Store: st, Now: clock.Now})
			e.store, e.clock = st, clock
			c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
			tt.end(e, c)
			_, destroyed := e.lis.snapshot()
			if len(destroyed) != 1 || destroyed[0] != idPart(c)+" "+tt.want.String() {
				t.Fatalf("destroyed %v, want once for %s %s", destroyed, idPart(c), tt.want)
			}
			if e.obs.destroyed[tt.want] != 1 || len(e.obs.destroyed) != 1 {
				t.Fatalf("observer saw %v", e.obs.destroyed)
			}
		})
	}
}

// TestExpiryFoundByManager: the store's clock is behind the Manager's (or
// its janitor is slow), so the store returns a session that has expired by
// the Manager's clock. The Manager ends it, once, and the store does not
// report it again.
func TestExpiryFoundByManager(t *testing.T) {
	storeClock := sessiontest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	st, err := memstore.New(memstore.Options{JanitorInterval: -1, Now: storeClock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := newEnv(t, session.Options{Store: st})
	e.store = st
	c := sessionCookie(t, e.do(put(t, "k", "v"), "POST", "/"))
	e.clock.Advance(31 * time.Minute)
	resp := e.do(get(t, "k"), "GET", "/", c)
	if got := body(t, resp); got != "" {
		t.Fatalf("read %q from an expired session", got)
	}
	checkCookie(t, resp, "expire", c, "Path=/")
	storeClock.Advance(31 * time.Minute)
	st.Sweep()
	if _, destroyed := e.lis.snapshot(); len(destroyed) != 1 || destroyed[0] != idPart(c)+" idle_timeout" {
		t.Fatalf("destroyed %v", destroyed)
	}
	if e.obs.rejected[session.RejectExpired] != 1 {
		t.Fatalf("rejections %v", e.obs.rejected)
	}
}

func concurrently(n int, f func()) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
}
