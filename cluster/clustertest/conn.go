package clustertest

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"
)

// pipe is one direction of an in-memory connection: an unbounded byte
// buffer with a reader that blocks (honouring deadlines) until data, EOF or
// a reset. Delivery stops while the reading endpoint is frozen.
type pipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	eof    bool // the writer closed: EOF once drained
	reset  bool // broken: reads and writes fail
	reader *Endpoint
}

func newPipe(reader *Endpoint) *pipe {
	p := &pipe{reader: reader}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pipe) deliver(b []byte) {
	p.mu.Lock()
	if !p.reset && !p.eof {
		p.buf = append(p.buf, b...)
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *pipe) close(reset bool) {
	p.mu.Lock()
	p.eof = true
	p.reset = p.reset || reset
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *pipe) wake() { p.cond.Broadcast() }

// read blocks until data is available to a reader that is not frozen.
func (p *pipe) read(b []byte, deadline func() time.Time) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		switch {
		case p.reset:
			return 0, net.ErrClosed
		case len(p.buf) > 0 && !p.reader.isFrozen():
			n := copy(b, p.buf)
			p.buf = p.buf[n:]
			if len(p.buf) == 0 {
				p.buf = nil
			}
			return n, nil
		case p.eof && len(p.buf) == 0:
			return 0, io.EOF
		}
		d := deadline()
		if !d.IsZero() {
			if !time.Now().Before(d) {
				return 0, os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.AfterFunc(time.Until(d), p.wake)
			}
		}
		p.cond.Wait()
	}
}

// conn is one end of an in-memory connection.
type conn struct {
	local, remote *Endpoint
	in, out       *pipe
	shaper        *shaper // replication connections: frame-level faults; nil otherwise
	kind          string  // "gossip" or "replication"

	mu       sync.Mutex
	rdl, wdl time.Time
	closed   bool
}

func (c *conn) Read(b []byte) (int, error) {
	return c.in.read(b, func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.rdl
	})
}

// Write never blocks on the peer (the buffer is unbounded) but blocks
// while the writing endpoint is frozen, as a stopped process does.
func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	wdl := c.wdl
	c.mu.Unlock()
	if err := c.local.waitThawed(wdl); err != nil {
		return 0, err
	}
	c.out.mu.Lock()
	broken := c.out.reset || c.out.eof
	c.out.mu.Unlock()
	if broken || c.isClosed() {
		return 0, net.ErrClosed
	}
	if c.shaper != nil {
		c.shaper.write(b)
	} else {
		c.out.deliver(b)
	}
	return len(b), nil
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.shaper != nil {
		c.shaper.stop()
	}
	c.out.close(false)
	c.in.close(true)
	return nil
}

// breakConn resets both directions, as a crash or partition does.
func (c *conn) breakConn() {
	c.out.close(true)
	c.in.close(true)
	if c.shaper != nil {
		c.shaper.stop()
	}
}

func (c *conn) LocalAddr() net.Addr  { return c.local.tcpAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.remote.tcpAddr() }

func (c *conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl, c.wdl = t, t
	c.mu.Unlock()
	c.in.wake()
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	c.in.wake()
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}

// shaper cuts a replication stream into frames (4-byte big-endian length
// and payload, cluster's framing) and delivers each one subject to the
// network's faults for this direction: dropped, duplicated, delayed or
// held back behind later frames. With no faults it forwards bytes at once.
type shaper struct {
	net      *Network
	from, to string
	dst      *pipe

	mu      sync.Mutex
	partial []byte
	queue   []timed
	order   int
	timer   *time.Timer
	stopped bool
}

type timed struct {
	due   time.Time
	order int
	frame []byte
}

func (s *shaper) write(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.partial = append(s.partial, b...)
	for len(s.partial) >= 4 {
		n := int(binary.BigEndian.Uint32(s.partial))
		if len(s.partial) < 4+n {
			break
		}
		frame := append([]byte(nil), s.partial[:4+n]...)
		s.partial = s.partial[4+n:]
		s.scheduleLocked(frame)
	}
}

func (s *shaper) scheduleLocked(frame []byte) {
	f := s.net.faults(s.from, s.to)
	now := time.Now()
	if f.none() && len(s.queue) == 0 {
		s.dst.deliver(frame)
		return
	}
	switch {
	case s.net.chance(f.Drop):
		s.net.count(func(st *Stats) { st.FramesDropped++ })
		return
	case s.net.chance(f.Duplicate):
		s.net.count(func(st *Stats) { st.FramesDuplicated++ })
		s.pushLocked(now.Add(f.Delay+time.Millisecond), frame)
	}
	due := now.Add(f.Delay)
	if s.net.chance(f.Reorder) {
		s.net.count(func(st *Stats) { st.FramesReordered++ })
		due = due.Add(f.reorderBy())
	}
	s.pushLocked(due, frame)
}

func (s *shaper) pushLocked(due time.Time, frame []byte) {
	s.order++
	s.queue = append(s.queue, timed{due: due, order: s.order, frame: frame})
	sort.Slice(s.queue, func(i, j int) bool {
		if !s.queue[i].due.Equal(s.queue[j].due) {
			return s.queue[i].due.Before(s.queue[j].due)
		}
		return s.queue[i].order < s.queue[j].order
	})
	s.armLocked()
}

func (s *shaper) armLocked() {
	if len(s.queue) == 0 || s.stopped {
		return
	}
	d := time.Until(s.queue[0].due)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.release)
	} else {
		s.timer.Reset(d)
	}
}

// release delivers the frames that are due.
func (s *shaper) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for len(s.queue) > 0 && !s.queue[0].due.After(now) {
		s.dst.deliver(s.queue[0].frame)
		s.queue = s.queue[1:]
	}
	s.armLocked()
}

func (s *shaper) stop() {
	s.mu.Lock()
	s.stopped = true
	s.queue = nil
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
}
