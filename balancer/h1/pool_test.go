package h1

import (
	"errors"
	"io"
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

// TestFlushAndWait: a request sent with FlushAndWait on a fresh
// connection wakes for its response, whether it comes before or after the
// wait begins; when the server has closed the
// connection, the read that follows fails at once (the reset that answers
// the request wakes the wait), not at the deadline; and with FreshFor
// negative the request is sent as usual.
func TestFlushAndWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := func(p *ConnPool) (*Conn, net.Conn) {
		t.Helper()
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := p.NewConn(nc)
		t.Cleanup(func() { c.Close(); server.Close() })
		return c, server
	}
	ask := func(c *Conn) error {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		c.W.WriteString("ping\n")
		if err := c.FlushAndWait(); err != nil {
			t.Fatalf("FlushAndWait: %v", err)
		}
		line, err := c.R.ReadString('\n')
		if err == nil && line != "pong\n" {
			t.Fatalf("read %q", line)
		}
		return err
	}
	answer := func(server net.Conn) {
		b := make([]byte, 5)
		if _, err := io.ReadFull(server, b); err == nil && string(b) == "ping\n" {
			io.WriteString(server, "pong\n")
		}
	}
	for _, tc := range []struct {
		name     string
		freshFor time.Duration
		wantWait bool
	}{
		{"fresh", 0, true},
		{"never", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p ConnPool
			p.SetOptions(ConnPoolOptions{FreshFor: tc.freshFor})
			c, server := dial(&p)
			if c.fresh != tc.wantWait {
				t.Fatalf("fresh = %v, want %v", c.fresh, tc.wantWait)
			}
			for i := range 100 { // the answer races the wait's start: both orders come up
				go answer(server)
				if err := ask(c); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			server.Close()
			err := ask(c)
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("on a connection the server closed: %v, want its end at once", err)
			}
		})
	}
}
