package sessiontest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

func testCreateThenLoad(t *testing.T, h *harness) {
	now := h.clock.Now()
	h.create("s1", map[string]string{"a": `"1"`, "b": `[2]`}, 30*time.Minute, 12*time.Hour)
	got := h.load("s1")
	want := session.Record{
		ID: "s1", Route: "n1", Version: 1,
		Values:  map[string][]byte{"a": []byte(`"1"`), "b": []byte(`[2]`)},
		Created: now, LastAccess: now, IdleTimeout: 30 * time.Minute, Deadline: now.Add(12 * time.Hour),
		Epoch: got.Epoch, // the store's own (clusterstore's ownership epoch), or 0
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %+v\nwant   %+v", got, want)
	}
	h.create("empty", nil, time.Minute, 0)
	if rec := h.load("empty"); len(rec.Values) != 0 || rec.Version != 1 {
		t.Fatalf("empty session loaded as %+v", rec)
	}
}

func testCreateTakenID(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"a": "1"}, time.Minute, 0)
	_, err := h.st.Save(ctx(), session.Delta{ID: "s1", Set: bytesOf(map[string]string{"a": "2"}),
		Route: "n2", Created: h.clock.Now(), LastAccess: h.clock.Now()})
	if !errors.Is(err, session.ErrExists) {
		t.Fatalf("second create of s1: %v, want ErrExists", err)
	}
	if rec := h.load("s1"); rec.Route != "n1" || string(rec.Values["a"]) != "1" || rec.Version != 1 {
		t.Fatalf("refused create changed the session: %+v", rec)
	}
}

func testAbsent(t *testing.T, h *harness) {
	h.gone("nope")
	if err := h.st.Delete(ctx(), "nope"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Delete of an absent session: %v, want ErrNotFound", err)
	}
	if err := h.st.Touch(ctx(), "nope", h.clock.Now()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Touch of an absent session: %v, want ErrNotFound", err)
	}
	_, err := h.st.Save(ctx(), session.Delta{ID: "nope", BaseVersion: 3, Set: bytesOf(map[string]string{"a": "1"})})
	if !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Save to an absent session: %v, want ErrNotFound", err)
	}
	h.gone("nope") // the failed Save created nothing
}

func testBadDelta(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"a": "1"}, time.Minute, 0)
	tests := []struct {
		name string
		d    session.Delta
	}{
		{"base version never issued", session.Delta{ID: "s1", BaseVersion: 2, Set: bytesOf(map[string]string{"a": "2"})}},
		{"key set and removed", session.Delta{ID: "s1", BaseVersion: 1, Set: bytesOf(map[string]string{"a": "2"}), Removed: []string{"a"}}},
		{"empty id", session.Delta{ID: "", Set: bytesOf(map[string]string{"a": "2"})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := h.st.Save(ctx(), tt.d); !errors.Is(err, session.ErrBadDelta) {
				t.Fatalf("Save: %v, want ErrBadDelta", err)
			}
		})
	}
	if rec := h.load("s1"); rec.Version != 1 || string(rec.Values["a"]) != "1" {
		t.Fatalf("refused deltas changed the session: %+v", rec)
	}
}

func testVersions(t *testing.T, h *harness) {
	h.create("s1", nil, time.Hour, 0)
	for want := uint64(2); want <= 6; want++ {
		if res := h.save("s1", want-1, map[string]string{"n": "1"}); res.Version != want {
			t.Fatalf("save: version %d, want %d", res.Version, want)
		}
		if err := h.st.Touch(ctx(), "s1", h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if v := h.load("s1").Version; v != want {
			t.Fatalf("after Touch: version %d, want %d (Touch changes no version)", v, want)
		}
	}
	// A save from an old base still adds exactly one.
	if res := h.save("s1", 2, map[string]string{"m": "1"}); res.Version != 7 {
		t.Fatalf("save from an old base: version %d, want 7", res.Version)
	}
}

func testMergeDifferentKeys(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"cart": "[]", "theme": `"dark"`, "old": "1"}, time.Hour, 0)
	// Two requests load version 1 and commit different keys.
	r1 := h.save("s1", 1, map[string]string{"cart": `["apple"]`})
	r2 := h.save("s1", 1, map[string]string{"theme": `"light"`}, "old")
	if len(r1.Conflicts) != 0 || len(r2.Conflicts) != 0 {
		t.Fatalf("conflicts reported for different keys: %v, %v", r1.Conflicts, r2.Conflicts)
	}
	h.values("s1", map[string]string{"cart": `["apple"]`, "theme": `"light"`})
	if v := h.load("s1").Version; v != 3 {
		t.Fatalf("version %d, want 3", v)
	}
}

func testSameKey(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"k": "0", "x": "0"}, time.Hour, 0)
	first := h.save("s1", 1, map[string]string{"k": "first", "x": "1"})
	second := h.save("s1", 1, map[string]string{"k": "second"})
	if len(first.Conflicts) != 0 {
		t.Fatalf("first writer reports conflicts %v", first.Conflicts)
	}
	if len(second.Conflicts) != 1 || second.Conflicts[0] != "k" {
		t.Fatalf("second writer reports conflicts %v, want [k]", second.Conflicts)
	}
	h.values("s1", map[string]string{"k": "second", "x": "1"}) // last writer wins
	// A writer that saw the latest version has no conflict.
	if res := h.save("s1", 3, map[string]string{"k": "third"}); len(res.Conflicts) != 0 {
		t.Fatalf("up-to-date writer reports conflicts %v", res.Conflicts)
	}
}

func testRemoveConflicts(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"k": "0", "j": "0"}, time.Hour, 0)
	h.save("s1", 1, nil, "k")
	res := h.save("s1", 1, map[string]string{"k": "back"}) // did not see the removal
	if len(res.Conflicts) != 1 || res.Conflicts[0] != "k" {
		t.Fatalf("set after a concurrent remove: conflicts %v, want [k]", res.Conflicts)
	}
	h.values("s1", map[string]string{"k": "back", "j": "0"})
	h.save("s1", 3, map[string]string{"j": "1"})
	res = h.save("s1", 3, nil, "j") // did not see the write
	if len(res.Conflicts) != 1 || res.Conflicts[0] != "j" {
		t.Fatalf("remove after a concurrent set: conflicts %v, want [j]", res.Conflicts)
	}
	h.values("s1", map[string]string{"k": "back"})
}

func testRemoveAbsentKey(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"a": "1"}, time.Hour, 0)
	res := h.save("s1", 1, nil, "never-there")
	if res.Version != 2 || len(res.Conflicts) != 0 {
		t.Fatalf("removing an absent key: %+v", res)
	}
	h.values("s1", map[string]string{"a": "1"})
}

func testLastAccess(t *testing.T, h *harness) {
	start := h.clock.Now()
	h.create("s1", nil, time.Hour, 0)
	later := start.Add(10 * time.Minute)
	if err := h.st.Touch(ctx(), "s1", later); err != nil {
		t.Fatal(err)
	}
	if got := h.load("s1").LastAccess; !got.Equal(later) {
		t.Fatalf("after Touch: last access %v, want %v", got, later)
	}
	// A request that started earlier commits or touches late: no going back.
	if err := h.st.Touch(ctx(), "s1", start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.Save(ctx(), session.Delta{ID: "s1", BaseVersion: 1,
		Set: bytesOf(map[string]string{"a": "1"}), LastAccess: start.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got := h.load("s1").LastAccess; !got.Equal(later) {
		t.Fatalf("last access went back to %v from %v", got, later)
	}
	even := later.Add(time.Minute)
	h.save("s1", 2, nil) // LastAccess is the clock's time, before even
	if _, err := h.st.Save(ctx(), session.Delta{ID: "s1", BaseVersion: 3, LastAccess: even}); err != nil {
		t.Fatal(err)
	}
	if got := h.load("s1").LastAccess; !got.Equal(even) {
		t.Fatalf("after Save: last access %v, want %v", got, even)
	}
}

func testSaveKeepsIdentity(t *testing.T, h *harness) {
	now := h.clock.Now()
	h.create("s1", map[string]string{"a": "1"}, time.Hour, 2*time.Hour)
	h.clock.Advance(time.Minute)
	_, err := h.st.Save(ctx(), session.Delta{ID: "s1", BaseVersion: 1, Set: bytesOf(map[string]string{"a": "2"}),
		LastAccess: h.clock.Now(), Route: "other", Created: now.Add(time.Hour), IdleTimeout: time.Second,
		Deadline: now.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	rec := h.load("s1")
	if rec.Route != "n1" || !rec.Created.Equal(now) || rec.IdleTimeout != time.Hour || !rec.Deadline.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("an update changed the session's identity or timeouts: %+v", rec)
	}
}

func testDelete(t *testing.T, h *harness) {
	h.create("s1", map[string]string{"a": "1"}, time.Hour, 0)
	h.create("s2", map[string]string{"a": "2"}, time.Hour, 0)
	if err := h.st.Delete(ctx(), "s1"); err != nil {
		t.Fatal(err)
	}
	h.gone("s1")
	if err := h.st.Delete(ctx(), "s1"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if _, err := h.st.Save(ctx(), session.Delta{ID: "s1", BaseVersion: 1, Set: bytesOf(map[string]string{"a": "3"})}); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Save after Delete: %v, want ErrNotFound", err)
	}
	h.values("s2", map[string]string{"a": "2"})
	h.sweep()
	h.wantReported() // Delete is reported by its caller, not the store
	// The id may be used again, or stay taken for a while: a replicated
	// store keeps a tombstone so that no late copy of the session brings it
	// back (the Manager then draws another id). Either way the old values
	// never come back.
	now := h.clock.Now()
	_, err := h.st.Save(ctx(), session.Delta{ID: "s1", Set: bytesOf(map[string]string{"b": "1"}),
		LastAccess: now, Route: "n1", Created: now, IdleTimeout: time.Hour})
	switch {
	case err == nil:
		h.values("s1", map[string]string{"b": "1"})
	case errors.Is(err, session.ErrExists):
		h.gone("s1")
	default:
		t.Fatalf("create with the id of a deleted session: %v, want success or ErrExists", err)
	}
}
