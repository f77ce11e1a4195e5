// Package freeport finds a TCP port that is free on a host, for a process
// started next that must be told its address before it listens (the
// demo's children, process tests).
//
// A port the kernel hands out for "host:0" comes from the ephemeral range
// (Linux: 32768-60999), the same range it takes the source ports of
// outgoing connections from: between the check and the child's bind, any
// connection made on the machine may take it, and the child then fails
// with "address already in use". Pick chooses below that range instead,
// where the kernel assigns nothing by itself, so only another program
// choosing the same port explicitly can take it.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Bounds of the ports Pick chooses from when the ephemeral range starts
// above them: [low, the ephemeral range's start).
const (
	low            = 20000
	ephemeralStart = 32768 // Linux's default, when /proc does not say
)

// handedOut holds the ports Pick returned in this process. A port handed
// out is free until its user binds it, so without this record two Picks
// in a row (the demo's nodes, a test's processes) could return the same
// one. It is the package's one piece of state, as process-wide as the
// kernel's port table it stands in for.
var handedOut sync.Map // port number → struct{}

// Pick returns host:port with a port that is free on host now for TCP
// and UDP (a cluster address uses both), chosen at random below the
// ephemeral range and never returned before in this process; if none is
// found there, one the kernel chooses.
func Pick(host string) (string, error) {
	high := ephemeralLow()
	for range 50 {
		if high <= low {
			break
		}
		port := low + rand.IntN(high-low)
		if _, taken := handedOut.Load(port); taken {
			continue
		}
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		if free(addr) {
			if _, taken := handedOut.LoadOrStore(port, struct{}{}); !taken {
				return addr, nil
			}
		}
	}
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		l.Close()
		if free(addr) {
			return addr, nil
		}
	}
	return "", errors.New("freeport: no port free for both TCP and UDP on " + host)
}

// free reports whether addr can be bound for TCP and UDP.
func free(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// ephemeralLow returns the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return ephemeralStart
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return ephemeralStart
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return ephemeralStart
	}
	return n
}
