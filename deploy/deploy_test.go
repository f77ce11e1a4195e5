// Package deploy_test checks the files that package and run Tether: the
// Dockerfile (built where a container engine runs), the compose file and
// its balancer configuration, and the systemd unit (verified by
// systemd-analyze where it is installed).
package deploy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tetherlb/tether/config"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, with its
// binary path pointed at an executable that exists here: any message (an
// unknown key is only a warning, with exit status 0) fails the test.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd): the unit is not verified")
	}
	unit, err := os.ReadFile("tether.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable() // an executable file: verify checks that ExecStart's exists
	if err != nil {
		t.Fatal(err)
	}
	verify := func(t *testing.T, unit []byte) string {
		path := filepath.Join(t.TempDir(), "tether.service")
		if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/tether"), []byte(self)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		if err != nil && len(out) == 0 {
			out = []byte(err.Error())
		}
		return strings.TrimSpace(string(out))
	}
	if out := verify(t, unit); out != "" {
		t.Errorf("systemd-analyze verify tether.service:\n%s", out)
	}
	// The check can fail: a misspelt hardening key is reported.
	if out := verify(t, bytes.Replace(unit, []byte("ProtectSystem="), []byte("ProtectSytem="), 1)); !strings.Contains(out, "ProtectSytem") {
		t.Errorf("systemd-analyze verify did not report a misspelt key; it said %q", out)
	}
}

// TestSystemdUnitExposure runs systemd-analyze security on the unit: its
// exposure score (0 to 10, lower is safer) must stay at 2.0 or below
// ("OK"); a unit without the sandbox fails the same check.
func TestSystemdUnitExposure(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd): the unit's exposure is not measured")
	}
	unit, err := os.ReadFile("tether.service")
	if err != nil {
		t.Fatal(err)
	}
	exposure := func(unit string) (string, error) {
		path := filepath.Join(t.TempDir(), "tether.service")
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return lines[len(lines)-1], err
	}
	if last, err := exposure(string(unit)); err != nil {
		t.Errorf("systemd-analyze security: %v: %s", err, last)
	}
	if last, err := exposure("[Service]\nExecStart=/usr/local/bin/tether serve\n"); err == nil {
		t.Errorf("a unit without sandbox passed the threshold: %s", last)
	}
}

// TestSystemdUnitHardening checks the directives the unit promises.
func TestSystemdUnitHardening(t *testing.T) {
	unit, err := os.ReadFile("tether.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	for k, want := range map[string]string{
		"ProtectSystem": "strict", "DynamicUser": "yes", "NoNewPrivileges": "yes",
		"AmbientCapabilities": "CAP_NET_BIND_SERVICE", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"ExecReload": "/bin/kill -HUP $MAINPID", "ExecStart": "/usr/local/bin/tether serve --config /etc/tether/tether.yaml",
	} {
		if got := keys[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want exactly %s=%s", k, got, k, want)
		}
	}
}

// TestComposeMatchesItsConfig loads the compose file's balancer
// configuration with config.Load, and checks that its members are the
// compose file's cart services, with the routes those nodes are given.
func TestComposeMatchesItsConfig(t *testing.T) {
	cfg, err := config.Load("tether.yaml")
	if err != nil {
		t.Fatalf("deploy/tether.yaml does not load: %v", err)
	}
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if len(cfg.Balancers) != 1 || len(cfg.Balancers[0].Members) != 3 {
		t.Fatalf("want one balancer of three members, got %+v", cfg.Balancers)
	}
	for _, m := range cfg.Balancers[0].Members {
		u, err := url.Parse(m.URL)
		if err != nil {
			t.Fatal(err)
		}
		svc, ok := compose.Services[u.Hostname()]
		if !ok {
			t.Errorf("member %s: compose.yaml has no service %q", m.Route, u.Hostname())
			continue
		}
		cmd := strings.Join(svc.Command, " ")
		if !strings.Contains(cmd, "--route "+m.Route+" ") || !strings.Contains(cmd, ":"+u.Port()) || !strings.HasPrefix(cmd, "cart ") {
			t.Errorf("member %s at %s: service %s runs %q", m.Route, m.URL, u.Hostname(), cmd)
		}
	}
}

// TestDockerfileStages checks what the image promises without building
// it: a static build stage and a final stage without a shell, as a user
// other than root.
func TestDockerfileStages(t *testing.T) {
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(string(df), -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, found FROM %v", froms)
	}
	final := string(df[strings.LastIndex(string(df), "\nFROM "):])
	if base := froms[len(froms)-1][1]; !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("final stage FROM %s: want distroless/static or scratch (no shell)", base)
	}
	if m := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(final); m == nil || strings.HasPrefix(m[1], "root") || strings.HasPrefix(m[1], "0") {
		t.Errorf("final stage runs as %v: want a user other than root", m)
	}
	if !strings.Contains(string(df), "CGO_ENABLED=0") {
		t.Error("the build stage does not set CGO_ENABLED=0: the binary would not be static")
	}
}

// TestDockerfileBuilds builds the image where a container engine (docker,
// else podman) answers, and
// checks that it runs `tether version` as a user other than root and has
// no shell.
func TestDockerfileBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image; skipped with -short")
	}
	var docker string
	var why []string
	for _, tool := range []string{"docker", "podman"} {
		path, err := exec.LookPath(tool)
		if err != nil {
			why = append(why, tool+" is not installed")
			continue
		}
		if out, err := exec.Command(path, "info").CombinedOutput(); err != nil {
			why = append(why, fmt.Sprintf("%s info: %v: %s", tool, err, lastLine(out)))
			continue
		}
		docker = path
		break
	}
	if docker == "" {
		t.Skipf("no container engine runs here, so the Dockerfile is not built (%s)", strings.Join(why, "; "))
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tag := "tether-test:" + hex.EncodeToString(b)
	build := exec.Command(docker, "build", "-t", tag, "..")
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s build: %v\n%s", docker, err, out)
	}
	t.Cleanup(func() { _ = exec.Command(docker, "image", "rm", "-f", tag).Run() })
	out, err := exec.Command(docker, "run", "--rm", tag, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "tether ") {
		t.Errorf("docker run %s version: %v: %s", tag, err, out)
	}
	user, err := exec.Command(docker, "image", "inspect", "-f", "{{.Config.User}}", tag).Output()
	if u := strings.TrimSpace(string(user)); err != nil || u == "" || u == "root" || strings.HasPrefix(u, "0") {
		t.Errorf("the image runs as %q (%v): want a user other than root", u, err)
	}
	if err := exec.Command(docker, "run", "--rm", "--entrypoint", "/bin/sh", tag, "-c", "true").Run(); err == nil {
		t.Error("the image has a shell: /bin/sh ran")
	}
}

// lastLine is the last line of a command's output: docker info ends with
// its error.
func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	return s[strings.LastIndexByte(s, '\n')+1:]
}
