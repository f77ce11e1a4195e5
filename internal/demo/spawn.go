package demo

import (
	"os/exec"
	"runtime"
	"syscall"
)

// spawner starts child processes from one OS thread that lives as long as
// the demo. Children get Pdeathsig SIGKILL, which Linux delivers when the
// thread that started them ends: spawning from a locked, long-lived thread
// makes that "when the demo process ends", even by SIGKILL, so no child is
// ever orphaned.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the process
		close(started)
		for {
			select {
			case r := <-s.reqs:
				r.err <- r.cmd.Start()
			case <-s.done:
				return // the thread stays locked and parked until exit
			}
		}
	}()
	<-started
	return s
}

// start starts cmd in its own process group, to die with the demo.
func (s *spawner) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	r := spawnReq{cmd: cmd, err: make(chan error, 1)}
	s.reqs <- r
	return <-r.err
}
