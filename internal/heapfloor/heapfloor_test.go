package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		floor       uint64
		base        int
		live, roots uint64
		want        int
	}{
		{"a large heap: GOGC as it is", 64 * mib, 100, 40 * mib, 1 * mib, 100},
		{"the goal is exactly the floor: GOGC", 64 * mib, 100, 32 * mib, 0, 100},
		{"a heap of 20 MiB: 220%", 64 * mib, 100, 20 * mib, 0, 220},
		{"rounded up", 64 * mib, 100, 20 * mib, 1, 220},
		{"stacks and globals count", 64 * mib, 100, 20 * mib, 2 * mib, 200},
		{"a tiny heap: capped, the runtime's minimum is the floor", 64 * mib, 100, 1 * mib, 0, 1600},
		{"an empty heap", 64 * mib, 100, 0, 0, 1600},
		{"GOGC above what the floor needs", 64 * mib, 400, 20 * mib, 0, 400},
		{"a floor under the runtime's minimum", 2 * mib, 100, 1 * mib, 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Percent(tc.floor, tc.base, tc.live, tc.roots)
			if got != tc.want {
				t.Fatalf("Percent(%d MiB, %d, %d, %d) = %d, want %d", tc.floor/mib, tc.base, tc.live, tc.roots, got, tc.want)
			}
			// The goal the runtime computes from it (mgcpacer.go): at
			// least the floor, and over it by at most one percent step
			// when the percentage was raised for it.
			goal := max(tc.live+(tc.live+tc.roots)*uint64(got)/100, runtimeMinimum*uint64(got)/100)
			if goal < tc.floor && tc.floor > runtimeMinimum*uint64(tc.base)/100 {
				t.Errorf("goal %d < floor %d", goal, tc.floor)
			}
			if got > tc.base && goal > tc.floor+(tc.live+tc.roots)/100 {
				t.Errorf("goal %d overshoots the floor %d by more than a percent step", goal, tc.floor)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		bad  bool
	}{
		{in: "64MiB", want: 64 * mib},
		{in: "1GiB", want: 1 << 30},
		{in: "512KiB", want: 512 << 10},
		{in: "1TiB", want: 1 << 40},
		{in: "1000", want: 1000},
		{in: "1000B", want: 1000},
		{in: "0", want: 0},
		{in: "off", want: 0},
		{in: "", bad: true},
		{in: "MiB", bad: true},
		{in: "64M", bad: true},
		{in: "64 MiB", bad: true},
		{in: "-1MiB", bad: true},
		{in: "+1MiB", bad: true},
		{in: "1.5GiB", bad: true},
		{in: "99999999999TiB", bad: true},
	} {
		got, err := ParseSize(tc.in)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

var sink []byte

// churn allocates n bytes of garbage in 32 KiB pieces and returns how many
// collections ended meanwhile.
func churn(n int) uint64 {
	before := cycles()
	for i := 0; i < n; i += 32 << 10 {
		sink = make([]byte, 32<<10)
	}
	sink = nil
	return cycles() - before
}

func cycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(int64(s[0].Value.Uint64()))
}

// TestKeepSparesASmallHeap: a floor of 64 MiB puts the runtime's goal at
// 64 MiB over a heap of a few hundred KiB (4 MiB without), so 32 MiB of
// garbage runs no collection; Stop gives the goal back.
func TestKeepSparesASmallHeap(t *testing.T) {
	if gogc() != 100 {
		t.Skipf("GOGC is %d; this test reads the collector at GOGC=100", gogc())
	}
	runtime.GC()
	if g := goal(); g >= 16*mib {
		t.Skipf("the heap goal is already %d bytes", g)
	}
	f := Keep(64 * mib)
	if f == nil {
		t.Fatal("Keep returned nil at GOGC=100")
	}
	if g := goal(); g < 64*mib {
		t.Errorf("with a floor of 64 MiB, the heap goal is %d bytes", g)
	}
	if n := churn(32 * mib); n != 0 {
		t.Errorf("with a floor of 64 MiB, 32 MiB of garbage ran %d collections", n)
	}
	f.Stop()
	if got := gogc(); got != 100 {
		t.Errorf("after Stop, GOGC is %d, want 100 back", got)
	}
	runtime.GC()
	if g := goal(); g >= 16*mib {
		t.Errorf("after Stop, the heap goal is still %d bytes", g)
	}
}

func goal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestKeepFollowsTheLiveHeap: after each collection the percentage is set
// again from the live heap: GOGC itself once the heap is over half the
// floor, more again when it shrinks.
func TestKeepFollowsTheLiveHeap(t *testing.T) {
	if gogc() != 100 {
		t.Skipf("GOGC is %d; this test reads the collector at GOGC=100", gogc())
	}
	// 24 MiB live, allocated before Keep: no collection runs between
	// the collections the test makes (the goal is then over 16 MiB).
	live := make([][]byte, 24)
	for i := range live {
		live[i] = make([]byte, mib)
	}
	runtime.GC()
	f := Keep(16 * mib)
	defer f.Stop()
	adjusted := make(chan int, 16)
	setAdjusted(func(p int) { adjusted <- p })
	defer setAdjusted(nil)
	// next runs a collection and returns the percentage its cleanup set.
	next := func() int {
		runtime.GC()
		return <-adjusted
	}
	if p := next(); p != 100 {
		t.Errorf("with 24 MiB live under a floor of 16 MiB: %d%%, want GOGC's 100%%", p)
	}
	runtime.KeepAlive(live)
	live = nil
	if p := next(); p <= 100 {
		t.Errorf("with a small heap under a floor of 16 MiB: %d%%, want more than 100%%", p)
	}
	if p := next(); p <= 100 {
		t.Errorf("the floor was not kept after a second collection: %d%%", p)
	}
	f.Stop()
	runtime.GC()
	select {
	case p := <-adjusted:
		t.Errorf("adjusted to %d%% after Stop", p)
	default:
	}
	if got := gogc(); got != 100 {
		t.Errorf("after Stop, GOGC is %d, want 100", got)
	}
}

func setAdjusted(fn func(int)) {
	process.Lock()
	process.adjusted = fn
	process.Unlock()
}

// TestFloorsShareThePercentage: two floors at once (two servers in one
// process): the higher applies, and only the last Stop gives GOGC back,
// not the percentage the first one set.
func TestFloorsShareThePercentage(t *testing.T) {
	if gogc() != 100 {
		t.Skipf("GOGC is %d; this test reads the collector at GOGC=100", gogc())
	}
	runtime.GC()
	a := Keep(32 * mib)
	b := Keep(64 * mib)
	if g := goal(); g < 64*mib {
		t.Errorf("with floors of 32 and 64 MiB, the goal is %d bytes", g)
	}
	a.Stop()
	if g := goal(); g < 64*mib {
		t.Errorf("after the 32 MiB floor stopped, the goal is %d bytes, want the 64 MiB floor's", g)
	}
	c := Keep(16 * mib)
	b.Stop()
	if g := goal(); g < 16*mib || g >= 32*mib {
		t.Errorf("with the 16 MiB floor left, the goal is %d bytes", g)
	}
	c.Stop()
	c.Stop()
	if got := gogc(); got != 100 {
		t.Errorf("after the last Stop, GOGC is %d, want 100", got)
	}
}

func TestKeepLeavesGOGCOffAlone(t *testing.T) {
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	if f := Keep(64 * mib); f != nil {
		f.Stop()
		t.Fatal("Keep started a floor with the collector off")
	}
	if got := gogc(); got != -1 {
		t.Errorf("GOGC is %d, want off (-1)", got)
	}
}
