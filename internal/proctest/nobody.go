package proctest

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// nobodyID is the user and group id of nobody (and nogroup).
const nobodyID = 65534

// AsNobody runs the calling test again as the user nobody when this
// process runs as root, for whom no permission check fails (a file of
// mode 0200 opens for reading, a directory of mode 0555 takes new files):
// the test binary, copied to a directory nobody can read, runs the test
// alone (-test.run with its full name) in a child process with uid and
// gid 65534, and the test fails if the child fails or does not run it.
// AsNobody reports whether it did so: the caller then returns, its
// verdict being the child's. Not as root (the child, or a test run by a
// user), it returns false and the test goes on in this process.
func AsNobody(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "tether-proctest-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "test")
	if err := copyExecutable(exe, bin); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.Command(bin, "-test.run="+strings.Join(parts, "/"), "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "HOME=/nonexistent", "TMPDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("as nobody (uid %d): %v\n%s", nobodyID, err, out)
	}
	t.Logf("passed as nobody (uid %d)", nobodyID)
	return true
}

// copyExecutable copies the file at src to a new file dst of mode 0755.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
