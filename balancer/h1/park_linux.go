//go:build linux

package h1

import (
	"errors"
	"os"
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
// One goroutine waits for the epoll instance to have events, through Go's
// netpoller (the epoll descriptor is itself in the runtime's epoll set,
// as a socket is), never in a blocking epoll_wait: a goroutine blocked in
// a system call keeps its P until sysmon takes it back, up to 10 ms
// later, and with GOMAXPROCS=1 the whole proxy would stall each time the
// parker went back to wait. It also closes, once a second, the parked
// connections whose idle (or header) deadline has passed: their runtime
// deadline timers went with their goroutines.
type parker struct {
	srv   *Server
	ep    *os.File        // the epoll instance, non-blocking, in Go's netpoller
	rc    syscall.RawConn // ep's: epoll_ctl and epoll_wait run under its reference, never on a closed descriptor
	stop  atomic.Bool
	mu    sync.Mutex
	conns map[uint64]*ServerConn // by registration id
	ids   uint64
	done  chan struct{}
	ctls  sync.Pool // of *epollCtl
}

// epollCtl is one epoll_ctl call on a connection's socket, made under
// the RawConn.Control of the parker's descriptor and then of the
// socket's, so that neither is used closed. Its callbacks are method
// values made once, and the parker reuses it: parking and waking
// allocate nothing (closures passed to Control would escape, five
// allocations per park and wake-up).
type epollCtl struct {
	epfd  uintptr
	op    int
	ev    syscall.EpollEvent
	c     *ServerConn
	err   error
	onEp  func(uintptr)
	onSoc func(uintptr)
}

func newEpollCtl() any {
	e := &epollCtl{}
	e.onEp, e.onSoc = e.underEp, e.underSocket
	return e
}

func (e *epollCtl) underEp(epfd uintptr) {
	e.epfd = epfd
	if err := e.c.rc.Control(e.onSoc); err != nil {
		e.err = err // the connection's Control failed: the socket is closed
	}
}

func (e *epollCtl) underSocket(fd uintptr) {
	ev := &e.ev
	if e.op == syscall.EPOLL_CTL_DEL {
		ev = nil
	}
	e.err = syscall.EpollCtl(int(e.epfd), e.op, int(fd), ev)
}

// ctl runs epoll_ctl(op) for c's socket in the parker's epoll instance,
// with ev (ignored for EPOLL_CTL_DEL).
func (p *parker) ctl(c *ServerConn, op int, ev syscall.EpollEvent) error {
	e := p.ctls.Get().(*epollCtl)
	e.c, e.op, e.ev, e.err = c, op, ev, nil
	err := p.rc.Control(e.onEp)
	if err == nil {
		err = e.err
	}
	e.c, e.err = nil, nil
	p.ctls.Put(e)
	return err
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
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		s.opts.Logger.Warn("idle connections keep their goroutines: cannot make the epoll descriptor non-blocking", "err", err)
		return nil
	}
	ep := os.NewFile(uintptr(fd), "h1-parker")
	rc, err := ep.SyscallConn()
	if err == nil {
		err = ep.SetReadDeadline(time.Time{}) // fails unless the netpoller took the descriptor
	}
	if err != nil {
		ep.Close()
		s.opts.Logger.Warn("idle connections keep their goroutines: the epoll descriptor cannot be polled", "err", err)
		return nil
	}
	p := &parker{srv: s, ep: ep, rc: rc, conns: map[uint64]*ServerConn{}, done: make(chan struct{})}
	p.ctls.New = newEpollCtl
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
	if p.stop.Load() { // abandon, under the same lock, takes only what it finds
		p.mu.Unlock()
		c.state.CompareAndSwap(stateParked, stateIdle)
		return false
	}
	p.ids++
	id := p.ids
	p.conns[id] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	if p.ctl(c, syscall.EPOLL_CTL_ADD, ev) == nil {
		p.srv.parks.Add(1)
		return true
	}
	p.mu.Lock()
	delete(p.conns, id)
	p.mu.Unlock()
	if c.state.CompareAndSwap(stateParked, stateIdle) || c.state.Load() == stateClosed {
		return false
	}
	return true // abandon took it meanwhile and serves it on a goroutine of its own
}

// run waits for parked connections to become readable and serves them
// again, until close.
func (p *parker) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	var n int
	var werr error
	ready := func(epfd uintptr) bool { // takes the events waiting, never blocks
		n, werr = syscall.EpollWait(int(epfd), events, 0)
		if werr == syscall.EINTR {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil
	}
	last := time.Now()
	for !p.stop.Load() {
		n, werr = 0, nil
		err := p.ep.SetReadDeadline(time.Now().Add(parkScan))
		if err == nil {
			err = p.rc.Read(ready)
		}
		switch {
		case p.stop.Load():
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
		case err == nil && werr == nil:
			p.dispatch(events[:n])
		default:
			p.srv.opts.Logger.Error("parked connections: waiting for them failed; idle connections keep their goroutines from now on", "err", errors.Join(err, werr))
			p.abandon()
			return
		}
		if now := time.Now(); now.Sub(last) >= parkScan {
			last = now
			p.expire(now)
		}
	}
}

// dispatch serves again the connections of the events.
func (p *parker) dispatch(events []syscall.EpollEvent) {
	for _, ev := range events {
		id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		p.mu.Lock()
		c := p.conns[id]
		delete(p.conns, id)
		p.mu.Unlock()
		if c != nil {
			p.unregister(c)
			if c.state.CompareAndSwap(stateParked, stateIdle) {
				c.woken(time.Now())
				go c.serve()
			}
		}
	}
}

// abandon stops parking and hands every parked connection back to a
// goroutine of its own, after the epoll instance failed.
func (p *parker) abandon() {
	p.srv.noPark.Store(true)
	p.mu.Lock()
	p.stop.Store(true)
	conns := p.conns
	p.conns = map[uint64]*ServerConn{}
	p.mu.Unlock()
	for _, c := range conns {
		p.unregister(c)
		if c.state.CompareAndSwap(stateParked, stateIdle) {
			go c.serve()
		}
	}
	p.ep.Close()
}

// unregister removes c's socket from the epoll instance, if still open.
func (p *parker) unregister(c *ServerConn) {
	p.ctl(c, syscall.EPOLL_CTL_DEL, syscall.EpollEvent{})
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

// close stops the parker: closing the epoll instance wakes its goroutine,
// which returns (wait for it with wait); the descriptor is closed once no
// call uses it. Parked connections are closed by the server.
func (p *parker) close() {
	if !p.stop.Swap(true) {
		p.ep.Close()
	}
}

// wait returns once the parker's goroutine has returned; its epoll
// descriptor is closed then, or as soon as a park still running at close
// returns.
func (p *parker) wait() { <-p.done }
