// Package netfault cuts and heals the network between processes on one
// host, for tests of network partitions between real processes: each
// process listens (and, for the cluster, dials) on a loopback address of
// its own, and nftables rules drop the packets between two groups of
// those addresses, in one direction or both.
//
// Every Table is an nftables table of its own, named uniquely, whose rules
// match only the addresses the test gives it, and which is deleted when the
// test ends, failed or not. Nothing outside 127.0.0.0/8 is ever matched.
// Making rules needs root (CI runs as root) and the nft command (Debian
// nftables); without them, New skips the test and says why.
package netfault

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Table is one test's nftables table.
type Table struct {
	t    testing.TB
	name string
}

// New creates a table for t, deleted when t ends. It skips t when nftables
// rules cannot be made here.
func New(t testing.TB) *Table {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("netfault: the nft command is missing (Debian package nftables; .ci/run installs it)")
	}
	tb := &Table{t: t, name: fmt.Sprintf("tether_test_%d_%d", os.Getpid(), rand.Uint32())}
	if err := tb.nft(fmt.Sprintf("add table inet %s\nadd chain inet %s out { type filter hook output priority 0; policy accept; }\n",
		tb.name, tb.name)); err != nil {
		t.Skipf("netfault: cannot make nftables rules here (root is needed): %v", err)
	}
	t.Cleanup(func() {
		if err := tb.nft("delete table inet " + tb.name + "\n"); err != nil {
			t.Errorf("netfault: deleting table %s: %v", tb.name, err)
		}
	})
	return tb
}

// Addrs returns n loopback addresses for the processes of one test:
// 127.X.Y.11, .12, … with X and Y drawn at random, so that tests running
// at once do not share addresses.
func Addrs(n int) []string {
	x, y := 1+rand.IntN(250), 1+rand.IntN(250)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.%d.%d.%d", x, y, 11+i)
	}
	return out
}

// Cut drops every packet from an address of from to an address of to (one
// direction: replies from to to from still pass).
func (tb *Table) Cut(from, to []string) {
	tb.t.Helper()
	var script strings.Builder
	for _, f := range from {
		for _, d := range to {
			fmt.Fprintf(&script, "add rule inet %s out ip saddr %s ip daddr %s drop\n", tb.name, loopback(tb.t, f), loopback(tb.t, d))
		}
	}
	if err := tb.nft(script.String()); err != nil {
		tb.t.Fatalf("netfault: cut %v -> %v: %v", from, to, err)
	}
}

// Partition cuts a from b in both directions.
func (tb *Table) Partition(a, b []string) {
	tb.t.Helper()
	tb.Cut(a, b)
	tb.Cut(b, a)
}

// Heal removes every cut of the table.
func (tb *Table) Heal() {
	tb.t.Helper()
	if err := tb.nft(fmt.Sprintf("flush chain inet %s out\n", tb.name)); err != nil {
		tb.t.Fatalf("netfault: heal: %v", err)
	}
}

// loopback returns addr's IP, failing the test unless it is in
// 127.0.0.0/8: no rule ever matches another address.
func loopback(t testing.TB, addr string) string {
	t.Helper()
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is4() || !ip.IsLoopback() {
		t.Fatalf("netfault: %q is not an IPv4 loopback address", addr)
	}
	return ip.String()
}

func (tb *Table) nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
