package clustertest

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
)

// Config describes a harness.
type Config struct {
	// Nodes is how many nodes New starts (and waits ready). More can be
	// added with Add.
	Nodes int
	// Seed makes fault injection reproducible. Default 1.
	Seed uint64
	// Options adjusts node i's options after the harness filled them in
	// (Name, Transport, Peers, Clock, Logger, Observer, fast test timings).
	Options func(i int, o *cluster.Options)
}

// Harness runs cluster nodes on an in-memory Network with a FakeClock.
// Every node lists every other node's address as a peer (static
// membership). Nodes are closed, and the log printed on failure, when the
// test ends.
type Harness struct {
	T     testing.TB
	Net   *Network
	Clock *FakeClock

	cfg   Config
	logs  *logBuffer
	mu    sync.Mutex
	addrs []string
	nodes []*cluster.Node
	obs   []*Counter
}

// New starts cfg.Nodes nodes at once and waits until all are ready.
func New(t testing.TB, cfg Config) *Harness {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	h := &Harness{T: t, Net: NewNetwork(cfg.Seed), Clock: NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)),
		cfg: cfg, logs: &logBuffer{}}
	for range cfg.Nodes {
		h.addrs = append(h.addrs, h.Net.NewAddr())
	}
	h.nodes = make([]*cluster.Node, cfg.Nodes)
	h.obs = make([]*Counter, cfg.Nodes)
	t.Cleanup(h.closeAll)
	var wg sync.WaitGroup
	for i := range cfg.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Start(i)
		}()
	}
	wg.Wait()
	h.WaitSettled(10 * time.Second)
	return h
}

// WaitSettled waits until every running node is ready and sees every
// other running node alive and ready.
func (h *Harness) WaitSettled(timeout time.Duration) {
	h.T.Helper()
	Eventually(h.T, timeout, func() error {
		running := map[string]bool{}
		for i := range h.addrs {
			if h.Node(i) != nil {
				running[h.Name(i)] = true
			}
		}
		for i := range h.addrs {
			n := h.Node(i)
			if n == nil {
				continue
			}
			seen := 0
			for _, m := range n.Members() {
				if running[m.Name] && m.Ready && m.State == cluster.MemberAlive {
					seen++
				}
			}
			if seen != len(running) {
				return fmt.Errorf("%s sees %d of %d nodes alive and ready: %+v", h.Name(i), seen, len(running), n.Members())
			}
		}
		return nil
	})
}

func (h *Harness) all() []int {
	out := make([]int, len(h.addrs))
	for i := range out {
		out[i] = i
	}
	return out
}

// Add reserves an address for one more node and returns its index; Start
// starts it.
func (h *Harness) Add() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addrs = append(h.addrs, h.Net.NewAddr())
	h.nodes = append(h.nodes, nil)
	h.obs = append(h.obs, nil)
	return len(h.addrs) - 1
}

// Name returns node i's name: "n1", "n2", ...
func (h *Harness) Name(i int) string { return fmt.Sprintf("n%d", i+1) }

// Addr returns node i's address.
func (h *Harness) Addr(i int) string { return h.addrs[i] }

// Node returns node i (nil when it is not running).
func (h *Harness) Node(i int) *cluster.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nodes[i]
}

// Observer returns the counters of node i's current incarnation.
func (h *Harness) Observer(i int) *Counter {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.obs[i]
}

// Options returns the options node i starts with.
func (h *Harness) Options(i int, ep cluster.Transport, obs cluster.Observer) cluster.Options {
	h.mu.Lock()
	peers := append([]string(nil), h.addrs...)
	h.mu.Unlock()
	o := cluster.Options{
		Name:      h.Name(i),
		Transport: ep,
		Peers:     peers,
		Clock:     h.Clock,
		Logger:    slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: logLevel()})),
		Observer:  obs,
		Gossip: cluster.GossipOptions{
			ProbeInterval: 150 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond, SuspicionMult: 2,
			GossipInterval: 30 * time.Millisecond, PushPullInterval: 2 * time.Second,
			TCPTimeout: time.Second, RejoinInterval: 200 * time.Millisecond,
		},
		OwnerWait:     150 * time.Millisecond,
		AckTimeout:    5 * time.Second,
		ClaimTimeout:  8 * time.Second,
		JoinTimeout:   5 * time.Second,
		TouchInterval: 50 * time.Millisecond,
	}
	if h.cfg.Options != nil {
		h.cfg.Options(i, &o)
	}
	return o
}

func logLevel() slog.Level {
	if os.Getenv("CLUSTERTEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Start starts node i with empty state (a restart after Crash or Stop),
// without waiting for it to be ready.
func (h *Harness) Start(i int) *cluster.Node {
	h.T.Helper()
	ep, err := h.Net.Listen(h.addrs[i])
	if err != nil {
		h.T.Fatalf("start %s: %v", h.Name(i), err)
	}
	obs := &Counter{}
	n, err := cluster.New(h.Options(i, ep, obs))
	if err != nil {
		h.T.Fatalf("start %s: %v", h.Name(i), err)
	}
	h.mu.Lock()
	h.nodes[i], h.obs[i] = n, obs
	h.mu.Unlock()
	return n
}

// Crash kills node i as SIGKILL would: its network goes down first, so it
// says nothing to anyone, then its goroutines are stopped.
func (h *Harness) Crash(i int) {
	h.Net.Crash(h.addrs[i])
	h.stop(i)
}

// Stop closes node i gracefully: it leaves the cluster.
func (h *Harness) Stop(i int) { h.stop(i) }

func (h *Harness) stop(i int) {
	h.mu.Lock()
	n := h.nodes[i]
	h.nodes[i] = nil
	h.mu.Unlock()
	if n != nil {
		_ = n.Close()
	}
	h.Net.Crash(h.addrs[i]) // free the address for a restart
}

// Freeze stops node i as SIGSTOP would (see Network.Freeze).
func (h *Harness) Freeze(i int) { h.Net.Freeze(h.addrs[i]) }

// Thaw resumes node i.
func (h *Harness) Thaw(i int) { h.Net.Thaw(h.addrs[i]) }

// WaitReady waits until the given nodes are ready.
func (h *Harness) WaitReady(timeout time.Duration, nodes ...int) {
	h.T.Helper()
	Eventually(h.T, timeout, func() error {
		for _, i := range nodes {
			if n := h.Node(i); n == nil || !n.IsReady() {
				return fmt.Errorf("%s not ready", h.Name(i))
			}
		}
		return nil
	})
}

// WaitMembers waits until node i sees exactly the nodes alive as live
// members (gossip listing them alive or suspect), itself included.
func (h *Harness) WaitMembers(timeout time.Duration, i int, alive ...int) {
	h.T.Helper()
	want := map[string]bool{}
	for _, a := range alive {
		want[h.Name(a)] = true
	}
	Eventually(h.T, timeout, func() error {
		n := h.Node(i)
		if n == nil {
			return fmt.Errorf("%s not running", h.Name(i))
		}
		got := map[string]bool{}
		for _, m := range n.Members() {
			if m.State == cluster.MemberAlive || m.State == cluster.MemberSuspect {
				got[m.Name] = true
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s sees %v alive, want %v", h.Name(i), got, want)
		}
		return nil
	})
}

func (h *Harness) closeAll() {
	h.mu.Lock()
	addrs := append([]string(nil), h.addrs...)
	h.mu.Unlock()
	for _, a := range addrs {
		h.Net.Thaw(a)
	}
	var wg sync.WaitGroup
	for i := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Crash(i)
		}()
	}
	wg.Wait()
	if h.T.Failed() {
		h.T.Logf("cluster log (last lines):\n%s", h.logs.tail(400))
	}
}

// Eventually calls check until it returns nil, failing the test with the
// last error if it has not within timeout. It polls; it never waits a
// fixed time for an outcome.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		<-tick.C // poll interval
	}
}

// logBuffer collects the nodes' logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 8<<20 {
		rest := l.b.Bytes()[l.b.Len()/2:]
		l.b = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return l.b.Write(p)
}

func (l *logBuffer) tail(lines int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := strings.Split(l.b.String(), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
