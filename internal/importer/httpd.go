package importer

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// directive is one httpd configuration line: a name and its arguments,
// or a section start (<Proxy …>) or end (</Proxy>).
type directive struct {
	name string // as written, compared case-insensitively
	args []string
	line int
	open bool // <Name args>
	shut bool // </Name>
}

// lexHTTPD splits an httpd configuration into directives: backslash
// continuations joined, comments dropped, quoted arguments unquoted.
func lexHTTPD(src []byte) ([]directive, error) {
	var out []directive
	lines, err := textLines(src)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(lines); i++ {
		start := i + 1
		text := lines[i]
		for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
			i++
			text = strings.TrimSuffix(text, "\\") + " " + lines[i]
		}
		text = strings.TrimSpace(text)
		if text == "" || text[0] == '#' {
			continue
		}
		d := directive{line: start}
		if text[0] == '<' {
			if !strings.HasSuffix(text, ">") {
				return nil, fmt.Errorf("line %d: section %q does not end with >", start, text)
			}
			text = strings.TrimSpace(text[1 : len(text)-1])
			d.open = true
			if strings.HasPrefix(text, "/") {
				d.open, d.shut = false, true
				text = text[1:]
			}
		}
		words, err := splitArgs(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		if len(words) == 0 {
			return nil, fmt.Errorf("line %d: empty section", start)
		}
		d.name, d.args = words[0], words[1:]
		out = append(out, d)
	}
	return out, nil
}

// splitArgs splits on white space, honouring double and single quotes
// (with backslash escapes inside them), as httpd does.
func splitArgs(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out, nil
		}
		if q := s[0]; q == '"' || q == '\'' {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != q; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			out = append(out, b.String())
			s = s[i+1:]
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
}

// HTTPD translates an httpd configuration: <Proxy balancer://…> sections
// with BalancerMember and ProxySet, BalancerMember and ProxySet outside
// them, ProxyPass to a balancer, ProxyTimeout, ProxyPreserveHost and
// Listen. JkMount lines are left to JK.
func HTTPD(src Source) (*Result, error) {
	ds, err := lexHTTPD(src.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	t := &translation{cmd: "httpd", sources: []string{src.Name}}
	h := &httpdState{t: t, file: src.Name}
	for _, d := range ds {
		h.directive(d)
	}
	if h.section != nil {
		t.note(src.Name, h.sectionLine, "<Proxy %s> has no </Proxy>: read to the end of the file", h.section.name)
	}
	if len(t.balancers) == 0 {
		return nil, fmt.Errorf("%s: no balancer:// defined (with <Proxy balancer://NAME> or BalancerMember)", src.Name)
	}
	h.finish()
	t.sanitize()
	if len(t.balancers) == 0 {
		return nil, fmt.Errorf("%s: no balancer has a usable member", src.Name)
	}
	return &Result{YAML: t.render(), Notes: t.notes}, nil
}

type httpdState struct {
	t           *translation
	file        string
	section     *balancer // the open <Proxy balancer://…>, if any
	sectionLine int
	depth       int // other sections open inside it
	timeout     time.Duration
	timeoutAt   int
}

func (h *httpdState) at(line int) string { return fmt.Sprintf("%s:%d", h.file, line) }

func (h *httpdState) note(line int, format string, args ...any) {
	h.t.note(h.file, line, format, args...)
}

// balancerOf returns the balancer a balancer:// URL names, creating it.
func (h *httpdState) balancerOf(u string, line int) *balancer {
	name, _, _ := strings.Cut(u[len("balancer://"):], "/")
	for _, b := range h.t.balancers {
		if b.src == name {
			return b
		}
	}
	b := &balancer{src: name, name: h.t.balancerName(name), at: h.at(line)}
	h.t.balancers = append(h.t.balancers, b)
	return b
}

func isBalancerURL(s string) bool { return strings.HasPrefix(strings.ToLower(s), "balancer://") }

func (h *httpdState) directive(d directive) {
	name := strings.ToLower(d.name)
	switch {
	case d.open && name == "proxy" && len(d.args) > 0 && isBalancerURL(d.args[0]) && h.section == nil:
		h.section, h.sectionLine = h.balancerOf(d.args[0], d.line), d.line
		h.section.at = h.at(d.line)
		return
	case d.open && h.section != nil:
		h.depth++
		return
	case d.shut && h.section != nil:
		if h.depth > 0 {
			h.depth--
		} else {
			h.section = nil
		}
		return
	case d.open || d.shut:
		return
	}
	switch name {
	case "balancermember":
		h.balancerMember(d)
	case "proxyset":
		h.proxySet(d)
	case "proxypass":
		h.proxyPass(d)
	case "proxytimeout":
		if n, err := strconv.Atoi(firstArg(d)); err == nil {
			h.timeout, h.timeoutAt = time.Duration(n)*time.Second, d.line
		}
	case "proxypreservehost":
		if strings.EqualFold(firstArg(d), "off") {
			h.note(d.line, "ProxyPreserveHost Off: Tether always passes the client's Host header (ProxyPreserveHost On)")
		}
	case "listen":
		h.listen(d)
	case "proxypassreverse", "proxypassreversecookiepath", "proxypassreversecookiedomain":
		h.note(d.line, "%s: not needed, Tether passes paths and the Host unchanged", d.name)
	case "proxypassmatch", "proxyremote", "proxyremotematch", "proxyrequests", "proxyiobuffersize",
		"proxyerroroverride", "proxyvia", "proxyaddheaders", "proxystatus", "proxybadheader", "proxymaxforwards":
		h.note(d.line, "%s has no equivalent", d.name)
	case "header", "requestheader":
		if strings.Contains(strings.Join(d.args, " "), "BALANCER_") {
			h.note(d.line, "%s … BALANCER_…: a route cookie of httpd's own has no equivalent; Tether reads the route from the application's session id (<id>.<route>, Tomcat's jvmRoute), so give each node its route as jvmRoute", d.name)
		}
	case "include", "includeoptional":
		h.note(d.line, "%s %s: included files are not read; import them on their own", d.name, firstArg(d))
	}
}

func firstArg(d directive) string {
	if len(d.args) == 0 {
		return ""
	}
	return d.args[0]
}

func (h *httpdState) listen(d directive) {
	if h.t.listen != "" {
		h.note(d.line, "Listen %s: only the first Listen is translated; give other balancers a listen of their own", firstArg(d))
		return
	}
	a := firstArg(d)
	if _, err := strconv.Atoi(a); err == nil {
		a = "0.0.0.0:" + a
	}
	h.t.listen, h.t.listenAt = a, fmt.Sprintf("%s:%d: Listen %s", h.file, d.line, firstArg(d))
}

// balancerMember handles "BalancerMember [balancer://name] url key=value…".
func (h *httpdState) balancerMember(d directive) {
	args := d.args
	b := h.section
	if len(args) > 0 && isBalancerURL(args[0]) {
		b = h.balancerOf(args[0], d.line)
		args = args[1:]
	}
	if b == nil || len(args) == 0 {
		h.note(d.line, "BalancerMember outside <Proxy balancer://…> without a balancer:// URL: skipped")
		return
	}
	m := &member{url: args[0], at: h.at(d.line)}
	if u := strings.ToLower(m.url); !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "ajp://") {
		h.note(d.line, "BalancerMember %s: Tether reaches members over http, https or ajp only: skipped", m.url)
		return
	}
	m.url = strings.TrimSuffix(m.url, "/")
	for _, kv := range args[1:] {
		k, v, _ := strings.Cut(kv, "=")
		h.memberParam(b, m, strings.ToLower(k), v, d.line)
	}
	if m.route == "" {
		m.route = validRoute(fmt.Sprintf("%s%d", b.name, len(b.members)+1))
		h.note(d.line, "BalancerMember %s has no route=: named %q here; sessions stick only if the node's jvmRoute says so", m.url, m.route)
	}
	b.members = append(b.members, m)
}

// memberParam applies one BalancerMember parameter.
func (h *httpdState) memberParam(b *balancer, m *member, k, v string, line int) {
	switch k {
	case "route":
		m.route = validRoute(v)
	case "loadfactor":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			h.note(line, "loadfactor=%s is not a number: weight 1", v)
			return
		}
		m.weight = max(1, int(math.Round(f)))
	case "status":
		h.status(m, v, line)
	case "max":
		m.maxConns, _ = strconv.Atoi(v)
		h.note(line, "max=%s limits connections per httpd child; max_conns: %s limits requests to the member for the whole balancer, with a queue", v, v)
	case "secret":
		m.secret = v
	case "timeout":
		b.respond = maxDur(b.respond, seconds(v))
	case "connectiontimeout":
		b.connect = maxDur(b.connect, seconds(v))
	case "ttl":
		b.idle = maxDur(b.idle, seconds(v))
	case "retry":
		h.note(line, "retry=%s: a member taken down is probed every passive.probe_interval (1s) and back on the first success", v)
	case "ping":
		h.note(line, "ping=%s: Tether checks a kept AJP connection with CPing when it was idle for ajp.ping_idle (10s), and probes a down member with CPing", v)
	case "iobuffersize":
		if n, err := strconv.Atoi(v); err == nil && isAJP(m.url) && n >= 1024 && n <= 65536 {
			b.packet = n
		}
	case "keepalive", "disablereuse", "enablereuse", "flushpackets", "flushwait", "smax", "min", "acquire",
		"redirect", "lbset", "hcmethod", "hcuri", "hcinterval", "hcpasses", "hcfails", "hcexpr", "hctemplate":
		h.note(line, "BalancerMember %s=%s has no equivalent here (active checks: health: {path, interval, rise, fall})", k, v)
	default:
		h.note(line, "BalancerMember %s=%s is unknown to the import", k, v)
	}
}

// status applies status=+D/+S/+N/+H… (the last letter that sets a state
// wins).
func (h *httpdState) status(m *member, v string, line int) {
	on := true
	for _, c := range strings.ToUpper(v) {
		switch c {
		case '+':
			on = true
		case '-':
			on = false
		case 'D', 'S':
			if on {
				m.state = "stopped"
			}
		case 'N':
			if on {
				m.state = "draining"
			}
		case 'H':
			if on {
				m.state = "standby"
			}
		case 'I', 'E', 'C', 'R':
			h.note(line, "status %c has no equivalent (health is Tether's own)", c)
		}
	}
}

// proxySet handles "ProxySet [balancer://name] key=value…".
func (h *httpdState) proxySet(d directive) {
	args := d.args
	b := h.section
	if len(args) > 0 && isBalancerURL(args[0]) {
		b = h.balancerOf(args[0], d.line)
		args = args[1:]
	}
	if b == nil {
		h.note(d.line, "ProxySet outside <Proxy balancer://…> without a balancer:// URL: skipped")
		return
	}
	for _, kv := range args {
		k, v, _ := strings.Cut(kv, "=")
		h.balancerParam(b, strings.ToLower(k), v, d.line)
	}
}

// balancerParam applies one balancer parameter (ProxySet, ProxyPass).
func (h *httpdState) balancerParam(b *balancer, k, v string, line int) {
	switch k {
	case "stickysession":
		b.names = nil
		for _, n := range strings.Split(v, "|") {
			if n != "" {
				b.names = append(b.names, n)
			}
		}
	case "stickysessionsep":
		b.sep = strings.Trim(v, `"`)
	case "nofailover":
		b.nofail = strings.EqualFold(v, "on")
	case "lbmethod":
		switch strings.ToLower(v) {
		case "byrequests", "bybusyness", "bytraffic":
			b.method = strings.ToLower(v)
		default:
			h.note(line, "lbmethod=%s has no equivalent: byrequests", v)
		}
	case "maxattempts":
		if n, err := strconv.Atoi(v); err == nil {
			b.attempt = min(n+1, 100)
		}
	case "timeout":
		b.respond = maxDur(b.respond, seconds(v))
	case "scolonpathdelim":
		// Tether always reads ;name= path parameters.
	case "forcerecovery", "failonstatus", "failontimeout", "growth", "nonce", "vhost", "lbset":
		h.note(line, "%s=%s has no equivalent", k, v)
	default:
		h.note(line, "%s=%s is unknown to the import", k, v)
	}
}

// proxyPass handles "ProxyPass /path balancer://name/path key=value…".
func (h *httpdState) proxyPass(d directive) {
	if len(d.args) < 2 {
		if len(d.args) == 1 && h.section != nil {
			h.note(d.line, "ProxyPass inside a section: not translated")
		}
		return
	}
	path, target := d.args[0], d.args[1]
	if !isBalancerURL(target) {
		if target != "!" {
			h.note(d.line, "ProxyPass %s %s: not to a balancer, not translated", path, target)
		} else {
			h.note(d.line, "ProxyPass %s !: exclusions have no equivalent; Tether serves the whole path", path)
		}
		return
	}
	b := h.balancerOf(target, d.line)
	_, sub, _ := strings.Cut(strings.TrimPrefix(strings.ToLower(target), "balancer://"), "/")
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		path = "/"
	}
	if "/"+strings.TrimSuffix(sub, "/") != path && !(path == "/" && sub == "") {
		h.note(d.line, "ProxyPass %s %s: Tether passes the path unchanged (the member sees %s, not /%s)", d.args[0], target, path, sub)
	}
	if b.path != "" && b.path != path {
		h.note(d.line, "balancer %s is also mounted at %s: only %s is translated; add another balancer for it", b.name, b.path, path)
		return
	}
	b.path, b.pathAt = path, fmt.Sprintf("%s:%d: ProxyPass %s", h.file, d.line, d.args[0])
	for _, kv := range d.args[2:] {
		k, v, _ := strings.Cut(kv, "=")
		h.balancerParam(b, strings.ToLower(k), v, d.line)
	}
}

// finish applies what holds for every balancer.
func (h *httpdState) finish() {
	for _, b := range h.t.balancers {
		if h.timeout > 0 && b.respond == 0 {
			b.respond = h.timeout
		}
		if b.path == "" {
			h.note(lineOf(b.at), "balancer %s is not mounted with ProxyPass: it serves / here", b.src)
		}
		if len(b.members) == 0 {
			h.note(lineOf(b.at), "balancer %s has no member", b.name)
		}
	}
}

func lineOf(at string) int {
	i := strings.LastIndexByte(at, ':')
	n, _ := strconv.Atoi(at[i+1:])
	return n
}

// seconds parses httpd's whole seconds (or "Nms").
func seconds(v string) time.Duration {
	if ms, ok := strings.CutSuffix(v, "ms"); ok {
		n, _ := strconv.Atoi(ms)
		return time.Duration(n) * time.Millisecond
	}
	n, _ := strconv.Atoi(v)
	return time.Duration(n) * time.Second
}

func maxDur(a, b time.Duration) time.Duration { return max(a, b) }
