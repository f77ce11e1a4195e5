package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetherlb/tether/admin"
	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/group"
)

// TokenEnv is the environment variable holding the manager's token when
// the file gives neither manager.token nor manager.token_file.
const TokenEnv = "TETHER_MANAGER_TOKEN"

// minTokenBytes is the token length below which serve warns at start
// (tokenWarnings): a token should carry at least 128 random bits.
const minTokenBytes = 16

// hooks are what the composition root attaches to every balancer.
type hooks struct {
	observer      balancer.Observer
	onStateChange func(string, balancer.StateChange)
	// sessionHash keys the balancers' session tracking (a group's hash).
	sessionHash func(string) uint64
	// liveElsewhere says whether a group's other instances see sessions
	// of a member (balancer name, route).
	liveElsewhere func(bal, rt string) bool
	// getenv reads the environment (AJP secrets). Default os.Getenv.
	getenv func(string) string
}

// managed is the manager of a running configuration: the admin API and
// UI on a listener of their own, the metrics and the state file. A nil
// *managed is no manager; its methods then do nothing.
type managed struct {
	mgr   *admin.Manager
	group *group.Group // nil: not in a group
	src   *serverSource
	cfg   config.Manager
	// groupCfg is the group section the instance started with.
	groupCfg *config.Group
	srv      *sideServer // nil until the manager listens
	ln       net.Listener
	logger   *slog.Logger
}

// serverSource gives the manager and the metrics the server's balancers
// once the server exists.
type serverSource struct{ p atomic.Pointer[Server] }

func (s *serverSource) Balancers() []*balancer.Balancer {
	if srv := s.p.Load(); srv != nil {
		return srv.Balancers()
	}
	return nil
}

func (s *serverSource) Balancer(name string) *balancer.Balancer {
	if srv := s.p.Load(); srv != nil {
		return srv.Balancer(name)
	}
	return nil
}

// newManaged makes the manager with the tokens, metrics and group that
// load made (reading and writing its state file, opening its audit
// file), then starts the group and takes its state. It returns nil if the
// configuration has no manager (ld.tel may then be nil). On error, ld's
// group is closed.
func newManaged(cfg config.Config, o ServeOptions, ld *loaded) (*managed, error) {
	if cfg.Manager == nil {
		return nil, nil
	}
	rw, ro, g, tel := ld.rw, ld.ro, ld.group, ld.tel
	src := tel.src
	var shared admin.Group
	if g != nil {
		shared = g
	}
	mgr, err := admin.New(admin.Options{
		Source: src, Token: rw, ReadOnlyToken: ro, AllowedOrigins: cfg.Manager.AllowedOrigins, Group: shared,
		StateFile: cfg.Manager.StateFile, AuditFile: cfg.Manager.AuditFile, Baseline: baselineOf(cfg), ValidateMember: validateMember,
		Metrics: tel.handler,
		Logger:  o.Logger,
	})
	if err != nil {
		ld.close()
		return nil, fmt.Errorf("manager: %w", err)
	}
	ld.mgr = mgr // the group's records are applied from now on
	// The group's state is taken before the balancers are built: they
	// start with it.
	if err := startGroup(g, mgr, cfg, tel.reg, o.Logger); err != nil {
		mgr.Close()
		g.Close()
		return nil, fmt.Errorf("group: %w", err)
	}
	return &managed{mgr: mgr, group: g, groupCfg: cfg.Group, src: src, cfg: *cfg.Manager, logger: o.Logger}, nil
}

// managerTokens reads the read-write token (manager.token, else
// manager.token_file, else the TETHER_MANAGER_TOKEN environment variable
// through getenv) and the read-only one. Its error is a
// config.FieldError; it never quotes a token.
func managerTokens(m *config.Manager, getenv func(string) string) (rw, ro string, err error) {
	rw, err = tokenOf("token", m.Token, m.TokenFile)
	if err != nil {
		return "", "", err
	}
	if rw == "" {
		rw = strings.TrimSpace(getenv(TokenEnv))
	}
	if rw == "" {
		return "", "", config.FieldError{Field: "manager", Msg: fmt.Sprintf("no token: set manager.token, manager.token_file or the %s environment variable (the manager never runs without one)", TokenEnv)}
	}
	ro, err = tokenOf("read_only_token", m.ReadOnlyToken, m.ReadOnlyTokenFile)
	if err != nil {
		return "", "", err
	}
	if ro == rw {
		field := "manager.read_only_token"
		if m.ReadOnlyTokenFile != "" {
			field += "_file"
		}
		return "", "", config.FieldError{Field: field, Msg: "the read-only token must differ from the token"}
	}
	return rw, ro, nil
}

// tokenWarnings returns the warnings about rw and ro, the tokens
// managerTokens read from m: one for each that is shorter than
// minTokenBytes, at the field it came from (manager.token_file,
// manager.token, else manager for TokenEnv; manager.read_only_token_file
// or manager.read_only_token). Serve logs them at start and at each
// reload; they never quote a token.
func tokenWarnings(m *config.Manager, rw, ro string) []config.FieldError {
	var ws []config.FieldError
	short := func(field, what string) {
		ws = append(ws, config.FieldError{Field: field, Msg: fmt.Sprintf(
			"%s is short; use at least %d random bytes, e.g. openssl rand -hex 32", what, minTokenBytes)})
	}
	if len(rw) < minTokenBytes {
		switch {
		case m.TokenFile != "":
			short("manager.token_file", "the token")
		case m.Token != "":
			short("manager.token", "the token")
		default:
			short("manager", "the token in "+TokenEnv)
		}
	}
	if ro != "" && len(ro) < minTokenBytes {
		if m.ReadOnlyTokenFile != "" {
			short("manager.read_only_token_file", "the read-only token")
		} else {
			short("manager.read_only_token", "the read-only token")
		}
	}
	return ws
}

// auditWarnings returns the warnings about the audit file at path, of
// which skipped lines are not entries (admin.CheckAuditFile): the
// manager skips them and leaves them in the file.
func auditWarnings(path string, skipped int) []config.FieldError {
	if skipped == 0 {
		return nil
	}
	lines := "lines that are not entries are"
	if skipped == 1 {
		lines = "line that is not an entry is"
	}
	return []config.FieldError{{Field: "manager.audit_file", Msg: fmt.Sprintf(
		"audit file %s: %d %s skipped and left in the file (a write cut short by a crash?)", path, skipped, lines)}}
}

func tokenOf(field, value, file string) (string, error) {
	if file == "" {
		return value, nil
	}
	tok, err := config.ReadSecret(file, "", nil)
	if err != nil {
		return "", config.FieldError{Field: "manager." + field + "_file", Msg: err.Error()}
	}
	return tok, nil
}

// validateMember applies the configuration file's rules to a member added
// through the manager.
func validateMember(s admin.MemberSpec) error {
	err := config.ValidateMember(&config.Member{URL: s.URL, Route: s.Route, Weight: s.Weight, State: s.State, MaxConns: s.MaxConns})
	var fes config.FieldErrors
	if errors.As(err, &fes) && len(fes) > 0 {
		msgs := make([]string, len(fes))
		for i, fe := range fes {
			msgs[i] = fe.Error()
		}
		return &admin.FieldError{Field: fes[0].Field, Msg: strings.Join(msgs, "; ")}
	}
	return err
}

// baselineOf returns the members of cfg as the manager sees them.
func baselineOf(cfg config.Config) admin.Baseline {
	b := admin.Baseline{}
	for _, bal := range cfg.Balancers {
		ms := make([]admin.MemberSpec, len(bal.Members))
		for i, m := range bal.Members {
			ms[i] = admin.MemberSpec{Route: m.Route, URL: m.URL, Weight: m.Weight, State: m.State, MaxConns: m.MaxConns}
		}
		b[bal.Name] = ms
	}
	return b
}

// withMembers returns cfg with the members of eff. What the manager does
// not know of a member (its AJP secret) is kept from the file when the
// member has the same route and URL there.
func withMembers(cfg config.Config, eff admin.Baseline) config.Config {
	cfg.Balancers = append([]config.Balancer(nil), cfg.Balancers...)
	for i := range cfg.Balancers {
		b := &cfg.Balancers[i]
		file := make(map[string]config.Member, len(b.Members))
		for _, m := range b.Members {
			file[m.Route] = m
		}
		ms := eff[b.Name]
		b.Members = make([]config.Member, len(ms))
		for j, m := range ms {
			mem := config.Member{}
			if f, ok := file[m.Route]; ok && f.URL == m.URL {
				mem = f
			}
			mem.URL, mem.Route, mem.Weight, mem.State, mem.MaxConns = m.URL, m.Route, m.Weight, m.State, m.MaxConns
			b.Members[j] = mem
		}
	}
	return cfg
}

// effective returns cfg with the state file's run-time changes applied.
func (m *managed) effective(cfg config.Config) config.Config {
	if m == nil {
		return cfg
	}
	return withMembers(cfg, m.mgr.Effective())
}

// hooks returns the state change hook for the balancers.
func (m *managed) hooks() hooks {
	if m == nil {
		return hooks{}
	}
	h := hooks{onStateChange: m.mgr.OnStateChange}
	if m.group != nil {
		h.sessionHash, h.liveElsewhere = m.group.SessionHash, m.mgr.LiveElsewhere
	}
	return h
}

// start serves the manager for srv.
func (m *managed) start(srv *Server) error {
	if m == nil {
		return nil
	}
	m.src.p.Store(srv)
	srv.mgr = m
	addr := m.cfg.Listen
	if addr == "" {
		addr = config.DefaultManagerListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("manager: listen %s: %w", addr, err)
	}
	m.ln = ln
	m.srv = startSide(ln, m.mgr, 30*time.Second, 16<<10, m.logger, "manager")
	m.logger.Info("manager listening", "url", "http://"+ln.Addr().String()+"/")
	return nil
}

// reload applies next, a new configuration file, through apply (the
// server's Reload), with the run-time changes that still hold.
func (m *managed) reload(next config.Config, o ServeOptions, apply func(config.Config) error) error {
	if m == nil {
		if next.Manager != nil {
			o.Logger.Warn("adding a manager takes effect at the next restart")
		}
		return apply(next)
	}
	if next.Manager == nil {
		return errors.New("removing the manager needs a restart")
	}
	rw, ro, err := managerTokens(next.Manager, o.getenv)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(next.Group, m.groupCfg) {
		m.logger.Warn("group: a changed group section takes effect at the next restart")
	}
	if next.Manager.Listen != m.cfg.Listen || next.Manager.StateFile != m.cfg.StateFile || next.Manager.AuditFile != m.cfg.AuditFile {
		m.logger.Warn("manager: a new listen address, state file or audit file takes effect at the next restart")
	}
	err = m.mgr.Reload(baselineOf(next), func(eff admin.Baseline) error { return apply(withMembers(next, eff)) })
	if err != nil {
		return err
	}
	if err := m.mgr.SetAccess(rw, ro, next.Manager.AllowedOrigins); err != nil {
		return err
	}
	logWarnings(m.logger, tokenWarnings(next.Manager, rw, ro))
	return nil
}

// shutdown ends the live feeds and stops the manager's listener.
func (m *managed) shutdown(timeout time.Duration) {
	if m == nil {
		return
	}
	if m.group != nil {
		if err := m.group.Close(); err != nil {
			m.logger.Warn("group: leaving", "err", err)
		}
	}
	m.mgr.Close()
	m.srv.stop(timeout)
}

// ManagerAddr returns the address the manager listens on, or "" if none.
func (s *Server) ManagerAddr() string {
	if s.mgr == nil || s.mgr.ln == nil {
		return ""
	}
	return s.mgr.ln.Addr().String()
}
