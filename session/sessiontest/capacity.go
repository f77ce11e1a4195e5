package sessiontest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// capBytes is the byte bound of the capacity tests, and bigLen the size of
// a big value: three fit in capBytes with a per-session overhead below
// 1 KiB, four do not.
const capBytes, bigLen = 64 << 10, 20000

// runCapacity runs the capacity tests if the store honours bounds.
func runCapacity(t *testing.T, newStore func(*testing.T, Config) Instance) {
	tests := []struct {
		name string
		cfg  Config
		run  func(*testing.T, *harness)
	}{
		{"RefuseSessions", Config{MaxSessions: 3}, testRefuseSessions},
		{"RefuseBytes", Config{MaxBytes: capBytes}, testRefuseBytes},
		{"ExpiredMakeRoom", Config{MaxSessions: 2}, testExpiredMakeRoom},
		{"EvictLRUSessions", Config{MaxSessions: 3, Evict: true}, testEvictSessions},
		{"EvictLRUBytes", Config{MaxBytes: capBytes, Evict: true}, testEvictBytes},
		{"EvictNeverForOneTooBig", Config{MaxBytes: capBytes, Evict: true}, testEvictTooBig},
	}
	t.Run("Capacity", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := newHarness(t, newStore, tt.cfg)
				if !h.inst.Bounded {
					t.Skip("the store does not honour bounds")
				}
				tt.run(t, h)
			})
		}
	})
}

// full checks that err says the store is full.
func full(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, session.ErrStoreFull) {
		t.Fatalf("%s: %v, want ErrStoreFull", what, err)
	}
}

func (h *harness) tryCreate(id string, values map[string]string) error {
	now := h.clock.Now()
	_, err := h.st.Save(ctx(), session.Delta{ID: id, Set: bytesOf(values), LastAccess: now,
		Route: "n1", Created: now, IdleTimeout: time.Hour})
	return err
}

func testRefuseSessions(t *testing.T, h *harness) {
	for _, id := range []string{"a", "b", "c"} {
		h.create(id, map[string]string{"v": id}, time.Hour, 0)
	}
	full(t, "fourth session", h.tryCreate("d", map[string]string{"v": "d"}))
	h.gone("d")
	for _, id := range []string{"a", "b", "c"} {
		h.values(id, map[string]string{"v": id}) // nothing dropped
	}
	h.save("a", 1, map[string]string{"more": "1"}) // existing sessions still work
	if err := h.st.Delete(ctx(), "b"); err != nil {
		t.Fatal(err)
	}
	if err := h.tryCreate("d", map[string]string{"v": "d"}); err != nil {
		t.Fatalf("create after a delete made room: %v", err)
	}
	h.wantReported()
}

func testRefuseBytes(t *testing.T, h *harness) {
	big := strings.Repeat("x", bigLen)
	for _, id := range []string{"a", "b", "c"} {
		h.create(id, map[string]string{"v": big}, time.Hour, 0)
	}
	full(t, "a fourth big session", h.tryCreate("d", map[string]string{"v": big}))
	_, err := h.st.Save(ctx(), session.Delta{ID: "a", BaseVersion: 1, LastAccess: h.clock.Now(),
		Set: bytesOf(map[string]string{"w": big, "small": "1"})})
	full(t, "growing a session past the bound", err)
	if rec := h.load("a"); rec.Version != 1 || len(rec.Values) != 1 {
		t.Fatalf("a refused save was partly applied: version %d, keys %d", rec.Version, len(rec.Values))
	}
	h.save("a", 1, map[string]string{"small": "1"}) // small writes still fit
	h.wantReported()
}

func testExpiredMakeRoom(t *testing.T, h *harness) {
	h.create("a", map[string]string{"v": "a"}, time.Minute, 0)
	h.create("b", map[string]string{"v": "b"}, time.Hour, 0)
	h.clock.Advance(time.Minute) // a expires; no sweep has run
	if err := h.tryCreate("c", map[string]string{"v": "c"}); err != nil {
		t.Fatalf("create while an expired session holds the room: %v", err)
	}
	h.gone("a")
	h.values("b", map[string]string{"v": "b"})
	h.wantReported(expiry{"a", session.ReasonIdleTimeout})
}

func testEvictSessions(t *testing.T, h *harness) {
	for _, id := range []string{"a", "b", "c"} {
		h.create(id, map[string]string{"v": id}, time.Hour, 0)
		h.clock.Advance(time.Second)
	}
	if err := h.st.Touch(ctx(), "a", h.clock.Now()); err != nil { // a is now the most recent
		t.Fatal(err)
	}
	if err := h.tryCreate("d", map[string]string{"v": "d"}); err != nil {
		t.Fatalf("create with eviction: %v", err)
	}
	h.gone("b")
	for _, id := range []string{"a", "c", "d"} {
		h.values(id, map[string]string{"v": id})
	}
	h.wantReported(expiry{"b", session.ReasonEvicted})
}

func testEvictBytes(t *testing.T, h *harness) {
	big := strings.Repeat("x", bigLen)
	for _, id := range []string{"a", "b", "c"} {
		h.create(id, map[string]string{"v": big}, time.Hour, 0)
	}
	// Growing a, the least recently used, evicts b, never a itself.
	h.save("a", 1, map[string]string{"w": big})
	h.gone("b")
	h.load("a")
	h.load("c")
	h.wantReported(expiry{"b", session.ReasonEvicted})
}

func testEvictTooBig(t *testing.T, h *harness) {
	h.create("a", map[string]string{"v": "a"}, time.Hour, 0)
	huge := strings.Repeat("y", capBytes)
	full(t, "a session bigger than the store", h.tryCreate("b", map[string]string{"v": huge}))
	h.values("a", map[string]string{"v": "a"}) // nothing evicted for a lost cause
	h.wantReported()
}
