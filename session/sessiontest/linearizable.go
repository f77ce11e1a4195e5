package sessiontest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/tetherlb/tether/route"
	"github.com/tetherlb/tether/session"
)

// LinearOptions configure CheckLinearizable.
type LinearOptions struct {
	// Node, if set, replaces Managers for a cluster whose nodes a Nemesis
	// kills and restarts: Node(i) returns node i's Manager as it is now,
	// nil while the node is down (its requests then fail, as a dead node's
	// do). Nodes is how many there are.
	Node  func(i int) *session.Manager
	Nodes int
	// Managers serve the requests; each request goes to one of them, drawn
	// at random. One Manager checks a store on one node; several, on the
	// nodes of a replicated store, check takeovers too. Required.
	Managers []*session.Manager
	// Clients is how many clients send requests at once, like the tabs of
	// one browser sharing its cookie. Zero means 6.
	Clients int
	// Ops is how many requests each client sends. Zero means 40.
	Ops int
	// Seed seeds the clients' choices and the nemesis's. Zero means 1.
	Seed uint64
	// Think is the longest pause a client makes between two requests (a
	// random part of it each time), so that the requests spread over the
	// faults a Nemesis injects. Zero means none.
	Think time.Duration
	// Nemesis, if set, runs while the clients send their requests, to
	// inject faults (partitions, freezes) with choices drawn from rnd,
	// until stop is closed; it must then undo them and return.
	Nemesis func(rnd *rand.Rand, stop <-chan struct{})
}

// CheckLinearizable sends concurrent requests from several clients that
// share one cookie jar — reads (ReadOnly and Exclusive), read-modify-writes
// (Exclusive, and Update in Optimistic requests), removes, RenewID and
// Invalidate — records every request's call, answer and time, and checks
// the history for linearizability against a sequential model of sessions
// with porcupine: every answered write is seen by every later read, no
// read sees a write that was refused, and the order of the answers is one
// the requests could have had one at a time. A 409 is a write that was not
// applied; a 5xx, one that may or may not have been.
func CheckLinearizable(t *testing.T, o LinearOptions) {
	t.Helper()
	ok, report := checkLinearizable(t, o)
	if !ok {
		t.Error(report)
	}
}

// checkLinearizable runs the check and returns whether the history was
// linearizable, and else a report of it.
func checkLinearizable(t *testing.T, o LinearOptions) (bool, string) {
	if o.Clients == 0 {
		o.Clients = 6
	}
	if o.Ops == 0 {
		o.Ops = 40
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	handlerOf := handlersFor(o)
	var (
		jar     CookieJar
		mu      sync.Mutex
		history []porcupine.Operation
		epoch   = time.Now()
		wg      sync.WaitGroup
		unknown atomic.Int64
	)
	for c := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(o.Seed, uint64(c)))
			for i := range o.Ops {
				if o.Think > 0 {
					time.Sleep(time.Duration(rnd.Int64N(int64(o.Think)))) // a user's pace, not a wait for a condition
				}
				in := drawOp(rnd, jar.Get(), fmt.Sprintf("c%di%d", c, i))
				h := handlerOf(rnd)
				call := time.Since(epoch).Nanoseconds()
				out := send(h, in)
				ret := time.Since(epoch).Nanoseconds()
				switch out.Status {
				case OutcomeUnknown:
					unknown.Add(1)
					ret = 1 << 62 // may take effect at any time after its call
					if in.Kind == "read" {
						continue // a failed read tells nothing
					}
				case OutcomeOK:
					if out.Cookie != "" {
						jar.Set(out.Cookie, "")
					}
				case OutcomeNone:
					jar.Set("", in.Cookie)
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}
	stop, nemesisDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(nemesisDone)
		if o.Nemesis != nil {
			o.Nemesis(rand.New(rand.NewPCG(o.Seed, 1<<32)), stop)
		}
	}()
	wg.Wait()
	close(stop)
	<-nemesisDone
	t.Logf("%d requests, %d with an unknown outcome (seed %d)", len(history), unknown.Load(), o.Seed)
	return checkHistory(history)
}

// handlersFor returns the function that draws the node a request goes to,
// from o.Managers or o.Node.
func handlersFor(o LinearOptions) func(*rand.Rand) http.Handler {
	if o.Node == nil {
		handlers := make([]http.Handler, len(o.Managers))
		for i, m := range o.Managers {
			handlers[i] = m.Handler(opsHandler(m.Route()))
		}
		return func(rnd *rand.Rand) http.Handler { return handlers[rnd.IntN(len(handlers))] }
	}
	var mu sync.Mutex
	built := map[*session.Manager]http.Handler{}
	down := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "node down: not applied", http.StatusConflict) // certain: nothing ran
	})
	return func(rnd *rand.Rand) http.Handler {
		m := o.Node(rnd.IntN(o.Nodes))
		if m == nil {
			return down
		}
		mu.Lock()
		defer mu.Unlock()
		h := built[m]
		if h == nil {
			h = m.Handler(opsHandler(m.Route()))
			built[m] = h
		}
		return h
	}
}

// CookieJar is the session cookie a group of clients shares, as a
// browser's tabs do. The zero value holds no cookie; it is safe for
// concurrent use.
type CookieJar struct {
	mu sync.Mutex
	v  string
}

// Get returns the cookie's value, "" for none.
func (j *CookieJar) Get() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.v
}

// Set sets the cookie to v; with old non-empty, only if it is still old
// (a cookie another tab has replaced meanwhile stays).
func (j *CookieJar) Set(v, old string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if old == "" || j.v == old {
		j.v = v
	}
}

// opInput is one request.
type opInput struct {
	Kind   string // read, append, remove, renew, invalidate
	Mode   string // exclusive, readonly, optimistic
	Cookie string // the session cookie's value presented, "" for none
	Key    string
	Item   string // append: the unique item
}

// opOutput is a request's answer.
type opOutput struct {
	Status  string `json:"status"`
	Cookie  string `json:"cookie,omitempty"` // the session's id after the request
	List    string `json:"list"`             // read, append: the key's items, comma-separated
	Present bool   `json:"present"`          // read: the key was there
	Node    string `json:"node,omitempty"`   // the route of the node that answered
	Err     string `json:"-"`                // the body of an error answer, for the report
}

func (in opInput) id() string { return idPartOf(in.Cookie) }

func idPartOf(cookie string) string {
	id, _, _ := route.Split(cookie, route.DefaultSeparator)
	return id
}

// drawOp draws a request presenting cookie.
func drawOp(r *rand.Rand, cookie, item string) opInput {
	in := opInput{Cookie: cookie, Key: []string{"a", "b", "c"}[r.IntN(3)], Item: item, Mode: "exclusive"}
	switch n := r.IntN(100); {
	case n < 35:
		in.Kind = "read"
		if r.IntN(2) == 0 {
			in.Mode = "readonly"
		}
	case n < 75:
		in.Kind = "append"
	case n < 87:
		in.Kind = "remove"
	case n < 96:
		in.Kind = "renew"
	default:
		in.Kind = "invalidate"
	}
	if in.Kind != "read" && in.Kind != "renew" && r.IntN(3) == 0 {
		in.Mode = "optimistic"
	}
	return in
}

// send runs in through h and returns its outcome.
func send(h http.Handler, in opInput) opOutput {
	req := httptest.NewRequest("POST", "/"+in.Kind+"?k="+in.Key+"&item="+in.Item+"&mode="+in.Mode, nil)
	if in.Cookie != "" {
		req.Header.Set("Cookie", "JSESSIONID="+in.Cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out opOutput
	if w.Code >= 300 {
		out.Err = strings.TrimSpace(w.Body.String())
	}
	switch {
	case w.Code == http.StatusConflict:
		out.Status = OutcomeConflict
	case w.Code == http.StatusGone:
		out.Status = OutcomeNone
	case w.Code >= 300:
		out.Status = OutcomeUnknown
	case json.Unmarshal(w.Body.Bytes(), &out) != nil:
		out = opOutput{Status: OutcomeUnknown, Err: "undecodable answer: " + w.Body.String()}
	}
	return out
}

// opsHandler serves the requests of CheckLinearizable. A request whose
// session is not live answers 410 and creates nothing, except append,
// which creates a session as a shop's first "add to cart" does.
func opsHandler(route string) http.Handler {
	serve := func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		q := r.URL.Query()
		k := q.Get("k")
		fail := func(err error) { http.Error(w, err.Error(), session.StatusCode(err)) }
		id, err := s.ID()
		if err != nil {
			fail(err)
			return
		}
		kind := strings.TrimPrefix(r.URL.Path, "/")
		if id == "" && kind != "append" {
			w.WriteHeader(http.StatusGone)
			return
		}
		out := opOutput{Status: OutcomeOK, Cookie: id, Node: route}
		switch kind {
		case "read":
			v, ok, err := session.Lookup[string](s, k)
			if err != nil {
				fail(err)
				return
			}
			out.List, out.Present = v, ok
		case "append":
			item := q.Get("item")
			add := func(old string, ok bool) (string, error) {
				if ok {
					return old + "," + item, nil
				}
				return item, nil
			}
			if q.Get("mode") == "optimistic" {
				out.List, err = session.Update(s, k, add)
			} else {
				var old string
				var ok bool
				if old, ok, err = session.Lookup[string](s, k); err == nil {
					out.List, _ = add(old, ok)
					err = s.Put(k, out.List)
				}
			}
			if err == nil {
				out.Cookie, err = s.ID()
			}
		case "remove":
			err = s.Remove(k)
		case "renew":
			if err = s.RenewID(); err == nil {
				out.Cookie, err = s.ID()
			}
		case "invalidate":
			err, out.Cookie = s.Invalidate(), ""
		}
		if err != nil {
			fail(err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h http.Handler = http.HandlerFunc(serve)
		switch r.URL.Query().Get("mode") {
		case "readonly":
			h = session.ReadOnly(h)
		case "optimistic":
			h = session.Optimistic(h)
		}
		h.ServeHTTP(w, r)
	})
}

// modelState is the live sessions, by id part, with their values. Steps
// never change a state: they make a new one.
type modelState map[string]map[string]string

// sessionModel is the sequential specification the history must match.
var sessionModel = porcupine.NondeterministicModel{
	Partition: bySession,
	Init:      func() []any { return []any{modelState{}} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(modelState), input.(opInput), output.(opOutput)
		p := in.id()
		vals, live := st[p]
		if p == "" {
			live = false
		}
		switch out.Status {
		case OutcomeNone:
			if live {
				return nil
			}
			return []any{st}
		case OutcomeConflict:
			return []any{st}
		case OutcomeUnknown:
			if next := apply(st, in, vals, live); next != nil {
				return []any{st, next}
			}
			return []any{st}
		}
		// OutcomeOK
		switch in.Kind {
		case "read":
			v, ok := vals[in.Key]
			if !live || ok != out.Present || v != out.List {
				return nil
			}
			return []any{st}
		case "append":
			nid := idPartOf(out.Cookie)
			if nid != p { // no live session presented: a new one
				if live || st[nid] != nil || out.List != in.Item {
					return nil
				}
				return []any{with(st, nid, map[string]string{in.Key: in.Item})}
			}
			if !live {
				return nil
			}
			want := in.Item
			if old, ok := vals[in.Key]; ok {
				want = old + "," + in.Item
			}
			if out.List != want {
				return nil
			}
			return []any{with(st, p, withKey(vals, in.Key, want, true))}
		case "renew":
			nid := idPartOf(out.Cookie)
			if !live || nid == "" || nid == p || st[nid] != nil {
				return nil
			}
			return []any{with(with(st, p, nil), nid, vals)}
		}
		switch {
		case live: // remove, invalidate
			return []any{apply(st, in, vals, live)}
		case in.Kind == "invalidate":
			return []any{st} // ended by another request meanwhile: gone either way
		}
		return nil
	},
	Equal: func(a, b any) bool {
		return maps.EqualFunc(a.(modelState), b.(modelState), func(x, y map[string]string) bool { return maps.Equal(x, y) })
	},
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		st := state.(modelState)
		for _, id := range slices.Sorted(maps.Keys(st)) {
			fmt.Fprintf(h, "%s{", id)
			for _, k := range slices.Sorted(maps.Keys(st[id])) {
				fmt.Fprintf(h, "%s=%s;", k, st[id][k])
			}
		}
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(opInput), output.(opOutput)
		d := fmt.Sprintf("%s(%s %.6s %s %s) -> %s@%s %.6s %q %v", in.Kind, in.Mode, in.id(), in.Key, in.Item,
			out.Status, out.Node, idPartOf(out.Cookie), out.List, out.Present)
		if out.Err != "" {
			d += " (" + out.Err + ")"
		}
		return d
	},
}

// bySession splits a history into independent parts, which porcupine
// checks one by one (linearizability is local to each object): the
// requests of one session, with those of the sessions it was renewed to
// and of those created by requests that presented it dead.
func bySession(history []porcupine.Operation) [][]porcupine.Operation {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := parent[x]; ok && p != x {
			r := find(p)
			parent[x] = r
			return r
		}
		parent[x] = x
		return x
	}
	key := func(op porcupine.Operation) string {
		in, out := op.Input.(opInput), op.Output.(opOutput)
		a, b := in.id(), idPartOf(out.Cookie)
		switch {
		case a == "" && b == "":
			return "" // no session before or after: its own part
		case a == "":
			return find(b)
		case b != "" && b != a:
			parent[find(b)] = find(a)
		}
		return find(a)
	}
	for _, op := range history {
		key(op)
	}
	parts := map[string][]porcupine.Operation{}
	var loose [][]porcupine.Operation
	for _, op := range history {
		k := key(op)
		if k == "" {
			loose = append(loose, []porcupine.Operation{op})
			continue
		}
		parts[k] = append(parts[k], op)
	}
	out := loose
	for _, k := range slices.Sorted(maps.Keys(parts)) {
		out = append(out, parts[k])
	}
	return out
}

// apply returns the state after a remove or an invalidation of a live
// session, or after a write whose outcome is unknown had taken effect; nil
// when it cannot have had any (the session is not live; a new session it
// may have created is one nobody can present).
func apply(st modelState, in opInput, vals map[string]string, live bool) modelState {
	if !live {
		return nil
	}
	p := in.id()
	switch in.Kind {
	case "append":
		v := in.Item
		if old, ok := vals[in.Key]; ok {
			v = old + "," + in.Item
		}
		return with(st, p, withKey(vals, in.Key, v, true))
	case "remove":
		return with(st, p, withKey(vals, in.Key, "", false))
	case "renew", "invalidate":
		return with(st, p, nil) // renewed to an id nobody learned: gone as well
	}
	return nil
}

// with returns st with session id set to vals (nil: removed).
func with(st modelState, id string, vals map[string]string) modelState {
	next := maps.Clone(st)
	if vals == nil {
		delete(next, id)
	} else {
		next[id] = vals
	}
	return next
}

// withKey returns vals with key set to v, or removed.
func withKey(vals map[string]string, key, v string, set bool) map[string]string {
	next := maps.Clone(vals)
	if next == nil {
		next = map[string]string{}
	}
	if set {
		next[key] = v
	} else {
		delete(next, key)
	}
	return next
}
