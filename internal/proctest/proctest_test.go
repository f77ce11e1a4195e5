package proctest

import (
	"errors"
	"fmt"
	"os"
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

func TestStopAndCont(t *testing.T) {
	p := StartCmd(t, "sleep", exec.Command("sleep", "60"))
	state := func() string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		_, after, _ := strings.Cut(string(b), ") ")
		return after[:1]
	}
	p.Stop(t)
	if s := state(); s != "T" { // Stop returned only once the kernel had stopped it
		t.Fatalf("state after Stop: %s", s)
	}
	p.Cont(t)
	Eventually(t, 10*time.Second, func() error {
		if s := state(); s == "T" {
			return errors.New("still stopped after Cont")
		}
		return nil
	})
}
