// Command burst is a load generator that keeps every request's start and
// latency, for what wrk's summary cannot show: when a run's slow requests
// came, and what a burst of new clients costs.
//
// In bursts mode (--bursts N), --conns clients connect at once, each sends
// one request with Connection: close and reads the response, and the
// burst ends when all are done; N bursts, --gap apart. Latency counts from
// the client's dial (its connect included) to the response's end.
//
//	burst --addr 127.0.0.1:8080 --conns 1000 --bursts 10 [--pid 1234]
//
// In keep-alive mode (--duration), --conns connections (dialed before the
// clock starts, or within it with --dial-within, as wrk does) each send a
// request after the previous response, for that long. Besides the
// percentiles it says how the slow requests (at or above the p99) spread in
// time, in 10 ms windows of their start (and how many began in the first
// second), and over how many connections; the
// p99 without each connection's first request; and the pauses: spans of
// 10 ms or more in which no response completed (after the first 100 ms).
//
//	burst --addr 127.0.0.1:8080 --conns 1000 --duration 6s
//
// Output, for scripts: a RESULT line in the form of bench/lib.sh's wrk
// script (requests, duration_us: the bursts' time without the gaps, or
// the run's; p50_us, p99_us; errors end the run instead), then a BURST line
// (bursts mode: the median burst time, and with --pid the process's CPU
// time per burst, summed over its threads from /proc/PID/task/*/schedstat)
// or a TAIL line (keep-alive mode).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "", "proxy address host:port (required)")
	conns := flag.Int("conns", 1000, "clients")
	bursts := flag.Int("bursts", 0, "bursts of new connections, one request each (0: keep-alive mode)")
	gap := flag.Duration("gap", 300*time.Millisecond, "pause between bursts")
	duration := flag.Duration("duration", 6*time.Second, "keep-alive mode: how long")
	dialWithin := flag.Bool("dial-within", false, "keep-alive mode: dial within the measured time")
	cookie := flag.String("cookie", "", "Cookie header of each request, if any")
	pid := flag.Int("pid", 0, "bursts mode: the proxy's process id, for its CPU time per burst")
	flag.Parse()
	if *addr == "" || *conns <= 0 || *bursts < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if *bursts > 0 {
		err = runBursts(*addr, *cookie, *conns, *bursts, *gap, *pid)
	} else {
		err = runKeepAlive(*addr, *cookie, *conns, *duration, *dialWithin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "burst:", err)
		os.Exit(1)
	}
}

// request is one GET of /, with the cookie if any.
func request(addr, cookie string, closeConn bool) []byte {
	r := "GET / HTTP/1.1\r\nHost: " + addr + "\r\n"
	if cookie != "" {
		r += "Cookie: " + cookie + "\r\n"
	}
	if closeConn {
		r += "Connection: close\r\n"
	}
	return []byte(r + "\r\n")
}

// timeout bounds each exchange, as wrk's --timeout in bench/lib.sh.
const timeout = 10 * time.Second

// exchange sends req and reads the response, which must be a 2xx with a
// Content-Length, within timeout.
func exchange(c net.Conn, br *bufio.Reader, req []byte) error {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(req); err != nil {
		return err
	}
	status, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(status) < 12 || status[9] != '2' {
		return fmt.Errorf("response %q", bytes.TrimSpace(status))
	}
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "content-length") {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return fmt.Errorf("Content-Length %q", bytes.TrimSpace(v))
			}
		}
	}
	if n < 0 {
		return errors.New("response without Content-Length")
	}
	_, err = br.Discard(n)
	return err
}

func runBursts(addr, cookie string, conns, bursts int, gap time.Duration, pid int) error {
	req := request(addr, cookie, true)
	var lats, times, cpus []time.Duration
	var total time.Duration
	for range bursts {
		cpu0, err := cpuTime(pid)
		if err != nil {
			return err
		}
		lat := make([]time.Duration, conns)
		errs := make(chan error, conns)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range conns {
			wg.Go(func() {
				t := time.Now()
				c, err := net.DialTimeout("tcp", addr, timeout)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				if err := exchange(c, bufio.NewReader(c), req); err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(t)
			})
		}
		wg.Wait()
		took := time.Since(start)
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		cpu1, err := cpuTime(pid)
		if err != nil {
			return err
		}
		lats = append(lats, lat...)
		times = append(times, took)
		cpus = append(cpus, cpu1-cpu0)
		total += took
		time.Sleep(gap)
	}
	slices.Sort(lats)
	slices.Sort(times)
	slices.Sort(cpus)
	fmt.Printf("RESULT requests=%d duration_us=%d bytes=0 p50_us=%d p99_us=%d status=0 connect=0 read=0 write=0 timeout=0\n",
		len(lats), total.Microseconds(), pct(lats, 50).Microseconds(), pct(lats, 99).Microseconds())
	fmt.Printf("BURST conns=%d bursts=%d median_us=%d min_us=%d max_us=%d", conns, bursts,
		pct(times, 50).Microseconds(), times[0].Microseconds(), times[len(times)-1].Microseconds())
	if pid > 0 {
		fmt.Printf(" proxy_cpu_median_us=%d", pct(cpus, 50).Microseconds())
	}
	fmt.Println()
	return nil
}

// cpuTime is the CPU time of process pid so far, summed over its threads
// (0 if pid is 0).
func cpuTime(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, nil
	}
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("no threads of process %d: %v", pid, err)
	}
	var sum time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended
		}
		ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", f, err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// pct is the p-th percentile of sorted d.
func pct(d []time.Duration, p float64) time.Duration {
	return d[int(p/100*float64(len(d)-1))]
}

// record is one request of keep-alive mode.
type record struct {
	start time.Duration // since the run began
	lat   time.Duration
	first bool // the connection's first request
	conn  int  // which connection
}

func runKeepAlive(addr, cookie string, conns int, d time.Duration, dialWithin bool) error {
	req := request(addr, cookie, false)
	cs := make([]net.Conn, conns)
	dial := func(i int) error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		cs[i] = c
		return err
	}
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	if !dialWithin {
		for i := range cs {
			if err := dial(i); err != nil {
				return err
			}
		}
	}
	var mu sync.Mutex
	var all []record
	var first error
	var wg sync.WaitGroup
	begin := make(chan struct{})
	t0 := time.Now().Add(10 * time.Millisecond) // after the goroutines start
	for i := range cs {
		wg.Go(func() {
			<-begin
			var mine []record
			err := func() error {
				if dialWithin {
					if err := dial(i); err != nil {
						return err
					}
				}
				br := bufio.NewReader(cs[i])
				for {
					s := time.Now()
					if s.Sub(t0) >= d {
						return nil
					}
					if err := exchange(cs[i], br, req); err != nil {
						return err
					}
					mine = append(mine, record{start: s.Sub(t0), lat: time.Since(s), first: len(mine) == 0, conn: i})
				}
			}()
			mu.Lock()
			all = append(all, mine...)
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		})
	}
	time.Sleep(time.Until(t0))
	close(begin)
	wg.Wait()
	took := time.Since(t0)
	if first != nil {
		return first
	}
	if len(all) == 0 {
		return errors.New("no request completed")
	}
	t := analyze(all)
	fmt.Printf("RESULT requests=%d duration_us=%d bytes=0 p50_us=%d p99_us=%d status=0 connect=0 read=0 write=0 timeout=0\n",
		len(all), took.Microseconds(), t.p50.Microseconds(), t.p99.Microseconds())
	fmt.Printf("TAIL p999_us=%d max_us=%d slow=%d windows=%d half_in=%d ninety_in=%d p99_without_first_us=%d slow_conns=%d slow_first_second=%d pauses=%d longest_pause_us=%d\n",
		t.p999.Microseconds(), t.max.Microseconds(), t.slow, t.windows, t.halfIn, t.ninetyIn, t.p99WithoutFirst.Microseconds(),
		t.slowConns, t.slowEarly, t.pauses, t.longestPause.Microseconds())
	return nil
}

// tail is what analyze finds in a keep-alive run.
type tail struct {
	p50, p99, p999, max time.Duration
	slow                int // requests at or above the p99
	windows             int // 10 ms windows of start time holding a slow request
	halfIn, ninetyIn    int // fewest windows that hold half, 90% of the slow requests
	p99WithoutFirst     time.Duration
	slowConns           int           // connections with a slow request
	slowEarly           int           // slow requests begun in the run's first second
	pauses              int           // spans of at least pause without a response completed, after settle
	longestPause        time.Duration // the longest such span
}

// A pause is a span of at least pause in which no response completed,
// counted from settle into the run (the first requests come together).
const (
	pause  = 10 * time.Millisecond
	settle = 100 * time.Millisecond
)

// window is the span of start time analyze groups slow requests by.
const window = 10 * time.Millisecond

func analyze(rs []record) tail {
	lats := make([]time.Duration, 0, len(rs))
	var later []time.Duration
	for _, r := range rs {
		lats = append(lats, r.lat)
		if !r.first {
			later = append(later, r.lat)
		}
	}
	slices.Sort(lats)
	slices.Sort(later)
	t := tail{p50: pct(lats, 50), p99: pct(lats, 99), p999: pct(lats, 99.9), max: lats[len(lats)-1]}
	if len(later) > 0 {
		t.p99WithoutFirst = pct(later, 99)
	}
	per := map[time.Duration]int{}
	conns := map[int]bool{}
	ends := make([]time.Duration, 0, len(rs))
	for _, r := range rs {
		if r.lat >= t.p99 {
			t.slow++
			per[r.start/window]++
			conns[r.conn] = true
			if r.start < time.Second {
				t.slowEarly++
			}
		}
		if end := r.start + r.lat; end >= settle {
			ends = append(ends, end)
		}
	}
	t.slowConns = len(conns)
	slices.Sort(ends)
	for i := 1; i < len(ends); i++ {
		if d := ends[i] - ends[i-1]; d >= pause {
			t.pauses++
			t.longestPause = max(t.longestPause, d)
		}
	}
	counts := make([]int, 0, len(per))
	for _, n := range per {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	slices.Reverse(counts)
	t.windows = len(counts)
	acc := 0
	for i, n := range counts {
		acc += n
		if t.halfIn == 0 && 2*acc >= t.slow {
			t.halfIn = i + 1
		}
		if 10*acc >= 9*t.slow {
			t.ninetyIn = i + 1
			break
		}
	}
	return t
}
