package h1

import (
	"net"
	"testing"
	"time"
)

// TestAliveWithStaleDeadline: a connection put back with the read
// deadline of its last response still set (and since passed) is alive as
// long as the server keeps it open, and not once the server has closed.
func TestAliveWithStaleDeadline(t *testing.T) {
	if !canPeek {
		t.Skip("Alive reports true without checking on this platform")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("no connection accepted")
	}
	var p ConnPool
	p.SetOptions(ConnPoolOptions{})
	c := p.NewConn(nc)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(-time.Second)) // passed
	if !c.Alive() {
		t.Fatal("an open connection with a passed read deadline is not alive")
	}
	server.Close()
	// The close reaches this side when the peek sees the end of stream:
	// ask until it does (on loopback, at once or nearly).
	for giveUp := time.Now().Add(10 * time.Second); c.Alive(); {
		if time.Now().After(giveUp) {
			t.Fatal("a connection the server closed is still alive")
		}
	}
}
