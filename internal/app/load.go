package app

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/tetherlb/tether/admin"
	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/group"
	"github.com/tetherlb/tether/internal/heapfloor"
)

// problems collects the problems found while loading a configuration for
// serving, each at the field of the file it is about, so that all of them
// are reported at once, each with its line (config.Locate).
type problems config.FieldErrors

// add records err at field; an err that is a config.FieldError or
// config.FieldErrors already names its fields and is recorded as it is.
// A nil err, and a problem already recorded, add nothing.
func (ps *problems) add(field string, err error) {
	if err == nil {
		return
	}
	fes, ok := config.AsFieldErrors(err)
	if !ok {
		fes = config.FieldErrors{{Field: field, Msg: err.Error()}}
	}
	for _, fe := range fes {
		if !slices.Contains(*ps, fe) {
			*ps = append(*ps, fe)
		}
	}
}

// err returns the problems as config.FieldErrors, or nil if none.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return config.FieldErrors(ps)
}

// loaded is what the first phase of Serve read, for the second (listen
// and run) to use.
type loaded struct {
	tel *telemetry
	// rw and ro are the manager's tokens ("" without a manager).
	rw, ro string
	// group is this instance's side of the group, made and not started;
	// nil if none. Its records are applied by *mgr, set once the
	// manager exists.
	group *group.Group
	mgr   *admin.Manager
	// heapFloor is the heap goal's floor (TETHER_HEAP_FLOOR), 0 for none.
	heapFloor uint64
}

// load is the first phase of Serve, and the whole of Check: it reads
// and checks everything cfg makes Serve read at start, from files and
// from the environment (o.getenv), and reports every problem at once
// (err), and every warning that serving cfg deserves at start, whether or
// not there are problems (warnings: tokenWarnings, auditWarnings; Serve
// logs them, Check returns them). The problems are about:
// the metrics listener's token (TETHER_METRICS_TOKEN) and whether that
// listener may run without one; the manager's tokens (from their files
// or TETHER_MANAGER_TOKEN); the group's key file; the manager's state
// file (its content, and that its directory takes the new file the
// manager writes at start: admin.CheckStateFile); the audit file (opened
// and read as the manager does: admin.CheckAuditFile); and, for every
// balancer and listener, what Server.plan loads (cookie keys, AJP
// secrets, member TLS files, the listeners' certificates and keys) with
// the balancers built and dropped again.
//
// It binds no port, creates or writes no file, starts nothing and
// contacts no peer: the access log, the audit file and the state file's
// writing are left to the second phase (config.Validate checks that the
// access log can be opened). Its error is config.FieldErrors, each problem at
// its field in the file; on error no *loaded is returned. Each warning is
// at its field too, and none quotes a secret.
func load(cfg config.Config, o ServeOptions) (ld *loaded, warnings []config.FieldError, err error) {
	var ps problems
	ld = &loaded{}
	ld.heapFloor, err = heapFloor(o.getenv)
	ps.add("", err)
	tel, err := newTelemetry(cfg, o)
	ps.add("metrics", err)
	ld.tel = tel
	if m := cfg.Manager; m != nil {
		ld.rw, ld.ro, err = managerTokens(m, o.getenv)
		ps.add("manager", err)
		if err == nil {
			warnings = append(warnings, tokenWarnings(m, ld.rw, ld.ro)...)
		}
		ps.add("manager.state_file", admin.CheckStateFile(m.StateFile))
		if m.AuditFile != "" {
			skipped, err := admin.CheckAuditFile(m.AuditFile)
			ps.add("manager.audit_file", err)
			warnings = append(warnings, auditWarnings(m.AuditFile, skipped)...)
		}
		ld.group, err = newGroup(cfg, &ld.mgr, o.Logger)
		ps.add("group", err)
	}
	s := &Server{logger: o.Logger, hooks: hooks{getenv: o.getenv},
		balancers: map[string]*balancer.Balancer{}, members: map[string][]balancer.MemberConfig{}, listeners: map[string]*listener{}}
	c, err := s.plan(cfg, planCheck)
	ps.add("", err)
	if c != nil {
		c.discard()
	}
	if err := ps.err(); err != nil {
		ld.close()
		return nil, warnings, err
	}
	return ld, warnings, nil
}

// logWarnings logs load's warnings, one line each: what Check returns
// for the same configuration.
func logWarnings(logger *slog.Logger, warnings []config.FieldError) {
	for _, w := range warnings {
		logger.Warn(w.Error())
	}
}

// DefaultHeapFloor is the garbage collector's heap goal floor unless
// TETHER_HEAP_FLOOR says otherwise (see package heapfloor): a burst of a
// thousand new connections takes about 30 MiB of buffers at once.
const DefaultHeapFloor = 64 << 20

// heapFloor reads TETHER_HEAP_FLOOR: a size as GOMEMLIMIT writes it
// (64MiB), or off; unset, DefaultHeapFloor.
func heapFloor(getenv func(string) string) (uint64, error) {
	v := getenv("TETHER_HEAP_FLOOR")
	if v == "" {
		return DefaultHeapFloor, nil
	}
	n, err := heapfloor.ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("TETHER_HEAP_FLOOR: %w", err)
	}
	return n, nil
}

// close drops what load made and the second phase did not take.
func (ld *loaded) close() {
	if ld.group != nil {
		ld.group.Close() // not started: nothing to leave
	}
}

// Check reads and checks everything that serving cfg reads at start, as
// Serve does (the same code), from files and from the environment
// o.Getenv gives: the tokens and secrets, the cookie keys, the group's
// key, the state file, the audit file, the TLS certificates, keys and CA
// files. It returns every problem found as config.FieldErrors
// (config.Locate puts each at its line of the file), or nil when Serve
// would start with cfg unless an address is taken, a peer misbehaves, or
// a file changes; and, with problems or without, the warnings Serve logs
// at start for cfg, each at its field (config.Locate places them too),
// which do not stop Serve. It binds no port, creates or writes no file,
// starts nothing, contacts no peer, and neither its errors nor its
// warnings quote a secret. o.Logger may be nil.
func Check(cfg config.Config, o ServeOptions) (warnings []config.FieldError, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ld, warnings, err := load(cfg, o)
	if err != nil {
		return warnings, err
	}
	ld.close()
	return warnings, nil
}
