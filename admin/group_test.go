package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/group"
	"github.com/tetherlb/tether/internal/browsertest"
)

// fakeGroup is a group of one whose records the test writes: what
// ApplyShared does with them is the unit under test (package group has
// its own tests over the network).
type fakeGroup struct {
	mu       sync.Mutex
	records  map[string]group.Record
	set      []group.Record
	sessions map[string]int64
	status   group.Status
	partial  bool // Complete reports false
}

func newFakeGroup() *fakeGroup {
	return &fakeGroup{records: map[string]group.Record{}, sessions: map[string]int64{},
		status: group.Status{Name: "a", Synced: true, Instances: []group.Instance{{Name: "a", Up: true}, {Name: "b", Up: true}}}}
}

func (g *fakeGroup) Name() string { return g.status.Name }

func (g *fakeGroup) Set(key string, value []byte) group.Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := group.Record{Key: key, Value: value, Stamp: group.Stamp{Wall: int64(len(g.set) + 1), Origin: "a"}}
	g.records[key] = r
	g.set = append(g.set, r)
	return r
}

func (g *fakeGroup) Get(key string) (group.Record, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.records[key]
	return r, ok
}

func (g *fakeGroup) Sessions(key string, local group.Tally) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n, ok := g.sessions[key]; ok {
		return n
	}
	return local.Count
}

func (g *fakeGroup) Complete() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.partial
}

func (g *fakeGroup) Status() group.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status
}

// receive stores r as the group's current record of its key (as a merge
// that r won does) and has the manager apply it.
func (g *fakeGroup) receive(m *Manager, r group.Record, won bool) {
	if won {
		g.mu.Lock()
		g.records[r.Key] = r
		g.mu.Unlock()
	}
	m.ApplyShared(r, won)
}

func record(t *testing.T, key, origin string, wall int64, c sharedChange) group.Record {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return group.Record{Key: key, Value: b, Stamp: group.Stamp{Wall: wall, Origin: origin}}
}

func TestParseSharedKey(t *testing.T) {
	tests := []struct {
		key           string
		kind, bal, rt string
		ok            bool
	}{
		{"state/web/n1", "state", "web", "n1", true},
		{"weight/web/n.2", "weight", "web", "n.2", true},
		{"member/web/n3", "member", "web", "n3", true},
		{"colour/web/n1", "", "", "", false},
		{"state/web", "", "", "", false},
		{"state//n1", "", "", "", false},
		{"state/web/n1/x", "", "", "", false},
	}
	for _, tc := range tests {
		kind, bal, rt, ok := parseSharedKey(tc.key)
		if kind != tc.kind || bal != tc.bal || rt != tc.rt || ok != tc.ok {
			t.Errorf("parseSharedKey(%q) = %q %q %q %v", tc.key, kind, bal, rt, ok)
		}
	}
}

func TestChangesAreSharedWithTheirAuditEntry(t *testing.T) {
	g := newFakeGroup()
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Group = g }})
	if a := e.patch("n1", map[string]any{"state": "draining", "weight": 4}); a.status != http.StatusOK {
		t.Fatalf("patch: %d %s", a.status, a.body)
	}
	if len(g.set) != 2 || g.set[0].Key != "state/web/n1" || g.set[1].Key != "weight/web/n1" {
		t.Fatalf("records written: %+v", g.set)
	}
	var c sharedChange
	if err := json.Unmarshal(g.set[0].Value, &c); err != nil || c.State != "draining" || c.Audit.Instance != "a" || c.Audit.ID == 0 {
		t.Errorf("state record %s (%v)", g.set[0].Value, err)
	}
	if es := e.audit(); len(es) != 1 || es[0].Instance != "a" {
		t.Errorf("audit %+v: want one entry through a", es)
	}
}

func TestSharedChangesApplyOnceWithOneAuditEntry(t *testing.T) {
	g := newFakeGroup()
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Group = g }})
	audit := AuditEntry{ID: 7, Actor: "read-write token", Operator: "bob@b", Balancer: "web", Member: "n2", Action: "state,weight",
		Before: &AuditValue{State: "active", Weight: 1}, After: &AuditValue{State: "stopped", Weight: 5}, Instance: "b"}
	g.receive(e.mgr, record(t, "state/web/n2", "b", 10, sharedChange{State: "stopped", Audit: audit}), true)
	g.receive(e.mgr, record(t, "weight/web/n2", "b", 10, sharedChange{Weight: 5, Audit: audit}), true)
	if m := e.member("web", "n2"); m.State() != balancer.Stopped || m.Weight() != 5 {
		t.Errorf("n2 is %v weight %d, want stopped weight 5", m.State(), m.Weight())
	}
	es := e.audit()
	if len(es) != 1 || es[0].Instance != "b" || es[0].OriginID != 7 || es[0].Operator != "bob@b" {
		t.Fatalf("audit %+v: want B's one entry", es)
	}
	state, err := os.ReadFile(e.opts.StateFile)
	if err != nil || !strings.Contains(string(state), `"state": "stopped"`) || !strings.Contains(string(state), `"weight": 5`) {
		t.Errorf("state file %s (%v): want the change kept across restarts", state, err)
	}

	// A record that lost (a later write was here first): its audit entry
	// is kept, its value is not applied.
	lost := AuditEntry{ID: 8, Balancer: "web", Member: "n3", Action: "weight", After: &AuditValue{Weight: 9}, Instance: "b"}
	g.receive(e.mgr, record(t, "weight/web/n3", "b", 11, sharedChange{Weight: 9, Audit: lost}), false)
	if w := e.member("web", "n3").Weight(); w != 1 {
		t.Errorf("a record that lost was applied: weight %d", w)
	}
	// A record replaced in the store before it was applied: not applied.
	g.mu.Lock()
	g.records["weight/web/n3"] = group.Record{Key: "weight/web/n3", Stamp: group.Stamp{Wall: 99, Origin: "c"}}
	g.mu.Unlock()
	e.mgr.ApplyShared(record(t, "weight/web/n3", "b", 12, sharedChange{Weight: 9, Audit: AuditEntry{ID: 9, Instance: "b"}}), true)
	if w := e.member("web", "n3").Weight(); w != 1 {
		t.Errorf("a superseded record was applied: weight %d", w)
	}
	if n := len(e.audit()); n != 3 {
		t.Errorf("%d audit entries, want 3 (every change once)", n)
	}

	// Bad records change nothing.
	for _, r := range []group.Record{
		{Key: "state/web/n1", Value: []byte("{"), Stamp: group.Stamp{Wall: 20, Origin: "b"}},
		record(t, "state/web/n1", "b", 21, sharedChange{State: "asleep", Audit: AuditEntry{ID: 20, Instance: "b"}}),
		record(t, "weight/web/n1", "b", 22, sharedChange{Weight: 5000, Audit: AuditEntry{ID: 21, Instance: "b"}}),
		record(t, "state/nosuch/n1", "b", 23, sharedChange{State: "stopped", Audit: AuditEntry{ID: 22, Instance: "b"}}),
	} {
		g.receive(e.mgr, r, true)
	}
	if m := e.member("web", "n1"); m.State() != balancer.Active || m.Weight() != 1 {
		t.Errorf("bad records changed n1: %v weight %d", m.State(), m.Weight())
	}
}

func TestSharedMembersAreAddedAndRemoved(t *testing.T) {
	g := newFakeGroup()
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Group = g }})
	spec := MemberSpec{Route: "n4", URL: appBackend(t, "n4").URL, Weight: 2, State: "active"}
	g.receive(e.mgr, record(t, "member/web/n4", "b", 10, sharedChange{Member: &spec, Audit: AuditEntry{ID: 1, Action: "add", Instance: "b"}}), true)
	if m := e.member("web", "n4"); m == nil || m.Weight() != 2 {
		t.Fatalf("n4 not added: %v", m)
	}
	// The same record again (after a restart, say) adds nothing twice.
	g.receive(e.mgr, record(t, "member/web/n4", "b", 10, sharedChange{Member: &spec, Audit: AuditEntry{ID: 1, Action: "add", Instance: "b"}}), true)
	// Added again elsewhere with another url: the later one replaces it.
	moved := MemberSpec{Route: "n4", URL: appBackend(t, "n4").URL}
	g.receive(e.mgr, record(t, "member/web/n4", "c", 11, sharedChange{Member: &moved, Audit: AuditEntry{ID: 2, Action: "add", Instance: "c"}}), true)
	if m := e.member("web", "n4"); m == nil || m.HealthURL().String() != moved.URL {
		t.Fatalf("n4 not replaced: %v", m)
	}
	if eff := e.mgr.Effective()["web"]; len(eff) != 4 {
		t.Errorf("effective members %+v, want the file's three and n4 once", eff)
	}
	g.receive(e.mgr, record(t, "member/web/n4", "c", 12, sharedChange{Audit: AuditEntry{ID: 1, Action: "remove", Instance: "c"}}), true)
	if m := e.member("web", "n4"); m != nil {
		t.Errorf("n4 not removed")
	}
	if eff := e.mgr.Effective()["web"]; len(eff) != 3 {
		t.Errorf("effective members %+v, want the file's three", eff)
	}
	if n := len(e.audit()); n != 3 {
		t.Errorf("%d audit entries, want the two adds and the remove", n)
	}
}

func TestViewsCountTheGroupsSessions(t *testing.T) {
	g := newFakeGroup()
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Group = g }})
	g.sessions["web/n1"] = 5
	var v MemberView
	e.do(req{method: "GET", path: "/api/v1/balancers/web/members/n1", token: rwToken}).decode(t, &v)
	if v.LiveSessions != 5 || v.LocalSessions != 0 {
		t.Errorf("n1 live %d local %d, want the group's 5 and none here", v.LiveSessions, v.LocalSessions)
	}
	// A drain whose counts lack a reachable instance is not over.
	if a := e.patch("n2", map[string]any{"state": "draining"}); a.status != http.StatusOK {
		t.Fatalf("drain n2: %d", a.status)
	}
	g.mu.Lock()
	g.partial = true
	g.mu.Unlock()
	e.do(req{method: "GET", path: "/api/v1/balancers/web/members/n2", token: rwToken}).decode(t, &v)
	if v.Drain == nil || v.Drain.Remaining != 0 || !v.Drain.Partial {
		t.Errorf("n2's drain %+v, want 0 remaining, partial", v.Drain)
	}
	c, err := NewClient(e.srv.URL, rwToken, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.WaitDrained(ctx, "web", "n2", 20*time.Millisecond, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitDrained on a partial count: %v, want it to keep waiting", err)
	}
	g.mu.Lock()
	g.partial = false
	g.mu.Unlock()
	if _, err := c.WaitDrained(context.Background(), "web", "n2", 20*time.Millisecond, nil); err != nil {
		t.Errorf("WaitDrained once complete: %v", err)
	}
	var gv GroupView
	e.do(req{method: "GET", path: "/api/v1/group", token: roToken}).decode(t, &gv)
	if gv.Instance != "a" || !gv.Synced || len(gv.Instances) != 2 || !gv.Instances[0].Self {
		t.Errorf("group view %+v", gv)
	}
	for _, tc := range []struct {
		name   string
		status group.Status
		want   string
	}{
		{"synced", group.Status{Name: "a", Synced: true}, "synced"},
		{"alone", group.Status{Name: "a", Synced: true, Alone: true}, "alone"},
		{"not synced", group.Status{Name: "a"}, "not synced"},
	} {
		g.mu.Lock()
		g.status = tc.status
		g.mu.Unlock()
		var h Health
		e.do(req{method: "GET", path: "/healthz"}).decode(t, &h)
		if h.Status != "ok" || h.Group != tc.want {
			t.Errorf("%s: /healthz %+v", tc.name, h)
		}
	}
}

// TestGroupInTheUI: the manager's page shows the group, an instance it no
// longer reaches, and the instance a change came through.
func TestGroupInTheUI(t *testing.T) {
	b := browsertest.Start(t, browsertest.Options{Width: 1280, Height: 900})
	g := newFakeGroup()
	g.status.Instances[1].Up = false
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Group = g }})
	g.receive(e.mgr, record(t, "state/web/n2", "b", 10, sharedChange{State: "draining", Audit: AuditEntry{ID: 3, Actor: "read-write token",
		Balancer: "web", Member: "n2", Action: "state", Before: &AuditValue{State: "active"}, After: &AuditValue{State: "draining"}, Instance: "b"}}), true)
	must(t, b.Navigate(e.srv.URL+"/"))
	signIn(t, b, rwToken)
	waitVisible(t, b, "#group")
	b.WaitText(t, "#group-summary", "synced")
	b.WaitText(t, `#group-instances tr[data-health="down"]`, "b")
	b.WaitText(t, "#audit tbody tr", "through b")
	var title string
	must(t, b.Execute(&title, `return document.querySelector('tr[data-route="n1"] .m-live').title`))
	if !strings.Contains(title, "seen by this instance") {
		t.Errorf("live sessions' title %q", title)
	}
	saveScreenshot(t, b, false)
	checkConsole(t, b)
}

// FuzzSharedRecord: no record from the group makes the manager panic, and
// what it applies leaves a valid state file.
func FuzzSharedRecord(f *testing.F) {
	f.Add("state/web/n1", []byte(`{"state":"draining","audit":{"id":1,"instance":"b"}}`), true)
	f.Add("weight/web/n2", []byte(`{"weight":3,"audit":{"id":2,"instance":"b"}}`), true)
	f.Add("member/web/n9", []byte(`{"member":{"route":"n9","url":"http://127.0.0.1:9"},"audit":{"id":3}}`), true)
	f.Add("member/web/n1", []byte(`{"audit":{"id":4}}`), false)
	f.Add("state/web/n1", []byte(`{`), true)
	g := newFakeGroup()
	e := newEnv(f, envConfig{opts: func(o *Options) { o.Group = g }})
	var wall int64
	f.Fuzz(func(t *testing.T, key string, value []byte, won bool) {
		wall++
		g.receive(e.mgr, group.Record{Key: key, Value: value, Stamp: group.Stamp{Wall: wall, Origin: "b"}}, won)
		data, err := os.ReadFile(e.opts.StateFile)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseState(data); err != nil {
			t.Fatalf("the state file is no longer valid: %v\n%s", err, data)
		}
	})
}

// TestOwnRecordsComeBackAfterARestart: a record this instance wrote
// before it restarted (with its state file lost) is applied again, and an
// entry of its own the group brings back is not logged twice.
func TestOwnRecordsComeBackAfterARestart(t *testing.T) {
	g := newFakeGroup()
	e := newEnv(t, envConfig{opts: func(o *Options) { o.Group = g }})
	if a := e.patch("n2", map[string]any{"weight": 6}); a.status != http.StatusOK {
		t.Fatalf("patch: %d", a.status)
	}
	mine := g.set[0]
	// The group echoes it back (a state exchange): nothing new.
	e.mgr.ApplyShared(mine, false)
	if n := len(e.audit()); n != 1 {
		t.Errorf("%d audit entries after the echo, want 1", n)
	}
	// Restarted without its state file: a fresh manager, the same name.
	if err := os.Remove(e.opts.StateFile); err != nil {
		t.Fatal(err)
	}
	g2 := newFakeGroup()
	e2 := newEnv(t, envConfig{opts: func(o *Options) { o.Group = g2 }})
	g2.receive(e2.mgr, mine, true)
	if w := e2.member("web", "n2").Weight(); w != 6 {
		t.Errorf("after the restart n2 has weight %d, want its own earlier 6", w)
	}
}
