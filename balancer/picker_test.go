package balancer

import (
	"net/url"
	"testing"
	"time"
)

func members(weights ...int) []*Member {
	out := make([]*Member, len(weights))
	for i, w := range weights {
		u, _ := url.Parse("http://127.0.0.1:1")
		out[i] = newMember(MemberConfig{URL: u, Route: string(rune('a' + i)), Weight: w}, &Pool{now: time.Now})
	}
	return out
}

func TestByRequestsIsSmoothAndWeighted(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		// maxRun is the longest run of one member allowed in the sequence.
		maxRun int
	}{
		{"equal", []int{1, 1, 1}, 1},
		{"1:2:3", []int{1, 2, 3}, 2},
		{"5:1:1 interleaved", []int{5, 1, 1}, 4}, // a a b a c a a, repeated
		{"single", []int{4}, 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := NewPicker(ByRequests)
			ms := members(tt.weights...)
			total := 0
			for _, w := range tt.weights {
				total += w
			}
			counts := map[*Member]int{}
			var last *Member
			run := 0
			for i := 0; i < total*100; i++ {
				m := p.Pick(ms)
				counts[m]++
				if m == last {
					run++
				} else {
					last, run = m, 1
				}
				if run > tt.maxRun {
					t.Fatalf("pick %d: %s picked %d times in a row", i, m.route, run)
				}
			}
			for i, m := range ms {
				if counts[m] != tt.weights[i]*100 {
					t.Errorf("member %s: %d picks, want exactly %d", m.route, counts[m], tt.weights[i]*100)
				}
			}
		})
	}
}

func TestByBusynessPicksLeastInFlightPerWeight(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		inflight []int64
		want     string
	}{
		{"fewest in flight", []int{1, 1, 1}, []int64{5, 2, 9}, "b"},
		{"weight scales load", []int{1, 4, 1}, []int64{2, 6, 3}, "b"}, // 6/4 < 2/1
		{"idle first", []int{1, 1}, []int64{1, 0}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := NewPicker(ByBusyness)
			ms := members(tt.weights...)
			for i, n := range tt.inflight {
				ms[i].inflight.Store(n)
			}
			for i := 0; i < 10; i++ {
				if got := p.Pick(ms).route; got != tt.want {
					t.Fatalf("picked %s, want %s", got, tt.want)
				}
			}
		})
	}
}

func TestByBusynessSpreadsTies(t *testing.T) {
	p, _ := NewPicker(ByBusyness)
	ms := members(1, 1, 1)
	counts := map[string]int{}
	for i := 0; i < 300; i++ {
		counts[p.Pick(ms).route]++
	}
	for _, m := range ms {
		if counts[m.route] != 100 {
			t.Errorf("idle members share ties unevenly: %v", counts)
		}
	}
}

func TestByTrafficPicksLeastBytes(t *testing.T) {
	p, _ := NewPicker(ByTraffic)
	ms := members(1, 1, 2)
	ms[0].bytes.Store(1000)
	ms[1].bytes.Store(300)
	ms[2].bytes.Store(500) // 250 per unit of weight
	if got := p.Pick(ms).route; got != "c" {
		t.Fatalf("picked %s, want c", got)
	}
}

func TestP2C(t *testing.T) {
	p, _ := NewPicker(P2C)
	ms := members(1, 1, 1, 1)
	counts := map[string]int{}
	for i := 0; i < 4000; i++ {
		counts[p.Pick(ms).route]++
	}
	for _, m := range ms {
		if c := counts[m.route]; c < 700 || c > 1300 {
			t.Errorf("idle members: %v, want about 1000 each", counts)
		}
	}
	// A busy member is never the one picked of a pair: with two members,
	// the idle one always wins.
	two := members(1, 1)
	two[0].inflight.Store(10)
	for i := 0; i < 100; i++ {
		if got := p.Pick(two).route; got != "b" {
			t.Fatalf("picked the busy member")
		}
	}
}

func TestNewPickerRejectsUnknownMethod(t *testing.T) {
	if _, err := NewPicker("random"); err == nil {
		t.Fatal("no error")
	}
}

func TestRendezvous(t *testing.T) {
	ms := members(1, 1, 1, 1)
	// Stable: the same id always maps to the same member.
	for i := 0; i < 100; i++ {
		id := newID()
		first := rendezvous(id, ms)
		for j := 0; j < 3; j++ {
			if rendezvous(id, ms) != first {
				t.Fatal("unstable")
			}
		}
		// Minimal disruption: removing another member does not move it.
		var rest []*Member
		for _, m := range ms {
			if m != first && len(rest) < 2 {
				rest = append(rest, m)
			}
		}
		rest = append(rest, first)
		if rendezvous(id, rest) != first {
			t.Fatalf("session %s moved when another member went away", id)
		}
	}
	// Spread: sessions of a failed member spread over the others by weight.
	ws := members(1, 1, 2)
	counts := map[string]int{}
	for i := 0; i < 4000; i++ {
		counts[rendezvous(newID(), ws).route]++
	}
	if counts["a"] < 800 || counts["a"] > 1200 || counts["c"] < 1700 || counts["c"] > 2300 {
		t.Errorf("weighted spread: %v, want about 1000/1000/2000", counts)
	}
	if rendezvous("x", nil) != nil {
		t.Error("empty candidates")
	}
}

// TestRendezvousIsFixed pins the hash with a golden mapping: balancer
// instances of other versions or machines must send a session to the same
// member. Change the golden string only with a release note.
func TestRendezvousIsFixed(t *testing.T) {
	ms := members(1, 1, 1)
	got := ""
	for _, id := range []string{"A1B2C3", "8F3A2B9C1D", "x", "session-42"} {
		got += rendezvous(id, ms).route
	}
	const golden = "abcb"
	if got != golden {
		t.Fatalf("rendezvous mapping is %q, was %q: instances of different versions would disagree", got, golden)
	}
}
