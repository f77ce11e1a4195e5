// Package heapfloor keeps the Go garbage collector's heap goal from falling
// below a floor, so that a burst (a thousand clients connecting at once,
// each taking its buffers) is served without a collection every few
// megabytes, while a large heap is still collected as GOGC says.
//
// The runtime has a minimum heap goal of its own, 4 MiB at GOGC=100: a
// balancer whose heap is small runs a collection each time a few hundred
// connections take their buffers together, and the mark assists of those
// collections land on the requests of the burst (bench/compare's
// 1,000-connection mode, docs/benchmarks.md). Raising GOGC for good would
// also multiply the headroom of a large heap (a TLS balancer holding
// 10,000 idle connections doubles its resident memory at GOGC=400).
// Keep raises the goal to the floor only while the heap is small:
//
//	goal = max(floor, live + (live + stacks + globals) × GOGC/100)
//
// It does so after each collection by setting the GC percentage (as
// debug.SetGCPercent) to what puts the next goal at the floor, never lower
// than GOGC, and at most floor/4 MiB × 100: the runtime's own minimum heap
// is 4 MiB × percentage/100, which at that cap is the floor itself. It
// reads the live heap, stacks and globals of the collection that just
// ended from runtime/metrics. A memory limit (GOMEMLIMIT) still bounds the
// heap: the runtime collects sooner when the limit is near, whatever the
// percentage.
package heapfloor

import (
	"errors"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// runtimeMinimum is the runtime's minimum heap goal at GOGC=100
// (defaultHeapMinimum in runtime/mgcpacer.go); it scales with the
// percentage.
const runtimeMinimum = 4 << 20

// Floor keeps the heap goal at or above a number of bytes; Stop ends it.
type Floor struct {
	floor uint64
	base  int // GOGC when Keep was called

	mu       sync.Mutex
	stopped  bool
	samples  []metrics.Sample
	adjusted func(percent int) // tests: called after each adjustment
}

// Keep starts keeping the heap goal at or above floor bytes, from now
// until Stop, on top of the GC percentage in effect (GOGC). It returns nil,
// and changes nothing, if floor is 0 or if GOGC is off or 0 (a setting for
// debugging the collector, left as it is).
func Keep(floor uint64) *Floor {
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(gogc)
	base := int(int64(gogc[0].Value.Uint64())) // off: -1
	if floor == 0 || base <= 0 {
		return nil
	}
	f := &Floor{floor: floor, base: base, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	f.adjust()
	f.arm()
	return f
}

// Stop gives the collector back the percentage it had when Keep was
// called. Stop on a nil Floor does nothing.
func (f *Floor) Stop() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		debug.SetGCPercent(f.base)
	}
}

// arm runs adjust after the next collection: the cleanup of a new object
// runs once a collection has found it unreachable, and arms the next.
func (f *Floor) arm() {
	runtime.AddCleanup(new(sentinel), func(f *Floor) {
		if f.adjust() {
			f.arm()
		}
	}, f)
}

// sentinel is an object of its own: the tiny allocator, whose objects
// share their memory (and their collection), takes only pointer-free
// objects under 16 bytes.
type sentinel [16]byte

// adjust sets the percentage for the next goal from the collection that
// just ended. It reports false once stopped.
func (f *Floor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.samples)
	p := Percent(f.floor, f.base, f.samples[0].Value.Uint64(), f.samples[1].Value.Uint64()+f.samples[2].Value.Uint64())
	debug.SetGCPercent(p)
	if f.adjusted != nil {
		f.adjusted(p)
	}
	return true
}

// Percent is the GC percentage that puts the next heap goal at floor
// after a collection that found live bytes of heap and scanned roots bytes
// of stacks and globals: the runtime's goal is live + (live + roots) ×
// percent/100, and at least 4 MiB × percent/100. It is never below base
// (GOGC), and at most floor/4 MiB × 100.
func Percent(floor uint64, base int, live, roots uint64) int {
	if live+(live+roots)*uint64(base)/100 >= floor {
		return base
	}
	capped := int(floor * 100 / runtimeMinimum)
	scanned := max(live+roots, 1)
	need := (floor - live) * 100 / scanned
	if (floor-live)*100%scanned != 0 {
		need++
	}
	if need > uint64(capped) {
		return max(capped, base)
	}
	return max(int(need), base)
}

// ParseSize reads a size as GOMEMLIMIT writes it: a number of bytes,
// optionally with a unit B, KiB, MiB, GiB or TiB ("64MiB"); "off" and "0"
// are 0. Its errors do not quote s.
func ParseSize(s string) (uint64, error) {
	if s == "off" {
		return 0, nil
	}
	num, mult := s, uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, errors.New("want a number of bytes with an optional unit B, KiB, MiB, GiB or TiB (64MiB), or off")
	}
	if n > (1<<64-1)/mult {
		return 0, errors.New("too large: over 16 EiB")
	}
	return n * mult, nil
}
