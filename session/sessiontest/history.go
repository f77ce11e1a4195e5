package sessiontest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The outcomes of a request, in an Op.
const (
	OutcomeOK       = "ok"       // 2xx: done
	OutcomeNone     = "none"     // the presented session is not live: nothing done
	OutcomeConflict = "conflict" // 409 (or another answer that says so): nothing done
	OutcomeUnknown  = "unknown"  // 5xx, a timeout, a broken connection: maybe done
)

// Op is one request of a history recorded elsewhere — by clients of real
// processes, say — for CheckHistory: what a client sent, what it was
// answered, and when. The sessions are those of CheckLinearizable: values
// are lists of unique items under keys, and every request names at most one
// key.
type Op struct {
	// Client is the client that sent it, for the report.
	Client int
	// Call and Return are when it was sent and answered, on one clock, in
	// nanoseconds from any origin. An OutcomeUnknown's Return is ignored:
	// such a request may take effect at any time after its Call.
	Call, Return int64
	// Kind is "read", "append" (adds Item to Key's list, creating the
	// session if the presented one is not live), "remove" (removes Key),
	// "renew" (a new session id) or "invalidate".
	Kind string
	// Cookie is the session cookie presented, "" for none; only its id
	// part counts (a takeover changes the route).
	Cookie string
	// Key is the key read or written; Item, the unique item an append adds
	// (no commas).
	Key, Item string
	// Outcome is one of the Outcome constants. A read whose outcome is
	// unknown tells nothing and is left out.
	Outcome string
	// NewCookie is, when OutcomeOK, the session's cookie after the request:
	// a new session's, a renewed one's, the presented one with another
	// route; "" if there is none (after an invalidate).
	NewCookie string
	// List is Key's list after an OutcomeOK read or append, its items
	// joined with commas; Present, whether a read found Key.
	List    string
	Present bool
	// Node (the route of the node that answered) and Err (an error
	// answer's body) are for the report.
	Node, Err string
}

// CheckHistory checks a recorded history for linearizability per session,
// against the model of CheckLinearizable: every append answered OK is seen
// by every later read, exactly once and in its place; no read sees an
// append answered with OutcomeConflict, or one never sent; a session
// invalidated or renewed is not live any more; and the answers could have
// come one at a time in an order that respects their times. It returns
// whether the history is linearizable and, if not, a report of the
// sessions whose history is not, by call time.
func CheckHistory(ops []Op) (bool, string) {
	var history []porcupine.Operation
	for _, op := range ops {
		if op.Kind == "read" && op.Outcome == OutcomeUnknown {
			continue
		}
		in := opInput{Kind: op.Kind, Cookie: op.Cookie, Key: op.Key, Item: op.Item}
		out := opOutput{Status: op.Outcome, Cookie: op.NewCookie, List: op.List, Present: op.Present, Node: op.Node, Err: op.Err}
		ret := op.Return
		if op.Outcome == OutcomeUnknown {
			ret = 1 << 62
		}
		history = append(history, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: out, Return: ret})
	}
	return checkHistory(history)
}

// checkHistory checks history against sessionModel, within a minute, and
// returns whether it is linearizable and, if not, a report.
func checkHistory(history []porcupine.Operation) (bool, string) {
	history = prune(history)
	res := porcupine.CheckOperationsTimeout(sessionModel.ToModel(), history, time.Minute)
	switch res {
	case porcupine.Ok:
		return true, ""
	case porcupine.Unknown:
		return false, fmt.Sprintf("linearizability check did not finish in a minute (%d operations)", len(history))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "history not linearizable (%d operations); the sessions whose history is not, by call time:\n", len(history))
	model := sessionModel
	model.Partition = nil
	for _, part := range bySession(history) {
		if porcupine.CheckOperationsTimeout(model.ToModel(), part, 10*time.Second) == porcupine.Ok {
			continue
		}
		slices.SortFunc(part, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		b.WriteString("--\n")
		for _, op := range part {
			fmt.Fprintf(&b, "  [%d..%d] c%d %s\n", op.Call, op.Return, op.ClientId, sessionModel.DescribeOperation(op.Input, op.Output))
		}
	}
	return false, b.String()
}

// prune returns history without the requests that need not be checked, and
// with the others' windows as narrow as the history allows, so that the
// check of a long history under faults, with many requests of unknown
// outcome, finishes: porcupine's search grows with the number of requests
// pending at once, and a request of unknown outcome is pending from its
// call to the end. The answer is the same as for the whole history:
//   - a request that certainly did nothing (OutcomeConflict) may be placed
//     anywhere, as a no-op: it constrains nothing;
//   - an append of unknown outcome whose item no answer shows either did
//     nothing, or did it after every answer that could have shown it (or
//     its session ended first): placing it as a no-op loses nothing;
//   - an append of unknown outcome whose item an answer shows took effect
//     before that answer: it returns, at the latest, when the first answer
//     showing it does.
//
// It relies on every append's item being unique in the history.
func prune(history []porcupine.Operation) []porcupine.Operation {
	seen := map[string]int64{} // item: the earliest return of an answer showing it
	for _, op := range history {
		out := op.Output.(opOutput)
		if out.Status != OutcomeOK || out.List == "" {
			continue
		}
		for _, it := range strings.Split(out.List, ",") {
			if r, ok := seen[it]; !ok || op.Return < r {
				seen[it] = op.Return
			}
		}
	}
	var kept []porcupine.Operation
	for _, op := range history {
		in, out := op.Input.(opInput), op.Output.(opOutput)
		switch {
		case out.Status == OutcomeConflict:
			continue
		case out.Status == OutcomeUnknown && in.Kind == "append":
			r, ok := seen[in.Item]
			if !ok {
				continue
			}
			op.Return = max(r, op.Call)
		}
		kept = append(kept, op)
	}
	return kept
}
