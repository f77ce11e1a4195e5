package balancer

import (
	"testing"
	"time"
)

// TestSlowStart: a member that comes back gets a share of new sessions
// that grows with the time since, up to its weight's, in every way it can
// come back; sticky traffic is not held back.
func TestSlowStart(t *testing.T) {
	for _, back := range []struct {
		name       string
		away, home func(*Balancer)
	}{
		{"health", func(b *Balancer) { b.Pool().Lookup("n2").SetHealthy(false) }, func(b *Balancer) { b.Pool().Lookup("n2").SetHealthy(true) }},
		{"stopped", func(b *Balancer) { b.Pool().SetState("n2", Stopped, "") }, func(b *Balancer) { b.Pool().SetState("n2", Active, "") }},
		{"added", func(b *Balancer) { b.Pool().Remove("n2") }, func(b *Balancer) { b.Pool().Add(cfg("n2", "http://127.0.0.1:2", 1, Active)) }},
	} {
		for _, method := range []Method{ByRequests, ByBusyness, P2C} {
			t.Run(back.name+"/"+string(method), func(t *testing.T) {
				clk := newClock()
				opts := fastOptions()
				opts.Method, opts.Now, opts.SlowStart = method, clk.Now, 100*time.Second
				bal, err := New(opts, []MemberConfig{cfg("n1", "http://127.0.0.1:1", 1, Active), cfg("n2", "http://127.0.0.1:2", 1, Active)})
				if err != nil {
					t.Fatal(err)
				}
				defer bal.Close()
				share := func() float64 { // of 1000 new sessions, n2's
					n := 0
					a := new(attempt)
					for i := 0; i < 1000; i++ {
						if routeOnce(bal, a, routingRequest("")).route == "n2" {
							n++
						}
					}
					return float64(n) / 1000
				}
				if s := share(); s < 0.4 || s > 0.6 {
					t.Fatalf("at start, no ramp: n2 got %.2f of new sessions", s)
				}
				back.away(bal)
				back.home(bal)
				if st := statsOf(bal, "n2").SlowStart; st == nil || st.Share != 0 || !st.Until.Equal(clk.Now().Add(100*time.Second)) {
					t.Fatalf("slow start %+v", st)
				}
				s0 := share()
				// After 20s: weight 0.2 against 1 (byrequests: 1/6 of the
				// sessions), or a candidate one time in five (the others: idle
				// members tie, so about 1/10).
				clk.Add(20 * time.Second)
				s20 := share()
				clk.Add(80 * time.Second)
				s100 := share()
				if s0 > 0.02 || s20 < 0.05 || s20 > 0.25 || s100 < 0.4 || s100 > 0.6 {
					t.Fatalf("n2's share of new sessions: %.3f at once, %.3f after 20s, %.3f after 100s", s0, s20, s100)
				}
				if statsOf(bal, "n2").SlowStart != nil {
					t.Fatal("still ramping after the slow start")
				}
				a := new(attempt)
				back.away(bal)
				back.home(bal)
				if m := routeOnce(bal, a, routingRequest("JSESSIONID=X.n2")); m.route != "n2" {
					t.Fatalf("a sticky request of a ramping member went to %s", m.route)
				}
			})
		}
	}
}

func TestNoSlowStartFromDraining(t *testing.T) {
	opts := fastOptions()
	opts.SlowStart = time.Minute
	bal, err := New(opts, []MemberConfig{cfg("n1", "http://127.0.0.1:1", 1, Active), cfg("n2", "http://127.0.0.1:2", 1, Draining)})
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	bal.Pool().SetState("n2", Active, "")
	if st := statsOf(bal, "n2").SlowStart; st != nil {
		t.Fatalf("a draining member made active again ramps: %+v (it kept serving its sessions)", st)
	}
}
