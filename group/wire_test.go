package group

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStampOrder(t *testing.T) {
	tests := []struct {
		name string
		a, b Stamp
	}{
		{"wall first", Stamp{1, 9, "z"}, Stamp{2, 0, "a"}},
		{"then logical", Stamp{5, 1, "z"}, Stamp{5, 2, "a"}},
		{"then instance name", Stamp{5, 1, "a"}, Stamp{5, 1, "b"}},
	}
	for _, tc := range tests {
		if !tc.a.Less(tc.b) || tc.b.Less(tc.a) {
			t.Errorf("%s: %v must come before %v, and only that way", tc.name, tc.a, tc.b)
		}
	}
}

func TestHLCNeverGoesBack(t *testing.T) {
	c := hlc{now: func() time.Time { return time.UnixMilli(1000) }}
	w1, l1 := c.next()
	c.observe(5000, 3) // a peer's clock is ahead
	w2, l2 := c.next()
	if !(Stamp{w1, l1, "a"}).Less(Stamp{w2, l2, "a"}) || w2 != 5000 || l2 != 4 {
		t.Errorf("after observing 5000.3: %d.%d", w2, l2)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := encode(msgRecords, wireMsg{Records: []Record{{Key: "k", Value: []byte("v"), Stamp: Stamp{1, 0, "a"}}}})
	if _, _, err := decode(good); err != nil {
		t.Fatalf("a good message: %v", err)
	}
	for name, b := range map[string][]byte{
		"short":          {1},
		"version":        append([]byte{2}, good[1:]...),
		"type":           append([]byte{1, 99}, good[2:]...),
		"not json":       {1, 1, '{'},
		"empty key":      encode(msgRecords, wireMsg{Records: []Record{{Stamp: Stamp{1, 0, "a"}}}}),
		"no origin":      encode(msgRecords, wireMsg{Records: []Record{{Key: "k"}}}),
		"bad sketch":     encode(msgViews, wireMsg{Views: []wireView{{Origin: "a", Tallies: map[string]wireTally{"k": {Sketch: []byte{7}}}}}}),
		"negative":       encode(msgViews, wireMsg{Views: []wireView{{Origin: "a", Tallies: map[string]wireTally{"k": {Count: -1, Sketch: []byte{0}}}}}}),
		"view no origin": encode(msgViews, wireMsg{Views: []wireView{{}}}),
	} {
		if _, _, err := decode(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecode: no input makes decode panic, and what it accepts encodes
// and decodes again to the same records.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "wire", "*"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, m, err := decode(b)
		if err != nil {
			return
		}
		_, m2, err := decode(encode(typ, m))
		if err != nil || len(m2.Records) != len(m.Records) || len(m2.Views) != len(m.Views) {
			t.Fatalf("re-encoded message: %v", err)
		}
	})
}

// FuzzSketch: no input makes UnmarshalBinary panic; what it accepts
// encodes and decodes to the same count.
func FuzzSketch(f *testing.F) {
	f.Add([]byte{sketchEmpty})
	f.Add([]byte{sketchSparse, 0, 1, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Sketch
		if s.UnmarshalBinary(b) != nil {
			return
		}
		e, _ := s.MarshalBinary()
		var d Sketch
		if err := d.UnmarshalBinary(e); err != nil || d.Count() != s.Count() {
			t.Fatalf("re-encoded sketch: %v", err)
		}
	})
}
