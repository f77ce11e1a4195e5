package cluster

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
)

// These tests drive a replica's entry directly with the messages an owner
// sends, in every order the network could deliver them.

func owned(id string, b ballot, version uint64, vals map[string]string) *record {
	r := &record{id: id, bal: b, promised: b, version: version, vals: map[string][]byte{}, kver: map[string]uint64{}}
	for k, v := range vals {
		r.vals[k], r.kver[k] = []byte(v), version
	}
	return r
}

func delta(id string, b ballot, version uint64, set map[string]string, del ...string) *deltaMsg {
	d := &deltaMsg{id: id, bal: b, version: version, del: del}
	for k, v := range set {
		d.set = append(d.set, kv{key: k, val: []byte(v)})
	}
	return d
}

func values(r *record) map[string]string {
	out := map[string]string{}
	for k, v := range r.vals {
		out[k] = string(v)
	}
	return out
}

// history is an owner's messages for one session: a create then deltas.
func history(b ballot, n int) (*record, []*deltaMsg, map[string]string) {
	create := owned("s", b, 1, map[string]string{"a": "0"})
	want := map[string]string{"a": "0"}
	var ds []*deltaMsg
	for v := uint64(2); v <= uint64(n); v++ {
		k := fmt.Sprintf("k%d", v%4)
		d := delta("s", b, v, map[string]string{k: fmt.Sprint(v)})
		want[k] = fmt.Sprint(v)
		if v%5 == 0 {
			d.del = []string{"a"}
			delete(want, "a")
		}
		ds = append(ds, d)
	}
	return create, ds, want
}

func TestReplicaAppliesInVersionOrderWhateverTheDelivery(t *testing.T) {
	a := ballot{1, "n1"}
	create, deltas, want := history(a, 12)
	tests := []struct {
		name  string
		order func([]int) []int
	}{
		{"in order", func(p []int) []int { return p }},
		{"reversed", func(p []int) []int {
			for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
				p[i], p[j] = p[j], p[i]
			}
			return p
		}},
		{"shuffled", func(p []int) []int {
			r := rand.New(rand.NewPCG(1, 2))
			r.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
			return p
		}},
		{"every message twice", func(p []int) []int { return append(p, p...) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Message 0 is the create, 1.. the deltas: deltas may come first.
			idx := make([]int, len(deltas)+1)
			for i := range idx {
				idx[i] = i
			}
			e := &entry{}
			for _, i := range tc.order(idx) {
				if i == 0 {
					e.applyRecord(create.clone(), false)
					continue
				}
				st, _ := e.applyDelta(deltas[i-1], "n1")
				if st == statusFenced {
					t.Fatalf("delta %d fenced", deltas[i-1].version)
				}
			}
			if e.rec == nil || e.rec.version != uint64(len(deltas)+1) {
				t.Fatalf("record %+v, want version %d", e.rec, len(deltas)+1)
			}
			if got := values(e.rec); !maps.Equal(got, want) {
				t.Fatalf("values %v, want %v", got, want)
			}
			if len(e.pending) != 0 {
				t.Fatalf("%d deltas still pending", len(e.pending))
			}
		})
	}
}

func TestDeltaBeforeCreateIsBufferedNotDropped(t *testing.T) {
	a := ballot{1, "n1"}
	e := &entry{}
	st, _ := e.applyDelta(delta("s", a, 2, map[string]string{"item": "book"}), "n1")
	if st != statusPending || len(e.pending) != 1 {
		t.Fatalf("status %v, %d pending: want the delta held", st, len(e.pending))
	}
	if _, ok := e.ack("s", st); ok {
		t.Fatal("a held delta must not be acknowledged")
	}
	_, settled := e.applyRecord(owned("s", a, 1, nil), false)
	if values(e.rec)["item"] != "book" || e.rec.version != 2 {
		t.Fatalf("after the create arrived: %+v", e.rec)
	}
	if len(settled) != 1 || settled[0].from != "n1" || settled[0].ack.version != 2 {
		t.Fatalf("settled %+v: the sender is owed an acknowledgement of version 2", settled)
	}
}

func TestTombstoneWinsOverLateDeltasAndCopies(t *testing.T) {
	a := ballot{1, "n1"}
	e := &entry{}
	e.applyRecord(owned("s", a, 3, map[string]string{"x": "1"}), false)
	tomb := owned("s", a, 4, nil)
	tomb.deleted = true
	e.applyRecord(tomb, false)
	tests := []struct {
		name  string
		apply func()
	}{
		{"late delta", func() { e.applyDelta(delta("s", a, 3, map[string]string{"x": "2"}), "n1") }},
		{"duplicate delta", func() { e.applyDelta(delta("s", a, 4, map[string]string{"x": "3"}), "n1") }},
		{"stale copy", func() { e.applyRecord(owned("s", a, 3, map[string]string{"x": "1"}), true) }},
		{"stale owner record", func() { e.applyRecord(owned("s", a, 2, map[string]string{"x": "1"}), false) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.apply()
			if !e.rec.deleted || e.rec.version != 4 || len(e.rec.vals) != 0 {
				t.Fatalf("tombstone resurrected: %+v", e.rec)
			}
		})
	}
}

func TestPromiseFencesOlderBallots(t *testing.T) {
	a, b := ballot{1, "n1"}, ballot{2, "n2"}
	e := &entry{}
	e.applyRecord(owned("s", a, 5, map[string]string{"x": "a"}), false)
	if !e.promise(b) {
		t.Fatal("a higher ballot must be promised")
	}
	if e.promise(ballot{1, "n9"}) {
		t.Fatal("a lower ballot must not be promised")
	}
	st, _ := e.applyDelta(delta("s", a, 6, map[string]string{"x": "stale"}), "n1")
	if st != statusFenced {
		t.Fatalf("old owner's delta after the promise: status %v, want fenced", st)
	}
	if ack, _ := e.ack("s", st); ack.status != ackFenced || ack.bal != b {
		t.Fatalf("fenced ack %+v", ack)
	}
	if values(e.rec)["x"] != "a" || e.rec.version != 5 {
		t.Fatalf("fenced delta changed the record: %+v", e.rec)
	}
	// The new owner's record (same version, new epoch) replaces the old one,
	// and its next delta applies on it.
	e.applyRecord(owned("s", b, 5, map[string]string{"x": "a"}), false)
	if st, _ := e.applyDelta(delta("s", b, 6, map[string]string{"x": "b"}), "n2"); st != statusApplied {
		t.Fatalf("new owner's delta: %v", st)
	}
	if values(e.rec)["x"] != "b" || e.rec.bal != b {
		t.Fatalf("record %+v", e.rec)
	}
}

func TestNewEpochDeltaNeedsItsRecord(t *testing.T) {
	// A replica that missed the takeover holds (a, 5); the new owner's first
	// delta (b, 6) must not be applied on it, even though 6 follows 5.
	a, b := ballot{1, "n1"}, ballot{2, "n2"}
	e := &entry{}
	e.applyRecord(owned("s", a, 5, map[string]string{"x": "a5"}), false)
	st, _ := e.applyDelta(delta("s", b, 6, map[string]string{"y": "b6"}), "n2")
	if st != statusPending {
		t.Fatalf("status %v, want pending until the takeover record arrives", st)
	}
	e.applyRecord(owned("s", b, 5, map[string]string{"x": "b5"}), true) // the fetched copy
	if got := values(e.rec); got["x"] != "b5" || got["y"] != "b6" || e.rec.version != 6 {
		t.Fatalf("values %v version %d", got, e.rec.version)
	}
}

func TestCopiesMergeNewestWins(t *testing.T) {
	a, b := ballot{1, "n1"}, ballot{2, "n2"}
	tests := []struct {
		name    string
		have    *record
		copy    *record
		wantVer uint64
		wantBal ballot
	}{
		{"newer version replaces", owned("s", a, 3, nil), owned("s", a, 7, nil), 7, a},
		{"older version ignored", owned("s", a, 7, nil), owned("s", a, 3, nil), 7, a},
		{"newer epoch wins over higher version", owned("s", a, 9, nil), owned("s", b, 4, nil), 4, b},
		{"older epoch loses to lower version", owned("s", b, 4, nil), owned("s", a, 9, nil), 4, b},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &entry{}
			e.applyRecord(tc.have, true)
			e.applyRecord(tc.copy, true)
			if e.rec.version != tc.wantVer || e.rec.bal != tc.wantBal {
				t.Fatalf("got %s v%d, want %s v%d", e.rec.bal, e.rec.version, tc.wantBal, tc.wantVer)
			}
		})
	}
}
