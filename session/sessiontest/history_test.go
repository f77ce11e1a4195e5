package sessiontest

import (
	"fmt"
	"testing"
)

// TestCheckHistory: CheckHistory accepts the histories a correct store can
// produce and rejects each kind of violation a lossy or diverging one
// would, so that a test passing it over real processes is not vacuous.
func TestCheckHistory(t *testing.T) {
	const a, b = "S1.n1", "S1.n2" // one session, before and after a takeover by n2
	add := func(call, ret int64, cookie, item, outcome, newCookie, list string) Op {
		return Op{Call: call, Return: ret, Kind: "append", Cookie: cookie, Key: "cart", Item: item,
			Outcome: outcome, NewCookie: newCookie, List: list}
	}
	read := func(call, ret int64, cookie, list string) Op {
		return Op{Call: call, Return: ret, Kind: "read", Cookie: cookie, Key: "cart", Outcome: OutcomeOK,
			NewCookie: cookie, List: list, Present: true}
	}
	gone := func(call, ret int64, cookie string) Op {
		return Op{Call: call, Return: ret, Kind: "read", Cookie: cookie, Key: "cart", Outcome: OutcomeNone}
	}
	logout := func(call, ret int64, cookie, outcome string) Op {
		return Op{Call: call, Return: ret, Kind: "invalidate", Cookie: cookie, Key: "cart", Outcome: outcome}
	}
	created := add(0, 1, "", "x", OutcomeOK, a, "x")
	for _, tt := range []struct {
		name string
		ops  []Op
		want bool
	}{
		{"acknowledged adds, read through another node", []Op{created, add(2, 3, a, "y", OutcomeOK, a, "x,y"), read(4, 5, b, "x,y")}, true},
		{"an acknowledged add missing from a later read", []Op{created, add(2, 3, a, "y", OutcomeOK, a, "x,y"), read(4, 5, b, "x")}, false},
		{"an acknowledged add twice in a read", []Op{created, add(2, 3, a, "y", OutcomeOK, a, "x,y"), read(4, 5, b, "x,y,y")}, false},
		{"an add refused (409) seen by a read", []Op{created, add(2, 3, a, "y", OutcomeConflict, "", ""), read(4, 5, a, "x,y")}, false},
		{"an item never sent", []Op{created, read(4, 5, a, "x,z")}, false},
		{"an add of unknown outcome, seen", []Op{created, add(2, 3, a, "y", OutcomeUnknown, "", ""), read(4, 5, a, "x,y")}, true},
		{"an add of unknown outcome, never seen", []Op{created, add(2, 3, a, "y", OutcomeUnknown, "", ""), read(4, 5, a, "x")}, true},
		{"an add of unknown outcome, seen then not", []Op{created, add(2, 3, a, "y", OutcomeUnknown, "", ""), read(4, 5, a, "x,y"), read(6, 7, b, "x")}, false},
		{"a read concurrent with an add may miss it", []Op{created, add(2, 5, a, "y", OutcomeOK, a, "x,y"), read(3, 4, b, "x")}, true},
		{"two reads concurrent with an add, in the wrong order", []Op{created, add(2, 9, a, "y", OutcomeOK, a, "x,y"), read(3, 4, b, "x,y"), read(5, 6, a, "x")}, false},
		{"the session gone after a logout", []Op{created, logout(2, 3, a, OutcomeOK), gone(4, 5, b)}, true},
		{"the session back after a logout", []Op{created, logout(2, 3, a, OutcomeOK), read(4, 5, b, "x")}, false},
		{"a live session said gone", []Op{created, gone(2, 3, b)}, false},
		{"a failed read tells nothing", []Op{created, {Call: 2, Return: 3, Kind: "read", Cookie: a, Key: "cart", Outcome: OutcomeUnknown}}, true},
		{"many adds of unknown outcome pending at once", manyUnknown(add, read, created), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if ok, report := CheckHistory(tt.ops); ok != tt.want {
				t.Fatalf("linearizable = %v, want %v\n%s", ok, tt.want, report)
			}
		})
	}
}

// manyUnknown is a history with 400 adds of unknown outcome, one in
// fifty seen by the read that follows it, as during a partition: the check
// must finish (porcupine alone would carry every subset of the adds not
// seen yet as a possible state).
func manyUnknown(add func(call, ret int64, cookie, item, outcome, newCookie, list string) Op,
	read func(call, ret int64, cookie, list string) Op, created Op) []Op {
	ops, list := []Op{created}, "x"
	for i := range int64(400) {
		item := fmt.Sprintf("u%d", i)
		ops = append(ops, add(10+4*i, 11+4*i, "S1.n1", item, OutcomeUnknown, "", ""))
		if i%50 == 0 {
			list += "," + item
			ops = append(ops, read(12+4*i, 13+4*i, "S1.n2", list))
		}
	}
	return ops
}
