package sessiontest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

func testIdleTimeout(t *testing.T, h *harness) {
	h.create("idle", map[string]string{"a": "1"}, 10*time.Minute, 0)
	h.create("swept", map[string]string{"a": "1"}, 10*time.Minute, 0)
	h.clock.Advance(10*time.Minute - time.Second)
	h.load("idle") // Load does not extend the idle timeout: only Touch and Save do
	h.clock.Advance(time.Second)
	h.gone("idle")
	if err := h.st.Touch(ctx(), "swept", h.clock.Now()); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch of an expired session: %v, want ErrNotFound", err)
	}
	if _, err := h.st.Save(ctx(), session.Delta{ID: "swept", BaseVersion: 1, LastAccess: h.clock.Now(),
		Set: bytesOf(map[string]string{"a": "2"})}); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Save to an expired session: %v, want ErrNotFound", err)
	}
	h.sweep()
	h.gone("swept")
	got, ok := h.reported(2)
	if ok && !sameExpiries(got, expiry{"idle", session.ReasonIdleTimeout}, expiry{"swept", session.ReasonIdleTimeout}) {
		t.Fatalf("expiry reports %v, want idle and swept, once each, for idle timeout", got)
	}
}

func testTouchExtends(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"a": "1"}, 10*time.Minute, 0)
	for i := 0; i < 5; i++ { // 5 × 9 minutes, well past one idle timeout
		h.clock.Advance(9 * time.Minute)
		if i%2 == 0 {
			if err := h.st.Touch(ctx(), "s1", h.clock.Now()); err != nil {
				t.Fatalf("touch %d: %v", i, err)
			}
		} else {
			h.save("s1", h.load("s1").Version, map[string]string{"a": "1"})
		}
		h.sweep()
	}
	h.values("s1", map[string]string{"a": "1"})
	h.wantReported()
}

func testDeadline(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"a": "1"}, 10*time.Minute, 30*time.Minute)
	for i := 0; i < 3; i++ {
		h.clock.Advance(9 * time.Minute)
		if err := h.st.Touch(ctx(), "s1", h.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.Advance(3 * time.Minute) // 30 minutes after creation, touched 3 minutes ago
	h.sweep()
	h.gone("s1")
	h.wantReported(expiry{"s1", session.ReasonLifetime})
}

func testNoTimeouts(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"a": "1"}, 0, 0)
	h.clock.Advance(10 * 365 * 24 * time.Hour)
	h.sweep()
	h.values("s1", map[string]string{"a": "1"})
}

// testExpiryOnce races loads, touches and sweeps over expired sessions: each
// must be reported exactly once.
func testExpiryOnce(t *testing.T, h *harness) {
	const n = 50
	for i := 0; i < n; i++ {
		h.create(idOf(i), map[string]string{"a": "1"}, time.Minute, 0)
	}
	h.clock.Advance(time.Minute)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				switch g {
				case 0, 1:
					_, _ = h.st.Load(ctx(), idOf(i))
				case 2:
					_ = h.st.Touch(ctx(), idOf(i), h.clock.Now())
				case 3:
					h.sweep()
				}
			}
		}()
	}
	wg.Wait()
	h.sweep()
	for i := 0; i < n; i++ {
		h.gone(idOf(i))
	}
	got, ok := h.reported(n)
	if !ok {
		return
	}
	seen := map[string]int{}
	for _, e := range got {
		seen[e.id]++
		if e.why != session.ReasonIdleTimeout {
			t.Errorf("%s reported for %v", e.id, e.why)
		}
	}
	for i := 0; i < n; i++ {
		if seen[idOf(i)] != 1 {
			t.Errorf("%s reported %d times, want once", idOf(i), seen[idOf(i)])
		}
	}
}

// sameExpiries compares expiry reports regardless of order.
func sameExpiries(got []expiry, want ...expiry) bool {
	if len(got) != len(want) {
		return false
	}
	left := map[expiry]int{}
	for _, e := range want {
		left[e]++
	}
	for _, e := range got {
		if left[e] == 0 {
			return false
		}
		left[e]--
	}
	return true
}

func idOf(i int) string { return "id-" + string(rune('a'+i/26)) + string(rune('a'+i%26)) }
