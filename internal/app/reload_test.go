package app

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetherlb/tether/config"
)

// reloadFixture is a running server with a manager (state and audit
// files) and an access log, and a valid next configuration that changes
// n1's weight, drains n2, adds n3 and adds a balancer on a listener of
// its own.
type reloadFixture struct {
	s    *Server
	o    ServeOptions
	dir  string
	next func(fault string) config.Config
}

func newReloadFixture(t *testing.T) *reloadFixture {
	n1, n2, n3 := named(t, "n1"), named(t, "n2"), named(t, "n3")
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("not a certificate\n"), 0o600))
	taken, err := net.Listen("tcp", "127.0.0.3:0")
	must(t, err)
	t.Cleanup(func() { taken.Close() })
	head := fmt.Sprintf("listen: 127.0.0.1:0\nmanager: {listen: 127.0.0.1:0, token: %s, state_file: %s, audit_file: %s}\n",
		testToken, filepath.Join(dir, "state.json"), filepath.Join(dir, "audit.jsonl"))
	first := parse(t, head+fmt.Sprintf(`access_log: %s
balancers:
  - name: b
    members:
      - {url: %q, route: n1}
      - {url: %q, route: n2}
`, filepath.Join(dir, "access.log"), n1.URL, n2.URL))
	o := ServeOptions{Logger: quiet(), Getenv: func(string) string { return "" }}
	f := &reloadFixture{s: serveInTest(t, first, o), o: o, dir: dir}
	f.next = func(fault string) config.Config {
		cfg := parse(t, head+fmt.Sprintf(`access_log: %s
balancers:
  - name: b
    members:
      - {url: %q, route: n1, weight: 5}
      - {url: %q, route: n2, state: draining}
      - {url: %q, route: n3}
  - name: c
    listen: 127.0.0.2:0
    members: [{url: %q, route: c1}]
`, filepath.Join(dir, "access.log"), n1.URL, n2.URL, n3.URL, n1.URL))
		// The faults are made after the file was read, as when a file
		// changes between reading and applying (config.Load would refuse
		// most of them).
		switch fault {
		case "member": // getenv finds no secret
			cfg.Balancers[0].Members[2] = config.Member{URL: "ajp://127.0.0.1:8009", Route: "n3", SecretEnv: "TETHER_TEST_UNSET"}
		case "log":
			cfg.AccessLog = filepath.Join(dir, "missing", "access.log")
		case "tls":
			garbage := filepath.Join(dir, "garbage.pem")
			cfg.Balancers[1].TLS = &config.TLS{Cert: garbage, Key: garbage}
		case "update":
			cfg.Balancers[0].Method = "unknown"
		case "build":
			cfg.Balancers[1].Method = "unknown"
		case "listen":
			cfg.Balancers[1].Listen = taken.Addr().String()
		}
		return cfg
	}
	return f
}

// state describes everything a reload may change: the configuration,
// the access log file, every balancer (identity, options) and member
// (identity, URL, state, weight, limits), every listener (identity,
// socket, routes, certificates), the manager's view of the members, the
// state and audit files and the process's open descriptors.
func (f *reloadFixture) state(t *testing.T) string {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "config %#v\naccess %p\nmembers %v\n", s.cfg, s.access, s.members)
	for _, name := range slices.Sorted(maps.Keys(s.balancers)) {
		bal := s.balancers[name]
		fmt.Fprintf(&b, "balancer %s %p %+v\n", name, bal, bal.Options())
		for _, m := range bal.Pool().Members() {
			fmt.Fprintf(&b, "  member %p %s %s %v w%d max%d\n", m, m.Route(), m.URL(), m.State(), m.Weight(), m.MaxConns())
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(s.listeners)) {
		l := s.listeners[addr]
		fmt.Fprintf(&b, "listener %s %p ln=%v tls=%p mux=%p certs=%p\n", addr, l, l.ln.Addr(), l.tls, l.mux.Load(), l.certs.Load())
	}
	fmt.Fprintf(&b, "effective %+v\n", s.mgr.mgr.Effective())
	for _, file := range []string{"state.json", "audit.jsonl"} {
		data, _ := os.ReadFile(filepath.Join(f.dir, file))
		fmt.Fprintf(&b, "%s %q\n", file, data)
	}
	fmt.Fprintf(&b, "descriptors %d\n", openFiles(t))
	return b.String()
}

// openFiles counts the process's open descriptors.
func openFiles(t *testing.T) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(fds)
}

// A reload that fails at any step leaves the whole running state as it
// was, and the manager records nothing; the same file without the fault
// then applies.
func TestFailedReloadChangesNothing(t *testing.T) {
	f := newReloadFixture(t)
	faults := []string{"member", "log", "tls", "update", "build", "listen"}
	before := f.state(t)
	for _, fault := range faults {
		if err := reload(f.s.mgr, f.s, f.next(fault), f.o); err == nil {
			t.Fatalf("%s: the reload was accepted", fault)
		}
		if after := f.state(t); after != before {
			t.Errorf("%s: a failed reload changed the state:\n%s", fault, lineDiff(before, after))
		}
	}
	if err := reload(f.s.mgr, f.s, f.next(""), f.o); err != nil {
		t.Fatal(err)
	}
	after := f.state(t)
	if after == before {
		t.Fatal("the reload without a fault changed nothing that state shows")
	}
	c := f.s.Balancer("c")
	n1, n2, n3 := f.s.Balancer("b").Pool().Lookup("n1"), f.s.Balancer("b").Pool().Lookup("n2"), f.s.Balancer("b").Pool().Lookup("n3")
	if c == nil || f.s.Addr("127.0.0.2:0") == "" || n1.Weight() != 5 || n2.State().String() != "draining" || n3 == nil {
		t.Errorf("the good reload did not apply: c %v listening %q, n1 weight %d, n2 %v, n3 %v", c, f.s.Addr("127.0.0.2:0"), n1.Weight(), n2.State(), n3)
	}
	audit, _ := os.ReadFile(filepath.Join(f.dir, "audit.jsonl"))
	if n := strings.Count(string(audit), `"member":"n3","action":"add"`); n != 1 {
		t.Errorf("the audit file records n3's addition %d times:\n%s", n, audit)
	}
}

// A hundred failed reloads leave no descriptor open.
func TestFailedReloadsKeepNoDescriptor(t *testing.T) {
	f := newReloadFixture(t)
	faults := []string{"member", "log", "tls", "update", "build", "listen"}
	before := openFiles(t)
	for i := range 100 {
		fault := faults[i%len(faults)]
		if err := reload(f.s.mgr, f.s, f.next(fault), f.o); err == nil {
			t.Fatalf("%s: the reload was accepted", fault)
		}
	}
	// More descriptors is a leak; fewer is an earlier test's connection
	// closing meanwhile (they share the process).
	if after := openFiles(t); after > before {
		t.Errorf("100 failed reloads: %d descriptors open, %d before", after, before)
	}
}

// lineDiff lists the lines of a and b that differ.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&out, "- %s\n+ %s\n", x, y)
		}
	}
	return out.String()
}
