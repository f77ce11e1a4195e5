package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// TestMain lets this test binary double as a tiny backend process, so that
// tests can SIGSTOP and SIGKILL a real member:
// TETHER_TEST_BACKEND=route@addr.
func TestMain(m *testing.M) {
	if spec := os.Getenv("TETHER_TEST_BACKEND"); spec != "" {
		route, addr, _ := strings.Cut(spec, "@")
		http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Member", route)
			io.WriteString(w, route)
		}))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func startBackend(t *testing.T, route string) (*proctest.Proc, string) {
	t.Helper()
	addr := proctest.FreeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TETHER_TEST_BACKEND="+route+"@"+addr)
	p := proctest.StartCmd(t, "backend "+route, cmd)
	proctest.WaitHTTP(t, "http://"+addr+"/", http.StatusOK, 30*time.Second)
	return p, "http://" + addr
}

func memberOf(c *http.Client, url, cookie string) (string, int, error) {
	req, _ := http.NewRequest("GET", url, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "JSESSIONID="+cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Member"), resp.StatusCode, nil
}

// TestServeProcess runs `tether serve` as users do: real backends, a
// frozen member (SIGSTOP), a reload (SIGHUP) and a graceful stop (SIGTERM).
func TestServeProcess(t *testing.T) {
	n1, u1 := startBackend(t, "n1")
	n2, u2 := startBackend(t, "n2")
	_ = n1
	dir := t.TempDir()
	path := filepath.Join(dir, "tether.yaml")
	listen := proctest.FreeAddr(t)
	conf := func(extra string) string {
		return fmt.Sprintf(`listen: %s
balancers:
  - name: app
    timeouts: { response: 500ms }
    passive: { probe_interval: 20ms }
    members:
      - { url: %s, route: n1 }
      - { url: %s, route: n2 }
%s`, listen, u1, u2, extra)
	}
	if err := os.WriteFile(path, []byte(conf("")), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := proctest.Start(t, "tether serve", "serve", "--config", path)
	base := "http://" + listen + "/"
	proctest.WaitHTTP(t, base, http.StatusOK, 30*time.Second)
	c := &http.Client{Timeout: 10 * time.Second}

	if m, _, err := memberOf(c, base, "S1.n2"); err != nil || m != "n2" {
		t.Fatalf("sticky: %q %v", m, err)
	}

	// Freeze n2: its session is served by n1 after one response timeout.
	n2.Stop(t) // returns once the kernel reports it stopped
	if m, code, err := memberOf(c, base, "S1.n2"); err != nil || code != 200 || m != "n1" {
		t.Fatalf("frozen n2: member %q status %d err %v; want n1 after the 500ms timeout", m, code, err)
	}
	// Thaw: the probe brings n2 back and its sessions return to it.
	n2.Cont(t)
	proctest.Eventually(t, 10*time.Second, func() error {
		if m, _, err := memberOf(c, base, "S1.n2"); err != nil || m != "n2" {
			return fmt.Errorf("session of n2 served by %q (%v)", m, err)
		}
		return nil
	})

	// Reload: a broken file is refused and the old configuration keeps serving.
	os.WriteFile(path, []byte("balancers: [\n"), 0o600)
	serve.Signal(syscall.SIGHUP)
	proctest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(serve.Output(), "reload refused") {
			return fmt.Errorf("no refusal logged")
		}
		return nil
	})
	if m, _, err := memberOf(c, base, "S1.n1"); err != nil || m != "n1" {
		t.Fatalf("after refused reload: %q %v", m, err)
	}
	// A valid file that stops n1 is applied.
	os.WriteFile(path, []byte(strings.Replace(conf(""), "route: n1 }", "route: n1, state: stopped }", 1)), 0o600)
	serve.Signal(syscall.SIGHUP)
	proctest.Eventually(t, 10*time.Second, func() error {
		if m, _, err := memberOf(c, base, "S1.n1"); err != nil || m != "n2" {
			return fmt.Errorf("session of stopped n1 served by %q (%v)", m, err)
		}
		return nil
	})

	// SIGTERM: a clean exit.
	serve.Signal(syscall.SIGTERM)
	err, done := serve.Wait(30 * time.Second)
	if !done || err != nil {
		t.Fatalf("after SIGTERM: done=%v err=%v\n%s", done, err, serve.Output())
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("balancers:\n  - name: b\n    method: fastest\n    members: [{url: 'http://h:1', route: n1}]\n"), 0o600)
	var out, errOut strings.Builder
	code := Run(t.Context(), []string{"check", "--config", bad}, Env{Stdout: &out, Stderr: &errOut})
	if code != ExitUsage || !strings.HasPrefix(errOut.String(), bad+":3: balancers[0].method: unknown value \"fastest\"") {
		t.Fatalf("code %d, stderr %q", code, errOut.String())
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("balancers:\n  - name: b\n    members: [{url: 'http://h:1', route: n1}]\n"), 0o600)
	out.Reset()
	if code := Run(t.Context(), []string{"check", "--config", good}, Env{Stdout: &out, Stderr: &errOut}); code != ExitOK || !strings.Contains(out.String(), "ok") {
		t.Fatalf("valid file: code %d, %q", code, out.String())
	}
	if code := Run(t.Context(), []string{"check"}, Env{Stdout: &out, Stderr: &errOut}); code != ExitUsage {
		t.Fatalf("no --config: code %d", code)
	}
	if code := Run(t.Context(), []string{"frobnicate"}, Env{Stdout: &out, Stderr: &errOut}); code != ExitUsage {
		t.Fatalf("unknown command: code %d", code)
	}
}

func TestServeRefusesManagerWithoutTokenWithExitCode2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	os.WriteFile(path, []byte("listen: 127.0.0.1:0\nmanager: {listen: '127.0.0.1:0'}\nbalancers:\n  - {name: b, members: [{url: 'http://127.0.0.1:1', route: n1}]}\n"), 0o600)
	var out, errOut strings.Builder
	code := Run(t.Context(), []string{"serve", "--config", path}, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
	if code != ExitUsage || !strings.Contains(errOut.String(), "no token") {
		t.Fatalf("code %d, stderr %q; want 2 and a message about the token", code, errOut.String())
	}
}

// TestServeShutdownDelay: on SIGTERM, `tether serve` answers its
// readiness probe with 503 and keeps proxying for shutdown_delay; a second
// SIGTERM ends the delay and the process exits cleanly.
func TestServeShutdownDelay(t *testing.T) {
	_, u1 := startBackend(t, "n1")
	path := filepath.Join(t.TempDir(), "tether.yaml")
	listen := proctest.FreeAddr(t)
	os.WriteFile(path, []byte(fmt.Sprintf(`listen: %s
shutdown_delay: 1h
probes: { ready_path: /-/ready }
balancers:
  - { name: app, members: [{ url: %s, route: n1 }] }
`, listen, u1)), 0o600)
	serve := proctest.Start(t, "tether serve", "serve", "--config", path)
	base := "http://" + listen
	proctest.WaitHTTP(t, base+"/-/ready", http.StatusOK, 30*time.Second)
	c := &http.Client{Timeout: 10 * time.Second}
	serve.Signal(syscall.SIGTERM)
	proctest.WaitHTTP(t, base+"/-/ready", http.StatusServiceUnavailable, 30*time.Second)
	if m, code, err := memberOf(c, base+"/", ""); err != nil || code != 200 || m != "n1" {
		t.Fatalf("during the shutdown delay: %q %d %v, want still proxied", m, code, err)
	}
	serve.Signal(syscall.SIGTERM)
	if err, done := serve.Wait(30 * time.Second); !done || err != nil {
		t.Fatalf("after a second SIGTERM: done=%v err=%v\n%s", done, err, serve.Output())
	}
}

// TestCheckReportsEveryMistake: six mistakes of six kinds (an unknown
// key, a value of the wrong type, a bad URL, a duplicate route, a
// certificate of garbage, an access log in a directory that does not
// exist) print six lines, each FILE:LINE: message, in line order.
func TestCheckReportsEveryMistake(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate\n"), 0o600)
	path := filepath.Join(dir, "tether.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`listen: 127.0.0.1:8443
tls: {cert: %[1]s, key: %[1]s}
access_log: %[2]s
balancers:
  - name: shop
    max_attempts: many
    members:
      - {url: 'http://127.0.0.1:9001', route: n1, wieght: 2}
      - {url: 'htp://127.0.0.1:9002', route: n1}
`, garbage, filepath.Join(dir, "logs", "access.log"))), 0o600)
	var out, errOut strings.Builder
	code := Run(t.Context(), []string{"check", "--config", path}, Env{Stdout: &out, Stderr: &errOut})
	want := []string{
		path + `:2: tls.cert: tls: failed to find any PEM data in certificate input`,
		path + `:3: access_log: "` + filepath.Join(dir, "logs", "access.log") + `" cannot be created: stat ` + filepath.Join(dir, "logs") + `: no such file or directory`,
		path + `:6: "many" is not a valid whole number here`,
		path + `:8: unknown key "wieght" in member`,
		path + `:9: balancers[0].members[1].url: "htp://127.0.0.1:9002": scheme must be http, https or ajp`,
		path + `:9: balancers[0].members[1].route: duplicate route "n1" (also members[0])`,
	}
	if got := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n"); code != ExitUsage || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("code %d, stderr:\n%s\nwant:\n%s", code, errOut.String(), strings.Join(want, "\n"))
	}
}
