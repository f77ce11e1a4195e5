//go:build linux

package h1

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// parker holds idle client connections without a goroutine: after
// ServerOptions.ParkAfter without a request, a connection's goroutine
// registers its socket in the parker's own epoll instance and ends,
// giving back its stack; when the socket becomes readable (or closes),
// the parker starts a goroutine that serves the connection again. A
// parked connection then costs its ServerConn, Go's net.Conn and what
// crypto/tls keeps, no stack: about 1 KiB instead of 4–8 KiB.
//
// One goroutine waits on the epoll instance (a blocking epoll_wait in its
// own thread) and, once a second, closes the parked connections whose
// idle (or header) deadline has passed: their runtime deadline timers
// went with their goroutines.
type parker struct {
	srv   *Server
	epfd  int
	wake  [2]int // a pipe whose read end is in the epoll set (id 0): close wakes run
	stop  atomic.Bool
	mu    sync.Mutex
	conns map[uint64]*ServerConn // by registration id
	ids   uint64
	done  chan struct{}
}

// canPark: this platform can park idle connections.
const canPark = true

// parkScan is how often parked connections' deadlines are checked.
const parkScan = time.Second

func newParker(s *Server) *parker {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		s.opts.Logger.Warn("idle connections keep their goroutines: epoll_create1 failed", "err", err)
		return nil
	}
	p := &parker{srv: s, epfd: fd, conns: map[uint64]*ServerConn{}, done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(fd)
		s.opts.Logger.Warn("idle connections keep their goroutines: pipe2 failed", "err", err)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN} // Fd and Pad 0: id 0, never a connection's
	if err := syscall.EpollCtl(fd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		syscall.Close(fd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
		s.opts.Logger.Warn("idle connections keep their goroutines: epoll_ctl failed", "err", err)
		return nil
	}
	go p.run()
	return p
}

// park registers c, idle and with its buffers given back, to be served
// again when readable. It reports whether it did: the calling goroutine
// must then not touch c again. If it did not, c is idle as before
// (false with c closed means Shutdown or Close closed it meanwhile).
func (p *parker) park(c *ServerConn, deadline time.Time) bool {
	if p.stop.Load() || !c.state.CompareAndSwap(stateIdle, stateParked) {
		return false
	}
	c.parkDeadline = deadline
	p.mu.Lock()
	p.ids++
	id := p.ids
	p.conns[id] = c
	p.mu.Unlock()
	var err error
	cerr := c.rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr == nil && err == nil {
		return true
	}
	p.mu.Lock()
	delete(p.conns, id)
	p.mu.Unlock()
	c.state.CompareAndSwap(stateParked, stateIdle)
	return false
}

func (p *parker) run() {
	defer close(p.done)
	defer func() {
		syscall.Close(p.epfd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
	}()
	events := make([]syscall.EpollEvent, 128)
	last := time.Now()
	for !p.stop.Load() {
		n, err := syscall.EpollWait(p.epfd, events, int(parkScan/time.Millisecond))
		if err != nil && err != syscall.EINTR {
			p.srv.opts.Logger.Error("parked connections: epoll_wait failed", "err", err)
			return
		}
		for i := range n {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if id == 0 {
				continue // woken by close: the loop checks stop
			}
			p.mu.Lock()
			c := p.conns[id]
			delete(p.conns, id)
			p.mu.Unlock()
			if c != nil {
				p.unregister(c)
				if c.state.CompareAndSwap(stateParked, stateIdle) {
					go c.serve()
				}
			}
		}
		if now := time.Now(); now.Sub(last) >= parkScan {
			last = now
			p.expire(now)
		}
	}
}

// unregister removes c's socket from the epoll instance, if still open.
func (p *parker) unregister(c *ServerConn) {
	c.rc.Control(func(fd uintptr) {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// expire closes the parked connections whose deadline has passed, and
// forgets those Shutdown closed.
func (p *parker) expire(now time.Time) {
	var old []*ServerConn
	p.mu.Lock()
	for id, c := range p.conns {
		switch {
		case c.state.Load() == stateClosed:
			delete(p.conns, id)
		case now.After(c.parkDeadline):
			delete(p.conns, id)
			old = append(old, c)
		}
	}
	p.mu.Unlock()
	for _, c := range old {
		p.unregister(c)
		if c.state.CompareAndSwap(stateParked, stateClosed) {
			c.raw.Close()
			p.srv.track(c, false)
		}
	}
}

// close stops the parker: it wakes its goroutine, which releases the epoll
// instance and returns (wait for it with wait). Parked connections are
// closed by the server.
func (p *parker) close() {
	if !p.stop.Swap(true) {
		syscall.Write(p.wake[1], []byte{1})
	}
}

// wait returns once the parker's goroutine has returned and its
// descriptors are closed.
func (p *parker) wait() { <-p.done }
