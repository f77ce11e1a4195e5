package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"

	"github.com/tetherlb/tether/session/memstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

func newStore(t *testing.T, cfg sessiontest.Config) sessiontest.Instance {
	o := memstore.Options{Now: cfg.Now, JanitorInterval: -1, MaxSessions: -1, MaxBytes: -1}
	if cfg.MaxSessions > 0 {
		o.MaxSessions = cfg.MaxSessions
	}
	if cfg.MaxBytes > 0 {
		o.MaxBytes = cfg.MaxBytes
	}
	if cfg.Evict {
		o.Full = memstore.EvictLRU
	}
	s, err := memstore.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return sessiontest.Instance{Store: s, Sweep: func() { s.Sweep() }, Bounded: true}
}

func TestConformance(t *testing.T) {
	sessiontest.Run(t, newStore)
}

func newTestStore(t *testing.T, o memstore.Options) (*memstore.Store, *sessiontest.Clock) {
	t.Helper()
	clock := sessiontest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if o.Now == nil {
		o.Now = clock.Now
	}
	if o.JanitorInterval == 0 {
		o.JanitorInterval = -1
	}
	s, err := memstore.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clock
}

func create(t *testing.T, s *memstore.Store, now time.Time, id string, idle time.Duration) {
	t.Helper()
	_, err := s.Save(context.Background(), session.Delta{ID: id, Route: "n1", Created: now, LastAccess: now,
		IdleTimeout: idle, Set: map[string][]byte{"k": []byte(`"v"`)}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestJanitorRuns checks that the janitor goroutine sweeps on its own.
func TestJanitorRuns(t *testing.T) {
	clock := sessiontest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := newTestStore(t, memstore.Options{Now: clock.Now, JanitorInterval: time.Millisecond})
	reported := make(chan session.Reason, 1)
	s.NotifyExpiry(func(_ session.Record, why session.Reason) { reported <- why })
	create(t, s, clock.Now(), "a", time.Minute)
	clock.Advance(time.Minute)
	select {
	case why := <-reported:
		if why != session.ReasonIdleTimeout {
			t.Fatalf("reported %v", why)
		}
	case <-time.After(10 * time.Second): // a deadline for the outcome, not a wait for it
		t.Fatal("the janitor did not expire the session within 10s")
	}
	if c := s.Counts(); c.Expired != 1 {
		t.Fatalf("counts %+v", c)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

// TestNotifyOutsideLock checks that the expiry function may call the store.
func TestNotifyOutsideLock(t *testing.T) {
	s, clock := newTestStore(t, memstore.Options{})
	var loads []error
	s.NotifyExpiry(func(rec session.Record, _ session.Reason) {
		_, err := s.Load(context.Background(), rec.ID)
		loads = append(loads, err)
	})
	create(t, s, clock.Now(), "a", time.Minute)
	clock.Advance(time.Minute)
	if n := s.Sweep(); n != 1 {
		t.Fatalf("swept %d", n)
	}
	if len(loads) != 1 || !errors.Is(loads[0], session.ErrNotFound) {
		t.Fatalf("loads from the expiry function: %v", loads)
	}
}

// TestCountsAndStats checks the counters a metric can read without a
// Manager: refused writes and evictions are never silent.
func TestCountsAndStats(t *testing.T) {
	tests := []struct {
		name string
		full memstore.Policy
		want memstore.Counts
	}{
		{"refuse", memstore.RefuseNew, memstore.Counts{Refused: 1}},
		{"evict", memstore.EvictLRU, memstore.Counts{Evicted: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newTestStore(t, memstore.Options{MaxSessions: 1, Full: tt.full})
			create(t, s, clock.Now(), "a", time.Hour)
			now := clock.Now()
			_, _ = s.Save(context.Background(), session.Delta{ID: "b", Route: "n1", Created: now, LastAccess: now})
			if c := s.Counts(); c != tt.want {
				t.Fatalf("counts %+v, want %+v", c, tt.want)
			}
			if st := s.Stats(); st.Sessions != 1 || st.MaxSessions != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestRecentRemovalConflicts checks that after many removals the most
// recent one still conflicts with a writer that missed it.
func TestRecentRemovalConflicts(t *testing.T) {
	s, clock := newTestStore(t, memstore.Options{})
	ctx := context.Background()
	create(t, s, clock.Now(), "a", time.Hour)
	v := uint64(1)
	for i := 0; i < 100; i++ {
		key := fmt.Sprintf("k%03d", i)
		res, err := s.Save(ctx, session.Delta{ID: "a", BaseVersion: v, Set: map[string][]byte{key: []byte("1")}})
		if err != nil {
			t.Fatal(err)
		}
		if res, err = s.Save(ctx, session.Delta{ID: "a", BaseVersion: res.Version, Removed: []string{key}}); err != nil {
			t.Fatal(err)
		}
		v = res.Version
	}
	// The most recent removal still conflicts with a writer that missed it.
	res, err := s.Save(ctx, session.Delta{ID: "a", BaseVersion: v - 1, Set: map[string][]byte{"k099": []byte("2")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0] != "k099" {
		t.Fatalf("conflicts %v, want [k099]", res.Conflicts)
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := memstore.New(memstore.Options{Full: 7}); err == nil {
		t.Fatal("unknown policy accepted")
	}
}
