package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/route"
)

// The state file keeps the changes made through the manager, so that they
// survive a restart. Its rule, which a reload of the configuration file
// follows too:
//
//	A run-time change wins over the configuration file until the file
//	itself changes what the change touched; then the file wins and the
//	run-time change is forgotten (and the audit log says so).
//
// So each change records the file's value it replaced: an override of a
// member's state keeps the file's state at the time, a removal keeps the
// file's whole member. A member added at run time stays until the file
// defines a member with that route.

// stateVersion is the version of the state file format. Bump it, and keep
// reading the old one, when the format changes.
const stateVersion = 1

// maxStateBytes bounds the state file read at start.
const maxStateBytes = 16 << 20

// MemberSpec is a member as the configuration file or a request to add
// one describes it.
type MemberSpec struct {
	Route string `json:"route"`
	URL   string `json:"url"`
	// Weight is 1 to balancer.MaxWeight; 0 means 1.
	Weight int `json:"weight,omitempty"`
	// State is active, draining, stopped or standby; "" means active.
	State string `json:"state,omitempty"`
	// MaxConns is the member's own limit of requests at once; 0 means
	// the balancer's (max_conns).
	MaxConns int `json:"max_conns,omitempty"`
}

// normal returns s with the defaults spelled out, so that "" and "active"
// compare equal.
func (s MemberSpec) normal() MemberSpec {
	if s.Weight == 0 {
		s.Weight = 1
	}
	if s.State == "" {
		s.State = balancer.Active.String()
	}
	return s
}

// Config maps s onto the balancer's member configuration.
func (s MemberSpec) Config() (balancer.MemberConfig, error) {
	u, err := url.Parse(s.URL)
	if err != nil {
		return balancer.MemberConfig{}, fmt.Errorf("%w: url %q: %v", balancer.ErrInvalid, s.URL, err)
	}
	st, err := balancer.ParseState(s.State)
	if err != nil {
		return balancer.MemberConfig{}, err
	}
	return balancer.MemberConfig{URL: u, Route: s.Route, Weight: s.Weight, State: st, MaxConns: s.MaxConns}, nil
}

// check validates s on its own, with the balancer's rules. A member
// added at run time (or in a state file, or from the group) is http or
// https: an ajp:// member needs a secret, which only the configuration
// file gives.
func (s MemberSpec) check() error {
	if !route.Valid(s.Route) {
		return &FieldError{"route", fmt.Sprintf("%q: use 1 to 64 letters, digits, '-', '_' or '.'", s.Route)}
	}
	u, err := url.Parse(s.URL)
	if err == nil && u.Scheme == "ajp" { // url.Parse lowercases it
		return &FieldError{"url", fmt.Sprintf("%q: AJP members are set in the configuration file, with their secret "+
			"(balancers[].members, secret_file or secret_env, or the balancer's ajp.secret_file), then reloaded; "+
			"members added at run time are http or https", s.URL)}
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return &FieldError{"url", fmt.Sprintf("%q is not an http or https URL with a host", s.URL)}
	}
	if s.Weight < 0 || s.Weight > balancer.MaxWeight {
		return &FieldError{"weight", fmt.Sprintf("%d is not from 1 to %d", s.Weight, balancer.MaxWeight)}
	}
	if _, err := balancer.ParseState(s.State); err != nil {
		return &FieldError{"state", fmt.Sprintf("%q is not one of active, draining, stopped, standby", s.State)}
	}
	if s.MaxConns < 0 {
		return &FieldError{"max_conns", fmt.Sprintf("%d must not be negative", s.MaxConns)}
	}
	return nil
}

// Baseline is the members of each balancer, by balancer name, as the
// configuration file gives them, in file order.
type Baseline map[string][]MemberSpec

func (b Baseline) find(bal, r string) (MemberSpec, bool) {
	for _, m := range b[bal] {
		if m.Route == r {
			return m.normal(), true
		}
	}
	return MemberSpec{}, false
}

// stateDoc is the content of the state file.
type stateDoc struct {
	Version   int                     `json:"version"`
	Balancers map[string]*balancerDoc `json:"balancers,omitempty"`
}

// balancerDoc is the run-time changes of one balancer.
type balancerDoc struct {
	// Overrides are state and weight changes of members of the file.
	Overrides map[string]override `json:"overrides,omitempty"`
	// Added are members added at run time, with their current state and
	// weight, in the order they were added.
	Added []MemberSpec `json:"added,omitempty"`
	// Removed are members of the file removed at run time, as the file
	// defined them then.
	Removed map[string]MemberSpec `json:"removed,omitempty"`
}

// override is a run-time state and/or weight of a member of the file,
// with the file's value it replaced.
type override struct {
	State      string `json:"state,omitempty"`
	FileState  string `json:"file_state,omitempty"`
	Weight     int    `json:"weight,omitempty"`
	FileWeight int    `json:"file_weight,omitempty"`
}

func (o override) empty() bool { return o.State == "" && o.Weight == 0 }

func newStateDoc() *stateDoc {
	return &stateDoc{Version: stateVersion, Balancers: map[string]*balancerDoc{}}
}

// clone returns a deep copy, for changes that may be abandoned.
func (d *stateDoc) clone() *stateDoc {
	n := newStateDoc()
	for name, b := range d.Balancers {
		n.Balancers[name] = &balancerDoc{
			Overrides: maps.Clone(b.Overrides),
			Added:     slices.Clone(b.Added),
			Removed:   maps.Clone(b.Removed),
		}
	}
	return n
}

func (d *stateDoc) balancer(name string) *balancerDoc {
	b := d.Balancers[name]
	if b == nil {
		b = &balancerDoc{}
		d.Balancers[name] = b
	}
	return b
}

// prune drops empty entries, so that the file only holds real changes.
func (d *stateDoc) prune() {
	for name, b := range d.Balancers {
		for r, o := range b.Overrides {
			if o.empty() {
				delete(b.Overrides, r)
			}
		}
		if len(b.Overrides) == 0 && len(b.Added) == 0 && len(b.Removed) == 0 {
			delete(d.Balancers, name)
		}
	}
}

// addedIndex returns the index of the run-time member r, or -1.
func (b *balancerDoc) addedIndex(r string) int {
	return slices.IndexFunc(b.Added, func(m MemberSpec) bool { return m.Route == r })
}

// dropped is a run-time change the configuration file overrode.
type dropped struct {
	balancer, member string
	why              string
}

// reconcile forgets the run-time changes the file base has overridden
// since they were made, and reports them.
func (d *stateDoc) reconcile(base Baseline) []dropped {
	var out []dropped
	drop := func(bal, m, why string) { out = append(out, dropped{bal, m, why}) }
	for _, name := range slices.Sorted(maps.Keys(d.Balancers)) {
		b := d.Balancers[name]
		if _, ok := base[name]; !ok {
			drop(name, "", "the balancer is no longer in the configuration file")
			delete(d.Balancers, name)
			continue
		}
		for _, r := range slices.Sorted(maps.Keys(b.Overrides)) {
			o := b.Overrides[r]
			f, ok := base.find(name, r)
			if !ok {
				drop(name, r, "the member is no longer in the configuration file")
				delete(b.Overrides, r)
				continue
			}
			if o.State != "" && o.FileState != f.State {
				drop(name, r, fmt.Sprintf("the configuration file changed its state from %s to %s: run-time state %s forgotten", o.FileState, f.State, o.State))
				o.State, o.FileState = "", ""
			}
			if o.Weight != 0 && o.FileWeight != f.Weight {
				drop(name, r, fmt.Sprintf("the configuration file changed its weight from %d to %d: run-time weight %d forgotten", o.FileWeight, f.Weight, o.Weight))
				o.Weight, o.FileWeight = 0, 0
			}
			b.Overrides[r] = o
		}
		b.Added = slices.DeleteFunc(b.Added, func(m MemberSpec) bool {
			if _, ok := base.find(name, m.Route); ok {
				drop(name, m.Route, "the configuration file now defines this member: its definition wins over the one added at run time")
				return true
			}
			return false
		})
		for _, r := range slices.Sorted(maps.Keys(b.Removed)) {
			f, ok := base.find(name, r)
			switch {
			case !ok:
				delete(b.Removed, r) // gone from the file too: nothing left to remove
			case f != b.Removed[r].normal():
				drop(name, r, "the configuration file changed this member: it is back, the run-time removal is forgotten")
				delete(b.Removed, r)
			}
		}
	}
	d.prune()
	return out
}

// effective returns base with the run-time changes applied: the members
// to run.
func (d *stateDoc) effective(base Baseline) Baseline {
	out := make(Baseline, len(base))
	for name, ms := range base {
		b := d.Balancers[name]
		eff := make([]MemberSpec, 0, len(ms))
		for _, m := range ms {
			m = m.normal()
			if b != nil {
				if _, gone := b.Removed[m.Route]; gone {
					continue
				}
				if o, ok := b.Overrides[m.Route]; ok {
					if o.State != "" {
						m.State = o.State
					}
					if o.Weight != 0 {
						m.Weight = o.Weight
					}
				}
			}
			eff = append(eff, m)
		}
		if b != nil {
			for _, m := range b.Added {
				eff = append(eff, m.normal())
			}
		}
		out[name] = eff
	}
	return out
}

// setState records a run-time state of member r.
func (d *stateDoc) setState(base Baseline, bal, r, state string) {
	d.update(base, bal, r, func(m *MemberSpec) { m.State = state }, func(o *override, f MemberSpec) {
		if state == f.State {
			o.State, o.FileState = "", "" // back to what the file says
		} else {
			o.State, o.FileState = state, f.State
		}
	})
}

// setWeight records a run-time weight of member r.
func (d *stateDoc) setWeight(base Baseline, bal, r string, w int) {
	d.update(base, bal, r, func(m *MemberSpec) { m.Weight = w }, func(o *override, f MemberSpec) {
		if w == f.Weight {
			o.Weight, o.FileWeight = 0, 0
		} else {
			o.Weight, o.FileWeight = w, f.Weight
		}
	})
}

// update changes member r: with added if it was added at run time, else
// with change, given the file's definition of it.
func (d *stateDoc) update(base Baseline, bal, r string, added func(*MemberSpec), change func(*override, MemberSpec)) {
	b := d.balancer(bal)
	if i := b.addedIndex(r); i >= 0 {
		added(&b.Added[i])
		return
	}
	f, ok := base.find(bal, r)
	if !ok {
		return
	}
	o := b.Overrides[r]
	change(&o, f)
	if b.Overrides == nil {
		b.Overrides = map[string]override{}
	}
	b.Overrides[r] = o
	d.prune()
}

// add records member m added at run time. A member of the file removed at
// run time comes back (its URL must be the file's).
func (d *stateDoc) add(base Baseline, bal string, m MemberSpec) {
	m = m.normal()
	b := d.balancer(bal)
	if _, ok := b.Removed[m.Route]; ok {
		delete(b.Removed, m.Route)
		d.setState(base, bal, m.Route, m.State)
		d.setWeight(base, bal, m.Route, m.Weight)
		return
	}
	b.Added = append(b.Added, m)
}

// remove records the removal of member r.
func (d *stateDoc) remove(base Baseline, bal, r string) {
	b := d.balancer(bal)
	if i := b.addedIndex(r); i >= 0 {
		b.Added = slices.Delete(b.Added, i, i+1)
	} else if f, ok := base.find(bal, r); ok {
		if b.Removed == nil {
			b.Removed = map[string]MemberSpec{}
		}
		b.Removed[r] = f
		delete(b.Overrides, r)
	}
	d.prune()
}

// ErrState is wrapped by errors about the state file.
var ErrState = errors.New("state file")

// CheckStateFile reads and checks the state file at path as New does
// (a missing file, or no path, is an empty state), and checks that New
// can write it, which it does at start and at every change: a new file
// in its directory, renamed over it (config.CanCreateIn). It writes
// nothing. It returns the error New would, or nil.
func CheckStateFile(path string) error {
	if _, err := loadState(path); err != nil || path == "" {
		return err
	}
	if err := config.CanCreateIn(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%w %s cannot be written: %v", ErrState, path, err)
	}
	return nil
}

// loadState reads the state file at path; a missing file is an empty
// state. A file that is not a regular file, cannot be read or cannot be
// parsed is an error: the manager does not start rather than forget the
// operator's changes.
func loadState(path string) (*stateDoc, error) {
	if path == "" {
		return newStateDoc(), nil
	}
	// A pipe or a device could block the read, or never end it.
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w %s is not a regular file", ErrState, path)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newStateDoc(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrState, path, err)
	}
	d, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v (fix or remove the file; it holds the changes made through the manager)", ErrState, path, err)
	}
	return d, nil
}

// parseState decodes and validates the content of a state file.
func parseState(data []byte) (*stateDoc, error) {
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxStateBytes)
	}
	d := newStateDoc()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(d); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the JSON object")
	}
	if d.Version != stateVersion {
		return nil, fmt.Errorf("version %d: this tether reads version %d", d.Version, stateVersion)
	}
	if d.Balancers == nil {
		d.Balancers = map[string]*balancerDoc{}
	}
	for name, b := range d.Balancers {
		if b == nil {
			return nil, fmt.Errorf("balancer %q: null", name)
		}
		if err := b.validate(); err != nil {
			return nil, fmt.Errorf("balancer %q: %w", name, err)
		}
	}
	d.prune()
	return d, nil
}

func (b *balancerDoc) validate() error {
	for r, o := range b.Overrides {
		if !route.Valid(r) {
			return fmt.Errorf("override of invalid route %q", r)
		}
		for _, s := range []string{o.State, o.FileState} {
			if _, err := balancer.ParseState(s); err != nil {
				return fmt.Errorf("member %q: %w", r, err)
			}
		}
		if (o.State == "") != (o.FileState == "") || (o.Weight == 0) != (o.FileWeight == 0) {
			return fmt.Errorf("member %q: a run-time value needs the file's value it replaced", r)
		}
		for _, w := range []int{o.Weight, o.FileWeight} {
			if w < 0 || w > balancer.MaxWeight {
				return fmt.Errorf("member %q: weight %d is not from 1 to %d", r, w, balancer.MaxWeight)
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range b.Added {
		if err := m.check(); err != nil {
			return fmt.Errorf("added member %q: %w", m.Route, err)
		}
		if seen[m.Route] {
			return fmt.Errorf("member %q added twice", m.Route)
		}
		seen[m.Route] = true
	}
	for r, m := range b.Removed {
		if err := m.check(); err != nil || m.Route != r {
			return fmt.Errorf("removed member %q: invalid record", r)
		}
		if seen[r] {
			return fmt.Errorf("member %q both added and removed", r)
		}
	}
	return nil
}

// saveState writes d to path atomically: a temporary file in the same
// directory, synced, renamed over path, and the directory synced, so that
// a crash leaves either the old file or the new one.
func saveState(path string, d *stateDoc) error {
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("%w: sync %s: %v", ErrState, dir, err)
		}
	}
	return nil
}
