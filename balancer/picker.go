package balancer

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// MaxWeight is the largest member weight. config.MaxWeight is a copy (config
// imports nothing from tether); a test in internal/app checks that they agree.
const MaxWeight = 1000

// Picker chooses the member for a request that carries no usable route: a
// new session. Stickiness is resolved before a Picker runs, so a Picker
// only ever counts new sessions, never a user's follow-up requests.
//
// Pick is called concurrently. cands is non-empty and holds only members
// eligible for the request; Pick must return one of them and must not
// retain the slice.
type Picker interface {
	Pick(cands []*Member) *Member
}

// Method names a Picker.
type Method string

// The lb methods for new sessions.
const (
	// ByRequests is smooth weighted round robin over new sessions (nginx's
	// algorithm): each member gets its weight's share, evenly interleaved.
	ByRequests Method = "byrequests"
	// ByBusyness picks the member with the fewest requests in flight per
	// unit of weight.
	ByBusyness Method = "bybusyness"
	// ByTraffic picks the member that has moved the fewest body bytes per
	// unit of weight.
	ByTraffic Method = "bytraffic"
	// P2C compares two members chosen at random and picks the one with
	// fewer requests in flight per unit of weight (power of two choices).
	P2C Method = "p2c"
)

// Methods returns every lb method NewPicker knows, in documentation order.
func Methods() []Method { return []Method{ByRequests, ByBusyness, ByTraffic, P2C} }

// NewPicker returns the Picker for method m; "" is ByRequests.
func NewPicker(m Method) (Picker, error) {
	switch m {
	case ByRequests, "":
		return &roundRobin{}, nil
	case ByBusyness:
		return &leastLoad{load: func(m *Member) uint64 { return uint64(max(m.inflight.Load(), 0)) }}, nil
	case ByTraffic:
		return &leastLoad{load: func(m *Member) uint64 { return m.bytes.Load() }}, nil
	case P2C:
		return p2c{}, nil
	}
	return nil, fmt.Errorf("%w: unknown lb method %q", ErrInvalid, m)
}

// roundRobin is smooth weighted round robin.
type roundRobin struct{ mu sync.Mutex }

// rampsWeights says that the picker follows slow start through the
// members' weights (pickWeight); the others see ramping members gated
// (see slowStartGate).
func (*roundRobin) rampsWeights() {}

func (p *roundRobin) Pick(cands []*Member) *Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *Member
	var total int64
	for _, m := range cands {
		w := m.pickWeight()
		m.swrr += w
		total += w
		if best == nil || m.swrr > best.swrr {
			best = m
		}
	}
	best.swrr -= total
	return best
}

// leastLoad picks the member with the least load per unit of weight;
// ties go round robin so that idle members share new sessions.
type leastLoad struct {
	load func(*Member) uint64
	next atomic.Uint32
}

func (p *leastLoad) Pick(cands []*Member) *Member {
	n := len(cands)
	start := int(p.next.Add(1)) % n
	best := cands[start]
	bl, bw := p.load(best), uint64(best.Weight())
	for i := 1; i < n; i++ {
		m := cands[(start+i)%n]
		l, w := p.load(m), uint64(m.Weight())
		if less(l, w, bl, bw) {
			best, bl, bw = m, l, w
		}
	}
	return best
}

// less reports whether l/w < bl/bw, without division or overflow.
func less(l, w, bl, bw uint64) bool {
	h1, l1 := bits.Mul64(l, bw)
	h2, l2 := bits.Mul64(bl, w)
	return h1 < h2 || (h1 == h2 && l1 < l2)
}

// p2c is the power of two random choices on requests in flight.
type p2c struct{}

func (p2c) Pick(cands []*Member) *Member {
	n := len(cands)
	if n == 1 {
		return cands[0]
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	la, lb := max(a.inflight.Load(), 0), max(b.inflight.Load(), 0)
	if !less(uint64(lb), uint64(b.Weight()), uint64(la), uint64(a.Weight())) { // la/wa <= lb/wb
		return a
	}
	return b
}
