// Package demo runs the whole of Tether on one machine, as real child
// processes of the tether binary: replicated `tether cart` nodes, one
// `tether serve` balancer with its manager, and a small control API the
// demo page uses to kill, drain and restart nodes. It is the logic behind
// `tether demo`.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tetherlb/tether/internal/freeport"
)

// Options configures a demo. Zero values mean the defaults given.
type Options struct {
	// Binary is the tether executable the children run. Required.
	Binary string
	// Nodes is how many cart nodes to run. Default 3.
	Nodes int
	// Listen is the balancer's address. Default 127.0.0.1:8080, or a free
	// port if that one is taken.
	Listen string
	// Manager is the manager's address. Default 127.0.0.1:8081, or a free
	// port if that one is taken.
	Manager string
	// Store is where the cart nodes keep their sessions: StoreCluster
	// (replicated between them) or StoreRedis (a redis-server the demo
	// starts). Default StoreCluster.
	Store string
	// RandomPorts picks free ports for everything instead of the defaults.
	RandomPorts bool
	// Dir keeps the configuration, state file and logs. Default: a new
	// temporary directory, removed when the demo ends.
	Dir string
	// Out receives the welcome text with the URLs and the token.
	Out io.Writer
	// Logger receives the supervisor's log. Default: a discarding logger.
	Logger *slog.Logger
	// Ready, if set, is called with the demo's addresses once everything
	// serves.
	Ready func(Info)
}

// Info is what a user needs to reach the demo.
type Info struct {
	BalancerURL  string      `json:"balancer_url"`
	ManagerURL   string      `json:"manager_url"`
	ManagerToken string      `json:"-"`
	Dir          string      `json:"-"`
	Nodes        []NodeState `json:"nodes"`
}

// NodeState is a cart node as the demo panel shows it.
type NodeState struct {
	Route string `json:"route"`
	URL   string `json:"url"`
	ProcState
	// Member is the node as the balancer sees it; nil if the manager did
	// not answer.
	Member *MemberState `json:"member,omitempty"`
	// Cluster is the replication cluster as the node sees it (its GET
	// /cluster); nil when it did not answer or the sessions are in Redis.
	Cluster *ClusterView `json:"cluster,omitempty"`
}

// ClusterView is the part of a node's GET /cluster the panel shows: whether
// it reaches a majority, the sessions it owns and holds a read lease on,
// and what it refused for want of a majority.
type ClusterView struct {
	Majority   bool   `json:"majority"`
	Quorum     int    `json:"quorum"`
	Size       int    `json:"size"`
	Owned      int    `json:"owned"`
	Leased     int    `json:"leased"`
	NoMajority uint64 `json:"no_majority"`
}

// MemberState is the part of the manager's member view the panel shows.
type MemberState struct {
	State        string `json:"state"`
	Healthy      bool   `json:"healthy"`
	LiveSessions int64  `json:"live_sessions"`
}

// demo is a running demo.
type demo struct {
	opts      Options
	sp        *spawner
	nodes     []*node
	serve     *proc
	info      Info
	token     string // the demo panel's token for the control API
	control   net.Listener
	clusterKy string
	redis     *proc // the redis-server, with StoreRedis
	redisBin  string
	redisAddr string
	client    *http.Client
	logger    *slog.Logger
}

type node struct {
	route, httpAddr, clusterAddr string
	*proc
}

// Run starts the demo, calls opts.Ready, and runs until ctx is done; then
// it stops every child (SIGTERM, then SIGKILL after a grace period) and
// returns.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Binary == "" {
		return errors.New("demo: no tether binary")
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &demo{opts: opts, logger: opts.Logger, client: &http.Client{Timeout: 5 * time.Second}}
	if d.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "tether-demo-")
		if err != nil {
			return err
		}
		d.opts.Dir = dir
		defer os.RemoveAll(dir)
	}
	d.sp = newSpawner()
	defer d.stopAll()
	if err := d.plan(); err != nil {
		return err
	}
	if err := d.startAll(ctx); err != nil {
		return err
	}
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(d.control)
	defer srv.Close()
	d.welcome()
	if opts.Ready != nil {
		opts.Ready(d.snapshot())
	}
	<-ctx.Done()
	fmt.Fprintln(opts.Out, "\nstopping the demo…")
	return nil
}

// plan chooses ports and tokens and writes the balancer's configuration.
func (d *demo) plan() error {
	d.token, d.clusterKy = randomHex(16), randomHex(32)
	d.info.ManagerToken, d.info.Dir = randomHex(16), d.opts.Dir
	var err error
	if d.control, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return err
	}
	listen := d.port(d.opts.Listen, "127.0.0.1:8080")
	manager := d.port(d.opts.Manager, "127.0.0.1:8081")
	d.info.BalancerURL, d.info.ManagerURL = "http://"+listen+"/", "http://"+manager+"/"
	for i := 1; i <= d.opts.Nodes; i++ {
		route := fmt.Sprintf("n%d", i)
		d.nodes = append(d.nodes, &node{
			route:       route,
			httpAddr:    d.port("", fmt.Sprintf("127.0.0.1:%d", 9000+i)),
			clusterAddr: d.port("", fmt.Sprintf("127.0.0.1:%d", 7900+i)),
		})
	}
	var storeURL string
	var storeEnv []string
	switch d.opts.Store {
	case "", StoreCluster:
	case StoreRedis:
		if storeURL, storeEnv, err = d.planRedis(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("demo: unknown store %q (%s or %s)", d.opts.Store, StoreCluster, StoreRedis)
	}
	for _, n := range d.nodes {
		var peers []string
		for _, o := range d.nodes {
			if o != n {
				peers = append(peers, o.clusterAddr)
			}
		}
		args := []string{"cart", "--listen", n.httpAddr, "--route", n.route, "--cluster", n.clusterAddr,
			"--peers", strings.Join(peers, ","), "--drain-grace", "500ms", "--demo-panel"}
		env := []string{"TETHER_CLUSTER_KEY=" + d.clusterKy, "TETHER_DEMO_TOKEN=" + d.token}
		if storeURL != "" {
			args = []string{"cart", "--listen", n.httpAddr, "--route", n.route, "--store", storeURL, "--demo-panel"}
			env = append(append([]string{}, storeEnv...), "TETHER_DEMO_TOKEN="+d.token)
		}
		n.proc = &proc{name: n.route, args: args, env: env, log: logPath(d.opts.Dir, n.route)}
	}
	conf, err := d.writeConfig(listen, manager)
	if err != nil {
		return err
	}
	d.serve = &proc{name: "balancer", args: []string{"serve", "--config", conf}, log: logPath(d.opts.Dir, "balancer")}
	return nil
}

// port returns want if it is free, else a free port; with RandomPorts, or
// when want is empty or ends in ":0", a free port.
func (d *demo) port(want, def string) string {
	if want == "" {
		want = def
	}
	host, _, _ := net.SplitHostPort(want)
	if !d.opts.RandomPorts && !strings.HasSuffix(want, ":0") {
		if l, err := net.Listen("tcp", want); err == nil {
			l.Close()
			return want
		}
	}
	addr, err := freeport.Pick(host)
	if err != nil {
		return want
	}
	return addr
}

// startAll starts the nodes together, waits until they are ready, then
// starts the balancer and waits until it serves.
func (d *demo) startAll(ctx context.Context) error {
	if err := d.startRedis(ctx); err != nil {
		return err
	}
	for _, n := range d.nodes {
		if err := n.start(d.sp, d.opts.Binary); err != nil {
			return err
		}
	}
	for _, n := range d.nodes {
		if err := d.waitHTTP(ctx, "http://"+n.httpAddr+"/healthz", n.proc); err != nil {
			return err
		}
	}
	if err := d.serve.start(d.sp, d.opts.Binary); err != nil {
		return err
	}
	if err := d.waitHTTP(ctx, d.info.BalancerURL+"healthz", d.serve); err != nil {
		return err
	}
	return d.waitHTTP(ctx, d.info.ManagerURL+"healthz", d.serve)
}

// waitHTTP polls url until it answers 200, p exits, or 60 s pass.
func (d *demo) waitHTTP(ctx context.Context, url string, p *proc) error {
	deadline := time.Now().Add(60 * time.Second)
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		if resp, err := d.client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !p.state().Running {
			return fmt.Errorf("%s exited while starting:\n%s", p.name, p.tail(20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s is not ready at %s:\n%s", p.name, url, p.tail(20))
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay): // polling interval
		}
	}
}

// stopAll stops the balancer, then the nodes together.
func (d *demo) stopAll() {
	if d.serve != nil {
		d.serve.stop(10 * time.Second)
	}
	var wg sync.WaitGroup
	for _, n := range d.nodes {
		if n.proc == nil {
			continue
		}
		wg.Add(1)
		go func(p *proc) { defer wg.Done(); p.stop(15 * time.Second) }(n.proc)
	}
	wg.Wait()
	if d.redis != nil {
		d.redis.stop(10 * time.Second)
	}
}

func (d *demo) snapshot() Info {
	in := d.info
	in.Nodes = nil
	members := d.members()
	views := make([]*ClusterView, len(d.nodes))
	var wg sync.WaitGroup
	for i, n := range d.nodes {
		if d.redis == nil && n.state().Running {
			wg.Add(1)
			go func() { defer wg.Done(); views[i] = d.clusterView(n.httpAddr) }()
		}
	}
	wg.Wait()
	for i, n := range d.nodes {
		in.Nodes = append(in.Nodes, NodeState{Route: n.route, URL: "http://" + n.httpAddr + "/", ProcState: n.state(),
			Member: members[n.route], Cluster: views[i]})
	}
	return in
}

// clusterView asks a cart node how it sees its cluster; nil if it does not
// answer within a second (it may be frozen, or starting).
func (d *demo) clusterView(addr string) *ClusterView {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/cluster", nil)
	if err != nil {
		return nil
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var v ClusterView
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
		return nil
	}
	return &v
}

// members asks the manager how the balancer sees the nodes.
func (d *demo) members() map[string]*MemberState {
	req, err := http.NewRequest(http.MethodGet, d.info.ManagerURL+"api/v1/balancers/shop", nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+d.info.ManagerToken)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var b struct {
		Members []struct {
			Route string `json:"route"`
			MemberState
		} `json:"members"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&b) != nil {
		return nil
	}
	out := map[string]*MemberState{}
	for _, m := range b.Members {
		out[m.Route] = &m.MemberState
	}
	return out
}

func (d *demo) welcome() {
	w := d.opts.Out
	kind := "replicated"
	if d.redis != nil {
		kind = "Redis-backed"
	}
	fmt.Fprintf(w, "\nTether demo: a balancer, its manager and %d %s cart nodes, all on this machine.\n\n", len(d.nodes), kind)
	fmt.Fprintf(w, "  Shop (through the balancer):  %s\n", d.info.BalancerURL)
	fmt.Fprintf(w, "  Manager UI:                   %s\n", d.info.ManagerURL)
	fmt.Fprintf(w, "  Manager token:                %s\n", d.info.ManagerToken)
	for _, n := range d.nodes {
		if d.redis != nil {
			fmt.Fprintf(w, "  Node %-3s                      http://%s/\n", n.route, n.httpAddr)
		} else {
			fmt.Fprintf(w, "  Node %-3s                      http://%s/  (cluster %s)\n", n.route, n.httpAddr, n.clusterAddr)
		}
	}
	fmt.Fprint(w, d.storeLine())
	fmt.Fprintf(w, "  Logs and configuration:       %s\n\n", d.opts.Dir)
	fmt.Fprintln(w, "Try it: add items to the cart, then click \"Kill the node serving me\" and add another")
	fmt.Fprintln(w, "item: the cart is intact, another node serves it, and the route at the end of the")
	fmt.Fprintln(w, "session id has changed. Drain a node from the page or the manager and watch it empty.")
	fmt.Fprintln(w, "\nPress Ctrl-C to stop everything.")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
