//go:build linux

package app

import (
	"net"
	"syscall"
	"testing"

	"github.com/tetherlb/tether/config"
)

// TestClientConnectionsGetNoTCPKeepAlive: a client connection accepted on
// a listener of bind has SO_KEEPALIVE off (Go's default turns it on, with
// a probe every 15 s).
func TestClientConnectionsGetNoTCPKeepAlive(t *testing.T) {
	var s Server
	l := &listener{addr: "127.0.0.1:0"}
	if err := s.bind(l, &config.Config{}); err != nil {
		t.Fatal(err)
	}
	defer l.unbind()
	c, err := net.Dial("tcp", l.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := l.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	on := -1
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		on, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if on != 0 {
		t.Fatalf("SO_KEEPALIVE is %d on an accepted client connection, want 0", on)
	}
}
