package failover_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/netfault"
	"github.com/tetherlb/tether/route"
	"github.com/tetherlb/tether/session/sessiontest"
)

// The knobs of TestNemesis (docs/cluster.md, The majority level).
const (
	seedEnv  = "CART_NEMESIS_SEED"        // the seed of the faults and the clients' choices; default: drawn and logged
	timeEnv  = "CART_NEMESIS_TIME"        // how long the nemesis injects faults per run; default nemesisTime
	levelEnv = "CART_NEMESIS_REPLICATION" // the --replication levels to run, comma-separated; default majority (3 and 5 nodes) and all (3)

	nemesisTime = 12 * time.Second
	groups      = 3 // client groups: one cookie jar each, as a browser
	tabs        = 3 // clients per group, sending at once, as its tabs
)

// TestNemesis is the randomized test of the cluster over real processes:
// `tether cart --cluster` nodes, each on a loopback address of its own,
// at --replication majority (3 and 5 nodes) and all (3 nodes). Groups of
// clients, each sharing one cookie jar as a browser's tabs do, send reads,
// adds and logouts to every node at random while a nemesis cuts the
// network between random groups of nodes with nftables (one direction or
// both), heals it, kills nodes with SIGKILL (never more than a minority at
// once) and starts them again empty, and freezes them with SIGSTOP bursts.
// Every request's call and answer is recorded with its times. When the
// nemesis stops, the network is healed and every node is up, every group
// reads each cart it had through every node. Then every node must hold
// one copy of each cart (or none, for a cart logged out), the history
// must be linearizable per session (porcupine, through
// sessiontest.CheckHistory) — every add answered 200 in every later read,
// exactly once; no read of an add that was refused — and the same history
// with one acknowledged add taken out of a read must not be.
//
// The faults' schedule and the clients' choices come from the seed, which
// is logged; the interleaving of processes and the timing of answers do
// not. CART_NEMESIS_SEED reruns a seed, CART_NEMESIS_TIME runs longer.
func TestNemesis(t *testing.T) {
	seed, d, levels := nemesisKnobs(t)
	var runs []nemesisRun
	for _, level := range levels {
		runs = append(runs, nemesisRun{3, level})
		if level == "majority" {
			runs = append(runs, nemesisRun{5, level})
		}
	}
	for _, tt := range runs {
		t.Run(fmt.Sprintf("%d nodes, %s", tt.nodes, tt.level), func(t *testing.T) {
			nf := netfault.New(t)
			s, ips := startPartitionable(t, tt.nodes, tt.level)
			t.Logf("seed %d (%s=%d reruns it), faults for %v", seed, seedEnv, seed, d)
			seed := tt.seed(seed)
			rec := &recorder{s: s, epoch: time.Now(), client: &http.Client{Timeout: 5 * time.Second,
				Transport: &http.Transport{DisableKeepAlives: true}}} // a refused connection is a request not sent
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := range groups {
				jar := &sessiontest.CookieJar{}
				for c := range tabs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rec.client1(rand.New(rand.NewPCG(seed, uint64(1+g*tabs+c))), g*tabs+c, jar, stop)
					}()
				}
			}
			stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
			t.Cleanup(stopClients) // also when the nemesis fails the test
			newNemesis(s, nf, ips, seed, rec.epoch).run(d)
			stopClients()
			rec.finalReads()
			rec.converged()
			rec.check()
		})
	}
}

// nemesisRun is one run of TestNemesis: how many nodes, at which level.
type nemesisRun struct {
	nodes int
	level string
}

// seed returns the seed of the run's choices: base, mixed with the run,
// so that the runs of one test draw different faults.
func (r nemesisRun) seed(base uint64) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d %s", r.nodes, r.level)
	return base ^ h.Sum64()
}

// nemesisKnobs reads the environment: the seed, how long the faults last,
// and the levels to run.
func nemesisKnobs(t *testing.T) (uint64, time.Duration, []string) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(seedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, v, err)
		}
	}
	d := nemesisTime
	if v := os.Getenv(timeEnv); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration such as 2m", timeEnv, v)
		}
	}
	levels := []string{"majority", "all"}
	if v := os.Getenv(levelEnv); v != "" {
		levels = strings.Split(v, ",")
	}
	return seed, d, levels
}

// recorder sends the clients' requests and records them.
type recorder struct {
	s      *system
	client *http.Client
	epoch  time.Time
	mu     sync.Mutex
	ops    []sessiontest.Op
}

// client1 is one client (a tab of a group sharing jar): until stop, it
// draws a request — an add (half of them), a read, or a logout (one in
// twenty) — and a node, sends it, and keeps the cookie it is given.
func (r *recorder) client1(rnd *rand.Rand, id int, jar *sessiontest.CookieJar, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(rnd.IntN(150)) * time.Millisecond): // a user's pace, not a wait for a condition
		}
		op := sessiontest.Op{Client: id, Cookie: jar.Get(), Key: "cart"}
		switch x := rnd.IntN(20); {
		case x < 10 || op.Cookie == "":
			op.Kind, op.Item = "append", fmt.Sprintf("c%di%d", id, i)
		case x < 19:
			op.Kind = "read"
		default:
			op.Kind = "invalidate"
		}
		n := r.s.nodes[rnd.IntN(len(r.s.nodes))]
		r.send(n, &op)
		switch {
		case op.Outcome == sessiontest.OutcomeOK && op.NewCookie != "":
			jar.Set(op.NewCookie, "")
		case op.Outcome == sessiontest.OutcomeOK, op.Outcome == sessiontest.OutcomeNone:
			jar.Set("", op.Cookie) // logged out (the cookie expired), or the session is gone
		}
	}
}

// send sends op to n through the cart's HTTP API and records its answer.
func (r *recorder) send(n *node, op *sessiontest.Op) {
	method, path, body := http.MethodGet, "/api/cart", ""
	switch op.Kind {
	case "append":
		b, _ := json.Marshal(map[string]string{"item": op.Item})
		method, path, body = http.MethodPost, "/api/cart/items", string(b)
	case "invalidate":
		method, path = http.MethodPost, "/api/logout"
	}
	op.Call = time.Since(r.epoch).Nanoseconds()
	res := r.s.do(r.client, method, n.url()+path, op.Cookie, body)
	op.Return = time.Since(r.epoch).Nanoseconds()
	op.Node = n.name
	op.Outcome, op.Err = outcome(res), ""
	if res.err != nil {
		op.Err = res.err.Error()
	}
	if op.Outcome == sessiontest.OutcomeOK {
		op.List = strings.Join(res.cart.Items, ",")
		if op.Kind != "invalidate" {
			op.NewCookie = res.cart.Session
		}
		if op.Kind == "read" && res.cart.Session == "" {
			op.Outcome, op.List = sessiontest.OutcomeNone, "" // no live session: GET creates none
		}
		op.Present = op.Outcome == sessiontest.OutcomeOK
	}
	r.mu.Lock()
	r.ops = append(r.ops, *op)
	r.mu.Unlock()
}

// outcome classifies an answer: 200 is done; a refused connection (the
// request was never sent), 409 (the session layer's "not applied") and
// 422 (the cart is full) are not done; anything else — 503 and other
// errors, a timeout, a connection broken after the request was sent — may
// or may not have been done.
func outcome(res result) string {
	switch {
	case res.status == http.StatusOK && res.err == nil:
		return sessiontest.OutcomeOK
	case res.status == 0 && errors.Is(res.err, syscall.ECONNREFUSED),
		res.status == http.StatusConflict, res.status == http.StatusUnprocessableEntity:
		return sessiontest.OutcomeConflict
	}
	return sessiontest.OutcomeUnknown
}

// carts returns the carts the clients learned of — the id part of every
// session a request was answered with — and the last cookie of each.
func (r *recorder) carts() map[string]string {
	last := map[string]string{}
	for _, op := range r.ops {
		if op.Outcome == sessiontest.OutcomeOK && op.NewCookie != "" {
			last[idOf(op.NewCookie)] = op.NewCookie
		}
	}
	return last
}

func idOf(cookie string) string {
	id, _, _ := route.Split(cookie, route.DefaultSeparator)
	return id
}

// finalReads reads every cart through every node, until each answers (the
// cluster healed, every node up), and records the reads.
func (r *recorder) finalReads() {
	for id, cookie := range r.carts() {
		for _, n := range r.s.nodes {
			r.s.eventually(func() error {
				op := sessiontest.Op{Client: -1, Kind: "read", Cookie: cookie, Key: "cart"}
				r.send(n, &op)
				if op.Outcome == sessiontest.OutcomeUnknown {
					return fmt.Errorf("final read of %s on %s: %s", id, n.name, op.Err)
				}
				return nil
			})
		}
	}
}

// converged checks that every node holds the same copy of each cart, or
// that none holds one (a cart logged out).
func (r *recorder) converged() {
	s := r.s
	for id := range r.carts() {
		s.eventually(func() error {
			var views []string
			for _, n := range s.nodes {
				var c copyView
				err := s.getJSON(n.url()+"/cluster/sessions/"+id, "", &c)
				switch {
				case err != nil && strings.Contains(err.Error(), ": 404 "):
					views = append(views, "no live copy")
				case err != nil:
					return fmt.Errorf("%s: %w", n.name, err)
				default:
					views = append(views, fmt.Sprintf("%+v", c))
				}
			}
			if len(slices.Compact(slices.Clone(views))) != 1 {
				return fmt.Errorf("cart %s: the nodes hold %v", id, views)
			}
			return nil
		})
	}
}

// check checks the history: every add answered 200 is in the final reads
// of its cart exactly once and in every answer sent after it, the history
// is linearizable, and the checker rejects it with one acknowledged add
// taken out of a read.
func (r *recorder) check() {
	t := r.s.t
	counts := map[string]int{}
	for _, op := range r.ops {
		counts[op.Kind+" "+op.Outcome]++
	}
	t.Logf("%d requests: %v", len(r.ops), counts)
	if counts["append ok"] == 0 {
		t.Fatal("no add was acknowledged: the test exercised nothing")
	}
	r.finalHoldsEveryAck()
	r.noAckMissed()
	if ok, report := sessiontest.CheckHistory(r.ops); !ok {
		t.Fatal(report)
	}
	broken, what := r.withoutAnAck()
	if ok, _ := sessiontest.CheckHistory(broken); ok {
		t.Fatalf("the checker accepted the history with %s", what)
	}
}

// finalHoldsEveryAck checks that every add answered 200 is exactly once
// in the final reads of its cart, unless the cart was logged out.
func (r *recorder) finalHoldsEveryAck() {
	final := map[string][]string{} // the cart's items, as the last read through a node saw it
	for _, op := range r.ops {
		if op.Client == -1 && op.Outcome == sessiontest.OutcomeOK {
			final[idOf(op.Cookie)] = strings.Split(op.List, ",")
		}
	}
	for _, op := range r.ops {
		items, live := final[idOf(op.NewCookie)]
		if op.Kind == "append" && op.Outcome == sessiontest.OutcomeOK && live && countOf(items, op.Item) != 1 {
			r.s.t.Errorf("add %s answered 200 by %s is %d times in the final cart %s: %v",
				op.Item, op.Node, countOf(items, op.Item), idOf(op.NewCookie), items)
		}
	}
}

// noAckMissed checks that no answer of a cart sent after an add to it was
// answered 200 misses the add: the plainest violation, reported with the
// requests in question (the first five).
func (r *recorder) noAckMissed() {
	var acks []sessiontest.Op
	for _, op := range r.ops {
		if op.Kind == "append" && op.Outcome == sessiontest.OutcomeOK {
			acks = append(acks, op)
		}
	}
	missed := 0
	for _, op := range r.ops {
		if op.Outcome != sessiontest.OutcomeOK || op.Kind == "invalidate" {
			continue
		}
		items := strings.Split(op.List, ",")
		for _, add := range acks {
			if add.Return < op.Call && idOf(add.NewCookie) == idOf(op.NewCookie) && !slices.Contains(items, add.Item) {
				if missed++; missed <= 5 {
					r.s.t.Errorf("%s of cart %s on %s at %.3fs..%.3fs answered 200 without %s, acknowledged by %s at %.3fs: %v",
						op.Kind, idOf(op.NewCookie), op.Node, secs(op.Call), secs(op.Return), add.Item, add.Node, secs(add.Return), items)
				}
			}
		}
	}
}

// secs converts a time of the history to seconds since the clients started.
func secs(ns int64) float64 { return float64(ns) / 1e9 }

// withoutAnAck returns the history with one acknowledged add taken out of
// a final read that saw it.
func (r *recorder) withoutAnAck() ([]sessiontest.Op, string) {
	ops := slices.Clone(r.ops)
	for i, op := range ops {
		if op.Client != -1 || op.Outcome != sessiontest.OutcomeOK {
			continue
		}
		items := strings.Split(op.List, ",")
		for _, add := range r.ops {
			if add.Kind == "append" && add.Outcome == sessiontest.OutcomeOK && slices.Contains(items, add.Item) {
				ops[i].List = strings.Join(slices.DeleteFunc(items, func(it string) bool { return it == add.Item }), ",")
				return ops, fmt.Sprintf("the acknowledged add %s taken out of a read on %s", add.Item, op.Node)
			}
		}
	}
	r.s.t.Fatal("no final read holds an acknowledged add")
	return nil, ""
}
