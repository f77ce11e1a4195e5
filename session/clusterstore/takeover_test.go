package clusterstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
	"github.com/tetherlb/tether/route"
	"github.com/tetherlb/tether/session"
	"github.com/tetherlb/tether/session/clusterstore"
	"github.com/tetherlb/tether/session/sessiontest"
)

// nodes is a cluster of app nodes on an in-memory network: each a
// clusterstore.Store under a session.Manager serving a tiny cart.
type nodes struct {
	t     *testing.T
	net   *clustertest.Network
	addrs []string
	st    []*clusterstore.Store
	m     []*session.Manager
	h     []http.Handler
	mode  cluster.AckMode

	adjust  func(*cluster.Options)      // nil: none
	sadjust func(int, *session.Options) // nil: none; node i's session options

	mu sync.Mutex // guards m against a nemesis killing and restarting nodes
}

func newNodes(t *testing.T, n int, mode cluster.AckMode) *nodes {
	return newNodesWith(t, n, mode, nil)
}

// newNodesWith is newNodes with adjust applied to every node's options.
func newNodesWith(t *testing.T, n int, mode cluster.AckMode, adjust func(*cluster.Options)) *nodes {
	return newNodesSession(t, n, mode, adjust, nil)
}

// newNodesSession is newNodesWith with sadjust applied to node i's
// session options.
func newNodesSession(t *testing.T, n int, mode cluster.AckMode, adjust func(*cluster.Options), sadjust func(int, *session.Options)) *nodes {
	c := &nodes{t: t, net: clustertest.NewNetwork(1), mode: mode, adjust: adjust, sadjust: sadjust}
	for range n {
		c.addrs = append(c.addrs, c.net.NewAddr())
	}
	c.st, c.m, c.h = make([]*clusterstore.Store, n), make([]*session.Manager, n), make([]http.Handler, n)
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, a := range c.addrs {
			c.net.Thaw(a)
		}
		for _, s := range c.st {
			if s != nil {
				_ = s.Close()
			}
		}
	})
	c.settle()
	return c
}

func (c *nodes) name(i int) string { return fmt.Sprintf("n%d", i+1) }

// start starts node i with empty state.
func (c *nodes) start(i int) {
	ep, err := c.net.Listen(c.addrs[i])
	if err != nil {
		c.t.Fatal(err)
	}
	o := cluster.Options{
		Name: c.name(i), Transport: ep, Peers: c.addrs, Ack: c.mode, Logger: testLogger(c.t),
		Gossip: cluster.GossipOptions{ProbeInterval: 150 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond,
			SuspicionMult: 2, GossipInterval: 30 * time.Millisecond, PushPullInterval: 2 * time.Second,
			TCPTimeout: time.Second, RejoinInterval: 200 * time.Millisecond},
		OwnerWait: 150 * time.Millisecond, JoinTimeout: 5 * time.Second, TouchInterval: 50 * time.Millisecond,
	}
	if c.adjust != nil {
		c.adjust(&o)
	}
	st, err := clusterstore.New(clusterstore.Options{Cluster: o})
	if err != nil {
		c.t.Fatal(err)
	}
	so := session.Options{Store: st, Route: c.name(i)}
	if c.sadjust != nil {
		c.sadjust(i, &so)
	}
	m, err := session.New(so)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.st[i], c.m[i], c.h[i] = st, m, m.Handler(cartMux())
	c.mu.Unlock()
}

// manager returns node i's Manager, nil while it is down.
func (c *nodes) manager(i int) *session.Manager {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[i]
}

// crash stops node i as SIGKILL would: its network first, so it says
// nothing to anyone.
func (c *nodes) crash(i int) {
	c.net.Crash(c.addrs[i])
	c.mu.Lock()
	st := c.st[i]
	c.st[i], c.m[i], c.h[i] = nil, nil, nil
	c.mu.Unlock()
	_ = st.Close()
}

// settle waits until every running node sees every other alive and ready.
func (c *nodes) settle() {
	c.t.Helper()
	clustertest.Eventually(c.t, 10*time.Second, func() error {
		running := 0
		for _, s := range c.st {
			if s != nil {
				running++
			}
		}
		for i, s := range c.st {
			if s == nil {
				continue
			}
			if err := s.Ready(); err != nil {
				return fmt.Errorf("%s: %v", c.name(i), err)
			}
			seen := 0
			for _, m := range s.Node().Members() {
				if m.State == cluster.MemberAlive && m.Ready {
					seen++
				}
			}
			if seen != running {
				return fmt.Errorf("%s sees %d of %d nodes", c.name(i), seen, running)
			}
		}
		return nil
	})
}

// cartMux is the app: POST /add?item=x appends to the "items" key; GET /
// shows them, and so does GET /ro, a read-only request (session.ReadOnly)
// that says in the header "Stale: true" when it was served a stale copy.
// They answer with the items as JSON.
func cartMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		items, err := session.Get[[]string](s, "items")
		if err == nil {
			err = s.Put("items", append(items, r.URL.Query().Get("item")))
		}
		if err != nil {
			http.Error(w, err.Error(), session.StatusCode(err))
			return
		}
		_ = json.NewEncoder(w).Encode(append(items, r.URL.Query().Get("item")))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		items, err := session.Get[[]string](session.From(r), "items")
		if err != nil {
			http.Error(w, err.Error(), session.StatusCode(err))
			return
		}
		_ = json.NewEncoder(w).Encode(items)
	})
	mux.Handle("GET /ro", session.ReadOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		items, err := session.Get[[]string](s, "items")
		stale := false
		if err == nil {
			stale, err = s.Stale()
		}
		if err != nil {
			http.Error(w, err.Error(), session.StatusCode(err))
			return
		}
		w.Header().Set("Stale", strconv.FormatBool(stale))
		_ = json.NewEncoder(w).Encode(items)
	})))
	return mux
}

// reply is an answer of a node.
type reply struct {
	status int
	items  []string
	cookie string // the JSESSIONID the response set, "" if none
	body   string
	header http.Header
}

// do sends a request with session cookie sid ("" for none) to node i.
func (c *nodes) do(i int, method, path, sid string) reply {
	req := httptest.NewRequest(method, path, nil)
	if sid != "" {
		req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: sid})
	}
	rec := httptest.NewRecorder()
	c.h[i].ServeHTTP(rec, req)
	r := reply{status: rec.Code, body: rec.Body.String(), header: rec.Result().Header}
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "JSESSIONID" {
			r.cookie = ck.Value
		}
	}
	if r.status == http.StatusOK {
		_ = json.Unmarshal(rec.Body.Bytes(), &r.items)
	}
	return r
}

// add adds item through node i and fails the test unless it is saved.
func (c *nodes) add(i int, sid, item string) reply {
	c.t.Helper()
	r := c.do(i, http.MethodPost, "/add?item="+item, sid)
	if r.status != http.StatusOK {
		c.t.Fatalf("add %s at %s: %d %s", item, c.name(i), r.status, r.body)
	}
	return r
}

// copies waits until the copies of session id on the given nodes (all
// running nodes if none is given) have owner and items and one version.
func (c *nodes) copies(id, owner string, items []string, on ...int) {
	c.t.Helper()
	if len(on) == 0 {
		for i, s := range c.st {
			if s != nil {
				on = append(on, i)
			}
		}
	}
	want, _ := json.Marshal(items)
	clustertest.Eventually(c.t, 10*time.Second, func() error {
		var version uint64
		for _, i := range on {
			r, err := c.st[i].Node().Get(id)
			switch {
			case err != nil:
				return fmt.Errorf("%s: %v", c.name(i), err)
			case r.Owner != owner || string(r.Values["items"]) != string(want):
				return fmt.Errorf("%s: owner %s, items %s; want %s, %s", c.name(i), r.Owner, r.Values["items"], owner, want)
			case version != 0 && r.Version != version:
				return fmt.Errorf("%s: version %d, another node %d", c.name(i), r.Version, version)
			}
			version = r.Version
		}
		return nil
	})
}

// TestTakeoverThroughTheManager: a request presenting "<id>.n1" at n2
// makes n2 the owner before it answers; the cookie becomes "<id>.n2" with
// the same id part, the data is intact, and every node agrees — whether
// n1 is alive (draining), crashed, or frozen.
func TestTakeoverThroughTheManager(t *testing.T) {
	tests := []struct {
		name string
		fail func(c *nodes)
	}{
		{"owner alive", func(*nodes) {}},
		{"owner crashed", func(c *nodes) { c.crash(0) }},
		{"owner frozen", func(c *nodes) { c.net.Freeze(c.addrs[0]) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newNodes(t, 3, cluster.AckOne)
			sid := c.add(0, "", "apple").cookie
			c.add(0, sid, "pear")
			id, rt, ok := route.Split(sid, '.')
			if !ok || rt != "n1" {
				t.Fatalf("cookie %q, want <id>.n1", sid)
			}
			tt.fail(c)
			r := c.do(1, http.MethodGet, "/", sid)
			if r.status != http.StatusOK || !slices.Equal(r.items, []string{"apple", "pear"}) {
				t.Fatalf("GET at n2: %d %v %s, want the two items", r.status, r.items, r.body)
			}
			if r.cookie != id+".n2" {
				t.Fatalf("cookie after takeover %q, want %q (same id, new route)", r.cookie, id+".n2")
			}
			r = c.add(1, r.cookie, "plum")
			if r.cookie != "" {
				t.Fatalf("request with the canonical cookie got a new one: %q", r.cookie)
			}
			c.copies(id, "n2", []string{"apple", "pear", "plum"}, 1, 2)
			if tt.name != "owner crashed" {
				c.net.Thaw(c.addrs[0])
				c.copies(id, "n2", []string{"apple", "pear", "plum"}, 0, 1, 2) // n1 too, awake
			}
		})
	}
}

// TestParallelTakeoversLeaveOneOwner: the owner is gone and six requests
// for its session arrive at once, three at n2 and three at n3. They may
// win or lose (a loser answers 503, never a lost write as success); in the
// end one node owns the session, every node holds the same copy, and it
// has every item that was acknowledged before.
func TestParallelTakeoversLeaveOneOwner(t *testing.T) {
	c := newNodes(t, 3, cluster.AckOne)
	sid := c.add(0, "", "apple").cookie
	c.add(0, sid, "pear")
	id, _, _ := route.Split(sid, '.')
	c.crash(0)
	var wg sync.WaitGroup
	replies := make([]reply, 6)
	for k := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[k] = c.do(1+k%2, http.MethodGet, "/", sid)
		}()
	}
	wg.Wait()
	for k, r := range replies {
		switch r.status {
		case http.StatusOK:
			if !slices.Equal(r.items, []string{"apple", "pear"}) {
				t.Errorf("request %d at %s: %v, want apple and pear", k, c.name(1+k%2), r.items)
			}
			if want := id + "." + c.name(1+k%2); r.cookie != want {
				t.Errorf("request %d: cookie %q, want %q", k, r.cookie, want)
			}
		case http.StatusServiceUnavailable:
			// A takeover lost to a racing one: the client retries.
		default:
			t.Errorf("request %d at %s: %d %s", k, c.name(1+k%2), r.status, r.body)
		}
	}
	var owner string
	clustertest.Eventually(t, 10*time.Second, func() error {
		r2, err2 := c.st[1].Node().Get(id)
		r3, err3 := c.st[2].Node().Get(id)
		if err2 != nil || err3 != nil {
			return fmt.Errorf("copies: %v, %v", err2, err3)
		}
		if r2.Owner != r3.Owner || r2.Epoch != r3.Epoch || r2.Version != r3.Version {
			return fmt.Errorf("n2 sees %s@%d v%d, n3 %s@%d v%d", r2.Owner, r2.Epoch, r2.Version, r3.Owner, r3.Epoch, r3.Version)
		}
		owner = r2.Owner
		return nil
	})
	if owner != "n2" && owner != "n3" {
		t.Fatalf("owner %q after the takeovers", owner)
	}
	owners := 0
	for _, s := range c.st[1:] {
		owners += s.Info().Owned
	}
	if owners != 1 {
		t.Fatalf("%d nodes say they own the session", owners)
	}
	c.copies(id, owner, []string{"apple", "pear"})
}

// TestFencedWriteIsAnError: the owner n1 is frozen in the middle of a
// write; meanwhile n2 takes the session over and writes. When n1 wakes,
// its write fails with 503 — never a 200 for data that is not kept — and
// n2's data is untouched everywhere, n1 included.
func TestFencedWriteIsAnError(t *testing.T) {
	c := newNodes(t, 3, cluster.AckOne)
	sid := c.add(0, "", "apple").cookie
	id, _, _ := route.Split(sid, '.')
	c.net.Freeze(c.addrs[0])
	inflight := make(chan reply, 1)
	go func() { inflight <- c.do(0, http.MethodPost, "/add?item=stale", sid) }()
	// n1 has applied the write locally and waits for an acknowledgement
	// it cannot get while frozen.
	clustertest.Eventually(t, 10*time.Second, func() error {
		for _, m := range c.st[0].Info().Members {
			if m.Unacked > 0 {
				return nil
			}
		}
		return fmt.Errorf("n1's write not queued yet")
	})
	r := c.do(1, http.MethodPost, "/add?item=fresh", sid)
	if r.status != http.StatusOK || r.cookie != id+".n2" {
		t.Fatalf("takeover at n2: %d %q %s", r.status, r.cookie, r.body)
	}
	c.net.Thaw(c.addrs[0])
	select {
	case r := <-inflight:
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("the frozen owner's write answered %d %s, want 503", r.status, r.body)
		}
		if !strings.Contains(r.body, "unavailable") || r.cookie != "" {
			t.Fatalf("503 body %q, cookie %q", r.body, r.cookie)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the frozen owner's write never finished")
	}
	c.copies(id, "n2", []string{"apple", "fresh"})
	// n1, awake, serves n2's data (taking the session back), not its own.
	r = c.do(0, http.MethodGet, "/", id+".n2")
	if r.status != http.StatusOK || !slices.Equal(r.items, []string{"apple", "fresh"}) {
		t.Fatalf("n1 after waking: %d %v %s", r.status, r.items, r.body)
	}
}

// TestHandoverLeavesNothingBehind: with async replication and a slow link,
// Handover returns only when the peers hold every write; the node then
// leaves, and a peer serves its sessions with the last write.
func TestHandoverLeavesNothingBehind(t *testing.T) {
	c := newNodes(t, 3, cluster.AckNone)
	c.net.SetFaults(c.addrs[0], c.addrs[2], clustertest.Faults{Delay: 30 * time.Millisecond})
	sid := c.add(0, "", "a").cookie
	var want []string
	want = append(want, "a")
	for i := range 10 {
		item := fmt.Sprint("i", i)
		c.add(0, sid, item)
		want = append(want, item)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.st[0].Handover(ctx); err != nil {
		t.Fatal(err)
	}
	id, _, _ := route.Split(sid, '.')
	wantJSON, _ := json.Marshal(want)
	for _, i := range []int{1, 2} { // no polling: Handover has waited
		r, err := c.st[i].Node().Get(id)
		if err != nil || string(r.Values["items"]) != string(wantJSON) {
			t.Fatalf("%s after the handover: %s (%v), want %s", c.name(i), r.Values["items"], err, wantJSON)
		}
	}
	c.st[0], c.h[0] = nil, nil
	// Gossip carries the leave at once: no failure detection to wait for.
	clustertest.Eventually(t, 10*time.Second, func() error {
		for _, i := range []int{1, 2} {
			for _, m := range c.st[i].Node().Members() {
				if m.Name == "n1" && (m.State == cluster.MemberAlive || m.State == cluster.MemberSuspect) {
					return fmt.Errorf("%s sees n1 %v", c.name(i), m.State)
				}
			}
		}
		return nil
	})
	r := c.do(2, http.MethodGet, "/", sid)
	if r.status != http.StatusOK || !slices.Equal(r.items, want) || r.cookie != id+".n3" {
		t.Fatalf("n3 after n1 left: %d %v %q", r.status, r.items, r.cookie)
	}
}

// TestNotReadyWhileJoining: a node whose peer does not answer yet is not
// ready (the Manager, hence /healthz, says so); once it has the peer's
// sessions it is, and serves them.
func TestNotReadyWhileJoining(t *testing.T) {
	c := newNodes(t, 2, cluster.AckOne)
	sid := c.add(0, "", "apple").cookie
	c.crash(1)
	c.net.Freeze(c.addrs[0])
	c.start(1)
	m, _ := session.New(session.Options{Store: c.st[1], Route: "n2"})
	if err := m.Ready(); err == nil {
		t.Fatal("joining node ready before its peer answered")
	}
	c.net.Thaw(c.addrs[0])
	clustertest.Eventually(t, 10*time.Second, m.Ready)
	r := c.do(1, http.MethodGet, "/", sid)
	if r.status != http.StatusOK || !slices.Equal(r.items, []string{"apple"}) {
		t.Fatalf("rejoined node: %d %v %s", r.status, r.items, r.body)
	}
}

// TestLinearizableAcrossNodes sends the requests of sessiontest's
// linearizability check to the three nodes of a cluster at random, as a
// balancer that lost track of the owner would: every request on another
// node's session takes it over, with requests still running on the old
// owner. Whatever the interleaving, the history is linearizable. There
// are no faults here, and a loaded machine must not make some: a takeover
// waits for the owner's promise however slow it is (OwnerWait), and
// failure detection is slow to declare a busy node dead — at the sync
// level an owner that a takeover did not wait for may serve a stale read
// until it hears of it, and a node wrongly declared dead is a partition,
// which that level does not survive (docs/cluster.md; the majority levels
// are checked under faults by the tests below).
func TestLinearizableAcrossNodes(t *testing.T) {
	for _, mode := range []cluster.AckMode{cluster.AckOne, cluster.AckAll, cluster.AckMajority} {
		t.Run(mode.String(), func(t *testing.T) {
			c := newNodesWith(t, 3, mode, func(o *cluster.Options) {
				o.OwnerWait = 4 * time.Second
				o.Gossip.ProbeInterval, o.Gossip.ProbeTimeout, o.Gossip.SuspicionMult = time.Second, time.Second, 6
			})
			sessiontest.CheckLinearizable(t, sessiontest.LinearOptions{Managers: c.m, Clients: 4, Ops: 30})
		})
	}
}

// TestLinearizableUnderPartitions is the randomized test of the majority
// level: clients send the linearizability check's requests to 3 and to 5
// nodes at random while a nemesis cuts the network between random groups,
// freezes nodes (their traffic held, as under SIGSTOP) and heals, again and
// again. Every answer is recorded; the history must be linearizable: no
// acknowledged write lost, no read of a write that was refused, one order
// of the answers. The seed is logged; SESSION_NEMESIS_SEED reruns one.
func TestLinearizableUnderPartitions(t *testing.T) {
	seed := nemesisSeed(t)
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			c := newNodesWith(t, size, nemesisMode, func(o *cluster.Options) {
				o.AckTimeout, o.ClaimTimeout = 400*time.Millisecond, 600*time.Millisecond
				o.Lease = 100 * time.Millisecond // leases at the pace of the faults
			})
			sessiontest.CheckLinearizable(t, sessiontest.LinearOptions{Managers: c.m, Clients: 4, Ops: 40, Seed: seed,
				Think: 60 * time.Millisecond, Nemesis: c.nemesis})
		})
	}
}

// nemesisSeed returns SESSION_NEMESIS_SEED, or a new seed.
func nemesisSeed(t *testing.T) uint64 {
	s := os.Getenv("SESSION_NEMESIS_SEED")
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("SESSION_NEMESIS_SEED: %v", err)
	}
	return v
}

// nemesisMode is the level TestLinearizableUnderPartitions checks.
// (With cluster.AckOne, which promises nothing under partitions, the test
// fails: that is how one knows it can.)
var nemesisMode = cluster.AckMajority

// nemesis cuts, freezes and heals the network at random until stop.
func (c *nodes) nemesis(rnd *rand.Rand, stop <-chan struct{}) {
	healAll := func() {
		for _, a := range c.addrs {
			c.net.Heal(a)
			c.net.Thaw(a)
		}
	}
	defer healAll()
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(100+rnd.IntN(500)) * time.Millisecond): // the pace of the faults (long enough for gossip to declare nodes dead), not a wait for a condition
		}
		switch rnd.IntN(4) {
		case 0: // split into two random groups
			healAll()
			perm := rnd.Perm(len(c.addrs))
			k := 1 + rnd.IntN(len(c.addrs)-1)
			for _, i := range perm[:k] {
				for _, j := range perm[k:] {
					c.net.Partition(c.addrs[i], c.addrs[j])
				}
			}
		case 1: // freeze one node
			c.net.Freeze(c.addrs[rnd.IntN(len(c.addrs))])
		default:
			healAll()
		}
	}
}

// TestLinearizableUnderKills is TestLinearizableUnderPartitions with
// SIGKILLs and restarts besides: the nemesis also kills a node (never more
// than a minority at once) and starts it again, empty, as a process that
// restarts. A node that is down answers nothing; one that restarts must
// receive the cluster's state before it counts for a majority.
func TestLinearizableUnderKills(t *testing.T) {
	seed := nemesisSeed(t)
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			c := newNodesWith(t, size, nemesisMode, func(o *cluster.Options) {
				o.AckTimeout, o.ClaimTimeout = 400*time.Millisecond, 600*time.Millisecond
				o.Lease = 100 * time.Millisecond // leases at the pace of the faults
			})
			sessiontest.CheckLinearizable(t, sessiontest.LinearOptions{Node: c.manager, Nodes: size, Clients: 4, Ops: 40,
				Seed: seed, Think: 60 * time.Millisecond, Nemesis: c.killer})
		})
	}
}

// killer kills and restarts nodes at random, at most a minority at once,
// and cuts and heals the network as nemesis does, until stop.
func (c *nodes) killer(rnd *rand.Rand, stop <-chan struct{}) {
	var dead []int
	defer func() {
		for _, i := range dead {
			c.start(i)
		}
	}()
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(100+rnd.IntN(500)) * time.Millisecond): // the pace of the faults, not a wait for a condition
		}
		switch {
		case rnd.IntN(2) == 0 && len(dead)+1 <= (len(c.addrs)-1)/2:
			i := rnd.IntN(len(c.addrs))
			if !slices.Contains(dead, i) {
				c.crash(i)
				dead = append(dead, i)
			}
		case len(dead) > 0:
			c.start(dead[0])
			dead = dead[1:]
		}
	}
}
