package sessiontest

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// testReadChecks: a Save whose reads (Delta.Read, Delta.ReadAll) no longer
// hold fails with ErrConflict and changes nothing; one whose reads hold is
// applied.
func testReadChecks(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"k": "v1"}, time.Hour, 0)
	h.save("s1", 1, map[string]string{"k": "v2"}) // version 2
	tests := []struct {
		name    string
		read    []session.KeyValue
		readAll bool
		base    uint64
		ok      bool
	}{
		{"read value still stored", []session.KeyValue{{Key: "k", Value: []byte("v2")}}, false, 1, true},
		{"read value changed since", []session.KeyValue{{Key: "k", Value: []byte("v1")}}, false, 1, false},
		{"read absent, still absent", []session.KeyValue{{Key: "other", Value: nil}}, false, 1, true},
		{"read absent, now present", []session.KeyValue{{Key: "k", Value: nil}}, false, 1, false},
		{"read present, now absent", []session.KeyValue{{Key: "gone", Value: []byte("x")}}, false, 1, false},
		{"read all of the current version", nil, true, 0, true},
		{"read all of an older version", nil, true, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.load("s1")
			base := tt.base
			if base == 0 {
				base = before.Version
			}
			res, err := h.st.Save(ctx(), session.Delta{ID: "s1", BaseVersion: base, Read: tt.read, ReadAll: tt.readAll,
				Set: map[string][]byte{"w": []byte(tt.name)}, LastAccess: h.clock.Now()})
			after := h.load("s1")
			switch {
			case tt.ok && err != nil:
				t.Fatalf("reads hold, Save failed: %v", err)
			case tt.ok && (res.Version != before.Version+1 || string(after.Values["w"]) != tt.name):
				t.Fatalf("reads hold: version %d, w = %q", res.Version, after.Values["w"])
			case !tt.ok && !errors.Is(err, session.ErrConflict):
				t.Fatalf("stale read: Save returned %v, want ErrConflict", err)
			case !tt.ok && (after.Version != before.Version || string(after.Values["w"]) == tt.name):
				t.Fatalf("stale read: the refused Save changed the session (version %d -> %d)", before.Version, after.Version)
			}
		})
	}
}

// testConcurrentReadModifyWrite has writers append to one value, each
// loading, appending and saving with the value it read as the condition,
// again on conflict: every append survives, as the compare in Save and
// its write are one step.
func testConcurrentReadModifyWrite(t *testing.T, h *harness) {
	const writers, rounds = 8, 10
	h.create("s1", map[string]string{"n": "0"}, time.Hour, 0)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; {
				rec, err := h.st.Load(ctx(), "s1")
				if err != nil {
					errs <- err
					return
				}
				old := rec.Values["n"]
				n, _ := strconv.Atoi(string(old))
				_, err = h.st.Save(ctx(), session.Delta{ID: "s1", BaseVersion: rec.Version,
					Read: []session.KeyValue{{Key: "n", Value: old}}, Set: map[string][]byte{"n": []byte(strconv.Itoa(n + 1))},
					LastAccess: h.clock.Now()})
				switch {
				case err == nil:
					r++
				case !errors.Is(err, session.ErrConflict):
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h.values("s1", map[string]string{"n": strconv.Itoa(writers * rounds)})
}

// testLinearizable runs CheckLinearizable with a Manager over the store.
func testLinearizable(t *testing.T, h *harness) {
	m, err := session.New(session.Options{Store: h.st, Route: "n1", Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	CheckLinearizable(t, LinearOptions{Managers: []*session.Manager{m}})
}
