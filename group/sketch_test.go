package group

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestSketchCounts(t *testing.T) {
	tests := []struct {
		name string
		n    int
		tol  float64 // allowed relative error
	}{
		{"empty", 0, 0},
		{"one", 1, 0},
		{"ten", 10, 0},
		{"hundred", 100, 0.02},
		{"ten thousand", 10000, 0.05},
		{"million", 1000000, 0.05},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.n)))
			var s Sketch
			for range tc.n {
				s.Add(r.Uint64())
			}
			got := s.Count()
			if d := float64(got-int64(tc.n)) / max(float64(tc.n), 1); d > tc.tol || d < -tc.tol {
				t.Errorf("Count() = %d for %d hashes", got, tc.n)
			}
		})
	}
}

func TestSketchUnionCountsEachOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var a, b Sketch
	for i := range 300 {
		h := r.Uint64()
		if i < 200 {
			a.Add(h)
		}
		if i >= 100 {
			b.Add(h)
		}
	}
	var u Sketch
	u.Merge(&a)
	u.Merge(&b)
	if got := u.Count(); got < 294 || got > 306 {
		t.Errorf("union of 200 and 200 hashes sharing 100 counts %d, want about 300", got)
	}
}

func TestSketchEncodingRoundTrips(t *testing.T) {
	for _, n := range []int{0, 1, 50, 5000} {
		r := rand.New(rand.NewPCG(3, uint64(n)))
		var s Sketch
		for range n {
			s.Add(r.Uint64())
		}
		b, _ := s.MarshalBinary()
		var d Sketch
		if err := d.UnmarshalBinary(b); err != nil {
			t.Fatalf("%d hashes: %v", n, err)
		}
		b2, _ := d.MarshalBinary()
		if !bytes.Equal(b, b2) || d.Count() != s.Count() {
			t.Errorf("%d hashes: the decoded sketch differs", n)
		}
	}
}

func TestSketchRefusesBadEncodings(t *testing.T) {
	for name, b := range map[string][]byte{
		"nothing":          {},
		"unknown form":     {9},
		"empty with data":  {sketchEmpty, 1},
		"short dense":      {sketchDense, 1, 2},
		"sparse no regs":   {sketchSparse},
		"sparse torn":      {sketchSparse, 0, 1},
		"sparse index":     {sketchSparse, 0xff, 0xff, 1},
		"sparse zero rank": {sketchSparse, 0, 1, 0},
		"sparse big rank":  {sketchSparse, 0, 1, maxRank + 1},
	} {
		var s Sketch
		if err := s.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSessionHashSpreads: ids that differ little (a counter) hash
// uniformly enough for the sketch to count them.
func TestSessionHashSpreads(t *testing.T) {
	k, err := newHashKey([]byte("spread-test-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{50, 20000} {
		var s Sketch
		for i := range n {
			s.Add(k.sum(fmt.Sprintf("%032x", i)))
		}
		if got := s.Count(); got < int64(n)*95/100 || got > int64(n)*105/100 {
			t.Errorf("%d sequential ids count %d", n, got)
		}
	}
}
