package admin

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/internal/proctest"
)

func TestListBalancers(t *testing.T) {
	e := newEnv(t, envConfig{})
	for range 3 {
		e.browse("web", "/login", "")
	}
	var s Snapshot
	a := e.do(req{method: "GET", path: "/api/v1/balancers", token: roToken})
	a.decode(t, &s)
	if len(s.Balancers) != 1 || s.Balancers[0].Name != "web" || len(s.Balancers[0].Members) != 3 {
		t.Fatalf("snapshot %s", a.body)
	}
	var live int64
	var requests uint64
	for _, m := range s.Balancers[0].Members {
		if m.State != "active" || m.Health != "up" || m.Weight != 1 || m.URL != e.backend[m.Route] {
			t.Errorf("member %+v", m)
		}
		live += m.LiveSessions
		requests += m.Requests
	}
	if live != 3 || requests != 3 {
		t.Errorf("live sessions %d, requests %d; want 3 and 3", live, requests)
	}
	if s.Time.IsZero() || s.Balancers[0].DrainIdle != Duration(time.Minute) || s.Balancers[0].Sessions != "local" {
		t.Errorf("balancer %+v", s.Balancers[0])
	}
}

func TestChangeIsAuditedPersistedAndRestored(t *testing.T) {
	e := newEnv(t, envConfig{})
	a := e.do(req{method: "PATCH", path: "/api/v1/balancers/web/members/n1", token: rwToken,
		body:   MemberChange{State: str("draining"), Reason: "kernel upgrade"},
		header: map[string]string{"X-Tether-Operator": "alice@ops1"}})
	if a.status != 200 {
		t.Fatalf("drain: %d %s", a.status, a.body)
	}
	var res ChangeResult
	a.decode(t, &res)
	if res.Member.State != "draining" || res.Member.Drain == nil {
		t.Errorf("answer member %+v", res.Member)
	}
	if got := e.member("web", "n1").State(); got != balancer.Draining {
		t.Fatalf("n1 is %v", got)
	}
	if a := e.patch("n2", MemberChange{Weight: num(5)}); a.status != 200 {
		t.Fatalf("weight: %d %s", a.status, a.body)
	}
	if a := e.patch("n3", MemberChange{State: str("stopped"), Weight: num(7)}); a.status != 200 {
		t.Fatalf("both: %d %s", a.status, a.body)
	}

	entries := e.audit()
	if len(entries) != 3 {
		t.Fatalf("%d audit entries, want 3: %+v", len(entries), entries)
	}
	first := entries[0]
	if first.Actor != "read-write token" || first.Operator != "alice@ops1" || !strings.HasPrefix(first.Remote, "127.0.0.1:") ||
		first.Balancer != "web" || first.Member != "n1" || first.Action != "state" ||
		first.Before == nil || first.Before.State != "active" || first.After == nil || first.After.State != "draining" ||
		first.Reason != "kernel upgrade" || first.Time.IsZero() || first.ID == 0 {
		t.Errorf("audit entry %+v before %+v after %+v", first, first.Before, first.After)
	}
	if res.Audit.ID != first.ID {
		t.Errorf("the answer's audit entry %d is not the logged one %d", res.Audit.ID, first.ID)
	}
	if w := entries[1]; w.Action != "weight" || w.Before.Weight != 1 || w.After.Weight != 5 {
		t.Errorf("weight entry %+v %+v %+v", w, w.Before, w.After)
	}
	if b := entries[2]; b.Action != "state,weight" || b.After.State != "stopped" || b.After.Weight != 7 {
		t.Errorf("combined entry %+v %+v", b, b.After)
	}
	// Audit log through the API, paged.
	var page AuditPage
	e.do(req{method: "GET", path: "/api/v1/audit?after=1&limit=1", token: roToken}).decode(t, &page)
	if len(page.Entries) != 1 || page.Entries[0].ID != 3 {
		t.Errorf("audit page %+v", page.Entries)
	}

	data, err := os.ReadFile(e.opts.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"draining"`) || !strings.Contains(string(data), `"weight": 5`) {
		t.Errorf("state file:\n%s", data)
	}
	if fi, _ := os.Stat(e.opts.StateFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}

	// A restart (same configuration file) restores every change.
	e.restart(nil)
	for rt, want := range map[string]struct {
		state  balancer.State
		weight int
	}{"n1": {balancer.Draining, 1}, "n2": {balancer.Active, 5}, "n3": {balancer.Stopped, 7}} {
		m := e.member("web", rt)
		if m.State() != want.state || m.Weight() != want.weight {
			t.Errorf("after restart %s is %v weight %d, want %v weight %d", rt, m.State(), m.Weight(), want.state, want.weight)
		}
	}
	// Setting back the file's values leaves nothing in the state file.
	for _, rt := range []string{"n1", "n3"} {
		if a := e.patch(rt, MemberChange{State: str("active")}); a.status != 200 {
			t.Fatal(a.status)
		}
	}
	if a := e.patch("n2", MemberChange{Weight: num(1)}); a.status != 200 {
		t.Fatal(a.status)
	}
	if a := e.patch("n3", MemberChange{Weight: num(1)}); a.status != 200 {
		t.Fatal(a.status)
	}
	data, _ = os.ReadFile(e.opts.StateFile)
	var doc stateDoc
	must(t, json.Unmarshal(data, &doc))
	if len(doc.Balancers) != 0 {
		t.Errorf("state file still holds changes:\n%s", data)
	}
}

func TestInvalidChangesAreRefusedClearly(t *testing.T) {
	e := newEnv(t, envConfig{})
	long := strings.Repeat("x", 201)
	tests := []struct {
		name   string
		r      req
		status int
		field  string
		says   string
	}{
		{"not JSON", req{body: "state=draining"}, 400, "", "invalid JSON"},
		{"unknown field", req{body: `{"state":"draining","force":true}`}, 400, "", "unknown field"},
		{"two values", req{body: `{"state":"draining"}{"state":"stopped"}`}, 400, "", "more than one"},
		{"nothing to change", req{body: `{}`}, 400, "", "nothing to change"},
		{"unknown state", req{body: `{"state":"sleeping"}`}, 400, "state", "sleeping"},
		{"empty state", req{body: `{"state":""}`}, 400, "state", "empty"},
		{"weight zero", req{body: `{"weight":0}`}, 400, "weight", "from 1 to 1000"},
		{"weight too large", req{body: `{"weight":1001}`}, 400, "weight", "from 1 to 1000"},
		{"weight negative", req{body: `{"weight":-3}`}, 400, "weight", "from 1 to 1000"},
		{"weight not a number", req{body: `{"weight":"3"}`}, 400, "", "invalid JSON"},
		{"weight with a fraction", req{body: `{"weight":2.5}`}, 400, "", "invalid JSON"},
		{"valid state, invalid weight", req{body: `{"state":"stopped","weight":0}`}, 400, "weight", ""},
		{"reason too long", req{body: `{"state":"draining","reason":"` + long + `"}`}, 400, "reason", "longer"},
		{"reason with a newline", req{body: `{"state":"draining","reason":"a\nb"}`}, 400, "reason", "control"},
		{"operator header with control characters", req{body: `{"state":"draining"}`, header: map[string]string{"X-Tether-Operator": "a\tb"}}, 400, "X-Tether-Operator", ""},
		{"form content type", req{body: `{"state":"draining"}`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "", "JSON"},
		{"text content type", req{body: `{"state":"draining"}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, "", "JSON"},
		{"body too large", req{body: `{"reason":"` + strings.Repeat("x", 70<<10) + `"}`}, 413, "", "too large"},
		{"unknown balancer", req{path: "/api/v1/balancers/nope/members/n1", body: `{"state":"draining"}`}, 404, "", "no such balancer"},
		{"unknown member", req{path: "/api/v1/balancers/web/members/n9", body: `{"state":"draining"}`}, 404, "", "no such member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.method, r.token = "PATCH", rwToken
			if r.path == "" {
				r.path = "/api/v1/balancers/web/members/n1"
			}
			a := e.do(r)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if !strings.Contains(a.errorText(), tt.says) || a.errorText() == "" {
				t.Errorf("error %q does not say %q", a.errorText(), tt.says)
			}
			if a.field() != tt.field {
				t.Errorf("field %q, want %q", a.field(), tt.field)
			}
		})
	}
	if m := e.member("web", "n1"); m.State() != balancer.Active || m.Weight() != 1 {
		t.Errorf("n1 changed by refused requests: %v %d", m.State(), m.Weight())
	}
	if n := len(e.audit()); n != 0 {
		t.Errorf("%d audit entries for refused changes", n)
	}
	if data, _ := os.ReadFile(e.opts.StateFile); strings.Contains(string(data), "n1") {
		t.Errorf("state file changed by refused changes:\n%s", data)
	}
}

func TestAddAndRemoveMembers(t *testing.T) {
	e := newEnv(t, envConfig{})
	n4 := appBackend(t, "n4").URL
	post := func(body any) answer {
		return e.do(req{method: "POST", path: "/api/v1/balancers/web/members", token: rwToken, body: body})
	}
	del := func(rt, query string) answer {
		return e.do(req{method: "DELETE", path: "/api/v1/balancers/web/members/" + rt + query, token: rwToken})
	}
	bad := []struct {
		name   string
		body   any
		status int
		field  string
		says   string // in the error, if set
	}{
		{"route taken", NewMember{MemberSpec: MemberSpec{Route: "n1", URL: n4}}, 409, "", ""},
		{"file member with another url", NewMember{MemberSpec: MemberSpec{Route: "n2", URL: n4}}, 409, "", ""},
		{"invalid route", NewMember{MemberSpec: MemberSpec{Route: "n 4", URL: n4}}, 400, "route", ""},
		{"route with markup", NewMember{MemberSpec: MemberSpec{Route: "<b>", URL: n4}}, 400, "route", ""},
		{"no url", NewMember{MemberSpec: MemberSpec{Route: "n4"}}, 400, "url", "is not an http or https URL with a host"},
		{"ftp url", NewMember{MemberSpec: MemberSpec{Route: "n4", URL: "ftp://127.0.0.1/"}}, 400, "url", "is not an http or https URL with a host"},
		{"url without a host", NewMember{MemberSpec: MemberSpec{Route: "n4", URL: "http:///x"}}, 400, "url", "is not an http or https URL with a host"},
		{"ajp url: set in the file", NewMember{MemberSpec: MemberSpec{Route: "n4", URL: "ajp://127.0.0.1:8009"}}, 400, "url", "AJP members are set in the configuration file"},
		{"ajp url in capitals", NewMember{MemberSpec: MemberSpec{Route: "n4", URL: "AJP://127.0.0.1:8009"}}, 400, "url", "balancers[].members"},
		{"bad weight", NewMember{MemberSpec: MemberSpec{Route: "n4", URL: n4, Weight: 5000}}, 400, "weight", ""},
		{"bad state", NewMember{MemberSpec: MemberSpec{Route: "n4", URL: n4, State: "on"}}, 400, "state", ""},
		{"negative max_conns", NewMember{MemberSpec: MemberSpec{Route: "n4", URL: n4, MaxConns: -1}}, 400, "max_conns", ""},
		{"unknown field", `{"route":"n4","url":"` + n4 + `","color":"red"}`, 400, "", ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			a := post(tt.body)
			if a.status != tt.status || a.field() != tt.field || a.errorText() == "" || !strings.Contains(a.errorText(), tt.says) {
				t.Errorf("%d field %q %s; want %d field %q saying %q", a.status, a.field(), a.body, tt.status, tt.field, tt.says)
			}
		})
	}
	if e.member("web", "n4") != nil || len(e.audit()) != 0 {
		t.Fatal("a refused add changed something")
	}

	a := post(NewMember{MemberSpec: MemberSpec{Route: "n4", URL: n4, Weight: 3, MaxConns: 2}, Reason: "scale out"})
	if a.status != 201 || a.header.Get("Location") != "/api/v1/balancers/web/members/n4" {
		t.Fatalf("add: %d %v %s", a.status, a.header, a.body)
	}
	if m := e.member("web", "n4"); m == nil || m.Weight() != 3 || m.State() != balancer.Active || m.MaxConns() != 2 {
		t.Fatalf("n4 not in the pool as added: %v", m)
	}
	// n4 takes traffic: with n1..n3 stopped, new sessions go to it.
	for _, rt := range []string{"n1", "n2", "n3"} {
		e.patch(rt, MemberChange{State: str("stopped")})
	}
	if got, _ := e.browse("web", "/login", ""); got != "n4" {
		t.Errorf("new session went to %q, want n4", got)
	}
	for _, rt := range []string{"n1", "n2", "n3"} {
		e.patch(rt, MemberChange{State: str("active")})
	}

	// Removing a member that takes traffic needs force.
	a = del("n1", "")
	if a.status != 409 || !strings.Contains(a.errorText(), "force") {
		t.Errorf("remove active member: %d %s", a.status, a.body)
	}
	if e.member("web", "n1") == nil {
		t.Fatal("n1 removed without force")
	}
	e.patch("n1", MemberChange{State: str("stopped")})
	if a := del("n1", "?reason=retired"); a.status != 200 {
		t.Fatalf("remove stopped member: %d %s", a.status, a.body)
	}
	if a := del("n2", "?force=true"); a.status != 200 {
		t.Fatalf("forced removal: %d %s", a.status, a.body)
	}
	if a := del("n2", ""); a.status != 404 {
		t.Errorf("removing twice: %d", a.status)
	}
	if a := del("n3", "?force=maybe"); a.status != 400 || a.field() != "force" {
		t.Errorf("bad force: %d %s", a.status, a.body)
	}
	if e.member("web", "n1") != nil || e.member("web", "n2") != nil {
		t.Fatal("removed members still in the pool")
	}
	var adds, removes int
	for _, en := range e.audit() {
		switch en.Action {
		case "add":
			adds++
			if en.After.URL != n4 || en.After.Weight != 3 || en.Reason != "scale out" {
				t.Errorf("add entry %+v %+v", en, en.After)
			}
		case "remove":
			removes++
			if en.Before == nil || en.Before.URL == "" {
				t.Errorf("remove entry without the member's values: %+v", en)
			}
		}
	}
	if adds != 1 || removes != 2 {
		t.Errorf("%d add and %d remove entries, want 1 and 2", adds, removes)
	}

	// A restart keeps n4 and keeps n1, n2 out.
	e.restart(nil)
	if m := e.member("web", "n4"); m == nil || m.Weight() != 3 || m.MaxConns() != 2 {
		t.Errorf("n4 after restart: %v", m)
	}
	if e.member("web", "n1") != nil || e.member("web", "n2") != nil {
		t.Error("removed members are back after a restart")
	}
	// Re-adding a removed member of the file brings it back for good.
	if a := post(NewMember{MemberSpec: MemberSpec{Route: "n1", URL: e.backend["n1"]}}); a.status != 201 {
		t.Fatalf("re-add n1: %d %s", a.status, a.body)
	}
	e.restart(nil)
	if e.member("web", "n1") == nil {
		t.Error("re-added n1 missing after restart")
	}
}

func TestStateFileWriteFailureChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	must(t, os.Mkdir(dir, 0o700))
	e := newEnv(t, envConfig{stateFile: filepath.Join(dir, "state.json")})
	must(t, os.RemoveAll(dir)) // the disk goes away under the running manager
	a := e.patch("n1", MemberChange{State: str("stopped")})
	if a.status != 500 || !strings.Contains(a.errorText(), "state file") || !strings.Contains(a.errorText(), "nothing was changed") {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if e.member("web", "n1").State() != balancer.Active {
		t.Error("the change was applied though it could not be persisted")
	}
	a = e.do(req{method: "POST", path: "/api/v1/balancers/web/members", token: rwToken, body: MemberSpec{Route: "n4", URL: "http://127.0.0.1:9"}})
	if a.status != 500 || e.member("web", "n4") != nil {
		t.Errorf("add: %d, member added: %v", a.status, e.member("web", "n4") != nil)
	}
	if n := len(e.audit()); n != 0 {
		t.Errorf("%d audit entries for changes that did not happen", n)
	}
}

func TestUnwritableStateFileStopsTheManager(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "state.json")
	_, err := New(Options{Source: source{}, Token: rwToken, StateFile: path})
	if err == nil || !strings.Contains(err.Error(), "state file") || !strings.Contains(err.Error(), "must be able to write") {
		t.Fatalf("New with a state file it cannot write: %v", err)
	}
}

func TestCorruptStateFileStopsTheManager(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":        "{",
		"unknown version": `{"version": 9}`,
		"unknown field":   `{"version": 1, "balancers": {"web": {"overides": {}}}}`,
		"bad state":       `{"version": 1, "balancers": {"web": {"overrides": {"n1": {"state": "on", "file_state": "active"}}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			must(t, os.WriteFile(path, []byte(content), 0o600))
			_, err := New(Options{Source: source{}, Token: rwToken, StateFile: path})
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("New: %v; want an error naming %s", err, path)
			}
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Error("the state file was changed")
			}
		})
	}
}

func TestAutomaticChangesAreAuditedAndPersisted(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.restart(func(o *balancer.Options) {
		o.SessionIdle = time.Second // the janitor looks every 100ms
		o.DrainStop = true
	})
	if a := e.patch("n2", MemberChange{State: str("draining")}); a.status != 200 {
		t.Fatal(a.status)
	}
	// n2 has no session: the balancer stops it on its own.
	proctest.Eventually(t, 10*time.Second, func() error {
		if s := e.member("web", "n2").State(); s != balancer.Stopped {
			return &APIError{Message: "n2 is " + s.String()}
		}
		return nil
	})
	var auto *AuditEntry
	for _, en := range e.audit() {
		if en.Actor == "balancer" {
			auto = &en
		}
	}
	if auto == nil || auto.Member != "n2" || auto.Before.State != "draining" || auto.After.State != "stopped" || !strings.Contains(auto.Reason, "drained") {
		t.Fatalf("no audit entry for the finished drain: %+v", e.audit())
	}
	proctest.Eventually(t, 10*time.Second, func() error {
		data, _ := os.ReadFile(e.opts.StateFile)
		if !strings.Contains(string(data), `"stopped"`) {
			return &APIError{Message: "state file: " + string(data)}
		}
		return nil
	})
	e.restart(nil)
	if s := e.member("web", "n2").State(); s != balancer.Stopped {
		t.Errorf("after restart n2 is %v, want stopped", s)
	}
}

func TestLiveFeed(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.patch("n3", MemberChange{Weight: num(2)}) // audit entry 1, before the feed
	r, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/events?after=0", nil)
	r.Header.Set("Authorization", "Bearer "+roToken)
	resp, err := http.DefaultClient.Do(r)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	events := make(chan [2]string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				events <- [2]string{ev, v}
			}
		}
		close(events)
	}()
	next := func(kind string) string {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("feed ended waiting for %s", kind)
				}
				if ev[0] == kind {
					return ev[1]
				}
			case <-timeout:
				t.Fatalf("no %s event", kind)
			}
		}
	}
	var old AuditEntry
	must(t, json.Unmarshal([]byte(next("audit")), &old))
	if old.ID != 1 || old.Member != "n3" {
		t.Errorf("first audit event %+v", old)
	}
	var s Snapshot
	must(t, json.Unmarshal([]byte(next("snapshot")), &s))
	if len(s.Balancers) != 1 {
		t.Errorf("snapshot %+v", s)
	}
	e.patch("n1", MemberChange{State: str("draining")})
	var en AuditEntry
	must(t, json.Unmarshal([]byte(next("audit")), &en))
	if en.Member != "n1" || en.After.State != "draining" {
		t.Errorf("audit event %+v", en)
	}
	// Snapshots keep coming and show the change.
	proctest.Eventually(t, 10*time.Second, func() error {
		var s Snapshot
		must(t, json.Unmarshal([]byte(next("snapshot")), &s))
		if s.Balancers[0].Members[0].State != "draining" {
			return &APIError{Message: "n1 not draining in the feed"}
		}
		return nil
	})
	// Close ends the feed.
	e.mgr.Close()
	next("bye")
}

func TestReloadIsAudited(t *testing.T) {
	e := newEnv(t, envConfig{})
	if a := e.patch("n1", MemberChange{Weight: num(9)}); a.status != 200 {
		t.Fatal(a.status)
	}
	next := Baseline{"web": {
		{Route: "n1", URL: e.backend["n1"], Weight: 1},             // unchanged in the file: n1 keeps 9
		{Route: "n2", URL: e.backend["n2"], Weight: 3},             // re-weighted by the file
		{Route: "n4", URL: "http://127.0.0.1:9", State: "standby"}, // added by the file; n3 removed
	}}
	var applied Baseline
	must(t, e.mgr.Reload(next, func(eff Baseline) error { applied = eff; return nil }))
	if applied["web"][0].Weight != 9 {
		t.Errorf("the run-time weight of n1 was not kept: %+v", applied["web"][0])
	}
	var got []string
	for _, en := range e.audit()[1:] {
		got = append(got, en.Actor+" "+en.Action+" "+en.Member)
	}
	want := "config weight n2|config add n4|config remove n3"
	if strings.Join(got, "|") != want {
		t.Errorf("audit of the reload: %q, want %q", strings.Join(got, "|"), want)
	}
	// A refused reload changes nothing and records nothing.
	n := len(e.audit())
	if err := e.mgr.Reload(Baseline{}, func(Baseline) error { return os.ErrInvalid }); err == nil {
		t.Fatal("a failed apply was not reported")
	}
	if len(e.audit()) != n || len(e.mgr.Effective()["web"]) != 3 {
		t.Error("a refused reload changed something")
	}
}
