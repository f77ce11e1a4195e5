//go:build linux

package h1

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkIdleConnHeap reports what an idle keep-alive connection keeps
// in the server's memory once parked, measured in process: live heap
// (after a GC) and goroutine stacks, per connection, over 2,000
// connections that each sent one request. The clients run in another
// process (this test binary again, TestIdleClients), so the figures are
// the server's alone; the TLS rows minus the plaintext ones are what
// crypto/tls keeps per connection. alloc-B/conn is all the server
// allocated meanwhile, garbage included: what a burst of new connections
// leaves in the heap until the next collection.
func BenchmarkIdleConnHeap(b *testing.B) {
	const n = 2000
	for _, overTLS := range []bool{false, true} {
		b.Run(fmt.Sprintf("tls=%v", overTLS), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				f := idleHeap(b, n, overTLS)
				b.ReportMetric(f.heap, "heap-B/conn")
				b.ReportMetric(f.stack, "stack-B/conn")
				b.ReportMetric(f.alloc, "alloc-B/conn")
				b.StartTimer()
			}
		})
	}
}

// idleFigures are idleHeap's, per connection.
type idleFigures struct{ heap, stack, alloc float64 }

func idleHeap(b *testing.B, n int, overTLS bool) idleFigures {
	o := ServerOptions{ParkAfter: 10 * time.Millisecond}
	var srv *Server
	var addr string
	if overTLS {
		srv, addr, _ = tlsServerTB(b, echoPath, o)
	} else {
		srv = NewServer(echoPath, o)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ln)
		addr = ln.Addr().String()
	}
	defer srv.Close()
	before := liveHeap()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClients$")
	cmd.Env = append(os.Environ(), "IDLE_CLIENTS_ADDR="+addr, "IDLE_CLIENTS_N="+strconv.Itoa(n), "IDLE_CLIENTS_TLS="+strconv.FormatBool(overTLS))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	for deadline := time.Now().Add(60 * time.Second); parkedCount(srv) < n; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d parked", parkedCount(srv), n)
		}
		time.Sleep(10 * time.Millisecond) // a benchmark's wait, not a test's
	}
	after := liveHeap()
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) }
	return idleFigures{per(after.heap, before.heap), per(after.stack, before.stack), per(after.total, before.total)}
}

// TestIdleClients is BenchmarkIdleConnHeap's client process: it opens
// IDLE_CLIENTS_N connections to IDLE_CLIENTS_ADDR, each with one request,
// and holds them until its input ends. Without the variables it does
// nothing.
func TestIdleClients(t *testing.T) {
	addr := os.Getenv("IDLE_CLIENTS_ADDR")
	if addr == "" {
		t.Skip("BenchmarkIdleConnHeap's client process")
	}
	n, _ := strconv.Atoi(os.Getenv("IDLE_CLIENTS_N"))
	overTLS := os.Getenv("IDLE_CLIENTS_TLS") == "true"
	var conns []net.Conn
	for range n {
		var c net.Conn
		var err error
		if overTLS {
			c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the benchmark's own certificate
		} else {
			c, err = net.Dial("tcp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

type heapFigures struct{ heap, stack, total uint64 }

func liveHeap() heapFigures {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return heapFigures{ms.HeapAlloc, ms.StackInuse, ms.TotalAlloc}
}
