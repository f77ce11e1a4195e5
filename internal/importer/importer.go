// Package importer translates the load balancer configuration of Apache
// httpd (mod_proxy_balancer, mod_proxy_ajp) and of mod_jk
// (workers.properties with JkMount lines or uriworkermap.properties) into
// an equivalent tether.yaml, with comments naming the source lines, and a
// list of what has no equivalent, each with its FILE:LINE.
//
// It reads only the directives and keys that describe balancing; the rest
// of an httpd.conf (modules, logs, virtual hosts' other directives) is
// outside its scope. It never copies a secret into its output: a secret
// of the source becomes an environment variable to set (secret_env).
package importer

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Note is something of the source that Tether does not do as the source
// does, at File:Line.
type Note struct {
	File string
	Line int
	Msg  string
}

func (n Note) String() string { return fmt.Sprintf("%s:%d: %s", n.File, n.Line, n.Msg) }

// Result is a translation: the tether.yaml text and the notes, in source
// order.
type Result struct {
	YAML  string
	Notes []Note
}

// Source is a file to read: its name (for FILE:LINE) and its contents.
type Source struct {
	Name string
	Data []byte
}

// balancer is a balancer being translated.
type balancer struct {
	src     string // its name in the source
	name    string
	at      string // "FILE:LINE" of its definition
	path    string
	pathAt  string
	names   []string // sticky names
	sep     string
	nofail  bool
	method  string
	attempt int // max_attempts, 0 for the default
	connect time.Duration
	respond time.Duration
	idle    time.Duration
	probe   time.Duration
	packet  int
	members []*member
	comment []string // lines above the balancer
}

// member is a member being translated.
type member struct {
	url      string
	route    string
	weight   int
	state    string
	maxConns int
	secret   string // the source's secret: never printed
	distance int    // mod_jk distance
	at       string
	comment  string
}

// translation collects a Result.
type translation struct {
	cmd       string // "httpd" or "jk", for the header
	sources   []string
	listen    string
	listenAt  string
	manager   bool
	managerAt string
	balancers []*balancer
	notes     []Note
}

// note records a note once (a key inherited by several workers is noted
// at its own line only once).
func (t *translation) note(file string, line int, format string, args ...any) {
	n := Note{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	if !slices.Contains(t.notes, n) {
		t.notes = append(t.notes, n)
	}
}

func (t *translation) find(name string) *balancer {
	for _, b := range t.balancers {
		if b.name == name {
			return b
		}
	}
	return nil
}

var nameChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// balancerName makes a source name a valid, unique balancer name.
func (t *translation) balancerName(src string) string {
	n := strings.Trim(nameChars.ReplaceAllString(src, "-"), "-")
	if n == "" {
		n = "app"
	}
	base := n
	for i := 2; t.find(n) != nil; i++ {
		n = fmt.Sprintf("%s-%d", base, i)
	}
	return n
}

var routeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// validRoute makes a route acceptable to config (1-64 letters, digits,
// '-', '_', '.').
func validRoute(r string) string {
	r = routeChars.ReplaceAllString(r, "-")
	if len(r) > 64 {
		r = r[:64]
	}
	return r
}

// secrets decides how the members' secrets are given: one variable for
// the balancer when they share one, else one per member. It returns the
// balancer's variable ("" if none) and each member's.
func (b *balancer) secrets() (shared string, own map[*member]string) {
	var values []string
	for _, m := range b.members {
		if m.secret != "" && !slices.Contains(values, m.secret) {
			values = append(values, m.secret)
		}
	}
	env := "TETHER_AJP_SECRET_" + strings.ToUpper(nameChars.ReplaceAllString(b.name, "_"))
	env = strings.ReplaceAll(env, "-", "_")
	if len(values) == 1 && all(b.members, func(m *member) bool { return m.secret != "" || !isAJP(m.url) }) {
		return env, nil
	}
	own = map[*member]string{}
	for _, m := range b.members {
		if m.secret != "" {
			own[m] = env + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(m.route))
		}
	}
	return "", own
}

func all[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if !f(v) {
			return false
		}
	}
	return true
}

func isAJP(u string) bool { return strings.HasPrefix(strings.ToLower(u), "ajp://") }

// offLoopback reports whether an ajp:// URL names a host off loopback.
func offLoopback(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return true
	}
	h := p.Hostname()
	if h == "localhost" {
		return false
	}
	a, err := netip.ParseAddr(h)
	return err != nil || !a.IsLoopback()
}

var yamlSpecial = regexp.MustCompile(`(?i)^([0-9._-]+|true|false|yes|no|on|off|y|n|null|~)$`)

var plainYAML = regexp.MustCompile(`^[A-Za-z0-9_./-][A-Za-z0-9_./-]*$`)

// yamlString quotes s for YAML when it needs it.
func yamlString(s string) string {
	if plainYAML.MatchString(s) && !yamlSpecial.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// render writes the tether.yaml.
func (t *translation) render() string {
	var w strings.Builder
	fmt.Fprintf(&w, "# Translated by `tether import %s %s`.\n", t.cmd, strings.Join(t.sources, " "))
	fmt.Fprintf(&w, "# Each line names its source; what has no equivalent was printed on stderr.\n")
	fmt.Fprintf(&w, "# Check it with `tether check --config FILE`.\n")
	if t.listen != "" {
		fmt.Fprintf(&w, "listen: %s   # %s\n", yamlString(t.listen), t.listenAt)
	} else {
		fmt.Fprintf(&w, "# listen: 127.0.0.1:8080 is the default; set the address clients use.\n")
	}
	if t.manager {
		fmt.Fprintf(&w, "manager:   # %s: the status page; give it a token (token_file, or TETHER_MANAGER_TOKEN)\n", t.managerAt)
		fmt.Fprintf(&w, "  listen: 127.0.0.1:8081\n")
	}
	fmt.Fprintf(&w, "balancers:\n")
	for _, b := range t.balancers {
		b.render(&w)
	}
	return w.String()
}

func (b *balancer) render(w *strings.Builder) {
	for _, c := range b.comment {
		fmt.Fprintf(w, "  # %s\n", c)
	}
	fmt.Fprintf(w, "  - name: %s   # %s\n", yamlString(b.name), b.at)
	if b.path != "" && b.path != "/" {
		fmt.Fprintf(w, "    path: %s   # %s\n", yamlString(b.path), b.pathAt)
	}
	if len(b.names) > 0 || b.sep != "" {
		var parts []string
		if len(b.names) > 0 {
			q := make([]string, len(b.names))
			for i, n := range b.names {
				q[i] = yamlString(n)
			}
			parts = append(parts, "names: ["+strings.Join(q, ", ")+"]")
		}
		if b.sep != "" {
			parts = append(parts, "separator: "+yamlString(b.sep))
		}
		fmt.Fprintf(w, "    sticky: { %s }\n", strings.Join(parts, ", "))
	}
	if b.nofail {
		fmt.Fprintf(w, "    nofailover: true\n")
	}
	if b.method != "" {
		fmt.Fprintf(w, "    method: %s\n", b.method)
	}
	if b.attempt > 0 {
		fmt.Fprintf(w, "    max_attempts: %d\n", b.attempt)
	}
	var to []string
	for _, d := range []struct {
		k string
		v time.Duration
	}{{"connect", b.connect}, {"response", b.respond}, {"idle", b.idle}} {
		if d.v > 0 {
			to = append(to, d.k+": "+d.v.String())
		}
	}
	if len(to) > 0 {
		fmt.Fprintf(w, "    timeouts: { %s }\n", strings.Join(to, ", "))
	}
	if b.probe > 0 {
		fmt.Fprintf(w, "    passive: { probe_interval: %s }\n", b.probe)
	}
	b.renderAJP(w)
}

// renderAJP writes the ajp block and the members.
func (b *balancer) renderAJP(w *strings.Builder) {
	shared, own := b.secrets()
	var ajp []string
	if b.packet > 0 {
		ajp = append(ajp, fmt.Sprintf("packet_size: %d", b.packet))
	}
	if shared != "" {
		ajp = append(ajp, "secret_env: "+shared)
	}
	noSecret := false
	for _, m := range b.members {
		if isAJP(m.url) && m.secret == "" && offLoopback(m.url) {
			noSecret = true
		}
	}
	if noSecret {
		ajp = append(ajp, "allow_no_secret: true")
	}
	if len(ajp) > 0 {
		fmt.Fprintf(w, "    ajp: { %s }", strings.Join(ajp, ", "))
		switch {
		case noSecret:
			fmt.Fprintf(w, "   # the source sends no AJP secret: Tomcat 9.0.31+ refuses that (Ghostcat, CVE-2020-1938); give secret_env or secret_file and drop allow_no_secret")
		case shared != "":
			fmt.Fprintf(w, "   # set %s to the connectors' secret (not copied here)", shared)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "    members:\n")
	for _, m := range b.members {
		parts := []string{"url: " + yamlString(m.url), "route: " + yamlString(m.route)}
		if m.weight > 1 {
			parts = append(parts, fmt.Sprintf("weight: %d", m.weight))
		}
		if m.state != "" && m.state != "active" {
			parts = append(parts, "state: "+m.state)
		}
		if m.maxConns > 0 {
			parts = append(parts, fmt.Sprintf("max_conns: %d", m.maxConns))
		}
		if env := own[m]; env != "" {
			parts = append(parts, "secret_env: "+env)
		}
		c := m.at
		if m.comment != "" {
			c += ": " + m.comment
		}
		fmt.Fprintf(w, "      - { %s }   # %s\n", strings.Join(parts, ", "), c)
	}
}

// textLines splits a configuration file into lines, refusing what is not
// text: invalid UTF-8 and control characters other than tab.
func textLines(src []byte) ([]string, error) {
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	for i, l := range lines {
		if !utf8.ValidString(l) {
			return nil, fmt.Errorf("line %d: not UTF-8 text", i+1)
		}
		if j := strings.IndexFunc(l, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7F }); j >= 0 {
			return nil, fmt.Errorf("line %d: control character %q", i+1, l[j])
		}
	}
	return lines, nil
}

// hostPort joins a host and a port for a member URL.
func hostPort(host, port string) string { return net.JoinHostPort(host, port) }
