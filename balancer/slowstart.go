package balancer

import (
	"math"
	"math/rand/v2"
	"time"
)

// Slow start (HAProxy's slowstart): a member that comes back — up again
// after being down, moved to active from stopped or standby, or added at
// run time — does not get its whole share of new sessions at once: its
// weight, as the pickers see it, ramps from almost nothing to its full
// value over Options.SlowStart, so that a cold node (empty caches, a JIT
// not warmed up) is not flooded. Sticky traffic is not affected, nor is
// failover (rendezvous hashing uses the configured weights, so sessions
// do not move as weights ramp).

// weightScale is the resolution of ramping weights: pickers see weights
// times this, so that a member of weight 1 can ramp too.
const weightScale = 1000

// pickWeight is the member's weight as pickers use it: Weight times
// weightScale, reduced while the member ramps up.
func (m *Member) pickWeight() int64 {
	w := int64(m.weight.Load()) * weightScale
	until := m.rampUntil.Load()
	if until == 0 {
		return w
	}
	share, done := m.rampShare(m.pool.now())
	if done {
		m.rampUntil.CompareAndSwap(until, 0)
		return w
	}
	return max(1, int64(math.Round(float64(w)*share)))
}

// rampShare is the part of its weight a ramping member has at now, and
// whether the ramp is over.
func (m *Member) rampShare(now time.Time) (share float64, done bool) {
	from, until := m.rampFrom.Load(), m.rampUntil.Load()
	t := now.UnixNano()
	if until == 0 || t >= until || until <= from {
		return 1, true
	}
	return max(float64(t-from), 0) / float64(until-from), false
}

// startRamp begins a slow start, if the pool has one configured.
func (m *Member) startRamp() {
	ss := m.pool.slowStart.Load()
	if ss <= 0 {
		return
	}
	now := m.pool.now().UnixNano()
	m.rampFrom.Store(now)
	m.rampUntil.Store(now + ss)
}

// rampAware is implemented by the pickers that follow slow start through
// pickWeight.
type rampAware interface{ rampsWeights() }

// slowStartGate keeps each ramping member among the candidates of a new
// session with a probability equal to its share, for the pickers that
// choose by load, where a weight alone does not hold a member back (two
// idle members tie whatever their weights). The kept candidates are
// moved to the front of cands and returned; if none is kept, cands.
func (a *attempt) slowStartGate(cands []*Member) []*Member {
	if _, ok := a.s.picker.(rampAware); ok {
		return cands
	}
	k := 0
	for i, m := range cands {
		if m.rampUntil.Load() != 0 {
			if share, done := m.rampShare(a.start); !done && rand.Float64() >= share {
				continue
			}
		}
		cands[k], cands[i] = cands[i], cands[k]
		k++
	}
	if k == 0 {
		return cands
	}
	return cands[:k]
}

// SlowStart describes a member's ramp up.
type SlowStart struct {
	// Until is when the member gets its whole share.
	Until time.Time
	// Share is the part of its weight it has now, from 0 to 1.
	Share float64
}

// slowStart returns the member's ramp at now, nil if it is not ramping.
func (m *Member) slowStart(now time.Time) *SlowStart {
	share, done := m.rampShare(now)
	if done {
		return nil
	}
	return &SlowStart{Until: time.Unix(0, m.rampUntil.Load()), Share: share}
}
