package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	const rev = "59041d3c2f0a7e7a1a8d2b1f6e3c4d5e6f708192"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-03T17:00:00Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	tests := []struct {
		name     string
		override string
		bi       *debug.BuildInfo
		want     string
	}{
		{"no build info", "", nil, "tether dev " + runtime.Version() + " linux/amd64"},
		{"go run: devel, no vcs", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"tether dev go1.26.8 linux/amd64"},
		{"go install @v1.2.3 from the module cache", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			"tether v1.2.3 go1.26.8 linux/amd64"},
		{"build in a clean checkout", "", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "v0.0.0-20261203170000-59041d3c2f0a"}, Settings: vcs("false")},
			"tether v0.0.0-20261203170000-59041d3c2f0a (revision " + rev + ", 2026-12-03T17:00:00Z) go1.26.8 linux/amd64"},
		{"build in a modified checkout", "", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")},
			"tether dev (revision " + rev + ", 2026-12-03T17:00:00Z, modified) go1.26.8 linux/amd64"},
		{"release ldflags override the module version", "v2.0.0", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")},
			"tether v2.0.0 (revision " + rev + ", 2026-12-03T17:00:00Z) go1.26.8 linux/amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionLine(tt.override, tt.bi, "linux/amd64"); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestVersionOfInstalledBinary runs `go install ./cmd/tether` from this
// checkout and `tether version`: it must name the checkout's revision.
func TestVersionOfInstalledBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed: the build cannot record a revision")
	}
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	dir := filepath.Dir(strings.TrimSpace(string(root)))
	head, err := exec.Command(gitBin, "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("%s is not a git checkout (git rev-parse HEAD: %v): the build cannot record a revision", dir, err)
	}
	bin := t.TempDir()
	install := exec.Command("go", "install", "-buildvcs=true", "./cmd/tether")
	install.Dir = buildableCheckout(t, gitBin, dir)
	install.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-buildvcs=true")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install ./cmd/tether: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(bin, "tether"), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("tether version: %v\n%s", err, out)
	}
	got := string(out)
	if want := "(revision " + strings.TrimSpace(string(head)); !strings.Contains(got, want) {
		t.Errorf("tether version printed %q, want it to contain %q", got, want)
	}
	if !strings.HasPrefix(got, "tether ") || !strings.Contains(got, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("tether version printed %q, want tether VERSION (...) GOVERSION %s/%s", got, runtime.GOOS, runtime.GOARCH)
	}
}

// buildableCheckout returns a directory holding dir's files in which the go
// command finds the git repository: dir itself when its .git is a
// directory, else (a git worktree, whose .git is a file the go command does
// not follow) a clone of it with the worktree's files copied over, so that
// the build has the worktree's code and HEAD's revision.
func buildableCheckout(t *testing.T, gitBin, dir string) string {
	t.Helper()
	if fi, err := os.Stat(filepath.Join(dir, ".git")); err == nil && fi.IsDir() {
		return dir
	}
	clone := filepath.Join(t.TempDir(), "tether")
	if out, err := exec.Command(gitBin, "clone", "-q", "--shared", dir, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone %s: %v\n%s", dir, err, out)
	}
	files, err := exec.Command(gitBin, "-C", dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if os.IsNotExist(err) {
			continue // deleted in the worktree
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(clone, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(clone, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return clone
}
