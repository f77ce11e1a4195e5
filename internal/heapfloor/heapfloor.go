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

// Floor is one holder's floor; Stop ends it. The GC percentage is the
// process's, so the floors of a process (several servers in one test
// binary) share it: the highest floor kept applies, and the last Stop
// gives GOGC back.
type Floor struct {
	bytes uint64
}

// process is the state every Floor of the process shares.
var process struct {
	sync.Mutex
	floors   map[*Floor]struct{}
	base     int  // GOGC when the first floor of the current ones began
	armed    bool // a cleanup waits for the next collection
	samples  []metrics.Sample
	adjusted func(percent int) // tests: called after each adjustment
}

// Keep starts keeping the heap goal at or above floor bytes, from now
// until Stop, on top of the GC percentage in effect (GOGC). It returns nil,
// and changes nothing, if floor is 0 or if GOGC is off or 0 (a setting for
// debugging the collector, left as it is).
func Keep(floor uint64) *Floor {
	if floor == 0 {
		return nil
	}
	p := &process
	p.Lock()
	defer p.Unlock()
	if len(p.floors) == 0 {
		gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(gogc)
		p.base = int(int64(gogc[0].Value.Uint64())) // off: -1
		if p.base <= 0 {
			return nil
		}
		p.floors = map[*Floor]struct{}{}
		p.samples = []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/stack:bytes"},
			{Name: "/gc/scan/globals:bytes"},
		}
	}
	f := &Floor{bytes: floor}
	p.floors[f] = struct{}{}
	adjust()
	if !p.armed {
		p.armed = true
		arm()
	}
	return f
}

// Stop ends f; the last Stop gives the collector back the percentage it
// had when the first floor began. Stop on a nil Floor does nothing.
func (f *Floor) Stop() {
	if f == nil {
		return
	}
	p := &process
	p.Lock()
	defer p.Unlock()
	if _, ok := p.floors[f]; !ok {
		return
	}
	delete(p.floors, f)
	if len(p.floors) == 0 {
		debug.SetGCPercent(p.base)
		return
	}
	adjust()
}

// arm runs adjust after the next collection: the cleanup of a new object
// runs once a collection has found it unreachable, and arms the next,
// while any floor is kept.
func arm() {
	runtime.AddCleanup(new(sentinel), func(struct{}) {
		p := &process
		p.Lock()
		defer p.Unlock()
		if len(p.floors) == 0 {
			p.armed = false
			return
		}
		adjust()
		arm()
	}, struct{}{})
}

// sentinel is an object of its own: the tiny allocator, whose objects
// share their memory (and their collection), takes only pointer-free
// objects under 16 bytes.
type sentinel [16]byte

// adjust sets the percentage for the next goal from the collection that
// ended last and the highest floor. process must be locked, with a floor.
func adjust() {
	p := &process
	var floor uint64
	for f := range p.floors {
		floor = max(floor, f.bytes)
	}
	metrics.Read(p.samples)
	pct := Percent(floor, p.base, p.samples[0].Value.Uint64(), p.samples[1].Value.Uint64()+p.samples[2].Value.Uint64())
	debug.SetGCPercent(pct)
	if p.adjusted != nil {
		p.adjusted(pct)
	}
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
