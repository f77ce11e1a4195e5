package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// Config is what the suite asks of a store it has newStore create.
type Config struct {
	// Now is the clock the store must use for expiry. The suite moves it.
	Now func() time.Time
	// MaxSessions and MaxBytes are the bounds to enforce; 0 means none.
	// MaxBytes counts at least the keys and values, plus an overhead per
	// session the suite assumes below 1 KiB.
	MaxSessions int
	MaxBytes    int64
	// Evict asks for evicting the least recently used sessions when full,
	// instead of refusing the write with session.ErrStoreFull.
	Evict bool
}

// Instance is a store newStore created for one test.
type Instance struct {
	// Store is the store under test.
	Store session.Store
	// Sweep runs the store's janitor once, at once. Nil for a store
	// without one: then expired sessions are only checked on access.
	Sweep func()
	// Bounded says the store honours Config.MaxSessions, MaxBytes and
	// Evict. The capacity tests run only then.
	Bounded bool
}

// Run runs the conformance suite as subtests of t. newStore is called once
// per subtest and must return a fresh, empty store honouring cfg; its
// cleanup belongs in t.Cleanup. Subtests do not run in parallel with each
// other; several use many goroutines on one store, so run Run under -race.
func Run(t *testing.T, newStore func(t *testing.T, cfg Config) Instance) {
	tests := []struct {
		name string
		run  func(*testing.T, *harness)
	}{
		{"CreateThenLoad", testCreateThenLoad},
		{"CreateTakenID", testCreateTakenID},
		{"Absent", testAbsent},
		{"BadDelta", testBadDelta},
		{"VersionPlusOnePerSave", testVersions},
		{"MergeDifferentKeys", testMergeDifferentKeys},
		{"SameKeyLastWriterWins", testSameKey},
		{"RemoveConflicts", testRemoveConflicts},
		{"RemoveAbsentKey", testRemoveAbsentKey},
		{"LastAccessNeverGoesBack", testLastAccess},
		{"SaveKeepsIdentity", testSaveKeepsIdentity},
		{"Delete", testDelete},
		{"IdleTimeout", testIdleTimeout},
		{"TouchExtendsIdle", testTouchExtends},
		{"AbsoluteDeadline", testDeadline},
		{"NoTimeouts", testNoTimeouts},
		{"ExpiryReportedOnce", testExpiryOnce},
		{"ConcurrentDifferentKeys", testConcurrentKeys},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"ConcurrentSessions", testConcurrentSessions},
		{"ReadChecks", testReadChecks},
		{"ConcurrentReadModifyWrite", testConcurrentReadModifyWrite},
		{"Linearizable", testLinearizable},
		{"Stats", testStats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newHarness(t, newStore, Config{})) })
	}
	runCapacity(t, newStore)
}

// harness is one subtest's store, clock and expiry log.
type harness struct {
	t     *testing.T
	clock *Clock
	inst  Instance
	st    session.Store

	mu      sync.Mutex
	expired []expiry // what the store reported through ExpiryNotifier
}

type expiry struct {
	id  string
	why session.Reason
}

func newHarness(t *testing.T, newStore func(*testing.T, Config) Instance, cfg Config) *harness {
	h := &harness{t: t, clock: NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))}
	cfg.Now = h.clock.Now
	h.inst = newStore(t, cfg)
	h.st = h.inst.Store
	if n, ok := h.st.(session.ExpiryNotifier); ok {
		n.NotifyExpiry(func(rec session.Record, why session.Reason) {
			h.mu.Lock()
			h.expired = append(h.expired, expiry{rec.ID, why})
			h.mu.Unlock()
		})
	}
	return h
}

func ctx() context.Context { return context.Background() }

// create stores session id with values at the clock's time, idle timeout
// idle and deadline after lifetime (0: none).
func (h *harness) create(id string, values map[string]string, idle, lifetime time.Duration) {
	h.t.Helper()
	now := h.clock.Now()
	d := session.Delta{ID: id, Set: bytesOf(values), LastAccess: now, Route: "n1", Created: now, IdleTimeout: idle}
	if lifetime > 0 {
		d.Deadline = now.Add(lifetime)
	}
	res, err := h.st.Save(ctx(), d)
	if err != nil {
		h.t.Fatalf("create %s: %v", id, err)
	}
	if res.Version != 1 {
		h.t.Fatalf("create %s: version %d, want 1", id, res.Version)
	}
}

// save applies a delta to id and fails the test on error.
func (h *harness) save(id string, base uint64, set map[string]string, removed ...string) session.SaveResult {
	h.t.Helper()
	res, err := h.st.Save(ctx(), session.Delta{ID: id, BaseVersion: base, Set: bytesOf(set),
		Removed: removed, LastAccess: h.clock.Now()})
	if err != nil {
		h.t.Fatalf("save %s from version %d: %v", id, base, err)
	}
	return res
}

// load loads id and fails the test on error.
func (h *harness) load(id string) session.Record {
	h.t.Helper()
	rec, err := h.st.Load(ctx(), id)
	if err != nil {
		h.t.Fatalf("load %s: %v", id, err)
	}
	return rec
}

// gone checks that id is absent.
func (h *harness) gone(id string) {
	h.t.Helper()
	if rec, err := h.st.Load(ctx(), id); !errors.Is(err, session.ErrNotFound) {
		h.t.Fatalf("load %s: %+v, %v; want ErrNotFound", id, rec, err)
	}
}

// values checks the values of id.
func (h *harness) values(id string, want map[string]string) {
	h.t.Helper()
	got := stringsOf(h.load(id).Values)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		h.t.Fatalf("values of %s = %v, want %v", id, got, want)
	}
}

// sweep runs the janitor if the store has one.
func (h *harness) sweep() {
	if h.inst.Sweep != nil {
		h.inst.Sweep()
	}
}

// reportWait bounds how long the suite waits for expiry reports: a store
// may deliver them from its own goroutine (session.ExpiryNotifier), for
// instance once a replicated expiry has been acknowledged.
const reportWait = 5 * time.Second

// reported returns what the store reported so far, when it notifies,
// after waiting up to reportWait for at least n reports.
func (h *harness) reported(n int) ([]expiry, bool) {
	if _, ok := h.st.(session.ExpiryNotifier); !ok {
		return nil, false
	}
	deadline := time.Now().Add(reportWait)
	for {
		h.mu.Lock()
		got := append([]expiry(nil), h.expired...)
		h.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got, true
		}
		time.Sleep(time.Millisecond) // polling for reports, with a deadline
	}
}

// wantReported checks the expiry reports, for a store that notifies. It
// waits for as many reports as it wants (none: it looks once).
func (h *harness) wantReported(want ...expiry) {
	h.t.Helper()
	got, ok := h.reported(len(want))
	if !ok {
		return
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		h.t.Fatalf("expiry reports %v, want %v", got, want)
	}
}

func bytesOf(m map[string]string) map[string][]byte {
	if m == nil {
		return nil
	}
	b := make(map[string][]byte, len(m))
	for k, v := range m {
		b[k] = []byte(v)
	}
	return b
}

func stringsOf(m map[string][]byte) map[string]string {
	s := make(map[string]string, len(m))
	for k, v := range m {
		s[k] = string(v)
	}
	return s
}
