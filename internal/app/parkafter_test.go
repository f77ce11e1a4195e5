package app

import (
	"testing"
	"time"

	"github.com/tetherlb/tether/config"
)

// TestParkAfterReachesTheEngine: limits.park_after is the native
// engine's grace before an idle connection is parked; unset, the
// engine's default (10ms).
func TestParkAfterReachesTheEngine(t *testing.T) {
	for _, tt := range []struct {
		set, want time.Duration
	}{
		{0, 10 * time.Millisecond},
		{time.Millisecond, time.Millisecond},
		{time.Hour, time.Hour},
	} {
		var s Server
		cfg := config.Config{Limits: config.Limits{ParkAfter: tt.set}}
		l := s.newListener(cfg, "127.0.0.1:0", nil)
		if l.native == nil {
			t.Fatalf("park_after %v: no native engine", tt.set)
		}
		if got := l.native.ParkAfter(); got != tt.want {
			t.Errorf("park_after %v: the engine parks after %v, want %v", tt.set, got, tt.want)
		}
	}
}
