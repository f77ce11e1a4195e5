package importer

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// prop is one workers.properties value with where it was set.
type prop struct {
	value string
	line  int
}

// readProperties reads a mod_jk properties file: key=value lines, #
// comments, backslash continuations, and $(name) references to earlier
// keys.
func readProperties(src []byte) (map[string]prop, error) {
	out := map[string]prop{}
	lines, err := textLines(src)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(lines); i++ {
		start := i + 1
		text := strings.TrimSpace(lines[i])
		for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
			i++
			text = strings.TrimSuffix(text, "\\") + strings.TrimSpace(lines[i])
		}
		if text == "" || text[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not key=value", start, text)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			return nil, fmt.Errorf("line %d: empty key", start)
		}
		out[k] = prop{expand(v, out), start}
	}
	return out, nil
}

var reference = regexp.MustCompile(`\$\(([^)]+)\)`)

// expand replaces $(name) by the value of an earlier key.
func expand(v string, props map[string]prop) string {
	return reference.ReplaceAllStringFunc(v, func(m string) string {
		if p, ok := props[m[2:len(m)-1]]; ok {
			return p.value
		}
		return m
	})
}

// worker is one worker.NAME.* group, with reference= resolved.
type worker struct {
	name  string
	props map[string]prop // key without "worker.NAME."
	line  int             // its first line
}

func (w *worker) get(k string) (string, int, bool) {
	p, ok := w.props[k]
	return p.value, p.line, ok
}

// workers groups the worker.NAME.KEY properties, resolving reference=
// (mod_jk's inheritance, up to 20 levels).
func workers(props map[string]prop) map[string]*worker {
	out := map[string]*worker{}
	for k, p := range props {
		rest, ok := strings.CutPrefix(k, "worker.")
		if !ok || rest == "list" {
			continue
		}
		i := strings.LastIndexByte(rest, '.')
		if i <= 0 {
			continue
		}
		name, key := rest[:i], rest[i+1:]
		w := out[name]
		if w == nil {
			w = &worker{name: name, props: map[string]prop{}, line: p.line}
			out[name] = w
		}
		w.props[key] = p
		w.line = min(w.line, p.line)
	}
	for _, w := range out {
		for range 20 {
			ref, _, ok := w.get("reference")
			if !ok {
				break
			}
			delete(w.props, "reference")
			base := out[strings.TrimPrefix(ref, "worker.")]
			if base == nil {
				break
			}
			for k, p := range base.props {
				if _, own := w.props[k]; !own {
					w.props[k] = p
				}
			}
		}
	}
	return out
}

// mount is a URL pattern mapped to a worker.
type mount struct {
	path   string
	worker string
	at     string
}

// readMounts reads JkMount lines (of an httpd.conf) and pattern=worker
// lines (of a uriworkermap.properties) from src.
func readMounts(src Source) ([]mount, error) {
	var out []mount
	lines, err := textLines(src.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		at := fmt.Sprintf("%s:%d", src.Name, i+1)
		if words, err := splitArgs(line); err == nil && len(words) >= 3 && strings.EqualFold(words[0], "JkMount") {
			out = append(out, mount{words[1], words[2], at})
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(strings.TrimSpace(k), "/") {
			out = append(out, mount{strings.TrimSpace(k), strings.TrimSpace(v), at})
		}
	}
	return out, nil
}

// JK translates a mod_jk workers.properties: each lb worker (or ajp13
// worker used on its own) becomes a balancer, mounted where JkMount lines
// or uriworkermap.properties lines in mounts put it.
func JK(workersFile Source, mounts ...Source) (*Result, error) {
	props, err := readProperties(workersFile.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", workersFile.Name, err)
	}
	t := &translation{cmd: "jk", sources: []string{workersFile.Name}}
	j := &jkState{t: t, file: workersFile.Name, workers: workers(props)}
	var ms []mount
	for _, m := range mounts {
		t.sources = append(t.sources, m.Name)
		more, err := readMounts(m)
		if err != nil {
			return nil, err
		}
		ms = append(ms, more...)
	}
	list, listLine := props["worker.list"].value, props["worker.list"].line
	if list == "" {
		return nil, fmt.Errorf("%s: no worker.list", workersFile.Name)
	}
	for _, name := range strings.Split(list, ",") {
		j.listed(strings.TrimSpace(name), listLine)
	}
	j.mount(ms)
	t.sanitize()
	if len(t.balancers) == 0 {
		return nil, fmt.Errorf("%s: worker.list names no lb or ajp13 worker with a usable member", workersFile.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if !strings.HasPrefix(k, "worker.") {
			t.note(workersFile.Name, props[k].line, "%s is not a worker key: ignored", k)
		}
	}
	slices.SortFunc(t.notes, func(a, b Note) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
	return &Result{YAML: t.render(), Notes: t.notes}, nil
}

type jkState struct {
	t       *translation
	file    string
	workers map[string]*worker
}

func (j *jkState) at(line int) string { return fmt.Sprintf("%s:%d", j.file, line) }

func (j *jkState) note(line int, format string, args ...any) { j.t.note(j.file, line, format, args...) }

// listed translates a worker of worker.list.
func (j *jkState) listed(name string, line int) {
	w := j.workers[name]
	if w == nil {
		j.note(line, "worker.list names %s, which has no keys", name)
		return
	}
	typ, _, _ := w.get("type")
	switch typ {
	case "lb":
		j.lb(w)
	case "ajp13", "":
		b := &balancer{src: name, name: j.t.balancerName(name), at: j.at(w.line) + ": worker." + name}
		j.member(b, w)
		j.t.balancers = append(j.t.balancers, b)
	case "status":
		j.t.manager, j.t.managerAt = true, j.at(w.line)+": worker."+name+".type=status"
	default:
		j.note(w.line, "worker %s of type %s has no equivalent", name, typ)
	}
}

// lb translates a load balancer worker.
func (j *jkState) lb(w *worker) {
	b := &balancer{src: w.name, name: j.t.balancerName(w.name), at: j.at(w.line) + ": worker." + w.name + ".type=lb"}
	list, line, ok := w.get("balance_workers")
	if !ok {
		list, line, _ = w.get("balanced_workers") // the old name
	}
	for _, k := range slices.Sorted(maps.Keys(w.props)) {
		j.lbKey(b, w, k)
	}
	cookie, _, hasCookie := w.get("session_cookie")
	path, _, hasPath := w.get("session_path")
	if hasCookie || hasPath { // mod_jk's defaults are Tether's: JSESSIONID, ;jsessionid
		if !hasCookie {
			cookie = "JSESSIONID"
		}
		if path = strings.TrimPrefix(path, ";"); !hasPath {
			path = "jsessionid"
		}
		b.names = []string{cookie}
		if path != cookie && path != "" {
			b.names = append(b.names, path)
		}
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		mw := j.workers[name]
		if name == "" {
			continue
		}
		if mw == nil {
			j.note(line, "balance_workers names %s, which has no keys", name)
			continue
		}
		j.member(b, mw)
	}
	j.distances(b)
	j.t.balancers = append(j.t.balancers, b)
}

// lbKey applies one key of an lb worker.
func (j *jkState) lbKey(b *balancer, w *worker, k string) {
	v, line, _ := w.get(k)
	switch k {
	case "type", "balance_workers", "balanced_workers":
	case "sticky_session":
		if isFalse(v) {
			j.note(line, "sticky_session=%s: Tether is always sticky when a request's session id names a member", v)
		}
	case "sticky_session_force":
		b.nofail = isTrue(v)
	case "method":
		switch strings.ToUpper(v[:min(len(v), 1)]) {
		case "R":
			b.method = "byrequests"
		case "T":
			b.method = "bytraffic"
		case "B":
			b.method = "bybusyness"
		default:
			j.note(line, "method=%s has no equivalent: byrequests (which counts new sessions only)", v)
		}
	case "retries":
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			b.attempt = min(n, 100)
		}
	case "session_cookie", "session_path":
		// with both, below
	case "recover_time":
		j.note(line, "recover_time=%s: a member taken down is probed every passive.probe_interval (1s) and back on the first success", v)
	default:
		j.note(line, "worker.%s.%s=%s has no equivalent", w.name, k, v)
	}
}

// member adds the ajp13 worker w to b.
func (j *jkState) member(b *balancer, w *worker) {
	host, _, ok := w.get("host")
	if !ok {
		host = "localhost" // mod_jk's default
	}
	port, _, ok := w.get("port")
	if !ok {
		port = "8009"
	}
	m := &member{url: "ajp://" + hostPort(host, port), route: validRoute(w.name), at: j.at(w.line) + ": worker." + w.name}
	if typ, line, _ := w.get("type"); typ != "ajp13" && typ != "" {
		j.note(line, "worker %s of type %s cannot be a member: skipped", w.name, typ)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(w.props)) {
		j.memberKey(b, m, w, k)
	}
	b.members = append(b.members, m)
}

// memberKey applies one key of an ajp13 worker.
func (j *jkState) memberKey(b *balancer, m *member, w *worker, k string) {
	v, line, _ := w.get(k)
	ms := func() time.Duration { n, _ := strconv.Atoi(v); return time.Duration(n) * time.Millisecond }
	switch k {
	case "type", "host", "port":
	case "route", "jvm_route":
		m.route = validRoute(v)
	case "lbfactor":
		m.weight, _ = strconv.Atoi(v)
	case "activation":
		switch strings.ToUpper(v[:min(len(v), 1)]) {
		case "D":
			m.state = "draining"
		case "S":
			m.state = "stopped"
		case "R":
			m.state = "standby"
			j.note(line, "activation=R (reserved for redirect=): state standby; failover goes to one member chosen by rendezvous hashing, not to a named one")
		}
	case "distance":
		m.distance, _ = strconv.Atoi(v)
	case "secret":
		m.secret = v
	case "connect_timeout":
		b.connect = max(b.connect, ms())
	case "reply_timeout":
		b.respond = max(b.respond, ms())
	case "connection_pool_timeout":
		n, _ := strconv.Atoi(v)
		b.idle = max(b.idle, time.Duration(n)*time.Second)
	case "connection_pool_size":
		m.maxConns, _ = strconv.Atoi(v)
		j.note(line, "connection_pool_size=%s is per httpd child; max_conns: %s limits requests to the member for the whole balancer, with a queue", v, v)
	case "max_packet_size":
		if n, err := strconv.Atoi(v); err == nil && n >= 1024 && n <= 65536 {
			b.packet = max(b.packet, n)
		}
	case "ping_mode", "ping_timeout", "prepost_timeout", "connect_timeout_ms":
		j.note(line, "%s=%s: Tether checks a kept AJP connection with CPing when it was idle for ajp.ping_idle (10s), and probes a down member with CPing", k, v)
	case "redirect":
		j.note(line, "redirect=%s: failover goes to one member chosen by rendezvous hashing of the session id, not to a named one", v)
	default:
		j.note(line, "worker.%s.%s=%s has no equivalent", w.name, k, v)
	}
}

// distances makes the members beyond the smallest distance standby: mod_jk
// uses them only when no nearer member is available.
func (j *jkState) distances(b *balancer) {
	if len(b.members) == 0 {
		return
	}
	least := b.members[0].distance
	for _, m := range b.members {
		least = min(least, m.distance)
	}
	for _, m := range b.members {
		if m.distance > least && (m.state == "" || m.state == "active") {
			m.state = "standby"
			m.comment = fmt.Sprintf("distance %d: used only when no nearer member is", m.distance)
		}
	}
}

// mount sets each balancer's path from the mounts.
func (j *jkState) mount(ms []mount) {
	for _, m := range ms {
		b := j.t.findSrc(m.worker)
		if b == nil {
			file, line := splitAt(m.at)
			j.t.note(file, line, "mount %s=%s: no such balancer worker", m.path, m.worker)
			continue
		}
		p := strings.TrimSuffix(strings.TrimSuffix(m.path, "*"), "/")
		if p == "" {
			p = "/"
		}
		if strings.ContainsAny(p, "*?|") {
			file, line := splitAt(m.at)
			j.t.note(file, line, "mount %s: Tether matches path prefixes only", m.path)
			continue
		}
		switch {
		case b.path == "" || b.path == p:
			b.path, b.pathAt = p, m.at+": "+m.path
		default:
			file, line := splitAt(m.at)
			j.t.note(file, line, "mount %s for %s: the balancer is already at %s; add another balancer for it", m.path, m.worker, b.path)
		}
	}
	for _, b := range j.t.balancers {
		if b.path == "" && len(ms) > 0 {
			j.note(lineOf(b.at[:strings.Index(b.at, ": ")]), "worker %s is mounted nowhere: it serves / here", b.src)
		}
	}
}

func (t *translation) findSrc(src string) *balancer {
	for _, b := range t.balancers {
		if b.src == src {
			return b
		}
	}
	return nil
}

func splitAt(at string) (string, int) {
	i := strings.LastIndexByte(at, ':')
	n, _ := strconv.Atoi(at[i+1:])
	return at[:i], n
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "on", "yes":
		return true
	}
	return false
}

func isFalse(v string) bool {
	switch strings.ToLower(v) {
	case "false", "0", "off", "no":
		return true
	}
	return false
}
