// Command idleconns measures what idle keep-alive client connections cost
// a proxy in resident memory: it reads the proxy's memory, opens --conns
// connections that each send one request and read the whole response, then
// leaves them all open and idle for --settle, and reads the memory again.
// Last it sends a second request on every connection to prove the proxy
// kept them. With --tls the connections are TLS (HTTP/1.1, no ALPN, the
// proxy's certificate not verified: a benchmark's own).
//
//	idleconns --addr 127.0.0.1:8080 --pid 1234 --conns 10000 [--tls] [--settle 3s]
//
// Memory is the sum over the process and all its descendants (nginx and
// httpd work in child processes) of VmRSS and of Pss, from
// /proc/PID/status and /proc/PID/smaps_rollup. Pss shares the pages that
// processes have in common between them, so it does not count them twice.
//
// The output is one line of key=value pairs, for scripts:
//
//	IDLE conns=10000 alive=10000 rss_before_kib=… rss_after_kib=… pss_before_kib=… pss_after_kib=…
package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/bench/procmem"
)

func main() {
	addr := flag.String("addr", "", "proxy address host:port (required)")
	pid := flag.Int("pid", 0, "process id of the proxy (required)")
	conns := flag.Int("conns", 10000, "connections to open")
	parallel := flag.Int("parallel", 64, "connections opened at the same time")
	cookie := flag.String("cookie", "", "Cookie header of each request, if any")
	path := flag.String("path", "/", "request path")
	overTLS := flag.Bool("tls", false, "connect with TLS")
	settle := flag.Duration("settle", 3*time.Second, "how long the connections stay idle before the memory is read")
	flag.Parse()
	if *addr == "" || *pid <= 0 || *conns <= 0 || *parallel <= 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	dial := dialTCP
	if *overTLS {
		dial = dialTLS
	}
	if err := run(*addr, *pid, *conns, *parallel, request(*addr, *path, *cookie), dial, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
}

func request(addr, path, cookie string) []byte {
	r := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: tether-bench-idleconns\r\n"
	if cookie != "" {
		r += "Cookie: " + cookie + "\r\n"
	}
	return []byte(r + "\r\n")
}

// dialer opens the connections without TCP keep-alive probes, which Go's
// dialer sends by default every 15 s: the proxy under test is what should
// decide how long an idle connection lives, and a client's probes would
// add timers and traffic to the measurement.
var dialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}

// dialTCP and dialTLS open a connection to addr.
func dialTCP(addr string) (net.Conn, error) { return dialer.Dial("tcp", addr) }

func dialTLS(addr string) (net.Conn, error) {
	return tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the benchmark's own certificate
}

func run(addr string, pid, n, parallel int, req []byte, dial func(string) (net.Conn, error), settle time.Duration) error {
	before, err := procmem.Of(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	cs, err := open(addr, n, parallel, req, dial)
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	opened := time.Since(start)
	time.Sleep(settle) // idle for that long: a benchmark, not a test
	after, err := procmem.Of(pid)
	if err != nil {
		return err
	}
	alive := recheck(cs, parallel, req)
	fmt.Printf("IDLE conns=%d alive=%d open_seconds=%.1f rss_before_kib=%d rss_after_kib=%d pss_before_kib=%d pss_after_kib=%d\n",
		n, alive, opened.Seconds(), before.RSS, after.RSS, before.PSS, after.PSS)
	if alive != n {
		return fmt.Errorf("only %d of %d connections were still open after the measurement", alive, n)
	}
	return nil
}

// conn is a client connection with its reader.
type conn struct {
	net.Conn
	br *bufio.Reader
}

// roundTrip sends req and reads the whole response.
func (c *conn) roundTrip(req []byte) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("status %s", resp.Status)
	}
	if err == nil && resp.Close {
		err = errors.New("the proxy closed the connection after one request")
	}
	return err
}

// open opens n connections, parallel at a time, each after one request.
func open(addr string, n, parallel int, req []byte, dial func(string) (net.Conn, error)) ([]*conn, error) {
	cs := make([]*conn, n)
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dial(addr)
				if err == nil {
					cs[i] = &conn{Conn: c, br: bufio.NewReaderSize(c, 4096)}
					err = cs[i].roundTrip(req)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return cs, first
}

// recheck sends one more request on every connection and counts those
// that answer; the first few failures are written to stderr.
func recheck(cs []*conn, parallel int, req []byte) int {
	var next, ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(cs) {
					return
				}
				err := cs[i].roundTrip(req)
				if err == nil {
					ok.Add(1)
				} else if failed.Add(1) <= 5 {
					fmt.Fprintf(os.Stderr, "idleconns: connection %d (%s): %v\n", i, cs[i].LocalAddr(), err)
				}
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}
