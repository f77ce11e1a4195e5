// Package admin is Tether's manager: a JSON API to see and change the
// members of running balancers (state, weight, adding, removing), an audit
// log of every change, a state file that keeps changes across restarts,
// a live feed, the embedded web UI, and the Client that `tether ctl` uses.
//
// Every request but GET /healthz and the UI's static files needs a bearer
// token in the Authorization header; changes need the read-write token, a
// PATCH, POST or DELETE, and pass an Origin check (see access.checkOrigin),
// so that no cross-site request can change anything.
package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/group"
)

// Source gives the manager the running balancers. internal/app's Server
// implements it.
type Source interface {
	// Balancers returns the running balancers in configuration order.
	Balancers() []*balancer.Balancer
	// Balancer returns the running balancer called name, or nil.
	Balancer(name string) *balancer.Balancer
}

// Options configures a Manager. Zero values mean the defaults given.
type Options struct {
	// Source gives the balancers to manage. Required.
	Source Source
	// Token is the read-write bearer token. Required.
	Token string
	// ReadOnlyToken, if set, may read everything and change nothing.
	ReadOnlyToken string
	// AllowedOrigins are browser origins, besides the manager's own, that
	// may send changes (and read answers, through CORS). Default: none.
	AllowedOrigins []string
	// StateFile keeps run-time changes across restarts. Default "": changes
	// last until the process ends.
	StateFile string
	// AuditFile, if set, keeps every audit entry for good, one JSON line
	// each; the latest are read back at start (see auditfile.go), lines
	// that are not entries skipped without a warning (CheckAuditFile
	// counts them). Default "": entries are kept in memory (AuditSize)
	// and written to Logger.
	AuditFile string
	// Baseline is the members as the configuration file gives them; the
	// state file's changes are reconciled against it (see the state file
	// rule in state.go).
	Baseline Baseline
	// ValidateMember, if set, checks a member to add beyond the balancer's
	// own rules (internal/app passes the configuration file's rules). It
	// should return a *FieldError for a bad field.
	ValidateMember func(MemberSpec) error
	// Group, if set, is the group of instances changes are shared with
	// (see Group). Its Apply must call ApplyShared and its Tallies
	// Tallies. Default nil: this instance is on its own.
	Group Group
	// Metrics, if set, is served at GET /metrics (token required).
	Metrics http.Handler
	// Logger receives the audit log and refused requests. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// AuditSize is how many audit entries are kept in memory. Default 1000.
	AuditSize int
	// FeedInterval is how often the live feed sends a snapshot. Default 1s.
	FeedInterval time.Duration
	// FeedMaxAge ends a live feed connection after this long, so that
	// clients reconnect and present their token again. Default 5m.
	FeedMaxAge time.Duration
}

// apiReason is the reason the manager gives the pool for its own changes;
// the state change hook skips them, since the API records them itself.
const apiReason = "api"

// Manager serves the manager API and UI. It is an http.Handler.
type Manager struct {
	o      Options
	access atomic.Pointer[access]
	audit  *auditLog
	mux    *http.ServeMux

	mu   sync.Mutex // serializes changes, reloads and state file writes
	doc  *stateDoc  // run-time changes, as in the state file
	base Baseline   // the configuration file's members

	sketchMu sync.Mutex
	sketches map[string]group.Tally // this instance's, as last sent to the group

	pendMu  sync.Mutex
	pending []pendingChange // state changes from the hook, not yet in doc
	wake    chan struct{}
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
}

// pendingChange is a state change the balancer made on its own.
type pendingChange struct {
	balancer string
	change   balancer.StateChange
}

// FieldError is an invalid value in a request to add a member, with the
// field it is in ("url", "route", "weight", "state").
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// New returns a Manager. It reads the state file, forgets the changes the
// configuration file has overridden since (recording that in the audit
// log), and starts the goroutine that records the balancers' own state
// changes; Close stops it.
func New(o Options) (*Manager, error) {
	if o.Source == nil {
		return nil, errors.New("admin: Options.Source is required")
	}
	if o.Token == "" {
		return nil, errors.New("admin: a token is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AuditSize <= 0 {
		o.AuditSize = 1000 // hours of operator activity; the log keeps them all
	}
	if o.FeedInterval <= 0 {
		o.FeedInterval = time.Second // the UI's refresh rate
	}
	if o.FeedMaxAge <= 0 {
		o.FeedMaxAge = 5 * time.Minute // a rotated token is noticed this fast
	}
	if o.Baseline == nil {
		o.Baseline = Baseline{}
	}
	doc, err := loadState(o.StateFile)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		o: o, audit: newAuditLog(o.AuditSize, o.Logger, o.Now), doc: doc, base: o.Baseline,
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{}),
	}
	if o.Group != nil {
		m.audit.instance = o.Group.Name() // before restore: it names this instance's entries
	}
	if o.AuditFile != "" {
		f, entries, err := openAuditFile(o.AuditFile, o.AuditSize)
		if err != nil {
			return nil, err
		}
		m.audit.file = f
		m.audit.restore(entries)
	}
	m.access.Store(newAccess(o.Token, o.ReadOnlyToken, o.AllowedOrigins))
	m.recordDrops(doc.reconcile(o.Baseline))
	// Write the file now: a state file that cannot be written is found at
	// start, not during an incident.
	if o.StateFile != "" {
		if err := saveState(o.StateFile, doc); err != nil {
			m.closeAuditFile()
			return nil, fmt.Errorf("%w: the manager must be able to write it", err)
		}
	}
	m.routes()
	go m.work()
	return m, nil
}

// Effective returns the members to run: the configuration file's with the
// run-time changes of the state file applied.
func (m *Manager) Effective() Baseline {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc.effective(m.base)
}

// Reload reconciles the run-time changes with base, the members of a new
// configuration file, and calls apply with the members to run. If apply
// fails, nothing changes. No change through the API runs meanwhile.
func (m *Manager) Reload(base Baseline, apply func(Baseline) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applyPending()
	next := m.doc.clone()
	drops := next.reconcile(base)
	before, after := m.doc.effective(m.base), next.effective(base)
	if err := apply(after); err != nil {
		return err
	}
	m.doc, m.base = next, base
	m.recordDrops(drops)
	m.recordReload(before, after)
	if len(drops) > 0 {
		if err := m.save(next); err != nil {
			m.o.Logger.Error("manager: the state file could not be written after a reload", "err", err)
		}
	}
	return nil
}

// SetAccess replaces the tokens and allowed origins (on a reload).
func (m *Manager) SetAccess(token, readOnlyToken string, allowedOrigins []string) error {
	if token == "" {
		return errors.New("admin: a token is required")
	}
	m.access.Store(newAccess(token, readOnlyToken, allowedOrigins))
	return nil
}

// OnStateChange records a state change a balancer made: in the audit log,
// and in the state file when it is the end of a drain (so that a member
// stopped by drain.done stays stopped after a restart). It is the
// balancers' Options.OnStateChange hook and does not block.
func (m *Manager) OnStateChange(bal string, c balancer.StateChange) {
	if c.Reason == apiReason {
		return // recorded by the API handler
	}
	actor := "balancer"
	switch {
	case c.Reason == "config":
		actor = "config"
	case (c.From == balancer.Active && c.To == balancer.Draining) || (c.From == balancer.Draining && c.To == balancer.Active):
		actor = "member" // only a member's announcement makes these on its own
	}
	m.audit.add(AuditEntry{
		Actor: actor, Balancer: bal, Member: c.Member, Action: "state",
		Before: &AuditValue{State: c.From.String()}, After: &AuditValue{State: c.To.String()}, Reason: c.Reason,
	})
	if c.Reason == "config" || c.From != balancer.Draining || c.To != balancer.Stopped {
		return
	}
	m.pendMu.Lock()
	m.pending = append(m.pending, pendingChange{bal, c})
	m.pendMu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// work records pending changes in the state file.
func (m *Manager) work() {
	defer close(m.done)
	for {
		select {
		case <-m.closing:
			m.mu.Lock()
			m.applyPending()
			m.mu.Unlock()
			return
		case <-m.wake:
			m.mu.Lock()
			m.applyPending()
			m.mu.Unlock()
		}
	}
}

// applyPending moves the pending changes into the state file. m.mu is held.
func (m *Manager) applyPending() {
	m.pendMu.Lock()
	p := m.pending
	m.pending = nil
	m.pendMu.Unlock()
	if len(p) == 0 {
		return
	}
	next := m.doc.clone()
	for _, c := range p {
		next.setState(m.base, c.balancer, c.change.Member, c.change.To.String())
	}
	if err := m.save(next); err != nil {
		m.o.Logger.Error("manager: the state file could not be written; a finished drain will not survive a restart", "err", err)
	}
	m.doc = next
}

// save writes doc to the state file, if there is one.
func (m *Manager) save(doc *stateDoc) error {
	if m.o.StateFile == "" {
		return nil
	}
	if err := saveState(m.o.StateFile, doc); err != nil {
		return fmt.Errorf("%w (nothing was changed)", err)
	}
	return nil
}

func (m *Manager) recordDrops(drops []dropped) {
	for _, d := range drops {
		m.audit.add(AuditEntry{Actor: "config", Balancer: d.balancer, Member: d.member, Action: "forget", Reason: d.why})
	}
}

// recordReload audits what a reload added, removed and re-weighted; its
// state changes come through OnStateChange.
func (m *Manager) recordReload(before, after Baseline) {
	bals := map[string]bool{}
	for b := range before {
		bals[b] = true
	}
	for b := range after {
		bals[b] = true
	}
	for _, bal := range slices.Sorted(maps.Keys(bals)) {
		was := map[string]MemberSpec{}
		for _, s := range before[bal] {
			was[s.Route] = s
		}
		for _, s := range after[bal] {
			old, ok := was[s.Route]
			delete(was, s.Route)
			switch {
			case !ok || old.URL != s.URL:
				m.audit.add(AuditEntry{Actor: "config", Balancer: bal, Member: s.Route, Action: "add",
					After: &AuditValue{URL: s.URL, State: s.State, Weight: s.Weight}, Reason: "configuration reloaded"})
			case old.Weight != s.Weight:
				m.audit.add(AuditEntry{Actor: "config", Balancer: bal, Member: s.Route, Action: "weight",
					Before: &AuditValue{Weight: old.Weight}, After: &AuditValue{Weight: s.Weight}, Reason: "configuration reloaded"})
			}
		}
		for _, r := range slices.Sorted(maps.Keys(was)) {
			s := was[r]
			m.audit.add(AuditEntry{Actor: "config", Balancer: bal, Member: r, Action: "remove",
				Before: &AuditValue{URL: s.URL, State: s.State, Weight: s.Weight}, Reason: "configuration reloaded"})
		}
	}
}

// Close ends the live feeds and records pending changes. Call it before
// shutting down the server the manager is served by.
func (m *Manager) Close() {
	m.once.Do(func() { close(m.closing) })
	<-m.done
	m.closeAuditFile()
}

func (m *Manager) closeAuditFile() {
	if f := m.audit.file; f != nil {
		if err := f.close(); err != nil {
			m.o.Logger.Error("audit: closing the audit file", "file", f.path, "err", err)
		}
	}
}

// ServeHTTP serves the API, the UI and the metrics.
func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secure(w.Header())
	if m.access.Load().cors(w, r) {
		return
	}
	m.mux.ServeHTTP(w, r)
}
