package netfault_test

import (
	"net"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/netfault"
)

// TestCutAndHeal: a TCP connect from one address to another fails while
// the way is cut (one direction is enough for a handshake), and works
// again once healed.
func TestCutAndHeal(t *testing.T) {
	tb := netfault.New(t)
	addrs := netfault.Addrs(2)
	l, err := net.Listen("tcp", net.JoinHostPort(addrs[1], "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func() error {
		d := net.Dialer{Timeout: 300 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(addrs[0])}}
		c, err := d.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	tb.Cut(addrs[:1], addrs[1:])
	if err := dial(); err == nil {
		t.Fatal("connected through the cut")
	}
	tb.Heal()
	if err := dial(); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
}
