package failover_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tetherlb/tether/internal/netfault"
	"github.com/tetherlb/tether/internal/proctest"
)

// nemesis injects faults into the nodes of a system started by
// startPartitionable, drawing every choice from its seeded rnd: network
// partitions between random groups (nftables rules, in one direction or
// both), heals, SIGKILLs and restarts, and SIGSTOP/SIGCONT bursts. It
// never has more than a minority of the nodes killed at once, and it
// starts a killed node again only with the network healed and every live
// node seeing the others: a node restarts empty, and it must receive the
// cluster's state from a majority before it counts as up again (a node
// that starts cut off from its peers starts a cluster of its own,
// docs/cluster.md). It runs on the test's goroutine.
type nemesis struct {
	s     *system
	nf    *netfault.Table
	ips   []string // the nodes' addresses, by index
	rnd   *rand.Rand
	start time.Time
	dead  []int // the nodes killed and not started again
	done  map[string]int
}

// newNemesis returns a nemesis drawing from seed, that logs its faults
// with their time since start (that of the history).
func newNemesis(s *system, nf *netfault.Table, ips []string, seed uint64, start time.Time) *nemesis {
	return &nemesis{s: s, nf: nf, ips: ips, rnd: rand.New(rand.NewPCG(seed, 1<<32)), start: start, done: map[string]int{}}
}

// run injects faults for d, then heals the network and starts the killed
// nodes again.
func (nm *nemesis) run(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		nm.pause(300, 1500) // the pace of the faults (some last longer than failure detection), not a wait for a condition
		switch x := nm.rnd.IntN(10); {
		case x < 3:
			nm.partition()
		case x < 5:
			nm.heal()
		case x < 7:
			nm.freezeBurst()
		case x < 9 && len(nm.dead) < (len(nm.ips)-1)/2:
			nm.kill()
		default:
			nm.restart()
		}
	}
	nm.heal()
	for len(nm.dead) > 0 {
		nm.restart()
	}
	nm.s.t.Logf("nemesis: %v", nm.done)
}

// pause waits between lo and hi milliseconds, drawn from rnd.
func (nm *nemesis) pause(lo, hi int) {
	time.Sleep(time.Duration(lo+nm.rnd.IntN(hi-lo)) * time.Millisecond) // the nemesis's pace, not a wait for a condition
}

func (nm *nemesis) logf(kind, format string, args ...any) {
	nm.done[kind]++
	nm.s.t.Logf("nemesis %7.3fs: %s", time.Since(nm.start).Seconds(), fmt.Sprintf(format, args...))
}

// partition replaces the cuts by new ones: the nodes drawn into two
// groups (or three, with five nodes or more), each pair of groups cut in
// both directions or, one time in three, in one.
func (nm *nemesis) partition() {
	groups := 2
	if len(nm.ips) >= 5 && nm.rnd.IntN(2) == 0 {
		groups = 3
	}
	of := make([]int, len(nm.ips))
	for slices.Min(of) == slices.Max(of) { // at least two groups
		for i := range of {
			of[i] = nm.rnd.IntN(groups)
		}
	}
	nm.nf.Heal()
	var desc []string
	for a := range groups {
		for b := a + 1; b < groups; b++ {
			ga, gb := nm.members(of, a), nm.members(of, b)
			if len(ga) == 0 || len(gb) == 0 {
				continue
			}
			switch nm.rnd.IntN(3) {
			case 0:
				nm.nf.Cut(nm.addrs(ga), nm.addrs(gb))
				desc = append(desc, fmt.Sprintf("%v->%v", nm.names(ga), nm.names(gb)))
			default:
				nm.nf.Partition(nm.addrs(ga), nm.addrs(gb))
				desc = append(desc, fmt.Sprintf("%v|%v", nm.names(ga), nm.names(gb)))
			}
		}
	}
	nm.logf("partition", "cut %s", strings.Join(desc, " "))
}

func (nm *nemesis) members(of []int, g int) []int {
	var out []int
	for i, x := range of {
		if x == g {
			out = append(out, i)
		}
	}
	return out
}

func (nm *nemesis) addrs(idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, nm.ips[i])
	}
	return out
}

func (nm *nemesis) names(idx []int) string {
	var out []string
	for _, i := range idx {
		out = append(out, nm.s.nodes[i].name)
	}
	return strings.Join(out, ",")
}

func (nm *nemesis) heal() {
	nm.nf.Heal()
	nm.logf("heal", "heal")
}

// freezeBurst stops a live node with SIGSTOP and wakes it with SIGCONT, one
// to three times in a row.
func (nm *nemesis) freezeBurst() {
	i := nm.live()[nm.rnd.IntN(len(nm.live()))]
	n := nm.s.nodes[i]
	for range 1 + nm.rnd.IntN(3) {
		d := time.Duration(100+nm.rnd.IntN(1100)) * time.Millisecond
		nm.logf("freeze", "freeze %s for %v", n.name, d)
		n.proc.Stop(nm.s.t)
		time.Sleep(d) // how long it stays frozen, not a wait for a condition
		n.proc.Cont(nm.s.t)
		nm.pause(50, 300)
	}
}

// kill sends SIGKILL to a live node.
func (nm *nemesis) kill() {
	i := nm.live()[nm.rnd.IntN(len(nm.live()))]
	nm.s.nodes[i].proc.Kill()
	nm.dead = append(nm.dead, i)
	nm.logf("kill", "kill %s", nm.s.nodes[i].name)
}

// restart heals the network and starts the node killed first again, once
// the live nodes see each other, and waits until it is ready and seen.
// Without a killed node, it does nothing.
func (nm *nemesis) restart() {
	if len(nm.dead) == 0 {
		return
	}
	i := nm.dead[0]
	nm.nf.Heal()
	nm.settled()
	n := nm.s.nodes[i]
	nm.s.start(n)
	proctest.WaitHTTP(nm.s.t, n.url()+"/healthz", http.StatusOK, startup)
	nm.logf("restart", "healed, restarted %s", n.name)
	// Every live peer was reachable and ready: the node must have become
	// ready with their state, not after its join timed out without it (it
	// would then count for a majority without the writes only they hold).
	if line := lineWith(n.proc.Output(), "join timed out"); line != "" {
		nm.s.t.Errorf("%s restarted with every peer up and reachable, and became ready without a live peer's state: %s", n.name, line)
	}
	nm.dead = nm.dead[1:]
	nm.settled()
}

// lineWith returns the first line of out containing s, "" if none does.
func lineWith(out, s string) string {
	for line := range strings.Lines(out) {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// live returns the indexes of the nodes not killed.
func (nm *nemesis) live() []int {
	var out []int
	for i := range nm.ips {
		if !slices.Contains(nm.dead, i) {
			out = append(out, i)
		}
	}
	return out
}

// memberView is a member as a node's GET /cluster shows it.
type memberView struct {
	Name      string  `json:"name"`
	State     string  `json:"state"`
	Ready     bool    `json:"ready"`
	Connected bool    `json:"connected"`
	Unacked   int     `json:"unacked"`
	LagMillis float64 `json:"lag_ms"`
	Refused   string  `json:"refused"`
}

// settled waits until every live node holds a majority and sees every
// other live node alive and ready.
func (nm *nemesis) settled() {
	nm.s.eventually(func() error {
		for _, i := range nm.live() {
			var info struct {
				Majority bool         `json:"majority"`
				Members  []memberView `json:"members"`
			}
			n := nm.s.nodes[i]
			if err := nm.s.getJSON(n.url()+"/cluster", "", &info); err != nil {
				return err
			}
			if !info.Majority {
				return fmt.Errorf("%s holds no majority", n.name)
			}
			for _, j := range nm.live() {
				name := nm.s.nodes[j].name
				if !slices.ContainsFunc(info.Members, func(m memberView) bool { return m.Name == name && m.State == "alive" && m.Ready }) {
					return fmt.Errorf("%s does not see %s alive and ready: %+v", n.name, name, info.Members)
				}
			}
		}
		return nil
	})
}
