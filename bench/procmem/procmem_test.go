package procmem

import (
	"os"
	"os/exec"
	"testing"
)

func TestOf(t *testing.T) {
	self, err := Of(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.RSS <= 0 || self.PSS <= 0 {
		t.Errorf("memory of this process %+v, want positive RSS and PSS", self)
	}
	// A child process counts in its parent's tree.
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skip("cannot start sleep:", err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	pids, err := tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pids {
		found = found || p == child.Process.Pid
	}
	if !found {
		t.Errorf("tree(%d) = %v, lacks the child %d", os.Getpid(), pids, child.Process.Pid)
	}
	if _, err := Of(1 << 30); err == nil {
		t.Error("memory of a process that does not exist: no error")
	}
}
