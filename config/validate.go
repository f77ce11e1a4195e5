package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"time"
)

// FieldError is one invalid value; Field is its path in the file, such as
// "balancers[0].members[1].weight", or "" for a problem outside the file
// (an environment variable that names itself in Msg).
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// FieldErrors is every invalid value of a Config.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Known values of the enumerated fields.
var (
	Methods      = []string{"byrequests", "bybusyness", "bytraffic", "p2c"}
	States       = []string{"active", "draining", "stopped", "standby"}
	SessionModes = []string{"local", "replicated"}
	Engines      = []string{"auto", "native", "nethttp"}
)

// MaxWeight is the largest member weight: balancer.MaxWeight, copied
// because config imports nothing from tether; a test in internal/app
// checks that they agree, as it does for Methods and States.
const MaxWeight = 1000

type checker struct{ errs FieldErrors }

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks every value and returns FieldErrors listing all problems,
// or nil. It loads the files that serving the configuration loads, so
// that a file it accepts starts and reloads: the TLS certificates and
// keys, the member TLS files, the token and secret files, the cookie key
// files; and it checks that the log files can be opened for appending (an
// existing file is opened and closed, a new one's directory must exist:
// nothing is created). It reads no environment variable: the secrets
// given that way (secret_env, key_env, TETHER_MANAGER_TOKEN,
// TETHER_METRICS_TOKEN) are read, with what else depends on them, by
// internal/app for `tether serve` and `tether check`, through the
// environment those are given.
func (c *Config) Validate() error {
	v := &checker{}
	v.listen("listen", c.Listen)
	v.tls("tls", c.TLS)
	for i, p := range c.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			v.add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR prefix", p)
		}
	}
	if pp := c.ProxyProtocol; pp != nil {
		if len(pp.From) == 0 {
			v.add("proxy_protocol.from", "list the addresses (IPs or CIDRs) of the proxies that send the header")
		}
		for i, p := range pp.From {
			if _, err := ParsePrefix(p); err != nil {
				v.add(fmt.Sprintf("proxy_protocol.from[%d]", i), "%q is not an IP address or CIDR prefix", p)
			}
		}
	}
	switch c.AccessLog {
	case "", "off", "stdout", "stderr":
	default:
		v.appendable("access_log", c.AccessLog)
	}
	v.limits(&c.Limits)
	v.nonNegative("shutdown_timeout", c.ShutdownTimeout)
	v.nonNegative("shutdown_delay", c.ShutdownDelay)
	for _, p := range [...][2]string{{"probes.ready_path", c.Probes.ReadyPath}, {"probes.live_path", c.Probes.LivePath}} {
		if p[1] != "" && (!strings.HasPrefix(p[1], "/") || strings.ContainsAny(p[1], "?# \t")) {
			v.add(p[0], "%q must be a path starting with /, without query", p[1])
		}
	}
	if p := c.Probes.ReadyPath; p != "" && p == c.Probes.LivePath {
		v.add("probes.live_path", "%q is also ready_path", p)
	}
	v.engine(c)
	if c.Manager != nil {
		v.manager(c.Manager)
	}
	v.log(&c.Log)
	v.metrics(c)
	v.group(c)
	if len(c.Balancers) == 0 {
		v.add("balancers", "at least one balancer is required")
	}
	if r := c.RedirectHTTPS; r != nil {
		v.listen("redirect_https.listen", r.Listen)
		if r.Port < 0 || r.Port > 65535 {
			v.add("redirect_https.port", "%d must be a port from 1 to 65535 (0 for 443)", r.Port)
		}
		for i := range c.Balancers {
			if c.ListenOf(&c.Balancers[i]) == r.Listen {
				v.add("redirect_https.listen", "%s is also the listen of balancers[%d]: the redirect needs a listener of its own", r.Listen, i)
				break
			}
		}
	}
	if c.UnknownHost != 0 && c.UnknownHost != 404 && c.UnknownHost != 421 {
		v.add("unknown_host", "%d: use 421 or 404", c.UnknownHost)
	}
	names := map[string]int{}
	sites := map[string]int{}
	for i := range c.Balancers {
		b := &c.Balancers[i]
		f := fmt.Sprintf("balancers[%d]", i)
		v.balancer(f, b)
		if j, dup := names[b.Name]; dup && b.Name != "" {
			v.add(f+".name", "duplicate balancer name %q (also balancers[%d])", b.Name, j)
		}
		names[b.Name] = i
		v.site(f, c, b, i, sites)
	}
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// ListenOf returns the address balancer b is served on.
func (c *Config) ListenOf(b *Balancer) string {
	if b.Listen != "" {
		return b.Listen
	}
	return c.Listen
}

func pathOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// ParsePrefix parses an IP address or a CIDR prefix ("10.0.0.1", "10.0.0.0/8").
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (v *checker) listen(field, addr string) {
	if addr == "" {
		v.add(field, "an address is required, like 127.0.0.1:8080")
		return
	}
	if _, err := ResolveListen(addr); err != nil {
		v.add(field, "%v", err)
	}
}

// ResolveListen checks a listen address "host:port" and returns its port-less
// host ("" for all interfaces).
func ResolveListen(addr string) (host string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", addr)
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 0 || n > 65535 || fmt.Sprint(n) != port {
		return "", fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return host, nil
}

// IsLoopback reports whether a listen address only accepts local connections.
func IsLoopback(addr string) bool {
	host, err := ResolveListen(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (v *checker) tls(field string, t *TLS) {
	if t == nil {
		return
	}
	v.certificate(field, t.Cert, t.Key)
	for i, c := range t.Certificates {
		v.certificate(fmt.Sprintf("%s.certificates[%d]", field, i), c.Cert, c.Key)
	}
}

// certificate checks a listener's certificate and key: both exist and
// load as a pair, as serve loads them.
func (v *checker) certificate(field, cert, key string) {
	ok := v.file(field+".cert", cert, "a PEM certificate file is required")
	if v.file(field+".key", key, "a PEM key file is required") && ok {
		v.keyPair(field+".cert", cert, key)
	}
}

// file checks that a file exists, and reports whether it does.
func (v *checker) file(field, path, missing string) bool {
	if path == "" {
		v.add(field, "%s", missing)
		return false
	}
	if _, err := os.Stat(path); err != nil {
		v.add(field, "%v", err)
		return false
	}
	return true
}

// engine checks the engine.
func (v *checker) engine(c *Config) {
	v.oneOf("engine", c.Engine, Engines)
}

func (v *checker) limits(l *Limits) {
	v.nonNegativeInt("limits.max_header_bytes", int64(l.MaxHeaderBytes))
	v.nonNegativeInt("limits.max_url_bytes", int64(l.MaxURLBytes))
	v.nonNegativeInt("limits.max_body_bytes", l.MaxBodyBytes)
	v.nonNegative("limits.header_timeout", l.HeaderTimeout)
	v.nonNegative("limits.idle_timeout", l.IdleTimeout)
	v.nonNegative("limits.park_after", l.ParkAfter)
}

func (v *checker) manager(m *Manager) {
	addr := m.Listen
	if addr == "" {
		addr = DefaultManagerListen
	}
	v.listen("manager.listen", addr)
	if !m.AllowRemote && !IsLoopback(addr) {
		v.add("manager.listen", "%q is not a loopback address: set allow_remote: true to expose the manager", addr)
	}
	if m.Token != "" && m.TokenFile != "" {
		v.add("manager.token_file", "give token or token_file, not both")
	}
	if m.ReadOnlyToken != "" && m.ReadOnlyTokenFile != "" {
		v.add("manager.read_only_token_file", "give read_only_token or read_only_token_file, not both")
	}
	if m.TokenFile != "" && v.file("manager.token_file", m.TokenFile, "") {
		v.secretFile("manager.token_file", m.TokenFile)
	}
	if m.ReadOnlyTokenFile != "" && v.file("manager.read_only_token_file", m.ReadOnlyTokenFile, "") {
		v.secretFile("manager.read_only_token_file", m.ReadOnlyTokenFile)
	}
	if m.Token != "" && m.Token == m.ReadOnlyToken {
		v.add("manager.read_only_token", "must differ from token")
	}
	for i, o := range m.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			v.add(fmt.Sprintf("manager.allowed_origins[%d]", i), "%q is not an origin like https://ops.example.com", o)
		}
	}
}

func (v *checker) balancer(f string, b *Balancer) {
	if b.Name == "" {
		v.add(f+".name", "a name is required")
	} else if !isName(b.Name) {
		v.add(f+".name", "%q: use letters, digits, '-' and '_' only", b.Name)
	}
	if b.Listen != "" {
		v.listen(f+".listen", b.Listen)
	}
	if b.TLS != nil && b.Listen == "" {
		v.add(f+".tls", "tls on a balancer needs its own listen (else set the top-level tls)")
	}
	v.tls(f+".tls", b.TLS)
	if b.Path != "" && !strings.HasPrefix(b.Path, "/") {
		v.add(f+".path", "%q must start with /", b.Path)
	}
	v.hosts(f, b.Hosts)
	v.sticky(f, &b.Sticky)
	v.oneOf(f+".sessions", b.Sessions, SessionModes)
	v.oneOf(f+".method", b.Method, Methods)
	if b.MaxAttempts < 0 || b.MaxAttempts > 100 {
		v.add(f+".max_attempts", "%d must be from 1 to 100 (0 for the default)", b.MaxAttempts)
	}
	v.nonNegativeInt(f+".max_conns", int64(b.MaxConns))
	if b.SlowStart < 0 || b.SlowStart > 24*time.Hour {
		v.add(f+".slow_start", "%v must be from 0 to 24h", b.SlowStart)
	}
	v.memberTLS(f+".member_tls", b.MemberTLS)
	v.oneOf(f+".send_proxy", b.SendProxy, []string{"v1", "v2"})
	v.sameAddressTLS(f, b)
	v.nonNegative(f+".timeouts.connect", b.Timeouts.Connect)
	v.nonNegative(f+".timeouts.response", b.Timeouts.Response)
	v.nonNegative(f+".timeouts.idle", b.Timeouts.Idle)
	v.nonNegative(f+".timeouts.queue", b.Timeouts.Queue)
	if h := b.Health; h != nil {
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			v.add(f+".health.path", "%q must start with /", h.Path)
		}
		v.nonNegative(f+".health.interval", h.Interval)
		v.nonNegative(f+".health.timeout", h.Timeout)
		v.count(f+".health.rise", h.Rise)
		v.count(f+".health.fall", h.Fall)
	}
	v.count(f+".passive.failures", b.Passive.Failures)
	v.nonNegative(f+".passive.probe_interval", b.Passive.ProbeInterval)
	v.nonNegative(f+".drain.idle", b.Drain.Idle)
	v.nonNegative(f+".drain.deadline", b.Drain.Deadline)
	v.oneOf(f+".drain.done", b.Drain.Done, []string{"stop"})
	if len(b.Members) == 0 {
		v.add(f+".members", "at least one member is required")
	}
	v.ajp(f, b)
	routes := map[string]int{}
	urls := map[string]int{}
	for i := range b.Members {
		m := &b.Members[i]
		mf := fmt.Sprintf("%s.members[%d]", f, i)
		if err := ValidateMember(m); err != nil {
			for _, fe := range err.(FieldErrors) {
				v.add(mf+"."+fe.Field, "%s", fe.Msg)
			}
		}
		if j, dup := routes[m.Route]; dup && m.Route != "" {
			v.add(mf+".route", "duplicate route %q (also members[%d])", m.Route, j)
		}
		routes[m.Route] = i
		v.memberTLS(mf+".tls", m.TLS)
		if m.TLS != nil && !strings.HasPrefix(m.URL, "https://") {
			v.add(mf+".tls", "tls is for https members: %q is not one", m.URL)
		}
		if j, dup := urls[m.URL]; dup && m.URL != "" {
			v.add(mf+".url", "duplicate url %q (also members[%d])", m.URL, j)
		}
		urls[m.URL] = i
	}
}

// isAJP reports whether raw is an ajp:// URL (schemes are
// case-insensitive: "AJP://h" is one, as url.Parse reads it).
func isAJP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "ajp"
}

// ValidateMember checks one member on its own (the manager uses it for
// members added at run time). It returns FieldErrors with fields relative
// to the member ("url", "route", …), or nil.
func ValidateMember(m *Member) error {
	v := &checker{}
	if m.URL == "" {
		v.add("url", "a url is required, like http://127.0.0.1:9001")
	} else if u, err := url.Parse(m.URL); err != nil {
		v.add("url", "%q is not a URL", m.URL)
	} else if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ajp" {
		v.add("url", "%q: scheme must be http, https or ajp", m.URL)
	} else if u.Host == "" || u.Hostname() == "" {
		v.add("url", "%q has no host", m.URL)
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		v.add("url", "%q: no user info, query or fragment allowed", m.URL)
	} else if p := u.Port(); p != "" {
		if _, err := ResolveListen(u.Host); err != nil {
			v.add("url", "%q: bad port", m.URL)
		}
	}
	if m.Route == "" {
		v.add("route", "a route is required (the node's name in session ids, like Tomcat's jvmRoute)")
	} else if !validRoute(m.Route) {
		v.add("route", "%q: use 1 to 64 letters, digits, '-', '_' or '.'", m.Route)
	}
	if m.Weight < 0 || m.Weight > MaxWeight {
		v.add("weight", "%d must be from 1 to %d (0 for the default, 1)", m.Weight, MaxWeight)
	}
	v.oneOf("state", m.State, States)
	v.nonNegativeInt("max_conns", int64(m.MaxConns))
	v.secret("", m.SecretFile, m.SecretEnv)
	if (m.SecretFile != "" || m.SecretEnv != "") && !isAJP(m.URL) {
		v.add("url", "%q: a secret is for ajp:// members only", m.URL)
	}
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// secret checks a secret_file and secret_env pair; prefix is "" or
// "ajp." for the balancer's.
func (v *checker) secret(prefix, file, env string) {
	if file != "" && env != "" {
		v.add(prefix+"secret_env", "give secret_file or secret_env, not both")
	}
	if file != "" && v.file(prefix+"secret_file", file, "") {
		v.secretFile(prefix+"secret_file", file)
	}
	if env != "" && !isEnvName(env) {
		v.add(prefix+"secret_env", "%q is not an environment variable name", env)
	}
}

func isEnvName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// ajp checks the balancer's ajp block and that every ajp:// member off
// loopback has a secret.
func (v *checker) ajp(f string, b *Balancer) {
	a := &b.AJP
	if a.PacketSize != 0 && (a.PacketSize < 1024 || a.PacketSize > 65536) {
		v.add(f+".ajp.packet_size", "%d must be from 1024 to 65536 (0 for the default, 8192)", a.PacketSize)
	}
	v.secret(f+".ajp.", a.SecretFile, a.SecretEnv)
	shared := a.SecretFile != "" || a.SecretEnv != ""
	for i := range b.Members {
		m := &b.Members[i]
		u, err := url.Parse(m.URL)
		if err != nil || u.Scheme != "ajp" || shared || m.SecretFile != "" || m.SecretEnv != "" || a.AllowNoSecret {
			continue
		}
		if host := u.Hostname(); host != "localhost" && !isLoopbackIP(host) {
			v.add(fmt.Sprintf("%s.members[%d].secret_file", f, i), "ajp member %s is not on loopback and has no secret: give secret_file or secret_env (here or in ajp:), as Tomcat 9.0.31+ requires (Ghostcat, CVE-2020-1938), or set ajp.allow_no_secret: true", m.URL)
		}
	}
}

func isLoopbackIP(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (v *checker) oneOf(field, val string, allowed []string) {
	if val == "" {
		return
	}
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(field, "unknown value %q: use one of %s", val, strings.Join(allowed, ", "))
}

func (v *checker) nonNegative(field string, d time.Duration) {
	if d < 0 {
		v.add(field, "%v must not be negative", d)
	}
}

func (v *checker) nonNegativeInt(field string, n int64) {
	if n < 0 {
		v.add(field, "%d must not be negative", n)
	}
}

func (v *checker) count(field string, n int) {
	if n < 0 || n > 100 {
		v.add(field, "%d must be from 1 to 100 (0 for the default)", n)
	}
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-' || c == '_') {
			return false
		}
	}
	return len(s) <= 64
}

// validRoute is route.Valid, copied because config imports nothing from
// tether; a test in internal/app checks that they agree.
func validRoute(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// ValidCookieName reports whether s is a cookie name (an RFC 9110 token,
// as RFC 6265 asks). It is route.ValidName's rule, copied because config
// imports nothing from tether; a test in internal/app checks that they
// agree.
func ValidCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

func isSeparator(c byte) bool {
	return c > ' ' && c < 0x7f && !isAlnum(c) && strings.IndexByte(`;,="`, c) < 0
}
