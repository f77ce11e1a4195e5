package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

const (
	ctlToken   = "ctl-test-token-0123456789abcdef"
	ctlROToken = "ctl-test-readonly-0123456789abcd"
)

// sessionNode is a member that creates a session "<n>.<route>" on /login
// and expires it on /logout (see groupNode).
func sessionNode(t *testing.T, rt string) string {
	t.Helper()
	return newGroupNode(t, rt).url
}

// managedServe is a `tether serve` process with a manager.
type managedServe struct {
	proc    *proctest.Proc
	conf    string
	front   string // the balancers' listener
	manager string // the manager's URL
}

func startManagedServe(t *testing.T, dir, conf string, front, manager string) *managedServe {
	t.Helper()
	path := filepath.Join(dir, "tether.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, "tether serve", "serve", "--config", path)
	proctest.WaitHTTP(t, "http://"+manager+"/healthz", http.StatusOK, 30*time.Second)
	return &managedServe{proc: p, conf: path, front: "http://" + front, manager: "http://" + manager}
}

// ctlRun runs tether ctl in process and returns its exit code and output.
func ctlRun(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), append([]string{"ctl"}, args...), Env{
		Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errOut.String()
}

func ctlConfig(front, manager, stateFile string, shop1, shop2, back1 string) string {
	return fmt.Sprintf(`listen: %s
manager:
  listen: %s
  token: %s
  read_only_token: %s
  state_file: %s
balancers:
  - name: shop
    path: /
    drain: { idle: 5s }
    members:
      - { url: %s, route: n1 }
      - { url: %s, route: n2 }
  - name: backoffice
    path: /backoffice
    members:
      - { url: %s, route: n1 }
`, front, manager, ctlToken, ctlROToken, stateFile, shop1, shop2, back1)
}

func login(t *testing.T, base string) (member, cookie string) {
	t.Helper()
	resp, err := http.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			cookie = c.Value
		}
	}
	return resp.Header.Get("X-Member"), cookie
}

// TestCtlAgainstARealManager drives a `tether serve` process with tether
// ctl: the status table, every change, the exit codes scripts rely on,
// drain --wait, and a restart that keeps the changes.
func TestCtlAgainstARealManager(t *testing.T) {
	dir := t.TempDir()
	front, manager := proctest.FreeAddr(t), proctest.FreeAddr(t)
	shop1, shop2, back1, extra := sessionNode(t, "n1"), sessionNode(t, "n2"), sessionNode(t, "n1"), sessionNode(t, "n3")
	conf := ctlConfig(front, manager, filepath.Join(dir, "state.json"), shop1, shop2, back1)
	srv := startManagedServe(t, dir, conf, front, manager)
	env := map[string]string{"TETHER_MANAGER_URL": srv.manager, "TETHER_MANAGER_TOKEN": ctlToken, "USER": "alice"}

	code, out, _ := ctlRun(t, env, "status")
	if code != ExitOK {
		t.Fatalf("status: exit %d", code)
	}
	for _, want := range []string{"BALANCER", "MEMBER", "STATE", "SESSIONS", "shop", "backoffice"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "shop n1 active up 1") {
		t.Errorf("status table:\n%s", out)
	}

	codes := []struct {
		name string
		env  map[string]string
		args []string
		code int
		says string
	}{
		{"no token", map[string]string{"TETHER_MANAGER_URL": srv.manager}, []string{"status"}, ExitUsage, "no token"},
		{"wrong token", map[string]string{"TETHER_MANAGER_URL": srv.manager}, []string{"--token", "nope", "status"}, ExitDenied, "valid token"},
		{"read-only token cannot stop", map[string]string{"TETHER_MANAGER_URL": srv.manager, "TETHER_MANAGER_TOKEN": ctlROToken}, []string{"stop", "n2"}, ExitDenied, "read-only"},
		{"read-only token reads", map[string]string{"TETHER_MANAGER_URL": srv.manager, "TETHER_MANAGER_TOKEN": ctlROToken}, []string{"status"}, ExitOK, ""},
		{"unreachable manager", map[string]string{"TETHER_MANAGER_TOKEN": ctlToken}, []string{"--manager", "http://" + proctest.FreeAddr(t), "status"}, ExitUnreachable, ""},
		{"unknown member", env, []string{"stop", "n9"}, ExitNotFound, "no member"},
		{"unknown balancer", env, []string{"--balancer", "nope", "stop", "n2"}, ExitNotFound, ""},
		{"ambiguous route", env, []string{"stop", "n1"}, ExitUsage, "--balancer"},
		{"weight out of range", env, []string{"weight", "n2", "0"}, ExitUsage, "from 1 to 1000"},
		{"weight not a number", env, []string{"weight", "n2", "lots"}, ExitUsage, "not a number"},
		{"missing argument", env, []string{"weight", "n2"}, ExitUsage, ""},
		{"unknown command", env, []string{"reboot", "n2"}, ExitUsage, "unknown command"},
		{"bad url to add", env, []string{"--balancer", "shop", "add", "n4", "ftp://x"}, ExitUsage, "is not an http or https URL"},
		{"ajp url to add", env, []string{"--balancer", "shop", "add", "n4", "ajp://127.0.0.1:8009"}, ExitUsage, "AJP members are set in the configuration file"},
		{"removing an active member", env, []string{"--balancer", "shop", "remove", "n2"}, ExitFailure, "force"},
		{"bad manager url", env, []string{"--manager", "127.0.0.1:1", "status"}, ExitUsage, "manager URL"},
	}
	for _, tt := range codes {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := ctlRun(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d, want %d; stderr %q should say %q", code, tt.code, errOut, tt.says)
			}
		})
	}

	// Changes: each prints what it did.
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--balancer", "shop", "weight", "n1", "3", "--reason", "bigger box"}, "shop/n1: weight 1 -> 3"},
		{[]string{"stop", "--reason", "disk", "n2"}, "shop/n2: state active -> stopped"},
		{[]string{"enable", "n2"}, "shop/n2: state stopped -> active"},
		{[]string{"--balancer", "shop", "add", "n3", extra, "--weight", "2", "--max-conns", "8"}, "shop/n3: added " + extra + " (active, weight 2)"},
		{[]string{"standby", "n3"}, "shop/n3: state active -> standby"},
	} {
		code, out, errOut := ctlRun(t, env, c.args...)
		if code != ExitOK || !strings.Contains(out, c.says) {
			t.Errorf("ctl %v: exit %d, %q %q; want %q", c.args, code, out, errOut, c.says)
		}
	}
	code, out, _ = ctlRun(t, env, "--json", "--balancer", "shop", "status")
	if code != ExitOK || !strings.Contains(out, `"max_conns": 8`) {
		t.Errorf("status --json after add --max-conns 8: exit %d\n%s", code, out)
	}
	code, out, _ = ctlRun(t, env, "audit")
	if code != ExitOK || !strings.Contains(out, "alice@") || !strings.Contains(out, "bigger box") || strings.Count(out, "read-write token") != 5 {
		t.Errorf("audit: exit %d\n%s", code, out)
	}
	if code, _, errOut := ctlRun(t, env, "group"); code != ExitNotFound || !strings.Contains(errOut, "in no group") {
		t.Errorf("group, on an instance in no group: exit %d, %q", code, errOut)
	}

	// drain --wait: two users on n2 go idle; the drain ends when their
	// sessions time out (drain.idle 5s: long enough that both are still live
	// when the drain begins on a busy machine).
	for placed := 0; placed < 2; {
		if m, _ := login(t, srv.front); m == "n2" {
			placed++
		}
	}
	code, out, errOut := ctlRun(t, env, "drain", "n2", "--wait", "--interval", "100ms", "--timeout", "60s")
	if code != ExitOK || !strings.Contains(out, "shop/n2: 2 of 2 sessions left") || !strings.Contains(out, "shop/n2 drained") {
		t.Errorf("drain --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	// A drain that does not finish in time exits 1: a user on n1 keeps
	// browsing (n1's sessions live 5s; the wait gives up after 300ms).
	_, cookie := loginOn(t, srv.front, "n1")
	code, _, errOut = ctlRun(t, env, "--balancer", "shop", "drain", "n1", "--wait", "--interval", "50ms", "--timeout", "300ms")
	if code != ExitFailure || !strings.Contains(errOut, "not drained after 300ms") {
		t.Errorf("drain --wait timing out: exit %d, %q", code, errOut)
	}
	_ = cookie
	code, out, _ = ctlRun(t, env, "--json", "status")
	if code != ExitOK || !strings.Contains(out, `"state": "draining"`) || !strings.Contains(out, `"remaining"`) {
		t.Errorf("status --json:\n%s", out)
	}

	// A crash and a restart keep every change.
	srv.proc.Kill()
	srv = startManagedServe(t, dir, conf, front, manager)
	code, out, _ = ctlRun(t, env, "--balancer", "shop", "status")
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 4 {
			rows[f[1]] = f[2] + " weight " + f[4]
		}
	}
	want := map[string]string{"n1": "draining weight 3", "n2": "draining weight 1", "n3": "standby weight 2"}
	for rt, w := range want {
		if rows[rt] != w {
			t.Errorf("after a restart %s is %q, want %q\n%s", rt, rows[rt], w, out)
		}
	}
	if code != ExitOK {
		t.Errorf("status after restart: exit %d", code)
	}
	srv.proc.Signal(syscall.SIGTERM)
	if _, ok := srv.proc.Wait(30 * time.Second); !ok {
		t.Error("tether serve did not stop on SIGTERM")
	}
}

// loginOn logs users in until one lands on member rt.
func loginOn(t *testing.T, base, rt string) (string, string) {
	t.Helper()
	for range 100 {
		if m, c := login(t, base); m == rt {
			return m, c
		}
	}
	t.Fatalf("no session on %s", rt)
	return "", ""
}
