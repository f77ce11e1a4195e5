package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"github.com/tetherlb/tether/balancer"
	"github.com/tetherlb/tether/config"
)

// change is a configuration that plan built, loaded and bound without
// putting any of it in effect; commit puts it in effect and cannot fail,
// discard drops it and leaves no trace (no file, socket or goroutine).
type change struct {
	cfg       config.Config
	access    io.WriteCloser                     // the new access log file, nil for none
	fresh     map[string]*balancer.Balancer      // new balancers, prepared, not started
	updates   map[string]*balancer.Change        // the balancers that stay
	members   map[string][]balancer.MemberConfig // every balancer's members as configured
	tlsOf     map[string]*config.TLS             // listen address → its TLS, nil for plaintext
	certs     map[string][]tls.Certificate       // listen address → its certificates
	from      []netip.Prefix                     // PROXY protocol sources, nil if off
	listeners map[string]*listener               // new addresses (bound when planned for a running server)
}

// planMode says what plan does besides building.
type planMode int

const (
	planStart  planMode = iota // a new server: the access log opened, nothing bound
	planReload                 // a running server: the access log opened, new addresses bound
	planCheck                  // load and Check: no file opened for writing, nothing bound
)

// plan builds everything cfg needs, in this order, changing nothing the
// server runs: the access log (not for planCheck), every balancer's
// options and members, the listeners' TLS certificates, the new balancers
// (prepared, idle) and the changes to those that stay, and, for
// planReload, the sockets of new listen addresses. The problems of cfg
// are reported all at once, as config.FieldErrors; the sockets' errors
// (an address in use) are not the file's and come alone. On error
// everything it made is closed again.
func (s *Server) plan(cfg config.Config, mode planMode) (c *change, err error) {
	c = &change{cfg: cfg, fresh: map[string]*balancer.Balancer{}, updates: map[string]*balancer.Change{},
		members: map[string][]balancer.MemberConfig{}, certs: map[string][]tls.Certificate{},
		listeners: map[string]*listener{}}
	defer func() {
		if err != nil {
			c.discard()
			c = nil
		}
	}()
	var ps problems
	var access *slog.Logger
	if mode != planCheck { // config.Validate checked that it can be opened
		var accessFile io.WriteCloser
		access, accessFile, err = s.accessLogger(cfg.AccessLog)
		ps.add("access_log", err)
		c.access = accessFile
	}
	opts := map[string]balancer.Options{}
	for i := range cfg.Balancers {
		b := &cfg.Balancers[i]
		o, err := balancerOptions(&cfg, i, s.logger, access, s.hooks.getenv)
		ps.add("", err)
		o.Observer, o.OnStateChange, o.SessionHash = s.hooks.observer, s.hooks.onStateChange, s.hooks.sessionHash
		if le, name := s.hooks.liveElsewhere, b.Name; le != nil {
			o.LiveElsewhere = func(rt string) bool { return le(name, rt) }
		}
		ms, err := memberConfigs(b, fmt.Sprintf("balancers[%d]", i), s.hooks.getenv)
		ps.add("", err)
		opts[b.Name], c.members[b.Name] = o, ms
	}
	ps.add("", s.planListeners(c))
	if err := ps.err(); err != nil {
		return c, err // the balancers are built from complete options only
	}
	for i := range cfg.Balancers {
		name, f := cfg.Balancers[i].Name, fmt.Sprintf("balancers[%d]", i)
		if b, ok := s.balancers[name]; ok {
			u, err := b.Plan(opts[name], s.members[name], c.members[name])
			if err != nil {
				ps.add(f, err)
				continue
			}
			c.updates[name] = u
			continue
		}
		b, err := balancer.Prepare(opts[name], c.members[name])
		if err != nil {
			ps.add(f, err)
			continue
		}
		c.fresh[name] = b
	}
	if err := ps.err(); err != nil {
		return c, err
	}
	if mode == planReload {
		for _, l := range c.listeners {
			if err := s.bind(l, &cfg); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// planListeners checks what the listeners of c.cfg can become without a
// restart, loads their certificates, and makes (unbound) listeners for
// the new addresses. Its error is config.FieldErrors: every problem
// found.
func (s *Server) planListeners(c *change) error {
	cfg := &c.cfg
	var ps problems
	c.tlsOf = map[string]*config.TLS{}
	tlsField := map[string]string{} // listen address → the field of its tls
	for i := range cfg.Balancers {
		b := &cfg.Balancers[i]
		f := fmt.Sprintf("balancers[%d]", i)
		addr := cfg.ListenOf(b)
		t, tf := cfg.TLS, "tls"
		if b.Listen != "" {
			t, tf = b.TLS, f+".tls"
		}
		if prev, ok := c.tlsOf[addr]; ok && (prev == nil) != (t == nil) {
			ps.add(f+".listen", fmt.Errorf("listener %s is shared with a balancer that has different tls settings", addr))
			continue
		}
		c.tlsOf[addr], tlsField[addr] = t, tf
		if l, ok := s.listeners[addr]; ok && (l.tls == nil) != (t == nil) {
			ps.add(f+".listen", fmt.Errorf("listener %s: turning tls on or off needs a restart", addr))
		}
		if l, ok := s.listeners[addr]; ok && l.engine != engineOf(cfg) {
			ps.add("engine", fmt.Errorf("listener %s: changing the engine needs a restart", addr))
		}
	}
	if rd := cfg.RedirectHTTPS; rd != nil {
		if l, ok := s.listeners[rd.Listen]; ok && l.tls != nil {
			ps.add("redirect_https.listen", fmt.Errorf("listener %s: turning tls off needs a restart", rd.Listen))
		}
	}
	from, err := proxySources(cfg)
	ps.add("proxy_protocol.from", err)
	c.from = from
	for addr, l := range s.listeners {
		if l.ln != nil && (l.proxy != nil) != (from != nil) {
			ps.add("proxy_protocol", fmt.Errorf("listener %s: turning proxy_protocol on or off needs a restart", addr))
		}
	}
	for addr, t := range c.tlsOf {
		if t != nil {
			cs, err := loadCertificates(t, tlsField[addr])
			ps.add(tlsField[addr], err)
			c.certs[addr] = cs
		}
	}
	if err := ps.err(); err != nil {
		return err
	}
	for addr, t := range c.tlsOf {
		if _, ok := s.listeners[addr]; !ok {
			c.listeners[addr] = s.newListener(*cfg, addr, t)
		}
	}
	if rd := cfg.RedirectHTTPS; rd != nil {
		if _, ok := s.listeners[rd.Listen]; !ok && c.listeners[rd.Listen] == nil {
			c.listeners[rd.Listen] = s.newListener(*cfg, rd.Listen, nil)
		}
	}
	return nil
}

// discard drops a change that will not be committed.
func (c *change) discard() {
	if c.access != nil {
		c.access.Close()
	}
	for _, b := range c.fresh {
		b.Close()
	}
	for _, u := range c.updates {
		u.Discard()
	}
	for _, l := range c.listeners {
		l.unbind()
	}
}

// commit puts a planned change in effect and returns the listeners no
// longer used, taken out of the server (the caller shuts them down). The
// new listeners are added, bound if plan bound them, and not yet served.
func (s *Server) commit(c *change) (unused []*listener) {
	cfg := c.cfg
	for _, u := range c.updates {
		u.Commit()
	}
	var gone []*balancer.Balancer
	for name, b := range s.balancers {
		if _, ok := c.members[name]; !ok {
			gone = append(gone, b)
			delete(s.balancers, name)
		}
	}
	for name, b := range c.fresh {
		b.Start()
		s.balancers[name] = b
	}
	s.members = c.members
	for addr, l := range c.listeners {
		s.listeners[addr] = l
	}
	routes := map[string][]balancer.Site{}
	for i := range cfg.Balancers {
		b := &cfg.Balancers[i]
		routes[cfg.ListenOf(b)] = append(routes[cfg.ListenOf(b)], balancer.Site{Hosts: b.Hosts, Path: pathOrRoot(b.Path), Balancer: s.balancers[b.Name]})
	}
	for addr, r := range routes {
		l := s.listeners[addr]
		l.tls = c.tlsOf[addr]
		l.setMux(balancer.NewSiteMux(r, balancer.MuxOptions{UnknownHost: cfg.UnknownHost, Probes: s.probes(&cfg)}))
		if cs := c.certs[addr]; cs != nil {
			l.certs.Store(&cs)
		}
	}
	if rd := cfg.RedirectHTTPS; rd != nil {
		s.listeners[rd.Listen].setMux(balancer.NewSiteMux(nil, balancer.MuxOptions{RedirectHTTPS: orDefault(rd.Port, 443), Probes: s.probes(&cfg)}))
	}
	for _, l := range s.listeners {
		if l.proxy != nil {
			l.proxy.SetFrom(c.from)
		}
	}
	if s.access != nil {
		s.access.Close()
	}
	s.access = c.access
	s.cfg = cfg
	for addr, l := range s.listeners {
		if !s.uses(addr) {
			unused = append(unused, l)
			delete(s.listeners, addr)
		}
	}
	for _, b := range gone {
		b.Close()
	}
	return unused
}

// setMux routes the listener's requests through mux.
func (l *listener) setMux(mux *balancer.Mux) {
	l.mux.Store(mux)
	if l.native != nil {
		l.native.SetMux(mux)
	}
}

func pathOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
