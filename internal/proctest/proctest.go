// Package proctest runs real tether processes in tests: it builds the
// binary once per test process, starts processes on free loopback ports,
// and polls for what a test waits on, never sleeping a fixed time.
package proctest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/freeport"
)

var build struct {
	once sync.Once
	path string
	err  error
}

// Binary builds ./cmd/tether once per test process and returns its path.
// With TETHER_PROCTEST_RACE=1 the binary is built with -race.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			build.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		removeStale(time.Now().Add(-staleAfter))
		dir, err := os.MkdirTemp("", "tether-proctest-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "tether")
		args := []string{"build", "-o", build.path}
		if os.Getenv("TETHER_PROCTEST_RACE") == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/tether")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// staleAfter is the age past which a build directory of an earlier test
// process is removed: no test run lasts that long, and a test process
// cannot remove its own directory (Go has no exit hook).
const staleAfter = 2 * time.Hour

// removeStale removes the build directories of test processes that started
// before cutoff.
func removeStale(cutoff time.Time) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "tether-proctest-*"))
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && fi.ModTime().Before(cutoff) {
			os.RemoveAll(d)
		}
	}
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago, for TCP and UDP, chosen below the kernel's ephemeral range (see
// package freeport). Another process may still take it before the caller
// binds it; tests that start many processes should pass the address to
// one process at a time.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Pick("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Proc is a running process started by Start.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	out  *Buffer
	done chan struct{}
	err  error
}

// Start runs the tether binary with args. Its output is kept for Output and
// printed on failure; the process is killed when the test ends.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartCmd(t, name, exec.Command(Binary(t), args...))
}

// StartCmd starts cmd like Start does. The process gets its own process
// group and is killed (SIGKILL) if the test process dies.
func StartCmd(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, out: &Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.Output())
		}
	})
	return p
}

// Output returns what the process has written to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Pid returns the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Stop freezes the process with SIGSTOP and returns once the kernel
// reports every thread of it stopped (Linux: state T in
// /proc/PID/task/*/stat): a signal is delivered asynchronously, and a
// process still running a moment after kill(2) would answer a request the
// test means it to miss. Cont resumes it.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", p.Name, err)
	}
	Eventually(t, 10*time.Second, func() error {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", p.Pid()))
		if err != nil || len(tasks) == 0 {
			return fmt.Errorf("%s: no threads in /proc (%v)", p.Name, err)
		}
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			// "pid (comm) S ...": the state follows the last parenthesis.
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				return fmt.Errorf("%s: thread %s still running", p.Name, f)
			}
		}
		return nil
	})
}

// Cont resumes a process stopped by Stop (SIGCONT).
func (p *Proc) Cont(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", p.Name, err)
	}
}

// Kill sends SIGKILL to the process and the processes it started, and
// waits for it to be gone. It is safe to call on a process that has exited.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	// The whole process group (Setpgid): a forking server's workers would
	// otherwise keep the output pipes open, and Wait would never return.
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits up to timeout for the process to exit and returns its error.
func (p *Proc) Wait(timeout time.Duration) (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Eventually calls check until it returns nil, failing the test with the
// last error if that has not happened within timeout.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(delay) // polling interval, not a wait for an outcome
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// WaitHTTP polls url with GET until it answers with status, or fails the
// test after timeout.
func WaitHTTP(t testing.TB, url string, status int, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	Eventually(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			return fmt.Errorf("GET %s: %d, want %d", url, resp.StatusCode, status)
		}
		return nil
	})
}

// Buffer is a bytes.Buffer safe for concurrent writers: the output of a
// process, or the log of a server under test, read while it still writes.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
