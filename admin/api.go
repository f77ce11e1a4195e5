package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tetherlb/tether/balancer"
)

// maxBodyBytes bounds request bodies: a change is a few dozen bytes.
const maxBodyBytes = 64 << 10

// caller is who sent an authenticated request.
type caller struct {
	role     role
	operator string // X-Tether-Operator, checked
	remote   string
}

func (c caller) entry(e AuditEntry) AuditEntry {
	e.Actor, e.Operator, e.Remote = c.role.String(), c.operator, c.remote
	return e
}

type apiFunc func(w http.ResponseWriter, r *http.Request, c caller) error

func (m *Manager) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", m.healthz)
	m.uiRoutes(mux)
	m.api(mux, "GET /api/v1/balancers", roleReadOnly, m.listBalancers)
	m.api(mux, "GET /api/v1/balancers/{name}", roleReadOnly, m.getBalancer)
	m.api(mux, "GET /api/v1/balancers/{name}/members/{route}", roleReadOnly, m.getMember)
	m.api(mux, "PATCH /api/v1/balancers/{name}/members/{route}", roleReadWrite, m.patchMember)
	m.api(mux, "DELETE /api/v1/balancers/{name}/members/{route}", roleReadWrite, m.removeMember)
	m.api(mux, "POST /api/v1/balancers/{name}/members", roleReadWrite, m.addMember)
	m.api(mux, "GET /api/v1/whoami", roleReadOnly, whoami)
	m.api(mux, "GET /api/v1/audit", roleReadOnly, m.getAudit)
	m.api(mux, "GET /api/v1/group", roleReadOnly, m.getGroup)
	m.api(mux, "GET /api/v1/events", roleReadOnly, m.events)
	m.api(mux, "GET /metrics", roleReadOnly, m.metrics)
	// The same paths with other methods: a JSON 405 naming the allowed ones.
	for path, allow := range map[string]string{
		"/api/v1/balancers":                        "GET",
		"/api/v1/balancers/{name}":                 "GET",
		"/api/v1/balancers/{name}/members/{route}": "GET, PATCH, DELETE",
		"/api/v1/balancers/{name}/members":         "POST",
		"/api/v1/audit":                            "GET",
		"/api/v1/group":                            "GET",
		"/api/v1/whoami":                           "GET",
		"/api/v1/events":                           "GET",
		"/metrics":                                 "GET",
		"/healthz":                                 "GET",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, fmt.Errorf("%w: %s %s takes %s", ErrMethod, r.Method, r.URL.Path, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: %s", ErrNotFound, r.URL.Path))
	})
	m.mux = mux
}

// api registers an API handler that needs the role need: it checks the
// token, and for changes the Origin rule and the operator header.
func (m *Manager) api(mux *http.ServeMux, pattern string, need role, f apiFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		a := m.access.Load()
		c := caller{role: a.roleOf(r), remote: r.RemoteAddr}
		err := m.authorize(a, r, &c, need)
		if err == nil {
			err = f(w, r, c)
		}
		if err != nil {
			if s := errorStatus(err); s == http.StatusUnauthorized || s == http.StatusForbidden {
				m.o.Logger.Warn("manager: request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", s, "err", err)
			}
			writeError(w, err)
		}
	})
}

func (m *Manager) authorize(a *access, r *http.Request, c *caller, need role) error {
	if c.role == roleNone {
		return ErrUnauthorized
	}
	if need != roleReadWrite {
		return nil
	}
	if c.role != roleReadWrite {
		return ErrReadOnly
	}
	if err := a.checkOrigin(r); err != nil {
		return err
	}
	op := r.Header.Get("X-Tether-Operator")
	if err := checkText("X-Tether-Operator", op, 128); err != nil {
		return err
	}
	c.operator = op
	return nil
}

// checkText refuses text that is too long or has control characters: it
// goes into the audit log.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return &FieldError{field, fmt.Sprintf("longer than %d bytes", max)}
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '\uFFFD' {
			return &FieldError{field, "control characters or invalid UTF-8 are not allowed"}
		}
	}
	return nil
}

// decodeBody reads a JSON request body into v: JSON content type, at most
// maxBodyBytes, no unknown fields, one value.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return ErrMediaType
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: invalid JSON body: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: invalid JSON body: more than one value", ErrBadRequest)
	}
	return nil
}

func (m *Manager) snapshot() Snapshot {
	s := Snapshot{Time: m.o.Now(), Balancers: []BalancerView{}, Group: m.groupView()}
	for _, b := range m.o.Source.Balancers() {
		if b != nil {
			s.Balancers = append(s.Balancers, m.viewBalancer(b))
		}
	}
	return s
}

func (m *Manager) balancerOf(r *http.Request) (*balancer.Balancer, error) {
	name := r.PathValue("name")
	if b := m.o.Source.Balancer(name); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w %q", ErrNoSuchBalancer, name)
}

// Whoami is the answer of GET /api/v1/whoami.
type Whoami struct {
	// Role is "read-write" or "read-only".
	Role string `json:"role"`
}

func whoami(w http.ResponseWriter, r *http.Request, c caller) error {
	role := "read-only"
	if c.role == roleReadWrite {
		role = "read-write"
	}
	writeJSON(w, http.StatusOK, Whoami{Role: role})
	return nil
}

// lockBalancer takes the change lock, brings the state file up to date
// and returns the request's balancer, with the function that unlocks.
func (m *Manager) lockBalancer(r *http.Request) (*balancer.Balancer, func(), error) {
	m.mu.Lock()
	m.applyPending()
	b, err := m.balancerOf(r)
	if err != nil {
		m.mu.Unlock()
		return nil, nil, err
	}
	return b, m.mu.Unlock, nil
}

func (m *Manager) listBalancers(w http.ResponseWriter, r *http.Request, _ caller) error {
	writeJSON(w, http.StatusOK, m.snapshot())
	return nil
}

func (m *Manager) getBalancer(w http.ResponseWriter, r *http.Request, _ caller) error {
	b, err := m.balancerOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m.viewBalancer(b))
	return nil
}

func (m *Manager) getMember(w http.ResponseWriter, r *http.Request, _ caller) error {
	b, err := m.balancerOf(r)
	if err != nil {
		return err
	}
	v, ok := m.findMember(b, r.PathValue("route"))
	if !ok {
		return fmt.Errorf("%w: %q in balancer %q", balancer.ErrNoSuchMember, r.PathValue("route"), b.Name())
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// parseChange checks a PATCH body on its own.
func parseChange(ch MemberChange) (st balancer.State, err error) {
	if ch.State == nil && ch.Weight == nil {
		return 0, fmt.Errorf("%w: nothing to change: give \"state\" and/or \"weight\"", ErrBadRequest)
	}
	if ch.State != nil {
		if *ch.State == "" {
			return 0, &FieldError{"state", "must not be empty: use active, draining, stopped or standby"}
		}
		if st, err = balancer.ParseState(*ch.State); err != nil {
			return 0, &FieldError{"state", fmt.Sprintf("%q is not one of active, draining, stopped, standby", *ch.State)}
		}
	}
	if ch.Weight != nil && (*ch.Weight < 1 || *ch.Weight > balancer.MaxWeight) {
		return 0, &FieldError{"weight", fmt.Sprintf("%d is not from 1 to %d", *ch.Weight, balancer.MaxWeight)}
	}
	return st, checkText("reason", ch.Reason, 200)
}

func (m *Manager) patchMember(w http.ResponseWriter, r *http.Request, c caller) error {
	var ch MemberChange
	if err := decodeBody(w, r, &ch); err != nil {
		return err
	}
	st, err := parseChange(ch)
	if err != nil {
		return err
	}
	b, unlock, err := m.lockBalancer(r)
	if err != nil {
		return err
	}
	defer unlock()
	name, rt, pool := b.Name(), r.PathValue("route"), b.Pool()
	mem := pool.Lookup(rt)
	if mem == nil {
		return fmt.Errorf("%w: %q in balancer %q", balancer.ErrNoSuchMember, rt, name)
	}
	next := m.doc.clone()
	before, after := &AuditValue{}, &AuditValue{}
	var actions []string
	if ch.State != nil {
		next.setState(m.base, name, rt, st.String())
		before.State, after.State = mem.State().String(), st.String()
		actions = append(actions, "state")
	}
	if ch.Weight != nil {
		next.setWeight(m.base, name, rt, *ch.Weight)
		before.Weight, after.Weight = mem.Weight(), *ch.Weight
		actions = append(actions, "weight")
	}
	if err := m.save(next); err != nil {
		return err
	}
	prev := m.doc
	m.doc = next
	// Validated above, and the member cannot go away meanwhile: removals
	// and reloads hold m.mu. The values returned are the true "before".
	if err := applyChange(pool, rt, st, ch, before); err != nil {
		m.doc = prev
		if serr := m.save(prev); serr != nil {
			m.o.Logger.Error("manager: the state file could not be restored after a failed change", "err", serr)
		}
		return err
	}
	e := m.audit.add(c.entry(AuditEntry{
		Balancer: name, Member: rt, Action: strings.Join(actions, ","), Before: before, After: after, Reason: ch.Reason,
	}))
	if ch.State != nil {
		m.share(kindState, name, rt, sharedChange{State: st.String(), Audit: e})
	}
	if ch.Weight != nil {
		m.share(kindWeight, name, rt, sharedChange{Weight: *ch.Weight, Audit: e})
	}
	v, _ := m.findMember(b, rt)
	writeJSON(w, http.StatusOK, ChangeResult{Member: v, Audit: e})
	return nil
}

// applyChange sets the member's state and weight, recording the previous
// values in before.
func applyChange(pool *balancer.Pool, rt string, st balancer.State, ch MemberChange, before *AuditValue) error {
	if ch.State != nil {
		old, err := pool.SetState(rt, st, apiReason)
		if err != nil {
			return err
		}
		before.State = old.String()
	}
	if ch.Weight != nil {
		old, err := pool.SetWeight(rt, *ch.Weight)
		if err != nil {
			return err
		}
		before.Weight = old
	}
	return nil
}

func (m *Manager) addMember(w http.ResponseWriter, r *http.Request, c caller) error {
	var nm NewMember
	if err := decodeBody(w, r, &nm); err != nil {
		return err
	}
	spec := nm.MemberSpec
	if err := spec.check(); err != nil {
		return err
	}
	if m.o.ValidateMember != nil {
		if err := m.o.ValidateMember(spec); err != nil {
			return err
		}
	}
	if err := checkText("reason", nm.Reason, 200); err != nil {
		return err
	}
	mc, err := spec.Config()
	if err != nil {
		return err
	}
	b, unlock, err := m.lockBalancer(r)
	if err != nil {
		return err
	}
	defer unlock()
	name := b.Name()
	if b.Pool().Lookup(spec.Route) != nil {
		return fmt.Errorf("%w: route %q in balancer %q", balancer.ErrExists, spec.Route, name)
	}
	if f, ok := m.base.find(name, spec.Route); ok && f.URL != spec.URL {
		return fmt.Errorf("%w: the configuration file defines member %q with url %s; to change its url, change the file", ErrConflict, spec.Route, f.URL)
	}
	next := m.doc.clone()
	next.add(m.base, name, spec)
	if err := m.save(next); err != nil {
		return err
	}
	if _, err := b.Pool().Add(mc); err != nil {
		if serr := m.save(m.doc); serr != nil {
			m.o.Logger.Error("manager: the state file could not be restored after a refused add", "err", serr)
		}
		return err
	}
	m.doc = next
	n := spec.normal()
	e := m.audit.add(c.entry(AuditEntry{
		Balancer: name, Member: spec.Route, Action: "add",
		After: &AuditValue{URL: mc.URL.String(), State: n.State, Weight: n.Weight}, Reason: nm.Reason,
	}))
	m.share(kindMember, name, spec.Route, sharedChange{Member: &n, Audit: e})
	v, _ := m.findMember(b, spec.Route)
	w.Header().Set("Location", "/api/v1/balancers/"+url.PathEscape(name)+"/members/"+url.PathEscape(spec.Route))
	writeJSON(w, http.StatusCreated, ChangeResult{Member: v, Audit: e})
	return nil
}

func (m *Manager) removeMember(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	force, err := parseBool(q.Get("force"))
	if err != nil {
		return &FieldError{"force", err.Error()}
	}
	reason := q.Get("reason")
	if err := checkText("reason", reason, 200); err != nil {
		return err
	}
	b, unlock, err := m.lockBalancer(r)
	if err != nil {
		return err
	}
	defer unlock()
	name, rt := b.Name(), r.PathValue("route")
	v, ok := m.findMember(b, rt)
	if !ok {
		return fmt.Errorf("%w: %q in balancer %q", balancer.ErrNoSuchMember, rt, name)
	}
	idle := v.State == "stopped" || (v.State == "draining" && v.LiveSessions == 0 && v.InFlight == 0)
	if !idle && !force {
		return fmt.Errorf("%w: member %q is %s with %d live sessions: stop it or let its drain finish first, or remove it with force=true", ErrConflict, rt, v.State, v.LiveSessions)
	}
	next := m.doc.clone()
	next.remove(m.base, name, rt)
	if err := m.save(next); err != nil {
		return err
	}
	if _, err := b.Pool().Remove(rt); err != nil {
		return err
	}
	m.doc = next
	e := m.audit.add(c.entry(AuditEntry{
		Balancer: name, Member: rt, Action: "remove",
		Before: &AuditValue{URL: v.URL, State: v.State, Weight: v.Weight}, Reason: reason,
	}))
	m.share(kindMember, name, rt, sharedChange{Audit: e})
	writeJSON(w, http.StatusOK, ChangeResult{Member: v, Audit: e})
	return nil
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", s)
	}
	return v, nil
}

func (m *Manager) getAudit(w http.ResponseWriter, r *http.Request, _ caller) error {
	after, limit, err := auditParams(r.URL.Query())
	if err != nil {
		return err
	}
	entries, _ := m.audit.since(after, limit)
	if entries == nil {
		entries = []AuditEntry{}
	}
	writeJSON(w, http.StatusOK, AuditPage{Entries: entries})
	return nil
}

// auditParams reads ?after=ID&limit=N (default 100, at most 1000).
func auditParams(q url.Values) (after uint64, limit int, err error) {
	limit = 100
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, &FieldError{"after", fmt.Sprintf("%q is not an audit entry id", s)}
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, &FieldError{"limit", fmt.Sprintf("%q is not from 1 to 1000", s)}
		}
	}
	return after, limit, nil
}

func (m *Manager) metrics(w http.ResponseWriter, r *http.Request, _ caller) error {
	if m.o.Metrics == nil {
		return fmt.Errorf("%w: metrics are not enabled", ErrNotFound)
	}
	// The exposition format is not HTML, but nothing should render it.
	m.o.Metrics.ServeHTTP(w, r)
	return nil
}
