// Command sessions measures what tracked sessions cost the balancer in
// resident memory: it reads the balancer's memory, sends --sessions
// requests that each carry a different session id
// (JSESSIONID=<32 hex digits>.<route>, routes taken in turn from --routes),
// reads the memory again and, given the manager's address and token, asks
// the manager how many sessions the balancer tracks.
//
//	sessions --addr 127.0.0.1:8080 --pid 1234 --sessions 1000000 \
//	    --manager http://127.0.0.1:8081 --token T
//
// Requests are pipelined in batches over a few keep-alive connections, so
// that a million of them take about a minute. The output is one line of
// key=value pairs, for scripts:
//
//	SESSIONS sessions=1000000 tracked=… untracked=… seconds=… rss_before_kib=… rss_after_kib=… pss_before_kib=… pss_after_kib=…
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/bench/procmem"
)

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "balancer address host:port (required)")
	flag.IntVar(&o.pid, "pid", 0, "process id of the balancer (required)")
	flag.IntVar(&o.sessions, "sessions", 1000000, "distinct session ids to send")
	flag.IntVar(&o.conns, "conns", 16, "connections")
	flag.IntVar(&o.batch, "batch", 32, "requests pipelined per write")
	routes := flag.String("routes", "n1,n2,n3", "routes of the session ids, in turn")
	flag.StringVar(&o.manager, "manager", "", "manager URL, to read the tracked-session count")
	flag.StringVar(&o.token, "token", "", "manager token")
	flag.Parse()
	o.routes = strings.Split(*routes, ",")
	if o.addr == "" || o.pid <= 0 || o.sessions <= 0 || o.conns <= 0 || o.batch <= 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "sessions:", err)
		os.Exit(1)
	}
}

type options struct {
	addr, manager, token string
	pid, sessions, conns int
	batch                int
	routes               []string
}

func run(o options) error {
	before, err := procmem.Of(o.pid)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := send(o); err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	after, err := procmem.Of(o.pid)
	if err != nil {
		return err
	}
	tracked, untracked := int64(-1), uint64(0)
	if o.manager != "" {
		if tracked, untracked, err = count(o.manager, o.token); err != nil {
			return err
		}
	}
	fmt.Printf("SESSIONS sessions=%d tracked=%d untracked=%d seconds=%.1f rss_before_kib=%d rss_after_kib=%d pss_before_kib=%d pss_after_kib=%d\n",
		o.sessions, tracked, untracked, secs, before.RSS, after.RSS, before.PSS, after.PSS)
	return nil
}

// ids makes distinct session ids: a random 64-bit base plus a counter,
// in 32 hex digits, with a route suffix.
type ids struct {
	base   [16]byte
	next   atomic.Uint64
	routes []string
}

func newIDs(routes []string) *ids {
	g := &ids{routes: routes}
	rand.Read(g.base[:])
	return g
}

// cookie returns the i-th session cookie header line.
func (g *ids) cookie(i uint64) string {
	b := g.base
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+i)
	return "Cookie: JSESSIONID=" + hex.EncodeToString(b[:]) + "." + g.routes[i%uint64(len(g.routes))] + "\r\n"
}

// send sends o.sessions requests, each with its own session id.
func send(o options) error {
	g := newIDs(o.routes)
	var wg sync.WaitGroup
	errs := make([]error, o.conns)
	for c := range o.conns {
		wg.Go(func() { errs[c] = sendOn(o, g) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func sendOn(o options, g *ids) error {
	c, err := net.DialTimeout("tcp", o.addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	head := "GET / HTTP/1.1\r\nHost: " + o.addr + "\r\nUser-Agent: tether-bench-sessions\r\n"
	for {
		first := g.next.Add(uint64(o.batch)) - uint64(o.batch)
		if first >= uint64(o.sessions) {
			return nil
		}
		n := min(uint64(o.batch), uint64(o.sessions)-first)
		for i := range n {
			bw.WriteString(head)
			bw.WriteString(g.cookie(first + i))
			bw.WriteString("\r\n")
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for range n {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("status %s", resp.Status)
			}
		}
	}
}

// count asks the manager how many sessions its balancers track.
func count(manager, token string) (tracked int64, untracked uint64, err error) {
	req, err := http.NewRequest("GET", strings.TrimSuffix(manager, "/")+"/api/v1/balancers", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("manager: %s", resp.Status)
	}
	var v struct {
		Balancers []struct {
			Tracked   int64  `json:"tracked_sessions"`
			Untracked uint64 `json:"untracked_sessions"`
		} `json:"balancers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, 0, fmt.Errorf("manager: %w", err)
	}
	for _, b := range v.Balancers {
		tracked += b.Tracked
		untracked += b.Untracked
	}
	return tracked, untracked, nil
}
