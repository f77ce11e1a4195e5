package cli

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

// Secrets of TestCheckLoadsWhatServeLoads: none may appear in any output.
const (
	cookieKey     = "cookie-key-0123456789abcdef0123456789"
	shortKey      = "short-cookie-secret"
	ajpEnvSecret  = "ajp-secret-from-the-environment"
	ajpFileSecret = "ajp-secret-from-a-file"
	managerToken  = "manager-token-0123456789abcdef"
	metricsToken  = "metrics-token-0123456789abcdef"
	groupKey      = "group-key-0123456789abcdef0123456789"
)

// checkSetup is one configuration of TestCheckLoadsWhatServeLoads: its
// file's text, the files it names and the environment.
type checkSetup struct {
	dir   string
	yaml  string
	files map[string]string // name in dir → content
	env   map[string]string
	// asNobody: run the case as nobody when run as root.
	asNobody bool
}

// TestCheckLoadsWhatServeLoads: `tether check` reads what `tether serve`
// reads at start, from files and from its environment (Env.Getenv), and
// reports each problem as FILE:LINE: message: cookie keys, TLS
// certificates, member CA files, AJP secrets, the manager's and the
// metrics' tokens, the group's key, the state file. It binds nothing (the
// listen address is taken by the test), creates no file (the access log,
// the state file) and never prints a secret; and
// `tether serve` refuses the same files with the same lines.
func TestCheckLoadsWhatServeLoads(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ca := testpki.NewCA(t, "members")
	cert, key := ca.Issue(t, "localhost")
	groupListen := proctest.FreeAddr(t)
	base := func(t *testing.T) *checkSetup {
		dir := t.TempDir()
		return &checkSetup{
			dir: dir,
			yaml: fmt.Sprintf(`listen: %s
access_log: DIR/access.log
tls: {cert: %s, key: %s}
manager:
  listen: 127.0.0.1:0
  state_file: DIR/state.json
metrics: {listen: '0.0.0.0:0'}
group: {listen: '%s', key_file: DIR/group.key}
balancers:
  - name: shop
    sticky:
      mode: insert
      cookie: {key_env: SHOP_COOKIE_KEY}
    member_tls: {ca: %s}
    members:
      - {url: 'https://10.0.0.1:8443', route: n1}
  - name: legacy
    path: /legacy
    ajp:
      secret_env: LEGACY_AJP_SECRET
    members:
      - {url: 'ajp://10.0.0.2:8009', route: n2}
      - {url: 'ajp://10.0.0.3:8009', route: n3, secret_file: DIR/ajp.secret}
`, busy.Addr(), cert, key, groupListen, ca.CertFile),
			files: map[string]string{
				"group.key":  groupKey + "\n",
				"ajp.secret": ajpFileSecret + "\n",
				// No state.json: a missing state file is an empty state.
			},
			env: map[string]string{
				"SHOP_COOKIE_KEY":      cookieKey,
				"LEGACY_AJP_SECRET":    ajpEnvSecret,
				"TETHER_MANAGER_TOKEN": managerToken,
				"TETHER_METRICS_TOKEN": metricsToken,
			},
		}
	}
	replace := func(old, new string) func(*checkSetup) {
		return func(s *checkSetup) {
			if !strings.Contains(s.yaml, old) {
				panic("no " + old + " in the test's file")
			}
			s.yaml = strings.Replace(s.yaml, old, new, 1)
		}
	}
	unset := func(names ...string) func(*checkSetup) {
		return func(s *checkSetup) {
			for _, n := range names {
				delete(s.env, n)
			}
		}
	}
	file := func(name, content string) func(*checkSetup) {
		return func(s *checkSetup) { s.files[name] = content }
	}
	// want: the line holding the marker, and the message there.
	type want struct{ marker, msg string }
	// dir makes a directory of mode perm in the test's directory.
	dir := func(name string, perm os.FileMode) func(*checkSetup) {
		return func(s *checkSetup) {
			if err := os.Mkdir(filepath.Join(s.dir, name), perm); err != nil {
				panic(err)
			}
		}
	}
	// special makes name in the test's directory with make (a file of
	// some mode, a named pipe).
	special := func(name string, make func(path string) error) func(*checkSetup) {
		return func(s *checkSetup) {
			if err := make(filepath.Join(s.dir, name)); err != nil {
				panic(err)
			}
		}
	}
	writeOnly := func(path string) error {
		if err := os.WriteFile(path, nil, 0o200); err != nil {
			return err
		}
		return os.Chmod(path, 0o200)
	}
	fifo := func(path string) error { return syscall.Mkfifo(path, 0o600) }
	audit := func(path string) func(*checkSetup) {
		return replace("state_file: DIR/state.json", "state_file: DIR/state.json\n  audit_file: "+path)
	}
	// asNobody marks a case about permissions, which never stop root:
	// run as root, the case runs as nobody (proctest.AsNobody).
	asNobody := func(s *checkSetup) { s.asNobody = true }
	both := func(fs ...func(*checkSetup)) func(*checkSetup) {
		return func(s *checkSetup) {
			for _, f := range fs {
				f(s)
			}
		}
	}
	tests := []struct {
		name  string
		setup func(*checkSetup)
		want  []want
	}{
		{"good: secrets in the environment and in files", func(*checkSetup) {}, nil},
		{"cookie key variable not set", unset("SHOP_COOKIE_KEY"),
			[]want{{"key_env: SHOP_COOKIE_KEY", "balancers[0].sticky.cookie.key_env: environment variable SHOP_COOKIE_KEY is not set"}}},
		{"cookie key variable too short", func(s *checkSetup) { s.env["SHOP_COOKIE_KEY"] = shortKey },
			[]want{{"key_env: SHOP_COOKIE_KEY", "balancers[0].sticky.cookie.key_env: the key on line 1 is 19 characters: at least 32 are required"}}},
		{"cookie key file missing", replace("key_env: SHOP_COOKIE_KEY", "key_file: DIR/cookie.key"),
			[]want{{"key_file: DIR/cookie.key", "balancers[0].sticky.cookie.key_file: open DIR/cookie.key: no such file or directory"}}},
		{"TLS certificate invalid", replace("tls: {cert: "+cert, "tls: {cert: DIR/garbage.pem"),
			[]want{{"tls: {cert:", "tls.cert: tls: failed to find any PEM data in certificate input"}}},
		{"TLS certificate unreadable", replace("tls: {cert: "+cert, "tls: {cert: DIR"),
			[]want{{"tls: {cert:", "tls.cert: read DIR: is a directory"}}},
		{"member CA not a certificate", replace("ca: "+ca.CertFile, "ca: DIR/garbage.pem"),
			[]want{{"member_tls:", "balancers[0].member_tls.ca: DIR/garbage.pem holds no PEM certificate"}}},
		{"AJP secret variable not set", unset("LEGACY_AJP_SECRET"),
			[]want{{"secret_env: LEGACY_AJP_SECRET", "balancers[1].ajp.secret_env: the environment variable LEGACY_AJP_SECRET is not set"}}},
		{"AJP secret file missing", func(s *checkSetup) { delete(s.files, "ajp.secret") },
			[]want{{"secret_file: DIR/ajp.secret", "balancers[1].members[1].secret_file: stat DIR/ajp.secret: no such file or directory"}}},
		{"manager token not set", unset("TETHER_MANAGER_TOKEN"),
			[]want{{"manager:", "manager: no token: set manager.token, manager.token_file or the TETHER_MANAGER_TOKEN environment variable"}}},
		{"metrics token not set for a public listener", unset("TETHER_METRICS_TOKEN"),
			[]want{{"metrics:", "metrics.listen: 0.0.0.0:0 is not a loopback address"}}},
		{"group key too short", file("group.key", "short\n"),
			[]want{{"group:", "group.key_file: DIR/group.key: 5 bytes, want at least 16"}}},
		{"state file corrupt", file("state.json", "{"),
			[]want{{"state_file:", "manager.state_file: state file DIR/state.json: unexpected EOF"}}},
		{"state file that is a named pipe", both(special("state.fifo", fifo), replace("state_file: DIR/state.json", "state_file: DIR/state.fifo")),
			[]want{{"state_file:", "manager.state_file: state file DIR/state.fifo is not a regular file"}}},
		{"state file in a directory that is not writable", both(asNobody, dir("ro", 0o555), replace("state_file: DIR/state.json", "state_file: DIR/ro/state.json")),
			[]want{{"state_file:", "manager.state_file: state file DIR/ro/state.json cannot be written: access DIR/ro: permission denied"}}},
		{"state file in a missing directory", replace("state_file: DIR/state.json", "state_file: DIR/no/state.json"),
			[]want{{"state_file:", "manager.state_file: state file DIR/no/state.json cannot be written: stat DIR/no: no such file or directory"}}},
		{"access log in a directory that is not writable", both(asNobody, dir("ro", 0o555), replace("access_log: DIR/access.log", "access_log: DIR/ro/access.log")),
			[]want{{"access_log:", "access_log: \"DIR/ro/access.log\" cannot be created: access DIR/ro: permission denied"}}},
		{"audit file that cannot be read", both(asNobody, special("audit.jsonl", writeOnly), audit("DIR/audit.jsonl")),
			[]want{{"audit_file:", "manager.audit_file: audit file: open DIR/audit.jsonl: permission denied"}}},
		{"audit file that is a named pipe", both(special("audit.fifo", fifo), audit("DIR/audit.fifo")),
			[]want{{"audit_file:", "manager.audit_file: audit file DIR/audit.fifo is not a regular file: the manager reads it back at start"}}},
		{"audit file in a missing directory", audit("DIR/no/audit.jsonl"),
			[]want{{"audit_file:", "manager.audit_file: audit file DIR/no/audit.jsonl cannot be created: stat DIR/no: no such file or directory"}}},
		{"audit file in a directory that is not writable", both(asNobody, dir("ro", 0o555), audit("DIR/ro/audit.jsonl")),
			[]want{{"audit_file:", "manager.audit_file: audit file DIR/ro/audit.jsonl cannot be created: access DIR/ro: permission denied"}}},
		{"every problem at once in line order", unset("SHOP_COOKIE_KEY", "LEGACY_AJP_SECRET", "TETHER_MANAGER_TOKEN"),
			[]want{
				{"manager:", "manager: no token"},
				{"key_env: SHOP_COOKIE_KEY", "balancers[0].sticky.cookie.key_env: environment variable SHOP_COOKIE_KEY is not set"},
				{"secret_env: LEGACY_AJP_SECRET", "balancers[1].ajp.secret_env: the environment variable LEGACY_AJP_SECRET is not set"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base(t)
			s.files["garbage.pem"] = "not a certificate\n"
			tt.setup(s)
			if s.asNobody && proctest.AsNobody(t) {
				return
			}
			for name, content := range s.files {
				if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(s.dir, "tether.yaml")
			text := strings.ReplaceAll(s.yaml, "DIR", s.dir)
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			env := maps.Clone(s.env)
			getenv := func(k string) string { return env[k] }
			var out, errOut strings.Builder
			code := Run(t.Context(), []string{"check", "--config", path}, Env{Stdout: &out, Stderr: &errOut, Getenv: getenv})
			for _, secret := range []string{cookieKey, shortKey, ajpEnvSecret, ajpFileSecret, managerToken, metricsToken, groupKey} {
				if strings.Contains(out.String()+errOut.String(), secret) {
					t.Fatalf("the output shows a secret:\n%s%s", out.String(), errOut.String())
				}
			}
			for _, name := range []string{"access.log", "state.json"} {
				if _, err := os.Stat(filepath.Join(s.dir, name)); err == nil && s.files[name] == "" {
					t.Fatalf("check created %s", name)
				}
			}
			if len(tt.want) == 0 {
				if code != ExitOK || errOut.Len() > 0 || !strings.HasPrefix(out.String(), path+": ok (2 balancers, 3 members)") {
					t.Fatalf("code %d, stdout %q, stderr:\n%s", code, out.String(), errOut.String())
				}
				return
			}
			lines := strings.Split(text, "\n")
			var wantLines []string
			for _, w := range tt.want {
				n := 0
				for i, l := range lines {
					if strings.Contains(l, strings.ReplaceAll(w.marker, "DIR", s.dir)) {
						n = i + 1
						break
					}
				}
				if n == 0 {
					t.Fatalf("no line holds %q", w.marker)
				}
				wantLines = append(wantLines, fmt.Sprintf("%s:%d: %s", path, n, strings.ReplaceAll(w.msg, "DIR", s.dir)))
			}
			got := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
			if code != ExitUsage || out.Len() > 0 || len(got) != len(wantLines) {
				t.Fatalf("code %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out.String(), errOut.String(), strings.Join(wantLines, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], wantLines[i]) {
					t.Errorf("line %d:\n got %s\nwant %s…", i+1, got[i], wantLines[i])
				}
			}

			// `tether serve` refuses the file with the same lines, before it
			// binds anything.
			var sout, serr strings.Builder
			scode := Run(t.Context(), []string{"serve", "--config", path}, Env{Stdout: &sout, Stderr: &serr, Getenv: getenv})
			if scode != ExitUsage || !strings.Contains(serr.String(), errOut.String()) {
				t.Errorf("serve: code %d, stderr:\n%s\nwant check's lines:\n%s", scode, serr.String(), errOut.String())
			}
		})
	}
}

// TestCheckPrintsServesWarnings: `tether check` prints every warning
// `tether serve` logs at start for the same file and environment (a short
// manager token, wherever it comes from; lines of the audit file that are
// not entries), as FILE:LINE: warning: message, and exits 0 when there
// are only warnings; with a problem too, both are printed in line order
// and it exits 2. Serve logs the same texts; neither prints a token.
func TestCheckPrintsServesWarnings(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close() // serve gets as far as binding its listener, then stops
	// Short tokens: none may appear in any output.
	const (
		inlineToken = "Sh0rt-inline"
		fileToken   = "Sh0rt-file"
		envToken    = "Sh0rt-env"
		roToken     = "Sh0rt-ro"
	)
	const short = "the token is short; use at least 16 random bytes, e.g. openssl rand -hex 32"
	good := map[string]string{"TETHER_MANAGER_TOKEN": managerToken}
	audit := "  audit_file: DIR/audit.jsonl\n"
	auditFile := map[string]string{"audit.jsonl": `{"id":1}` + "\nnot an entry\n"}
	// line: the line of the file holding marker, and the text after
	// FILE:LINE: there.
	type line struct{ marker, text string }
	tests := []struct {
		name    string
		manager string            // more keys of the manager section
		files   map[string]string // name in DIR → content
		env     map[string]string
		want    []line
		code    int
	}{
		{"no warning", "", nil, good, nil, ExitOK},
		{"short token in the file", "  token: " + inlineToken + "\n", nil, nil,
			[]line{{"token: ", "warning: manager.token: " + short}}, ExitOK},
		{"short token in a token file", "  token_file: DIR/token\n", map[string]string{"token": fileToken + "\n"}, nil,
			[]line{{"token_file:", "warning: manager.token_file: " + short}}, ExitOK},
		{"short token in TETHER_MANAGER_TOKEN", "", nil, map[string]string{"TETHER_MANAGER_TOKEN": envToken},
			[]line{{"manager:", "warning: manager: the token in TETHER_MANAGER_TOKEN is short; use at least 16 random bytes, e.g. openssl rand -hex 32"}}, ExitOK},
		{"short read-only token in the file", "  read_only_token: " + roToken + "\n", nil, good,
			[]line{{"read_only_token:", "warning: manager.read_only_token: the read-only token is short; use at least 16 random bytes, e.g. openssl rand -hex 32"}}, ExitOK},
		{"short read-only token in a token file", "  read_only_token_file: DIR/ro\n", map[string]string{"ro": roToken + "\n"}, good,
			[]line{{"read_only_token_file:", "warning: manager.read_only_token_file: the read-only token is short; use at least 16 random bytes, e.g. openssl rand -hex 32"}}, ExitOK},
		{"a long read-only token", "  read_only_token: ro-0123456789abcdef\n", nil, good, nil, ExitOK},
		{"audit file with a line that is not an entry", audit, auditFile, good,
			[]line{{"audit_file:", "warning: manager.audit_file: audit file DIR/audit.jsonl: 1 line that is not an entry is skipped and left in the file (a write cut short by a crash?)"}}, ExitOK},
		{"every warning at once in line order", audit + "  token: " + inlineToken + "\n", auditFile, nil,
			[]line{
				{"audit_file:", "warning: manager.audit_file: audit file DIR/audit.jsonl: 1 line that is not an entry"},
				{"token: ", "warning: manager.token: " + short},
			}, ExitOK},
		{"a warning and a problem", "  token: " + inlineToken + "\n", map[string]string{"state.json": "{"}, nil,
			[]line{
				{"state_file:", "manager.state_file: state file DIR/state.json: unexpected EOF"},
				{"token: ", "warning: manager.token: " + short},
			}, ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			text := strings.ReplaceAll(fmt.Sprintf(`listen: %s
manager:
  listen: 127.0.0.1:0
  state_file: DIR/state.json
%sbalancers:
  - name: shop
    members:
      - {url: 'http://127.0.0.1:9', route: n1}
`, busy.Addr(), tt.manager), "DIR", dir)
			path := filepath.Join(dir, "tether.yaml")
			files := maps.Clone(tt.files)
			if files == nil {
				files = map[string]string{}
			}
			files["tether.yaml"] = text
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			getenv := func(k string) string { return tt.env[k] }
			lines := strings.Split(text, "\n")
			var want []string
			for _, w := range tt.want {
				n := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, w.marker) }) + 1
				if n == 0 {
					t.Fatalf("no line holds %q", w.marker)
				}
				want = append(want, fmt.Sprintf("%s:%d: %s", path, n, strings.ReplaceAll(w.text, "DIR", dir)))
			}

			var out, errOut strings.Builder
			code := Run(t.Context(), []string{"check", "--config", path}, Env{Stdout: &out, Stderr: &errOut, Getenv: getenv})
			got := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
			if errOut.Len() == 0 {
				got = nil
			}
			if code != tt.code || len(got) != len(want) || (code == ExitOK) != strings.HasPrefix(out.String(), path+": ok") {
				t.Fatalf("check: code %d, want %d; stdout %q; stderr:\n%s\nwant:\n%s", code, tt.code, out.String(), errOut.String(), strings.Join(want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("check, line %d:\n got %s\nwant %s…", i+1, got[i], want[i])
				}
			}

			// serve logs each warning at start, with the same text.
			var sout, serr strings.Builder
			scode := Run(t.Context(), []string{"serve", "--config", path}, Env{Stdout: &sout, Stderr: &serr, Getenv: getenv})
			wantCode := ExitFailure // the listen address is taken
			if tt.code != ExitOK {
				wantCode = tt.code
			}
			if scode != wantCode {
				t.Errorf("serve: code %d, want %d; stderr:\n%s", scode, wantCode, serr.String())
			}
			warnings := 0
			for i, w := range tt.want {
				msg, ok := strings.CutPrefix(strings.ReplaceAll(w.text, "DIR", dir), "warning: ")
				if !ok {
					continue
				}
				warnings++
				if !strings.Contains(serr.String(), "level=WARN msg=\""+msg) {
					t.Errorf("serve does not log check's warning %d:\n%s\nstderr:\n%s", i+1, msg, serr.String())
				}
			}
			if n := strings.Count(serr.String(), "level=WARN"); n != warnings {
				t.Errorf("serve logs %d warnings, check printed %d:\n%s", n, warnings, serr.String())
			}
			for _, secret := range []string{inlineToken, fileToken, envToken, roToken, managerToken} {
				if strings.Contains(out.String()+errOut.String()+sout.String()+serr.String(), secret) {
					t.Fatalf("a token is printed:\n%s%s%s%s", out.String(), errOut.String(), sout.String(), serr.String())
				}
			}
		})
	}
}
