package cluster

import (
	"testing"
	"time"
)

func TestLeases(t *testing.T) {
	owner := ballot{n: 3, node: "n1"}
	live := func() *entry {
		return &entry{rec: &record{bal: owner, promised: owner}, promised: owner, mine: true}
	}
	for _, tt := range []struct {
		name     string
		lease    time.Duration
		age      time.Duration // how long ago the node started
		entry    func() *entry
		claimant string
		wantLeft bool // a claimant must wait
	}{
		{"a grant to the owner delays another claimant", time.Minute, time.Hour, func() *entry {
			e := live()
			(&leases{d: time.Minute, born: time.Now().Add(-time.Hour)}).grant(e)
			return e
		}, "n2", true},
		{"the holder itself does not wait for its own lease", time.Minute, time.Hour, func() *entry {
			e := live()
			(&leases{d: time.Minute, born: time.Now().Add(-time.Hour)}).grant(e)
			return e
		}, "n1", false},
		{"a fenced ballot is granted nothing", time.Minute, time.Hour, func() *entry {
			e := live()
			e.promised = ballot{n: 4, node: "n2"}
			(&leases{d: time.Minute, born: time.Now().Add(-time.Hour)}).grant(e)
			return e
		}, "n3", false},
		{"a node that just started makes every claimant wait", time.Minute, 0, live, "n1", true},
		{"no grant, long started: no wait", time.Minute, time.Hour, live, "n2", false},
		{"leases off", 0, 0, live, "n2", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &leases{d: tt.lease, born: time.Now().Add(-tt.age)}
			e := tt.entry()
			if got := l.left(e, tt.claimant) > 0; got != tt.wantLeft {
				t.Fatalf("left = %v, want a wait: %v", l.left(e, tt.claimant), tt.wantLeft)
			}
			if left := l.left(e, tt.claimant); left > tt.lease {
				t.Fatalf("left %v, more than the lease %v", left, tt.lease)
			}
		})
	}
}

func TestLeaseHeld(t *testing.T) {
	l := &leases{d: time.Minute, born: time.Now()}
	owner := ballot{n: 3, node: "n1"}
	e := &entry{rec: &record{bal: owner, promised: owner}, promised: owner, mine: true}
	if l.held(e, "n1") {
		t.Fatal("held before any acknowledgement")
	}
	l.hold(e, l.now())
	if !l.held(e, "n1") {
		t.Fatal("not held after a majority acknowledged")
	}
	if want := l.now() + int64(leaseTrust(time.Minute)); e.heldUntil > want {
		t.Fatalf("trusted until %d, past %d", e.heldUntil, want)
	}
	if l.held(e, "n2") {
		t.Fatal("held by a node that does not own the session")
	}
	e.raise(ballot{n: 4, node: "n2"}) // promised a takeover
	if l.held(e, "n1") {
		t.Fatal("held after promising a takeover")
	}
	e.promised, e.rec.promised = owner, owner
	e.heldUntil = l.now() - 1 // the trust ran out
	if l.held(e, "n1") {
		t.Fatal("held after the trust ran out")
	}
	off := &leases{}
	off.hold(e, off.now())
	if off.held(e, "n1") {
		t.Fatal("held with leases off")
	}
}
