package proctest

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartVersionAndKill(t *testing.T) {
	p := Start(t, "version", "version")
	err, done := p.Wait(time.Minute)
	if !done || err != nil {
		t.Fatalf("tether version: done=%v err=%v\n%s", done, err, p.Output())
	}
	if !strings.HasPrefix(p.Output(), "tether ") {
		t.Fatalf("output %q", p.Output())
	}
	p.Kill() // a no-op on an exited process
}

func TestKillStopsARunningProcess(t *testing.T) {
	long := StartCmd(t, "sleep", exec.Command("sleep", "60"))
	if long.Exited() {
		t.Fatal("exited at once")
	}
	long.Kill()
	if !long.Exited() {
		t.Fatal("still running after Kill")
	}
	if ws := long.Cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
		t.Fatalf("ended by %v", ws.Signal())
	}
}
