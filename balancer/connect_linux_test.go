package balancer

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// dialer is the member dialer as dialMember makes it.
func dialer(control bool) *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if control {
		d.ControlContext = connectNow
	}
	return d
}

// TestConnectNow: with connectNow, a dial reaches the address it was
// given (the connection accepted there is the one dialed), over IPv4,
// IPv6 and a host name, and a refused connection is the same dial error
// as without it.
func TestConnectNow(t *testing.T) {
	for _, tt := range []struct{ name, network, listen string }{
		{"IPv4", "tcp4", "127.0.0.1:0"},
		{"IPv6", "tcp6", "[::1]:0"},
		{"host name", "tcp4", "127.0.0.1:0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen(tt.network, tt.listen)
			if err != nil {
				t.Skipf("no %s loopback here: %v", tt.network, err)
			}
			defer ln.Close()
			// Another listener, so that a connect to the wrong port
			// would still succeed.
			other, err := net.Listen(tt.network, tt.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			addr := ln.Addr().String()
			if tt.name == "host name" {
				_, port, _ := net.SplitHostPort(addr)
				addr = net.JoinHostPort("localhost", port)
			}
			c, err := dialer(true).Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.RemoteAddr().String() != c.LocalAddr().String() || c.RemoteAddr().String() != ln.Addr().String() {
				t.Fatalf("dialed %s from %s; %s accepted a connection from %s", c.RemoteAddr(), c.LocalAddr(), ln.Addr(), s.RemoteAddr())
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 4)
			if _, err := io.ReadFull(s, b); err != nil || string(b) != "ping" {
				t.Fatalf("read %q, %v", b, err)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		for _, control := range []bool{false, true} {
			_, err := dialer(control).Dial("tcp", addr)
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("connectNow %v: %v, want a dial error with ECONNREFUSED", control, err)
			}
		}
	})
}

// BenchmarkDialBusyP: dialing a loopback member while the proxy's one P
// is never idle (a goroutine yields in a loop, as under load), so that
// the runtime polls the network only from sysmon, every 10 ms. Without
// connectNow each dial waits for such a poll; with it the dial is done
// when net's connect returns.
//
//	go test -run XXX -bench BenchmarkDialBusyP ./balancer
func BenchmarkDialBusyP(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, control := range []bool{false, true} {
		name := "net"
		if control {
			name = "connectNow"
		}
		b.Run(name, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			var stop atomic.Bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				for !stop.Load() {
					runtime.Gosched()
				}
			}()
			d := dialer(control)
			for b.Loop() {
				c, err := d.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			stop.Store(true)
			<-done
		})
	}
}
