package balancer

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

func cfg(route, raw string, weight int, state State) MemberConfig {
	u, _ := url.Parse(raw)
	return MemberConfig{URL: u, Route: route, Weight: weight, State: state}
}

func TestEligibility(t *testing.T) {
	tests := []struct {
		state              State
		healthy            bool
		sticky, new, spare bool // takes sticky, new (active tier), new (standby tier)
	}{
		{Active, true, true, true, false},
		{Active, false, false, false, false},
		{Draining, true, true, false, false},
		{Draining, false, false, false, false},
		{Stopped, true, false, false, false},
		{Standby, true, true, false, true},
		{Standby, false, false, false, false},
	}
	for _, tt := range tests {
		m := newMember(cfg("n1", "http://h:1", 1, tt.state), &Pool{now: time.Now})
		m.SetHealthy(tt.healthy)
		if m.takesSticky() != tt.sticky || m.takesNew(Active) != tt.new || m.takesNew(Standby) != tt.spare {
			t.Errorf("%v healthy=%v: sticky=%v new=%v standby=%v; want %v %v %v", tt.state, tt.healthy,
				m.takesSticky(), m.takesNew(Active), m.takesNew(Standby), tt.sticky, tt.new, tt.spare)
		}
	}
}

func TestPoolChanges(t *testing.T) {
	p, err := newPool([]MemberConfig{cfg("n1", "http://h:1", 1, Active), cfg("n2", "http://h:2", 2, Active)}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var added, removed []string
	p.watch = func(a, r []*Member) {
		for _, m := range a {
			added = append(added, m.route)
		}
		for _, m := range r {
			removed = append(removed, m.route)
		}
	}
	if old, err := p.SetState("n1", Draining, ""); err != nil || old != Active || p.Lookup("n1").State() != Draining {
		t.Fatalf("SetState: %v %v", old, err)
	}
	if old, err := p.SetWeight("n2", 7); err != nil || old != 2 || p.Lookup("n2").Weight() != 7 {
		t.Fatalf("SetWeight: %v %v", old, err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown member state", func() error { _, err := p.SetState("n9", Active, ""); return err }(), ErrNoSuchMember},
		{"bad state", func() error { _, err := p.SetState("n1", State(9), ""); return err }(), ErrInvalid},
		{"weight zero", func() error { _, err := p.SetWeight("n1", 0); return err }(), ErrInvalid},
		{"weight too big", func() error { _, err := p.SetWeight("n1", MaxWeight+1); return err }(), ErrInvalid},
		{"duplicate add", func() error { _, err := p.Add(cfg("n1", "http://h:9", 1, Active)); return err }(), ErrExists},
		{"bad route add", func() error { _, err := p.Add(cfg("n 1", "http://h:9", 1, Active)); return err }(), ErrInvalid},
		{"bad url add", func() error { _, err := p.Add(cfg("n3", "ftp://h:9", 1, Active)); return err }(), ErrInvalid},
		{"remove unknown", func() error { _, err := p.Remove("n9"); return err }(), ErrNoSuchMember},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	snap := p.Members()
	if _, err := p.Add(cfg("n3", "http://h:3", 1, Standby)); err != nil {
		t.Fatal(err)
	}
	if len(snap) != 2 || len(p.Members()) != 3 {
		t.Fatal("Add changed an earlier snapshot or did not publish")
	}
	if _, err := p.Remove("n1"); err != nil || p.Lookup("n1") != nil || len(p.Members()) != 2 {
		t.Fatalf("Remove: %v", err)
	}
	if len(added) != 1 || added[0] != "n3" || len(removed) != 1 || removed[0] != "n1" {
		t.Fatalf("watch saw added %v removed %v", added, removed)
	}
}

func TestReplaceKeepsRunTimeState(t *testing.T) {
	prev := []MemberConfig{cfg("n1", "http://h:1", 1, Active), cfg("n2", "http://h:2", 1, Active), cfg("n3", "http://h:3", 1, Active)}
	p, _ := newPool(prev, time.Now)
	n1, n2 := p.Lookup("n1"), p.Lookup("n2")
	n1.requests.Add(42)
	p.SetState("n1", Draining, "") // an operator's change
	p.SetState("n2", Draining, "")

	next := []MemberConfig{
		cfg("n1", "http://h:1", 1, Active),  // untouched by the file: the drain stays
		cfg("n2", "http://h:2", 1, Stopped), // changed in the file: the file wins
		cfg("n3", "http://h:33", 1, Active), // new URL: a new member
		cfg("n4", "http://h:4", 5, Active),  // new
	}
	if err := p.Replace(prev, next); err != nil {
		t.Fatal(err)
	}
	if p.Lookup("n1") != n1 || n1.State() != Draining || n1.requests.Load() != 42 {
		t.Errorf("n1: kept=%v state=%v requests=%d", p.Lookup("n1") == n1, n1.State(), n1.requests.Load())
	}
	if p.Lookup("n2") != n2 || n2.State() != Stopped {
		t.Errorf("n2 state %v, want stopped from the file", n2.State())
	}
	if p.Lookup("n3").URL().String() != "http://h:33" || p.Lookup("n4").Weight() != 5 {
		t.Error("n3/n4 not replaced/added")
	}
	if err := p.Replace(next, []MemberConfig{cfg("a", "http://h:1", 1, Active), cfg("a", "http://h:2", 1, Active)}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate routes: %v", err)
	}
	if len(p.Members()) != 4 {
		t.Error("a failed Replace changed the pool")
	}
}

// A failed Update changes nothing: not the members before the bad one, not
// the options; a Plan that is discarded neither.
func TestFailedUpdateChangesNothing(t *testing.T) {
	prev := []MemberConfig{cfg("n1", "http://h:1", 1, Active), cfg("n2", "http://h:2", 1, Active)}
	b, err := New(Options{Name: "b", MaxAttempts: 2}, prev)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	n1, n2 := b.Pool().Lookup("n1"), b.Pool().Lookup("n2")
	opts := b.Options()
	for _, next := range [][]MemberConfig{
		{cfg("n1", "http://h:1", 9, Draining), cfg("n2", "http://h:2", 1, Stopped), cfg("n 3", "http://h:3", 1, Active)},
		{cfg("n1", "http://h:1", 9, Draining), cfg("n3", "http://h:3", 1, Active), cfg("n3", "http://h:4", 1, Active)},
	} {
		if err := b.Update(Options{Name: "b", MaxAttempts: 5}, prev, next); err == nil {
			t.Fatalf("Update accepted %v", next)
		}
		ms := b.Pool().Members()
		if len(ms) != 2 || ms[0] != n1 || ms[1] != n2 || n1.State() != Active || n1.Weight() != 1 || n2.State() != Active {
			t.Errorf("a failed Update changed the members: n1 %v/%d, n2 %v, %d members", n1.State(), n1.Weight(), n2.State(), len(ms))
		}
		if b.Options().MaxAttempts != opts.MaxAttempts {
			t.Errorf("a failed Update changed the options: max attempts %d", b.Options().MaxAttempts)
		}
	}
	c, err := b.Plan(Options{Name: "b", MaxAttempts: 5}, prev, []MemberConfig{cfg("n1", "http://h:1", 9, Draining)})
	if err != nil {
		t.Fatal(err)
	}
	if b.Options().MaxAttempts != opts.MaxAttempts || len(b.Pool().Members()) != 2 || n1.Weight() != 1 {
		t.Error("Plan changed the balancer before Commit")
	}
	c.Discard()
	c, _ = b.Plan(Options{Name: "b", MaxAttempts: 5}, prev, []MemberConfig{cfg("n1", "http://h:1", 9, Draining)})
	c.Commit()
	if b.Options().MaxAttempts != 5 || len(b.Pool().Members()) != 1 || n1.Weight() != 9 || n1.State() != Draining {
		t.Errorf("Commit: max attempts %d, %d members, n1 %v/%d", b.Options().MaxAttempts, len(b.Pool().Members()), n1.State(), n1.Weight())
	}
}

// A prepared Balancer that is never started closes without waiting.
func TestPrepareClose(t *testing.T) {
	b, err := Prepare(Options{Name: "b"}, []MemberConfig{cfg("n1", "http://h:1", 1, Active)})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Start() // after Close: nothing starts
	b.Close()
}
