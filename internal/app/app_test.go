package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/config"
	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// named is a backend answering with its name in X-Member.
func named(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Member", name)
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s
}

func parse(t *testing.T, yaml string) config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t *testing.T, cfg config.Config) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(5 * time.Second) })
	return s, "http://" + s.Addr(cfg.Listen)
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Member")
}

func TestServeBalancersByPath(t *testing.T) {
	shop, admin := named(t, "shop"), named(t, "admin")
	cfg := parse(t, fmt.Sprintf(`
listen: 127.0.0.1:0
balancers:
  - name: shop
    members: [{url: %q, route: s1}]
  - name: admin
    path: /admin
    members: [{url: %q, route: a1}]
`, shop.URL, admin.URL))
	_, base := start(t, cfg)
	c := &http.Client{}
	for path, want := range map[string]string{"/": "shop", "/cart": "shop", "/admin": "admin", "/admin/users": "admin", "/administrator": "shop"} {
		if _, got := get(t, c, base+path); got != want {
			t.Errorf("%s served by %q, want %q", path, got, want)
		}
	}
}

func TestNoBalancerForPathIs404(t *testing.T) {
	b := named(t, "b")
	_, base := start(t, parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nbalancers:\n  - {name: b, path: /app, members: [{url: %q, route: n1}]}\n", b.URL)))
	if code, _ := get(t, &http.Client{}, base+"/other"); code != http.StatusNotFound {
		t.Fatalf("status %d", code)
	}
}

func TestHeaderLimitIs431(t *testing.T) {
	b := named(t, "b")
	_, base := start(t, parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nlimits: {max_header_bytes: 4096}\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n", b.URL)))
	req, _ := http.NewRequest("GET", base, nil)
	req.Header.Set("X-Big", strings.Repeat("x", 10000))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

func TestReloadAppliesValidConfigOnly(t *testing.T) {
	one, two := named(t, "one"), named(t, "two")
	cfg := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n", one.URL))
	s, base := start(t, cfg)
	c := &http.Client{}
	s.Balancer("b").Pool().SetWeight("n1", 9) // a run-time change the reload must keep

	next := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}, {url: %q, route: n2, state: draining}]}\n", one.URL, two.URL))
	if err := s.Reload(next, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, got := get(t, c, base+"/x"); got != "one" {
		t.Fatalf("new session went to %q: the draining member must take none", got)
	}
	if m := s.Balancer("b").Pool().Lookup("n2"); m == nil || m.State().String() != "draining" {
		t.Fatal("reload did not add n2 as draining")
	}
	if w := s.Balancer("b").Pool().Lookup("n1").Weight(); w != 9 {
		t.Errorf("run-time weight lost on reload: %d", w)
	}

	// TLS on a running plain listener cannot be applied: nothing changes.
	bad := next
	bad.TLS = &config.TLS{Cert: "/nonexistent", Key: "/nonexistent"}
	if err := s.Reload(bad, time.Second); err == nil {
		t.Fatal("reload turning tls on was accepted")
	}
	if s.Balancer("b").Pool().Lookup("n2") == nil {
		t.Fatal("a refused reload changed the pool")
	}
}

func TestServeReloadsOnSignalAndKeepsOldOnError(t *testing.T) {
	one, two := named(t, "one"), named(t, "two")
	dir := t.TempDir()
	path := filepath.Join(dir, "tether.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("listen: 127.0.0.1:0\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n", one.URL))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	s := serveInTest(t, cfg, ServeOptions{ConfigPath: path, Reload: reload})
	base := "http://" + s.Addr("127.0.0.1:0")

	write("balancers: [oops\n") // invalid: ignored
	reload <- struct{}{}
	write(fmt.Sprintf("listen: 127.0.0.1:0\nbalancers:\n  - {name: b, members: [{url: %q, route: n2}]}\n", two.URL))
	reload <- struct{}{}
	proctest.Eventually(t, 10*time.Second, func() error {
		if _, got := get(t, &http.Client{}, base); got != "two" {
			return fmt.Errorf("served by %q", got)
		}
		return nil
	})
}

func TestGracefulShutdownFinishesRequests(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	s, err := NewServer(parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n", slow.URL)), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr("127.0.0.1:0")
	body := make(chan string)
	go func() {
		resp, err := http.Get(base)
		if err != nil {
			body <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body <- string(b)
	}()
	<-arrived
	stopped := make(chan struct{})
	go func() { s.Shutdown(10 * time.Second); close(stopped) }()
	// New connections are refused once shutdown began.
	proctest.Eventually(t, 10*time.Second, func() error {
		if _, err := http.Get(base); err == nil {
			return fmt.Errorf("still accepting")
		}
		return nil
	})
	close(release)
	if got := <-body; got != "finished" {
		t.Fatalf("in-flight request got %q", got)
	}
	<-stopped
}

func TestTLSWithHTTP2(t *testing.T) {
	b := named(t, "b")
	cert, key := testpki.NewCA(t, "test").Issue(t, "localhost", "127.0.0.1")
	cfg := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\ntls: {cert: %q, key: %q}\nbalancers:\n  - {name: b, members: [{url: %q, route: n1}]}\n", cert, key, b.URL))
	s, _ := start(t, cfg)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + s.Addr("127.0.0.1:0") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("X-Member") != "b" {
		t.Fatalf("proto %s member %q, want HTTP/2 from b", resp.Proto, resp.Header.Get("X-Member"))
	}
}

// serveInTest runs Serve with o (quiet unless o.Logger is set) until the
// test ends, when it must return nil, and returns the server once it has
// started.
func serveInTest(t *testing.T, cfg config.Config, o ServeOptions) *Server {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	started := make(chan *Server, 1)
	o.Started = func(s *Server) { started <- s }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, o) }()
	select {
	case s := <-started:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		return s
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
		return nil
	}
}
