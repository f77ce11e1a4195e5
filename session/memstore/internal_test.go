package memstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/tetherlb/tether/session"
)

// TestTombstoneMemory checks that removed keys are remembered up to
// maxTombstones, no more.
func TestTombstoneMemory(t *testing.T) {
	s, err := New(Options{JanitorInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := s.Save(ctx, session.Delta{ID: "a", Set: map[string][]byte{"keep": []byte("1")}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3*maxTombstones; i++ {
		key := fmt.Sprintf("k%03d", i)
		if res, err = s.Save(ctx, session.Delta{ID: "a", BaseVersion: res.Version, Set: map[string][]byte{key: []byte("1")}}); err != nil {
			t.Fatal(err)
		}
		if res, err = s.Save(ctx, session.Delta{ID: "a", BaseVersion: res.Version, Removed: []string{key}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.sessions["a"].keyVer); n != 1+maxTombstones {
		t.Fatalf("%d key versions kept, want %d", n, 1+maxTombstones)
	}
}

// TestSizeAccounting checks the incremental size of updates against a
// recount.
func TestSizeAccounting(t *testing.T) {
	s, err := New(Options{JanitorInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := s.Save(ctx, session.Delta{ID: "a", Route: "n1", Set: map[string][]byte{"k": []byte("12345"), "j": []byte("1")}})
	if err != nil {
		t.Fatal(err)
	}
	steps := []session.Delta{
		{Set: map[string][]byte{"k": []byte("1")}},
		{Set: map[string][]byte{"new": []byte("123456789")}, Removed: []string{"j", "absent"}},
		{Removed: []string{"k", "new"}},
	}
	for i, d := range steps {
		d.ID, d.BaseVersion = "a", res.Version
		if res, err = s.Save(ctx, d); err != nil {
			t.Fatal(err)
		}
		e := s.sessions["a"]
		if e.size != sizeOf(e.rec) || s.bytes != e.size {
			t.Fatalf("step %d: size %d, store bytes %d, recount %d", i, e.size, s.bytes, sizeOf(e.rec))
		}
	}
}
