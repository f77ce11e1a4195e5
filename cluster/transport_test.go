package cluster

import (
	"net"
	"testing"
)

// TestListenBoth: one port for TCP and UDP; a fixed port taken for UDP is
// an error, not another port.
func TestListenBoth(t *testing.T) {
	tl, ul, err := listenBoth(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := tl.Addr().(*net.TCPAddr).Port
	if up := ul.LocalAddr().(*net.UDPAddr).Port; up != port {
		t.Errorf("TCP port %d, UDP port %d", port, up)
	}
	tl.Close() // the TCP port is free again, the UDP one is not
	if _, _, err := listenBoth(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err == nil {
		t.Error("a fixed port taken for UDP was accepted")
	}
	ul.Close()
}
