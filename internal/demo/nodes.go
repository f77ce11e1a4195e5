package demo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the demo: a cart node or the balancer. It
// can be killed and started again with the same arguments and ports.
type proc struct {
	name string
	args []string
	env  []string
	log  string // file its output is appended to

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	killed  bool          // ended by the demo's kill button
	started time.Time
}

// ProcState is what the demo panel shows of a process.
type ProcState struct {
	Name    string    `json:"name"`
	Running bool      `json:"running"`
	Killed  bool      `json:"killed,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Started time.Time `json:"started,omitempty"`
}

func (p *proc) state() ProcState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := ProcState{Name: p.name, Killed: p.killed}
	if p.running() {
		st.Running, st.PID, st.Started = true, p.cmd.Process.Pid, p.started
	}
	return st
}

// running reports whether the current process is alive; p.mu is held.
func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// start starts the process unless it is running.
func (p *proc) start(sp *spawner, bin string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running() {
		return nil
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n--- %s: tether %s\n", time.Now().Format(time.RFC3339), strings.Join(p.args, " "))
	cmd := exec.Command(bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := sp.start(cmd); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(exited)
	}()
	p.cmd, p.exited, p.killed, p.started = cmd, exited, false, time.Now()
	return nil
}

// kill ends the process at once with SIGKILL, as a crash would.
func (p *proc) kill() error {
	p.mu.Lock()
	if !p.running() {
		p.mu.Unlock()
		return errors.New(p.name + " is not running")
	}
	cmd, exited := p.cmd, p.exited
	p.killed = true
	p.mu.Unlock()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	return nil
}

// stop asks the process to end (SIGTERM), and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	if !p.running() {
		p.mu.Unlock()
		return
	}
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// tail returns the end of the process's log, for error messages.
func (p *proc) tail(n int) string {
	f, err := os.Open(p.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func logPath(dir, name string) string { return filepath.Join(dir, name+".log") }
