package admin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func spec(rt, state string, weight int) MemberSpec {
	return MemberSpec{Route: rt, URL: "http://127.0.0.1:900" + rt[len(rt)-1:], State: state, Weight: weight}
}

// TestStateFileRule checks the rule "a run-time change wins until the
// configuration file changes what it touched".
func TestStateFileRule(t *testing.T) {
	file := Baseline{"web": {spec("n1", "", 0), spec("n2", "", 2), spec("n3", "standby", 0)}}
	changed := func(f func(ms []MemberSpec) []MemberSpec) Baseline {
		ms := append([]MemberSpec(nil), file["web"]...)
		return Baseline{"web": f(ms)}
	}
	tests := []struct {
		name    string
		change  func(d *stateDoc)
		newFile Baseline
		want    []MemberSpec // effective members of "web"
		drops   int
	}{
		{
			name:    "state change kept while the file is unchanged",
			change:  func(d *stateDoc) { d.setState(file, "web", "n1", "draining") },
			newFile: file,
			want:    []MemberSpec{spec("n1", "draining", 1), spec("n2", "active", 2), spec("n3", "standby", 1)},
		},
		{
			name:   "state change kept when the file changes another field",
			change: func(d *stateDoc) { d.setState(file, "web", "n1", "stopped") },
			newFile: changed(func(ms []MemberSpec) []MemberSpec {
				ms[0].Weight = 4
				return ms
			}),
			want: []MemberSpec{spec("n1", "stopped", 4), spec("n2", "active", 2), spec("n3", "standby", 1)},
		},
		{
			name:   "the file changing the state wins",
			change: func(d *stateDoc) { d.setState(file, "web", "n1", "draining") },
			newFile: changed(func(ms []MemberSpec) []MemberSpec {
				ms[0].State = "stopped"
				return ms
			}),
			want:  []MemberSpec{spec("n1", "stopped", 1), spec("n2", "active", 2), spec("n3", "standby", 1)},
			drops: 1,
		},
		{
			name:   "an explicit default in the file is no change",
			change: func(d *stateDoc) { d.setState(file, "web", "n1", "draining") },
			newFile: changed(func(ms []MemberSpec) []MemberSpec {
				ms[0].State, ms[0].Weight = "active", 1
				return ms
			}),
			want: []MemberSpec{spec("n1", "draining", 1), spec("n2", "active", 2), spec("n3", "standby", 1)},
		},
		{
			name:   "the file changing the weight wins, the state change stays",
			change: func(d *stateDoc) { d.setState(file, "web", "n2", "stopped"); d.setWeight(file, "web", "n2", 9) },
			newFile: changed(func(ms []MemberSpec) []MemberSpec {
				ms[1].Weight = 3
				return ms
			}),
			want:  []MemberSpec{spec("n1", "active", 1), spec("n2", "stopped", 3), spec("n3", "standby", 1)},
			drops: 1,
		},
		{
			name:   "an override of a member gone from the file is forgotten",
			change: func(d *stateDoc) { d.setState(file, "web", "n3", "active") },
			newFile: changed(func(ms []MemberSpec) []MemberSpec {
				return ms[:2]
			}),
			want:  []MemberSpec{spec("n1", "active", 1), spec("n2", "active", 2)},
			drops: 1,
		},
		{
			name:    "an added member stays, with its run-time changes",
			change:  func(d *stateDoc) { d.add(file, "web", spec("n4", "", 3)); d.setState(file, "web", "n4", "draining") },
			newFile: file,
			want:    []MemberSpec{spec("n1", "active", 1), spec("n2", "active", 2), spec("n3", "standby", 1), spec("n4", "draining", 3)},
		},
		{
			name:   "a member the file now defines replaces the added one",
			change: func(d *stateDoc) { d.add(file, "web", spec("n4", "", 3)) },
			newFile: changed(func(ms []MemberSpec) []MemberSpec {
				return append(ms, spec("n4", "standby", 0))
			}),
			want:  []MemberSpec{spec("n1", "active", 1), spec("n2", "active", 2), spec("n3", "standby", 1), spec("n4", "standby", 1)},
			drops: 1,
		},
		{
			name:    "a removed member stays out while the file is unchanged",
			change:  func(d *stateDoc) { d.setState(file, "web", "n2", "stopped"); d.remove(file, "web", "n2") },
			newFile: file,
			want:    []MemberSpec{spec("n1", "active", 1), spec("n3", "standby", 1)},
		},
		{
			name:   "a removed member comes back when the file changes it",
			change: func(d *stateDoc) { d.remove(file, "web", "n2") },
			newFile: changed(func(ms []MemberSpec) []MemberSpec {
				ms[1].Weight = 5
				return ms
			}),
			want:  []MemberSpec{spec("n1", "active", 1), spec("n2", "active", 5), spec("n3", "standby", 1)},
			drops: 1,
		},
		{
			name:    "removing an added member leaves nothing",
			change:  func(d *stateDoc) { d.add(file, "web", spec("n4", "", 0)); d.remove(file, "web", "n4") },
			newFile: file,
			want:    []MemberSpec{spec("n1", "active", 1), spec("n2", "active", 2), spec("n3", "standby", 1)},
		},
		{
			name:    "re-adding a removed member of the file undoes the removal",
			change:  func(d *stateDoc) { d.remove(file, "web", "n1"); d.add(file, "web", spec("n1", "draining", 0)) },
			newFile: file,
			want:    []MemberSpec{spec("n1", "draining", 1), spec("n2", "active", 2), spec("n3", "standby", 1)},
		},
		{
			name:    "a balancer gone from the file takes its changes along",
			change:  func(d *stateDoc) { d.setState(file, "web", "n1", "stopped") },
			newFile: Baseline{"api": {spec("a1", "", 0)}},
			drops:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newStateDoc()
			tt.change(d)
			// Through the file and back, as across a restart.
			path := filepath.Join(t.TempDir(), "state.json")
			must(t, saveState(path, d))
			d, err := loadState(path)
			must(t, err)
			drops := d.reconcile(tt.newFile)
			if len(drops) != tt.drops {
				t.Errorf("%d changes forgotten, want %d: %+v", len(drops), tt.drops, drops)
			}
			for _, dr := range drops {
				if dr.why == "" {
					t.Errorf("forgotten without a reason: %+v", dr)
				}
			}
			got := d.effective(tt.newFile)["web"]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("effective members\n got %+v\nwant %+v", got, tt.want)
			}
			// Reconciling again forgets nothing more.
			if again := d.reconcile(tt.newFile); len(again) != 0 {
				t.Errorf("second reconcile forgot %+v", again)
			}
		})
	}
}

func TestSaveStateIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	d := newStateDoc()
	d.setState(Baseline{"web": {spec("n1", "", 0)}}, "web", "n1", "stopped")
	must(t, saveState(path, d))
	must(t, saveState(path, d))
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	data, _ := os.ReadFile(path)
	var back stateDoc
	must(t, json.Unmarshal(data, &back))
	if back.Version != stateVersion || back.Balancers["web"].Overrides["n1"].State != "stopped" {
		t.Errorf("state file %s", data)
	}
}

func TestParseStateRefusesInconsistentFiles(t *testing.T) {
	for name, content := range map[string]string{
		"override without file value": `{"version":1,"balancers":{"web":{"overrides":{"n1":{"state":"stopped"}}}}}`,
		"weight out of range":         `{"version":1,"balancers":{"web":{"overrides":{"n1":{"weight":5000,"file_weight":1}}}}}`,
		"added twice":                 `{"version":1,"balancers":{"web":{"added":[{"route":"n4","url":"http://a"},{"route":"n4","url":"http://a"}]}}}`,
		"added with a bad url":        `{"version":1,"balancers":{"web":{"added":[{"route":"n4","url":"nope"}]}}}`,
		"removed record mismatch":     `{"version":1,"balancers":{"web":{"removed":{"n1":{"route":"n2","url":"http://a"}}}}}`,
		"null balancer":               `{"version":1,"balancers":{"web":null}}`,
		"trailing data":               `{"version":1} {}`,
		"invalid route":               `{"version":1,"balancers":{"web":{"overrides":{"<b>":{"state":"stopped","file_state":"active"}}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseState([]byte(content)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// FuzzParseState: no input makes the state file parser panic, and what it
// accepts survives a write and a read unchanged.
func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"balancers":{"web":{"overrides":{"n1":{"state":"draining","file_state":"active","weight":3,"file_weight":1}},"added":[{"route":"n4","url":"http://127.0.0.1:9004","weight":2,"state":"standby"}],"removed":{"n2":{"route":"n2","url":"http://127.0.0.1:9002"}}}}}`))
	f.Add([]byte(`{"version":1,"balancers":{"web":{}}}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseState(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := parseState(out)
		if err != nil {
			t.Fatalf("a parsed state does not parse again: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(d2)
		if string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
		base := Baseline{"web": {spec("n1", "", 0), spec("n2", "", 0)}}
		d2.reconcile(base)
		for _, m := range d2.effective(base)["web"] {
			if err := m.check(); err != nil && !strings.Contains(err.Error(), "route") {
				t.Fatalf("effective member %+v invalid: %v", m, err)
			}
		}
	})
}

// FuzzMemberChange: no PATCH body makes the decoder panic, and what it
// accepts is a valid change.
func FuzzMemberChange(f *testing.F) {
	for _, s := range []string{`{"state":"draining"}`, `{"weight":3}`, `{"state":"stopped","weight":1000,"reason":"maintenance"}`, `{}`, `{"weight":0}`, `[]`, `{"state":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var ch MemberChange
		if err := decodeJSON(body, &ch); err != nil {
			return
		}
		st, err := parseChange(ch)
		if err != nil {
			return
		}
		if ch.State == nil && ch.Weight == nil {
			t.Fatal("accepted an empty change")
		}
		if ch.State != nil && st.String() != *ch.State {
			t.Fatalf("state %q parsed as %v", *ch.State, st)
		}
		if ch.Weight != nil && (*ch.Weight < 1 || *ch.Weight > 1000) {
			t.Fatalf("accepted weight %d", *ch.Weight)
		}
	})
}
