//go:build linux

package h1

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
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
// parked connection costs no stack (4–8 KiB otherwise), and a parked
// *net.TCPConn is detached: its net.Conn is closed and only a duplicate
// of its socket is kept, in epoll, so it costs no netFD, no runtime
// poller entry (its pollDesc, outside the Go heap), no addresses and no
// finalizer either; when it wakes a net.Conn is made again from the
// duplicate (net.FileConn). What stays is its ServerConn (with the
// *tls.Conn and what crypto/tls keeps, over TLS) and the two map entries
// (Server.conns, parker.conns). Connections of other types (a listener's
// wrapper, such as proxyproto.Conn) are parked with their net.Conn.
//
// Who owns a parked socket is decided by the connection's state: the
// goroutine that moves it out of stateParked (a wake-up, expiry,
// Shutdown, Close) is the only one to close its descriptor or take it out
// of epoll, and while park or a wake-up runs (stateMoving) the others
// leave the connection alone, so a descriptor is closed once and no
// epoll_ctl can reach a descriptor number reused by another connection.
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
	waits atomic.Int64 // take's waits for a park to finish (for tests)
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
	go p.run()
	return p
}

// park registers c, idle and with its buffers given back, to be served
// again when readable. It reports whether it did: the calling goroutine
// must then not touch c again. If it did not, c is idle as before
// (false with c closed means Shutdown or Close closed it meanwhile).
//
// A detachable connection (a *net.TCPConn) is parked as a duplicate of
// its socket: Go's net.Conn is closed (no FIN: the duplicate keeps the
// socket open), and rebuilt when the connection wakes (resume).
func (p *parker) park(c *ServerConn, deadline time.Time) bool {
	if p.stop.Load() || !c.state.CompareAndSwap(stateIdle, stateMoving) {
		return false
	}
	// c is this goroutine's until its state leaves stateMoving: Close
	// marks it closed and leaves the closing to us; nothing else takes it.
	c.parkDeadline = deadline
	fd := -1
	if c.detachable {
		var err error
		if fd, err = dupSocket(c.rc); err != nil {
			return c.unmove()
		}
	}
	p.mu.Lock()
	if p.stop.Load() { // abandon, under the same lock, takes only what it finds
		p.mu.Unlock()
		closeFD(fd)
		return c.unmove()
	}
	p.ids++
	id := p.ids
	p.conns[id] = c
	p.mu.Unlock()
	err := p.register(c, fd, id)
	if err == nil && p.srv.onPark != nil {
		if err = p.srv.onPark(c); err != nil {
			p.epollDel(c, fd)
		}
	}
	if err != nil {
		p.mu.Lock()
		delete(p.conns, id) // dispatch or abandon may have it: they wait while c moves
		p.mu.Unlock()
		closeFD(fd)
		return c.unmove()
	}
	if fd >= 0 {
		c.detach(fd)
	}
	if c.state.CompareAndSwap(stateMoving, stateParked) {
		return true
	}
	// Close marked it closed meanwhile and left it to us. Its registration
	// goes with its descriptor; expire's scan forgets its entry.
	c.closeParked()
	p.srv.track(c, false)
	return true
}

// register adds c's socket (fd if it is detached, else its net.Conn's)
// to the epoll instance, once, under id.
func (p *parker) register(c *ServerConn, fd int, id uint64) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var err error
	perr := p.rc.Control(func(epfd uintptr) {
		if fd >= 0 {
			err = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_ADD, fd, &ev)
			return
		}
		cerr := c.rc.Control(func(fd uintptr) {
			err = syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_ADD, int(fd), &ev)
		})
		err = errors.Join(err, cerr) // the connection's Control must not hide epoll_ctl's error
	})
	return errors.Join(perr, err)
}

// unmove hands c back, idle, to the goroutine that tried to park it and
// returns false; c is closed instead if Close marked it meanwhile.
func (c *ServerConn) unmove() bool {
	if !c.state.CompareAndSwap(stateMoving, stateIdle) {
		c.closeRaw() // the caller's wait fails and ends the connection
	}
	return false
}

// take gets c, just removed from the parker's map, to wake it or close
// it: it reports whether c was parked, c's state then being stateMoving
// (the caller's to end). It waits while park is still registering c.
func (p *parker) take(c *ServerConn) bool {
	for {
		switch c.state.Load() {
		case stateParked:
			if c.state.CompareAndSwap(stateParked, stateMoving) {
				return true
			}
		case stateMoving:
			p.waits.Add(1)
			runtime.Gosched() // park is between epoll_ctl and its last step
		default:
			return false // closed: whoever closed it closed its socket
		}
	}
}

// resume serves c again after take: it leaves the epoll instance, gets
// its net.Conn back if it was detached, and is served by this goroutine.
func (c *ServerConn) resume(p *parker) {
	p.unregister(c)
	if c.detached {
		if err := c.attach(); err != nil {
			p.srv.opts.Logger.Warn("a parked connection could not be served again: closed", "err", err)
			c.state.Store(stateClosed) // c is ours: Close leaves a moving connection alone
			p.srv.track(c, false)
			return
		}
	}
	if !c.state.CompareAndSwap(stateMoving, stateIdle) {
		c.raw.Close() // Close marked it and left it to us
		p.srv.track(c, false)
		return
	}
	c.serve()
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
		if c != nil && p.take(c) {
			go c.resume(p)
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
		if p.take(c) {
			go c.resume(p)
		}
	}
	p.ep.Close()
}

// unregister removes c's socket from the epoll instance, if the instance
// is still open; c is the caller's (stateMoving), so its socket is. A
// detached socket must leave it before its descriptor is closed: the
// registration would outlive the descriptor while a duplicate of it lives.
func (p *parker) unregister(c *ServerConn) {
	fd := -1
	if c.detached {
		fd = c.pfd
	}
	p.epollDel(c, fd)
}

// epollDel removes fd from the epoll instance, or c's net.Conn's socket
// if fd is negative.
func (p *parker) epollDel(c *ServerConn, fd int) {
	p.rc.Control(func(epfd uintptr) {
		if fd >= 0 {
			syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_DEL, fd, nil)
			return
		}
		c.rc.Control(func(fd uintptr) {
			syscall.EpollCtl(int(epfd), syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	})
}

// expire closes the parked connections whose deadline has passed, and
// forgets those Shutdown closed.
func (p *parker) expire(now time.Time) {
	var old []*ServerConn
	p.mu.Lock()
	for id, c := range p.conns {
		switch c.state.Load() {
		case stateClosed:
			delete(p.conns, id)
		case stateParked: // not stateMoving: park has not finished (parkDeadline)
			if now.After(c.parkDeadline) {
				delete(p.conns, id)
				old = append(old, c)
			}
		}
	}
	p.mu.Unlock()
	for _, c := range old {
		// Closing its last descriptor takes the socket out of the epoll
		// instance; only the winner of the state closes it.
		if c.state.CompareAndSwap(stateParked, stateClosed) {
			c.closeParked()
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

// detach closes c's net.Conn, its socket kept open by fd, a duplicate
// (closing one of two descriptors sends no FIN), and forgets what the
// net.Conn gave: a parked connection then holds no netFD, no runtime
// poller entry, no addresses and no finalizer. c is the caller's
// (stateMoving).
func (c *ServerConn) detach(fd int) {
	c.raw.Close()
	c.pfd, c.detached = fd, true
	c.raw, c.rc, c.readable = nil, nil, nil
	c.remote, c.ip, c.tlsState = "", "", nil
	if c.tc != nil {
		c.probe.Conn = nil // the *tls.Conn keeps its state over probe
	} else {
		c.nc, c.fdr.conn = nil, nil
	}
}

// attach gives a detached c a net.Conn over its socket again and closes
// pfd (the net.Conn has a duplicate of its own). c is the caller's
// (stateMoving) and out of the epoll instance.
func (c *ServerConn) attach() error {
	f := os.NewFile(uintptr(c.pfd), "h1-parked")
	nc, err := net.FileConn(f)
	f.Close()
	c.detached = false
	if err != nil {
		return err
	}
	tcp, ok := nc.(*net.TCPConn)
	if !ok {
		nc.Close()
		return fmt.Errorf("h1: a parked socket came back as a %T", nc)
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		nc.Close()
		return err
	}
	c.raw, c.rc = nc, rc
	if c.tc != nil {
		c.probe.Conn = nc
		c.readable = c.peekReadable
	} else {
		c.nc, c.fdr.conn = nc, nc
		c.readable = c.polledReady
	}
	return nil
}

// closeParked closes the socket of a parked connection; only the
// goroutine that took it out of stateParked (or has it in stateMoving)
// calls it, so a descriptor is closed once.
func (c *ServerConn) closeParked() {
	if !c.detached {
		c.raw.Close()
		return
	}
	syscall.Close(c.pfd)
}

// dupSocket returns a duplicate of rc's descriptor, close-on-exec (and,
// as it shares the open file with rc's, non-blocking).
func dupSocket(rc syscall.RawConn) (int, error) {
	fd := -1
	var err error
	cerr := rc.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			err = errno
			return
		}
		fd = int(r)
	})
	if cerr != nil {
		return -1, cerr
	}
	return fd, err
}

// closeFD closes fd unless it is negative (none).
func closeFD(fd int) {
	if fd >= 0 {
		syscall.Close(fd)
	}
}
