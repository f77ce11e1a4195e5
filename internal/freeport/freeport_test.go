package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPickIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		addr, err := Pick("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if high := ephemeralLow(); high > low && (port < low || port >= high) {
			t.Fatalf("port %d, want one in [%d, %d)", port, low, high)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the picked %s cannot be listened on: %v", addr, err)
		}
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("the picked %s is not free for UDP: %v", addr, err)
		}
		u.Close()
	}
}

// TestPickNeverTheSamePortTwice: ports handed out are not yet bound, so a
// second Pick would find them free; it must not return them again.
func TestPickNeverTheSamePortTwice(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		addr, err := Pick("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
	}
}
