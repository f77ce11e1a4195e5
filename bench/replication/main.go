// Command replication measures session replication end to end, over real
// processes: three (--nodes) `tether cart --cluster` nodes on loopback, driven
// through the cart's HTTP API (POST /api/cart/items), once per
// replication mode.
//
//	go run ./bench/replication [--tether BIN] [--modes sync,majority,async] [--nodes 3] \
//	    [--samples 2000] [--duration 10s] [--concurrency 12]
//
// Per mode it reports:
//
//   - write latency: one client adding items one at a time to a cart owned
//     by n1, straight at n1 (no balancer), from sending the request to
//     reading the whole response (p50, p99);
//   - visible on a peer: the same writes, while a second client polls n2's
//     GET /cluster/sessions/{id} back to back; the delay is from sending
//     the write to receiving the first poll answer that shows its version.
//     That is an upper bound; the change landed on n2 after the poll before
//     that one was sent, which gives a lower bound. Both are reported, and
//     the span between the two polls ("resolution");
//   - writes per second: --concurrency clients, each with its own cart,
//     spread over the three nodes, adding items as fast as the nodes
//     answer, for --duration; with the latency of those writes.
//
// A cart holds 100 items: a client's cart is logged out and replaced
// every 90 items (those requests are not counted). The machine's load is
// printed before and after, since other processes share its cores. The
// output is a Markdown table, then one line of key=value pairs per mode.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.tether, "tether", "", "tether binary (default: go build ./cmd/tether into a temporary directory)")
	modes := flag.String("modes", "sync,async", "replication modes to measure, in order (sync, majority, sync-all, async)")
	flag.IntVar(&o.nodes, "nodes", 3, "cart nodes in the cluster")
	flag.IntVar(&o.samples, "samples", 2000, "writes measured one at a time, per mode (latency and visibility each)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of the throughput run, per mode")
	flag.IntVar(&o.concurrency, "concurrency", 12, "clients of the throughput run")
	flag.StringVar(&o.lease, "lease", "", "the nodes' --lease (default: theirs, 1s; negative: no read leases)")
	flag.Parse()
	o.modes = strings.Split(*modes, ",")
	if o.samples < 10 || o.duration <= 0 || o.concurrency < 1 || o.nodes < 2 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if o.tether == "" {
		bin, cleanup, err := build()
		if err != nil {
			fmt.Fprintln(os.Stderr, "replication:", err)
			os.Exit(1)
		}
		defer cleanup()
		o.tether = bin
	}
	m := machineState()
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replication:", err)
		os.Exit(1)
	}
	m.loadAfter, m.stop = loadavg(), time.Now()
	fmt.Print(report(o, m, res))
}

type options struct {
	tether      string
	modes       []string
	samples     int
	duration    time.Duration
	concurrency int
	nodes       int
	lease       string // --lease of the nodes; "" for their default
}

// result is what one mode measured.
type result struct {
	mode       string
	write      summary // one client, sequential
	read       summary // one client, sequential reads of its cart on its owner (GET /api/cart)
	visible    summary // send of the write → first poll on the peer showing it (upper bound)
	visibleLow summary // send of the write → send of the poll before it (lower bound)
	resolution summary // span of the two polls around the change
	throughput float64 // writes per second, --concurrency clients
	loaded     summary // latency of those writes
	errors     int     // non-200 answers in the throughput run
}

// machine is the state of the machine around the run.
type machine struct {
	cpus        int
	model       string
	loadBefore  string
	loadAfter   string
	goVersion   string
	start, stop time.Time
}

func run(o options) ([]result, error) {
	if o.nodes == 0 {
		o.nodes = 3
	}
	var out []result
	for _, mode := range o.modes {
		r, err := measureMode(o, mode)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func measureMode(o options, mode string) (result, error) {
	c, err := startCluster(o.tether, mode, o.nodes, o.lease)
	if err != nil {
		return result{}, err
	}
	defer c.stop()
	r := result{mode: mode}
	if r.write, err = writeLatency(c, o.samples); err != nil {
		return r, fmt.Errorf("write latency: %w", err)
	}
	if r.read, err = readLatency(c, o.samples); err != nil {
		return r, fmt.Errorf("read latency: %w", err)
	}
	if r.visible, r.visibleLow, r.resolution, err = visibility(c, o.samples); err != nil {
		return r, fmt.Errorf("visibility: %w", err)
	}
	if r.throughput, r.loaded, r.errors, err = throughput(c, o.concurrency, o.duration); err != nil {
		return r, fmt.Errorf("throughput: %w", err)
	}
	return r, c.stop()
}

// build compiles the tether binary from the module this program is in.
func build() (string, func(), error) {
	dir, err := os.MkdirTemp("", "tether-bench-replication-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "tether")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tether")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build ./cmd/tether (run from the module root): %v\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// loadavg returns the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuModel returns the model name of the first CPU.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func machineState() machine {
	return machine{cpus: runtime.NumCPU(), model: cpuModel(), loadBefore: loadavg(), goVersion: runtime.Version(), start: time.Now()}
}
