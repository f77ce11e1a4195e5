package balancer

import (
	"context"
	"net/netip"
	"syscall"
)

// connectNow is the ControlContext of the member dialer: it starts the
// TCP handshake itself, before net does. On loopback, and to a member on
// the same host, the handshake is over by the time connect(2) returns, so
// net's own connect then finds the socket connected (EISCONN) and returns
// it at once. Without this, net waits for the network poller to report
// the socket writable, and under load the goroutine that dials is woken
// only after a whole turn of the run queue: 30 ms and more while a
// thousand clients connect at once and each needs a member connection.
// Elsewhere net's connect finds the handshake under way (EALREADY) and
// waits for it as before; a connect that fails fails again in net's call,
// which reports it as usual. It costs one system call per dial.
func connectNow(_ context.Context, network, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || ap.Addr().Zone() != "" {
		return nil // net connects as usual
	}
	var sa syscall.Sockaddr
	switch network {
	case "tcp4":
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	case "tcp6":
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	default:
		return nil
	}
	c.Control(func(fd uintptr) { syscall.Connect(int(fd), sa) })
	return nil
}
